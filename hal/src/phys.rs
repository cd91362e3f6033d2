//! Physical memory read by copy: the seam firmware-table walkers read through.
//!
//! A recovery kernel reads memory it did not write (ACPI tables, the dead
//! kernel's structures), so every read names its physical range and is checked
//! against what the reader can reach before a byte is touched; a range outside
//! it is a [`PhysError`], never a fault. [`PhysRead`] is the trait; [`Identity`]
//! reads through a kernel's identity map (the one place that map becomes a safe
//! reader: its creation is `unsafe`), and [`SliceMemory`] serves a byte buffer
//! as physical memory (host tests, fuzzing, a table a kernel copied already).

use core::fmt;

/// Why physical memory could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhysError {
    /// Some of `at..at + len` is outside what the reader can reach.
    OutOfRange {
        /// First byte asked for.
        at: u64,
        /// Bytes asked for.
        len: u64,
        /// The reader's limit (first address it cannot reach).
        limit: u64,
    },
    /// `at + len` overflows the physical address space.
    Overflow {
        /// First byte asked for.
        at: u64,
        /// Bytes asked for.
        len: u64,
    },
    /// Address 0 (never a table, never a valid pointer).
    Null,
}

impl fmt::Display for PhysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { at, len, limit } => write!(
                f,
                "physical range {at:#x}+{len:#x} outside readable memory (limit {limit:#x})"
            ),
            Self::Overflow { at, len } => {
                write!(f, "physical range {at:#x}+{len:#x} overflows")
            }
            Self::Null => write!(f, "physical address 0"),
        }
    }
}

