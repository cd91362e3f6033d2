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

/// Ranges of RAM (and firmware tables) a kernel reaches through its identity
/// map, read by copy: the one reader of memory the kernel does not own (a
/// crashed kernel's RAM, a note it left, its own image), made once at boot
/// from the memory map.
///
/// Unlike [`Identity`], which covers everything below one limit, this covers
/// only the ranges it was made with, so device memory between or above them
/// (the MMIO hole, 64-bit BARs) is never read, whatever address is asked for.
#[derive(Debug, Clone, Copy)]
pub struct IdentityMap {
    ranges: [(u64, u64); IdentityMap::MAX_RANGES],
    count: usize,
}

impl IdentityMap {
    /// Ranges kept at most (more are dropped: reads there fail).
    pub const MAX_RANGES: usize = 32;

    /// The map of `ranges` (`(start, end)`, end exclusive; empty ranges are
    /// skipped). Physical page 0 may be in a range: it is read with the
    /// architecture's load instruction, never through a null Rust pointer
    /// (off x86_64 address 0 is refused).
    ///
    /// # Safety
    ///
    /// - every address of every range must be mapped 1:1 (virtual ==
    ///   physical) for as long as the value (or a copy) lives;
    /// - each range must be RAM or firmware tables: reading it has no side
    ///   effect. Devices may be writing it (a copy then sees some mix of old
    ///   and new bytes, never a fault).
    pub unsafe fn new(ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut map = Self {
            ranges: [(0, 0); Self::MAX_RANGES],
            count: 0,
        };
        for (start, end) in ranges {
            if start < end {
                if let Some(slot) = map.ranges.get_mut(map.count) {
                    *slot = (start, end);
                    map.count += 1;
                }
            }
        }
        map
    }

    /// The ranges, as made.
    pub fn ranges(&self) -> &[(u64, u64)] {
        self.ranges.get(..self.count).unwrap_or(&[])
    }

    /// True when `pa..pa + len` lies inside one range.
    pub fn contains(&self, pa: u64, len: u64) -> bool {
        pa.checked_add(len)
            .is_some_and(|end| self.ranges().iter().any(|&(s, e)| pa >= s && end <= e))
    }

    fn check(&self, pa: u64, len: usize) -> Result<(), PhysError> {
        let n = len as u64;
        if pa == 0 && !cfg!(target_arch = "x86_64") {
            return Err(PhysError::Null);
        }
        pa.checked_add(n)
            .ok_or(PhysError::Overflow { at: pa, len: n })?;
        if !self.contains(pa, n) {
            return Err(PhysError::OutOfRange {
                at: pa,
                len: n,
                limit: self.ranges().iter().map(|r| r.1).max().unwrap_or(0),
            });
        }
        Ok(())
    }

    /// One volatile load of the 8-aligned `u64` at `pa`: a word a device may
    /// be writing (an armed DMA's target).
    ///
    /// # Errors
    ///
    /// [`PhysError`] outside the ranges; [`PhysError::OutOfRange`] (with
    /// `limit` 0) when `pa` is not 8-aligned.
    pub fn read_u64_volatile(&self, pa: u64) -> Result<u64, PhysError> {
        self.check(pa, 8)?;
        if pa % 8 != 0 {
            return Err(PhysError::OutOfRange {
                at: pa,
                len: 8,
                limit: 0,
            });
        }
        // SAFETY:
        // - `pa..pa + 8` lies in one range (checked), identity-mapped RAM with
        //   no read side effect (`new`'s contract), and is 8-aligned;
        // - one load instruction of an integer (the arch primitive: a `mov`
        //   on x86_64, so address 0 is no null Rust pointer; refused above
        //   elsewhere) forms no reference, and any bits are valid.
        Ok(unsafe { crate::arch::read64(pa as usize as *const u64) })
    }
}

/// Below this, bytes are copied one load instruction at a time (physical
/// page 0 is a null pointer to Rust).
const LOW_PAGE: u64 = 4096;

