//! Values a device controls, usable only after validation.
//!
//! Registers, completion entries and descriptors are written by the device, and a
//! device in a perverse state (wedged, half reset, gone, or malicious) can put any
//! bit pattern there. [`Untrusted<T>`] wraps such a value: it has no `Deref`, no
//! arithmetic and no conversion to an index, length, shift or address. The only
//! ways out are validating calls that return a typed error for bad values.

use core::fmt;
use core::ops::RangeInclusive;

/// Why a device value failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UntrustedError {
    /// The value read as all-ones: the device is gone or not responding.
    AllOnes {
        /// Width of the value in bits.
        bits: u32,
    },
    /// The value was outside the accepted range.
    OutOfRange {
        /// The value seen.
        value: u64,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// A custom validation rejected the value.
    Invalid {
        /// What was being validated.
        what: &'static str,
        /// The value seen (or a digest of it for non-integers).
        value: u64,
    },
}

impl fmt::Display for UntrustedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::AllOnes { bits } => {
                write!(f, "device value reads all-ones ({bits} bits): device gone")
            }
            Self::OutOfRange { value, min, max } => {
                write!(f, "device value {value:#x} outside {min:#x}..={max:#x}")
            }
            Self::Invalid { what, value } => {
                write!(f, "invalid device value for {what}: {value:#x}")
            }
        }
    }
}

/// Integer types a device can hand us; the all-ones pattern is the "gone" signal.
pub trait DeviceInt: Copy + PartialEq + PartialOrd + fmt::LowerHex + sealed::Sealed {
    /// The all-ones bit pattern of this width.
    const ALL_ONES: Self;
    /// Width in bits.
    const BITS: u32;
    /// Widens to `u64` (lossless).
    fn to_u64(self) -> u64;
    /// Narrows from `u64`, keeping the low bits.
    fn from_u64_truncate(v: u64) -> Self;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! device_int {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl DeviceInt for $t {
            const ALL_ONES: Self = <$t>::MAX;
            const BITS: u32 = <$t>::BITS;
            #[inline(always)]
            fn to_u64(self) -> u64 { self as u64 }
            #[inline(always)]
            fn from_u64_truncate(v: u64) -> Self { v as $t }
        }
    )*};
}
device_int!(u8, u16, u32, u64);

/// A value controlled by a device: validate it before it indexes, sizes, shifts
/// or addresses anything.
///
/// # Examples
///
/// ```
/// use paranoid::Untrusted;
///
/// let head = Untrusted::new(70u16);
/// // A queue of 64 entries: an out-of-range head is an error, not an index.
/// assert!(head.index_below(64).is_err());
/// assert_eq!(Untrusted::new(7u16).index_below(64), Ok(7));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[must_use = "a device value should be validated, not dropped"]
#[repr(transparent)]
pub struct Untrusted<T>(T);

impl<T> Untrusted<T> {
    /// Wraps a value that came from a device.
    #[inline(always)]
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// Validates with a custom check, the general way out.
    ///
    /// # Errors
    ///
    /// Whatever `check` returns.
    #[inline]
    pub fn validate<U, E>(self, check: impl FnOnce(T) -> Result<U, E>) -> Result<U, E> {
        check(self.0)
    }

    /// Projects a part of the value (a field of a completion entry, say); the part
    /// stays untrusted.
    #[inline(always)]
    pub fn map<U>(self, project: impl FnOnce(T) -> U) -> Untrusted<U> {
        Untrusted(project(self.0))
    }

    /// Returns the raw value for logging, tracing and error reports only.
    ///
    /// The name is long on purpose: `cargo paranoid` treats its result as still
    /// tainted, so using it as an index or length is flagged.
    #[inline(always)]
    pub fn into_raw_for_report(self) -> T {
        self.0
    }
}

impl<T: DeviceInt> Untrusted<T> {
    /// True when every bit is set, the pattern a missing device returns.
    #[inline(always)]
    pub fn is_all_ones(&self) -> bool {
        self.0 == T::ALL_ONES
    }

    /// Rejects the all-ones pattern; the value stays untrusted otherwise.
    ///
    /// # Errors
    ///
    /// [`UntrustedError::AllOnes`] when the device reads all-ones.
    #[inline]
    pub fn not_all_ones(self) -> Result<Self, UntrustedError> {
        if self.is_all_ones() {
            Err(UntrustedError::AllOnes { bits: T::BITS })
        } else {
            Ok(self)
        }
    }