/// Reads physical memory by copy, with a bounds check before every access.
///
/// Implementations guarantee that a read returning `Ok` filled all of `out`
/// from `pa..pa + out.len()`, and that a read outside what they can reach
/// returns an error without touching memory.
pub trait PhysRead {
    /// Copies `out.len()` bytes at physical address `pa` into `out`.
    ///
    /// # Errors
    ///
    /// [`PhysError`] when any of the range is outside the reader's memory; `out`
    /// is then unspecified.
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), PhysError>;

    /// Reads the byte at `pa`.
    ///
    /// # Errors
    ///
    /// As [`PhysRead::read`].
    fn read_u8(&self, pa: u64) -> Result<u8, PhysError> {
        let mut b = [0u8; 1];
        self.read(pa, &mut b)?;
        Ok(b[0])
    }

    /// Reads the little-endian `u32` at `pa` (any alignment: tables are packed).
    ///
    /// # Errors
    ///
    /// As [`PhysRead::read`].
    fn read_u32(&self, pa: u64) -> Result<u32, PhysError> {
        let mut b = [0u8; 4];
        self.read(pa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads the little-endian `u64` at `pa` (any alignment).
    ///
    /// # Errors
    ///
    /// As [`PhysRead::read`].
    fn read_u64(&self, pa: u64) -> Result<u64, PhysError> {
        let mut b = [0u8; 8];
        self.read(pa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

impl<T: PhysRead + ?Sized> PhysRead for &T {
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), PhysError> {
        (**self).read(pa, out)
    }
}

/// Checks `at..at + len` against `limit`; returns the end.
fn check(at: u64, len: usize, limit: u64) -> Result<u64, PhysError> {
    let len = len as u64;
    let end = at.checked_add(len).ok_or(PhysError::Overflow { at, len })?;
    if at == 0 {
        return Err(PhysError::Null);
    }
    if end > limit {
        return Err(PhysError::OutOfRange { at, len, limit });
    }
    Ok(end)
}

/// Physical memory below a limit, read through the kernel's 1:1 identity map.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    limit: u64,
}

impl Identity {
    /// Reads physical addresses `1..limit` through the identity map.
    ///
    /// # Safety
    ///
    /// - every physical address in `1..limit` must be mapped 1:1 (virtual ==
    ///   physical) for as long as the value (or a copy) lives;
    /// - reading any of it must have no side effect: RAM and firmware tables,
    ///   not device registers (map device memory with [`crate::mmio::Mmio`]).
    pub const unsafe fn new(limit: u64) -> Self {
        Self { limit }
    }

    /// The first address this reader cannot reach.
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// Writes back the cache lines of `pa..pa + len` (cut at the limit), so a
    /// unit that does not snoop the caches (an IOMMU with ECAP.C = 0) sees what
    /// the CPU wrote there. Off x86_64 this does nothing.
    pub fn flush(&self, pa: u64, len: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::arch::x86_64::cpu::{clflush, CACHE_LINE};
            let mut line = pa & !(CACHE_LINE - 1);
            let end = pa.saturating_add(len).min(self.limit);
            while line < end {
                if line != 0 {
                    // SAFETY: `line` is below `limit`, so identity-mapped
                    // (`new`'s contract); clflush changes no memory contents.
                    unsafe { clflush(line as usize as *const u8) };
                }
                line += CACHE_LINE;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (pa, len);
    }
}

impl PhysRead for Identity {
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), PhysError> {
        check(pa, out.len(), self.limit)?;
        for (i, b) in out.iter_mut().enumerate() {
            let at = (pa as usize).wrapping_add(i);
            // SAFETY:
            // - `pa..pa + out.len()` is non-zero and below `limit` (checked), so
            //   `at` is identity-mapped (`new`'s contract);
            // - the memory is RAM or firmware tables: a volatile byte read has no
            //   side effect, needs no alignment and forms no reference.
            *b = unsafe { core::ptr::read_volatile(at as *const u8) };
        }
        Ok(())
    }
}

/// A byte slice seen as physical memory starting at `base`.
#[derive(Debug, Clone, Copy)]
pub struct SliceMemory<'a> {
    /// Physical address of the first byte.
    pub base: u64,
    /// The bytes.
    pub bytes: &'a [u8],
}

impl PhysRead for SliceMemory<'_> {
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), PhysError> {
        let len = out.len() as u64;
        let end = pa
            .checked_add(len)
            .ok_or(PhysError::Overflow { at: pa, len })?;
        let limit = self.base.saturating_add(self.bytes.len() as u64);
        let out_of_range = PhysError::OutOfRange { at: pa, len, limit };
        let off = pa.checked_sub(self.base).ok_or(out_of_range)?;
        if end > limit {
            return Err(out_of_range);
        }
        let off = usize::try_from(off).map_err(|_| out_of_range)?;
        let src = off
            .checked_add(out.len())
            .and_then(|e| self.bytes.get(off..e))
            .ok_or(out_of_range)?;
        out.copy_from_slice(src);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_inside_and_refuses_outside() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        let m = SliceMemory {
            base: 0x1000,
            bytes: &bytes,
        };
        assert_eq!(m.read_u8(0x1000), Ok(1));
        assert_eq!(m.read_u32(0x1001), Ok(0x0504_0302));
        assert_eq!(m.read_u64(0x1001), Ok(0x0908_0706_0504_0302));
        assert_eq!(
            m.read_u64(0x1002),
            Err(PhysError::OutOfRange {
                at: 0x1002,
                len: 8,
                limit: 0x1009
            })
        );
        assert!(matches!(
            m.read_u8(0xfff),
            Err(PhysError::OutOfRange { .. })
        ));
        assert_eq!(
            m.read_u32(u64::MAX - 1),
            Err(PhysError::Overflow {
                at: u64::MAX - 1,
                len: 4
            })
        );
        let mut empty = [0u8; 0];
        assert_eq!(m.read(0x1009, &mut empty), Ok(()));
    }

    #[test]
    fn identity_checks_before_touching_memory() {
        // SAFETY: no read below is inside the limit, so nothing is dereferenced.
        let id = unsafe { Identity::new(0x1000) };
        assert_eq!(id.read_u8(0), Err(PhysError::Null));
        assert!(matches!(
            id.read_u32(0xffe),
            Err(PhysError::OutOfRange { limit: 0x1000, .. })
        ));
        assert!(matches!(
            id.read_u64(u64::MAX),
            Err(PhysError::Overflow { .. })
        ));
        // A real read, of a buffer we own, through a limit that covers it.
        let buf = [0xa5u8, 0x5a, 0x11, 0x22];
        let at = buf.as_ptr() as u64;
        // SAFETY: the host process maps `buf` at its own address (identity for
        // this range) and reading it has no side effect.
        let id = unsafe { Identity::new(at + 4) };
        assert_eq!(id.read_u32(at), Ok(0x2211_5aa5));
        assert!(id.read_u32(at + 1).is_err());
    }
}