impl PhysRead for IdentityMap {
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), PhysError> {
        self.check(pa, out.len())?;
        let low = usize::try_from(LOW_PAGE.saturating_sub(pa))
            .unwrap_or(usize::MAX)
            .min(out.len());
        let (head, rest) = out.split_at_mut(low);
        for (i, b) in head.iter_mut().enumerate() {
            // SAFETY:
            // - the byte lies in a checked range: identity-mapped memory with
            //   no read side effect (`new`'s contract);
            // - the arch load is one instruction through a register (address 0
            //   included on x86_64; refused by `check` elsewhere), forming no
            //   Rust reference.
            *b = unsafe { crate::arch::read8((pa as usize).wrapping_add(i) as *const u8) };
        }
        if rest.is_empty() {
            return Ok(());
        }
        let from = (pa as usize).wrapping_add(low);
        // SAFETY:
        // - `from..from + rest.len()` is the tail of a checked range, at or
        //   above page 1 (never null): identity-mapped RAM or tables with no
        //   read side effect (`new`'s contract);
        // - `rest` is ordinary memory of ours, disjoint from memory we do not
        //   own; a byte copy needs no alignment and forms no reference to the
        //   source (a device may be writing it: the copy is then mixed, never
        //   unsound for plain bytes).
        unsafe { core::ptr::copy_nonoverlapping(from as *const u8, rest.as_mut_ptr(), rest.len()) };
        Ok(())
    }
}

/// RAM a kernel owns outright, reached through its identity map: the one way
/// kernels write plain memory (rings a test plays a dead kernel with, canary
/// fills) without an `unsafe` block of their own.
///
/// Accesses are volatile (a device may read or write the region by DMA) and
/// bounds- and alignment-checked: an access outside the region does nothing
/// and says so.
#[derive(Debug)]
pub struct RamRegion {
    start: u64,
    len: u64,
}

impl RamRegion {
    /// Takes `start..start + len` as owned RAM.
    ///
    /// # Safety
    ///
    /// - `start..start + len` must be RAM mapped 1:1 for as long as the value
    ///   lives, with no read or write side effect (not device memory);
    /// - nothing else may use it while the value lives (no Rust reference, no
    ///   other owner): a frame allocator that never hands it out again, say.
    ///   Devices the caller points at it may DMA into it.
    pub const unsafe fn new(start: u64, len: u64) -> Self {
        Self { start, len }
    }

    /// The first physical address.
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// The length in bytes.
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// True for a region of no bytes.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of `offset..offset + width`, if it lies inside and is
    /// `width`-aligned.
    fn at(&self, offset: u64, width: u64) -> Option<usize> {
        let end = offset.checked_add(width)?;
        let pa = self.start.checked_add(offset)?;
        (end <= self.len && pa % width == 0 && pa != 0).then_some(pa as usize)
    }

    /// One volatile access of `T` (`u8`, `u32` or `u64`: integers, any bits
    /// valid)
    /// at `offset`, if inside and aligned.
    fn load<T: Copy>(&self, offset: u64) -> Option<T> {
        let pa = self.at(offset, core::mem::size_of::<T>() as u64)?;
        // SAFETY:
        // - inside the region and aligned for `T` (checked by `at`), which
        //   `new`'s contract says is identity-mapped RAM we own;
        // - callers pass integer types only, valid for any bits; a volatile
        //   read forms no reference (a device may be writing it).
        Some(unsafe { core::ptr::read_volatile(pa as *const T) })
    }

    /// One volatile store of `T` at `offset`; false outside or misaligned.
    fn store<T: Copy>(&mut self, offset: u64, value: T) -> bool {
        let Some(pa) = self.at(offset, core::mem::size_of::<T>() as u64) else {
            return false;
        };
        // SAFETY: as for `load`; `&mut self` and `new`'s contract make us the
        // only writer but for devices the owner pointed here.
        unsafe { core::ptr::write_volatile(pa as *mut T, value) };
        true
    }

    /// Splits the region at `offset`: `start..start + offset` and the rest,
    /// each owned on its own; the region back when `offset` is past its end.
    ///
    /// # Errors
    ///
    /// `Err(self)` when `offset > len`.
    pub fn split_at(self, offset: u64) -> Result<(RamRegion, RamRegion), RamRegion> {
        if offset > self.len {
            return Err(self);
        }
        Ok((
            RamRegion {
                start: self.start,
                len: offset,
            },
            RamRegion {
                start: self.start + offset,
                len: self.len - offset,
            },
        ))
    }

    /// Copies `bytes` to `offset..` with one bulk copy (loading an image, a
    /// table built elsewhere); false (nothing written) when they do not fit.
    pub fn copy_from_slice(&mut self, offset: u64, bytes: &[u8]) -> bool {
        let Some(pa) = self.bulk(offset, bytes.len() as u64) else {
            return false;
        };
        // SAFETY:
        // - `pa..pa + bytes.len()` lies inside the region (checked by `bulk`),
        //   identity-mapped RAM we own (`new`'s contract), at or above page 1;
        // - `bytes` is ours, and cannot overlap the region: nothing but this
        //   value reaches the region (a device may write it; a byte copy into
        //   plain RAM forms no reference to it).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), pa as *mut u8, bytes.len()) };
        true
    }

