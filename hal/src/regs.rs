//! Run-time support for register blocks declared with [`register_block!`](crate::register_block).
//!
//! The macro generates one type per register whose methods match its access
//! mode (a read-only register has no `write`); this module holds what those
//! types share: [`Field`] (a named bit range, its mask and encoding),
//! [`Access`] and [`RegisterSpec`] (a register described by value, for dumps and
//! tests).

use core::marker::PhantomData;

use crate::untrusted::DeviceInt;
use crate::Untrusted;

/// How software may access a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only (`ro`): no write method exists.
    ReadOnly,
    /// Write-only (`wo`): no read method exists (reads return garbage or zero).
    WriteOnly,
    /// Read/write (`rw`).
    ReadWrite,
    /// Write-one-to-clear status (`w1c`): read, and `clear(bits)`.
    WriteOneToClear,
    /// Read-to-clear (`rc`): the only read is `read_and_clear`, named for its
    /// side effect.
    ReadToClear,
}

impl Access {
    /// The keyword used in `register_block!`.
    pub const fn keyword(self) -> &'static str {
        match self {
            Self::ReadOnly => "ro",
            Self::WriteOnly => "wo",
            Self::ReadWrite => "rw",
            Self::WriteOneToClear => "w1c",
            Self::ReadToClear => "rc",
        }
    }

    /// True when reading the register is allowed.
    pub const fn readable(self) -> bool {
        !matches!(self, Self::WriteOnly)
    }

    /// True when reading has a side effect (it clears the register).
    pub const fn read_has_side_effect(self) -> bool {
        matches!(self, Self::ReadToClear)
    }

    /// True when some write is allowed (`write` or `clear`).
    pub const fn writable(self) -> bool {
        matches!(
            self,
            Self::WriteOnly | Self::ReadWrite | Self::WriteOneToClear
        )
    }
}

/// One register described by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterSpec {
    /// Spec name (`CAP`, `CSTS`).
    pub name: &'static str,
    /// Byte offset in the block.
    pub offset: usize,
    /// Width in bytes (1, 2, 4 or 8).
    pub width: usize,
    /// Access mode.
    pub access: Access,
    /// Value after reset, if the declaration gives one.
    pub reset: Option<u64>,
}

/// A named bit range of a register of type `T` (`CC.EN`, `CAP.TO`).
///
/// Fields are declared in `register_block!` and appear as constants of the
/// register's module, e.g. `nvme_regs::cap::TO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<T> {
    shift: u32,
    width: u32,
    _t: PhantomData<T>,
}

impl<T: DeviceInt> Field<T> {
    /// The field in an untrusted register value, still untrusted.
    #[inline(always)]
    pub fn get(self, value: Untrusted<T>) -> Untrusted<T> {
        value.field(self.shift, self.width)
    }

    /// True when any bit of the field is set in `value` (a bool indexes nothing,
    /// so it needs no validation).
    #[inline(always)]
    pub fn is_set(self, value: Untrusted<T>) -> bool {
        !value.field(self.shift, self.width).is(self.zero())
    }

    #[inline(always)]
    fn zero(self) -> T {
        T::from_u64_truncate(0)
    }
}

macro_rules! field_impl {
    ($($t:ty),*) => {$(
        impl Field<$t> {
            /// The field of `width` bits starting at bit `shift`.
            ///
            /// The macro only generates fields that fit; a hand-made field that
            /// does not fit is clipped to the register by [`mask`](Self::mask).
            pub const fn new(shift: u32, width: u32) -> Self {
                Self { shift, width, _t: PhantomData }
            }

            /// The lowest bit.
            pub const fn shift(self) -> u32 {
                self.shift
            }

            /// The number of bits.
            pub const fn width(self) -> u32 {
                self.width
            }

            /// The field's bits in place (`CC.EN` → `0x1`, `CAP.TO` → `0xff00_0000`).
            pub const fn mask(self) -> $t {
                if self.shift >= <$t>::BITS {
                    return 0;
                }
                let ones = if self.width >= <$t>::BITS { <$t>::MAX } else { (1 << self.width) - 1 };
                ones << self.shift
            }

            /// `value` placed in the field, its extra high bits dropped (for
            /// values the driver chose; use [`encode`](Self::encode) to be told
            /// about overflow).
            pub const fn bits(self, value: $t) -> $t {
                if self.shift >= <$t>::BITS {
                    return 0;
                }
                (value << self.shift) & self.mask()
            }

            /// `value` placed in the field, or `None` when it does not fit.
            pub const fn encode(self, value: $t) -> Option<$t> {
                if self.shift >= <$t>::BITS || (value << self.shift) >> self.shift != value {
                    return None;
                }
                let placed = value << self.shift;
                if placed & !self.mask() != 0 {
                    None
                } else {
                    Some(placed)
                }
            }

            /// The field of a value the driver already trusts (a reset value,
            /// a value it wrote).
            pub const fn extract(self, value: $t) -> $t {
                (value & self.mask()) >> if self.shift >= <$t>::BITS { 0 } else { self.shift }
            }
        }
    )*};
}
field_impl!(u8, u16, u32, u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_encoding() {
        let to = Field::<u64>::new(24, 8);
        assert_eq!(to.mask(), 0xff00_0000);
        assert_eq!(to.bits(0x1ff), 0xff00_0000);
        assert_eq!(to.encode(0x1ff), None);
        assert_eq!(to.encode(0x12), Some(0x1200_0000));
        assert_eq!(to.extract(0x1234_5678), 0x12);
        assert_eq!(to.get(Untrusted::new(0xab00_0000)), Untrusted::new(0xab));
        let en = Field::<u32>::new(0, 1);
        assert!(en.is_set(Untrusted::new(1)));
        assert!(!en.is_set(Untrusted::new(2)));
        let all = Field::<u8>::new(0, 8);
        assert_eq!(all.mask(), 0xff);
        assert_eq!(all.encode(0xff), Some(0xff));
        let top = Field::<u16>::new(15, 1);
        assert_eq!(top.mask(), 0x8000);
        assert_eq!(top.encode(2), None);
        let out = Field::<u16>::new(16, 1);
        assert_eq!((out.mask(), out.bits(1), out.encode(1)), (0, 0, None));
    }

    #[test]
    fn access_modes() {
        assert!(!Access::ReadOnly.writable());
        assert!(!Access::WriteOnly.readable());
        assert!(Access::WriteOneToClear.writable() && Access::WriteOneToClear.readable());
        assert!(Access::ReadToClear.read_has_side_effect());
        assert_eq!(Access::ReadToClear.keyword(), "rc");
    }
}