    /// Accepts the value if it lies in `range`.
    ///
    /// # Errors
    ///
    /// [`UntrustedError::OutOfRange`] otherwise.
    #[inline]
    pub fn in_range(self, range: RangeInclusive<T>) -> Result<T, UntrustedError> {
        if range.contains(&self.0) {
            Ok(self.0)
        } else {
            Err(UntrustedError::OutOfRange {
                value: self.0.to_u64(),
                min: range.start().to_u64(),
                max: range.end().to_u64(),
            })
        }
    }

    /// Accepts the value as an index into something of `len` elements.
    ///
    /// # Errors
    ///
    /// [`UntrustedError::OutOfRange`] when `value >= len` (always when `len` is 0).
    #[inline]
    pub fn index_below(self, len: usize) -> Result<usize, UntrustedError> {
        let value = self.0.to_u64();
        match usize::try_from(value) {
            Ok(v) if v < len => Ok(v),
            _ => Err(UntrustedError::OutOfRange {
                value,
                min: 0,
                max: (len as u64).wrapping_sub(1),
            }),
        }
    }

    /// Clamps the value to at most `max`: always safe to use afterwards.
    #[inline(always)]
    pub fn clamp_max(self, max: T) -> T {
        if self.0 > max {
            max
        } else {
            self.0
        }
    }

    /// Tests one bit (a bool cannot index anything, so it needs no validation).
    #[inline(always)]
    pub fn bit(&self, n: u32) -> bool {
        n < T::BITS && (self.0.to_u64() >> n) & 1 == 1
    }

    /// Compares with an expected value.
    #[inline(always)]
    pub fn is(&self, expected: T) -> bool {
        self.0 == expected
    }

    /// Extracts the field of `width` bits at `shift`; the field stays untrusted.
    #[inline(always)]
    pub fn field(self, shift: u32, width: u32) -> Untrusted<T> {
        let v = self.0.to_u64();
        let shifted = if shift >= 64 { 0 } else { v >> shift };
        let mask = if width >= 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        Untrusted(T::from_u64_truncate(shifted & mask))
    }

    /// Interprets the value as flags, dropping bits the type does not define.
    #[inline]
    pub fn flags<F: bitflags::Flags<Bits = T>>(self) -> F
    where
        T: bitflags::Bits,
    {
        F::from_bits_truncate(self.0)
    }

    /// Widens to an untrusted `u64`.
    #[inline(always)]
    pub fn widen(self) -> Untrusted<u64> {
        Untrusted(self.0.to_u64())
    }
}

impl<T: fmt::Debug> fmt::Debug for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Untrusted({:?})", self.0)
    }
}

impl<T: fmt::LowerHex> fmt::LowerHex for Untrusted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn all_ones_is_rejected_at_every_width() {
        assert!(Untrusted::new(0xffu8).not_all_ones().is_err());
        assert!(Untrusted::new(0xffffu16).not_all_ones().is_err());
        assert_eq!(
            Untrusted::new(u32::MAX).not_all_ones(),
            Err(UntrustedError::AllOnes { bits: 32 })
        );
        assert!(Untrusted::new(u64::MAX).not_all_ones().is_err());
        assert!(Untrusted::new(0x7fff_ffffu32).not_all_ones().is_ok());
    }

    #[test]
    fn a_bit_past_the_width_reads_clear() {
        assert!(Untrusted::new(u64::MAX).bit(63));
        assert!(!Untrusted::new(u64::MAX).bit(64));
        assert!(!Untrusted::new(u32::MAX).bit(32));
        assert!(!Untrusted::new(u64::MAX).bit(u32::MAX));
    }

    #[test]
    fn fields_and_bits() {
        let v = Untrusted::new(0x00f0_0001u32);
        assert!(v.bit(0));
        assert!(!v.bit(1));
        assert!(!v.bit(99));
        assert_eq!(v.field(20, 4).in_range(0..=15), Ok(0xf));
        assert_eq!(v.field(64, 4).in_range(0..=0), Ok(0));
    }

    proptest! {
        #[test]
        fn index_below_never_yields_out_of_bounds(value: u64, len in 0usize..10_000) {
            match Untrusted::new(value).index_below(len) {
                Ok(i) => prop_assert!(i < len),
                Err(UntrustedError::OutOfRange { value: v, .. }) => prop_assert_eq!(v, value),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }

        #[test]
        fn in_range_agrees_with_contains(value: u32, a: u32, b: u32) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let r = Untrusted::new(value).in_range(lo..=hi);
            prop_assert_eq!(r.is_ok(), (lo..=hi).contains(&value));
        }

        #[test]
        fn clamp_max_bounds(value: u16, max: u16) {
            prop_assert!(Untrusted::new(value).clamp_max(max) <= max);
        }
    }
}