    /// Zeroes `offset..offset + len` with one bulk store; false (nothing
    /// written) when the range does not fit.
    pub fn zero(&mut self, offset: u64, len: u64) -> bool {
        let Some(pa) = self.bulk(offset, len) else {
            return false;
        };
        // SAFETY: as for `copy_from_slice`: inside the region, which we own.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0, len as usize) };
        true
    }

    /// The address of `offset..offset + len` for a bulk access: inside the
    /// region, not at address 0, and addressable.
    fn bulk(&self, offset: u64, len: u64) -> Option<usize> {
        let end = offset.checked_add(len)?;
        let pa = self.start.checked_add(offset)?;
        let fits = end <= self.len && pa != 0 && usize::try_from(pa.checked_add(len)?).is_ok();
        fits.then_some(pa as usize)
    }

    /// Writes the `u64` at `offset` (8-aligned) in one access; false outside
    /// the region or misaligned.
    pub fn write_u64_aligned(&mut self, offset: u64, value: u64) -> bool {
        self.store(offset, value)
    }

    /// Reads the byte at `offset`; `None` outside the region.
    pub fn read_u8(&self, offset: u64) -> Option<u8> {
        self.load(offset)
    }

    /// Writes the byte at `offset`; false outside the region.
    pub fn write_u8(&mut self, offset: u64, value: u8) -> bool {
        self.store(offset, value)
    }

    /// Reads the little-endian `u32` at `offset` (4-aligned) in one access;
    /// `None` outside the region or misaligned.
    pub fn read_u32(&self, offset: u64) -> Option<u32> {
        self.load(offset)
    }

    /// Writes the `u32` at `offset` (4-aligned) in one access; false outside
    /// the region or misaligned.
    pub fn write_u32(&mut self, offset: u64, value: u32) -> bool {
        self.store(offset, value)
    }

    /// Reads the `u64` at `offset` (8-aligned) in one access; `None` outside
    /// the region or misaligned.
    pub fn read_u64(&self, offset: u64) -> Option<u64> {
        self.load(offset)
    }

    /// Writes the `u64` at `offset` (4-aligned) as two `u32`s, low half
    /// first; false (nothing written) outside the region or misaligned.
    pub fn write_u64(&mut self, offset: u64, value: u64) -> bool {
        let fits = offset.checked_add(8).is_some_and(|end| end <= self.len);
        if !fits || self.at(offset, 4).is_none() {
            return false;
        }
        self.write_u32(offset, value as u32) && self.write_u32(offset + 4, (value >> 32) as u32)
    }

    /// Writes `bytes` at `offset`; false (nothing written) when they do not fit.
    pub fn write(&mut self, offset: u64, bytes: &[u8]) -> bool {
        let fits = offset
            .checked_add(bytes.len() as u64)
            .is_some_and(|end| end <= self.len);
        if !fits {
            return false;
        }
        (offset..).zip(bytes).all(|(o, &b)| self.write_u8(o, b))
    }

    /// Fills `offset..offset + len` with `byte`; false (nothing written) when
    /// the range does not fit.
    pub fn fill(&mut self, offset: u64, len: u64, byte: u8) -> bool {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return false;
        }
        (offset..offset + len).all(|o| self.write_u8(o, byte))
    }

    /// The first offset in `offset..offset + len` whose byte is not `byte`
    /// (`None`: all are, or the range does not fit the region).
    pub fn first_not(&self, offset: u64, len: u64, byte: u8) -> Option<u64> {
        let end = offset.checked_add(len).filter(|&e| e <= self.len)?;
        (offset..end).find(|&o| self.read_u8(o) != Some(byte))
    }

    /// How many bytes in `offset..offset + len` are not `byte` (0 when the
    /// range does not fit).
    pub fn count_not(&self, offset: u64, len: u64, byte: u8) -> u64 {
        match offset.checked_add(len).filter(|&e| e <= self.len) {
            Some(end) => (offset..end)
                .filter(|&o| self.read_u8(o) != Some(byte))
                .count() as u64,
            None => 0,
        }
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

    #[test]
    fn ram_region_checks_bounds_and_alignment() {
        let mut buf = vec![0u64; 8];
        let start = buf.as_mut_ptr() as u64;
        // SAFETY: `buf` is 64 live bytes at its address (host: virtual = the
        // "physical" address the region uses) and only the region touches it
        // until the last use below.
        let mut ram = unsafe { RamRegion::new(start, 64) };
        assert!(ram.write_u32(0, 0xdead_beef));
        assert_eq!(ram.read_u32(0), Some(0xdead_beef));
        assert!(!ram.write_u32(2, 1), "misaligned");
        assert!(!ram.write_u32(64, 1), "past the end");
        assert!(!ram.write_u32(62, 1), "straddles the end");
        assert_eq!(ram.read_u32(61), None);
        assert!(ram.write_u64(8, 0x1122_3344_5566_7788));
        assert_eq!(ram.read_u64(8), Some(0x1122_3344_5566_7788));
        assert_eq!(ram.read_u64(4), None, "misaligned for one u64 access");
        assert_eq!(ram.read_u64(64), None, "past the end");
        assert!(!ram.write_u64(60, 1), "second half past the end");
        assert_eq!(
            ram.read_u32(60),
            Some(0),
            "nothing written by a refused u64"
        );
        assert!(ram.write(20, b"abc"));
        assert!(!ram.write(62, b"abc"), "does not fit");
        assert_eq!(
            ram.read_u8(63),
            Some(0),
            "nothing written by a refused write"
        );
        assert!(ram.fill(32, 32, 0xaa));
        assert!(!ram.fill(40, 32, 0xbb));
        assert_eq!(ram.first_not(32, 32, 0xaa), None);
        assert!(ram.write_u8(40, 1));
        assert_eq!(ram.first_not(32, 32, 0xaa), Some(40));
        assert_eq!(ram.count_not(32, 32, 0xaa), 1);
        assert_eq!(
            ram.count_not(32, 64, 0xaa),
            0,
            "range past the end counts nothing"
        );
        assert_eq!(buf[0] as u32, 0xdead_beef);
        assert_eq!(buf[1], 0x1122_3344_5566_7788);
    }

    #[test]
    fn ram_region_splits_copies_and_zeroes_in_bounds() {
        let mut buf = vec![u64::MAX; 8];
        let start = buf.as_mut_ptr() as u64;
        // SAFETY: as in `ram_region_checks_bounds_and_alignment`.
        let ram = unsafe { RamRegion::new(start, 64) };
        let ram = ram.split_at(65).unwrap_err();
        let (mut low, mut high) = ram.split_at(16).unwrap();
        assert_eq!((low.start(), low.len()), (start, 16));
        assert_eq!((high.start(), high.len()), (start + 16, 48));
        assert!(low.copy_from_slice(8, &[1, 2, 3, 4, 5, 6, 7, 8]));
        assert!(!low.copy_from_slice(9, &[0; 8]), "past the end of the part");
        assert!(high.zero(0, 48));
        assert!(!high.zero(1, 48));
        assert!(high.write_u64_aligned(8, 0x55));
        assert!(!high.write_u64_aligned(4, 1), "misaligned");
        assert_eq!(buf[0], u64::MAX, "nothing written before offset 8");
        assert_eq!(buf[1], 0x0807_0605_0403_0201);
        assert_eq!(buf[2], 0);
        assert_eq!(buf[3], 0x55);
        assert!(buf[4..].iter().all(|&w| w == 0));
    }

    #[test]
    fn identity_map_reads_only_its_ranges() {
        let buf = [0x11u64, 0x2233_4455_6677_8899, 3, 4];
        let at = buf.as_ptr() as u64;
        // SAFETY: the host process maps `buf` at its own address (identity
        // for this range) and reading it has no side effect.
        let map = unsafe { IdentityMap::new([(at, at + 16), (0, 0x1000), (at + 24, at + 24)]) };
        assert_eq!(map.ranges(), &[(at, at + 16), (0, 0x1000)]);
        assert_eq!(map.read_u64(at + 8), Ok(0x2233_4455_6677_8899));
        assert_eq!(map.read_u64_volatile(at + 8), Ok(0x2233_4455_6677_8899));
        assert!(matches!(
            map.read_u64_volatile(at + 4),
            Err(PhysError::OutOfRange { limit: 0, .. })
        ));
        assert!(
            matches!(map.read_u64(at + 16), Err(PhysError::OutOfRange { .. })),
            "third word is outside"
        );
        assert!(
            matches!(map.read_u64(at + 12), Err(PhysError::OutOfRange { .. })),
            "straddles the end"
        );
        assert!(matches!(
            map.read(u64::MAX, &mut [0; 2]),
            Err(PhysError::Overflow { .. })
        ));
        assert!(!map.contains(at + 24, 1), "empty ranges are dropped");
    }
}
