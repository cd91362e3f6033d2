//! Physical memory: reading and writing it, the memory map, and the one
//! identity map a kernel reaches it through.
//!
//! A recovery kernel reads memory it did not write (ACPI tables, the dead
//! kernel's structures), so every access names its physical range and is
//! checked against what the accessor can reach before a byte is touched; a
//! range outside it is a [`PhysError`], never a fault.
//!
//! - [`PhysRead`] and [`PhysWrite`]: the one trait family every reader and
//!   writer of physical memory implements (firmware-table walkers, IOMMU table
//!   builders, the simulated memory of host tests);
//! - [`MemoryMap`]: the RAM ranges of the machine, which a pointer read from
//!   untrusted memory must land in before it is followed;
//! - [`IdentityMap`]: the kernel's identity map, made once at boot (its
//!   creation is `unsafe`), then shared by reference: the one safe reader of
//!   memory the kernel does not own;
//! - [`RamRegion`]: RAM a kernel owns outright, and [`OwnedRam`], the writer
//!   that pairs one with the identity map (a driver writes its own tables and
//!   reads everything else);
//! - [`SliceMemory`]: a byte buffer served as physical memory (host tests,
//!   fuzzing, a table a kernel copied already).

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
    fn read_u64(&self, pa: u64) -> Result<u64, PhysError> {
        (**self).read_u64(pa)
    }
}

impl<T: PhysRead + ?Sized> PhysRead for &mut T {
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), PhysError> {
        (**self).read(pa, out)
    }
    fn read_u64(&self, pa: u64) -> Result<u64, PhysError> {
        (**self).read_u64(pa)
    }
}

/// Writes physical memory, bounds-checked like [`PhysRead`]: the seam a driver
/// builds device-visible structures through (IOMMU tables, queues).
///
/// Implementations guarantee that a write returning `Ok` stored the whole
/// value with one access (a unit reading it concurrently sees the old or the
/// new value, never a mix), and that a write outside the memory they own
/// returns an error without touching memory.
pub trait PhysWrite: PhysRead {
    /// Writes the little-endian `u64` at the 8-aligned physical address `pa`
    /// in one access.
    ///
    /// # Errors
    ///
    /// [`PhysError`] when `pa..pa + 8` is not memory the writer owns, or
    /// [`PhysError::OutOfRange`] with `limit` 0 when `pa` is not 8-aligned;
    /// nothing is written then.
    fn write_u64(&mut self, pa: u64, value: u64) -> Result<(), PhysError>;

    /// Makes writes to `pa..pa + len` visible to a unit that does not snoop
    /// the caches (an IOMMU with ECAP.C = 0): the cache lines are written back.
    /// The default does nothing (memory every reader sees coherently, such as
    /// simulated memory).
    fn flush(&mut self, pa: u64, len: u64) {
        let _ = (pa, len);
    }
}

impl<T: PhysWrite + ?Sized> PhysWrite for &mut T {
    fn write_u64(&mut self, pa: u64, value: u64) -> Result<(), PhysError> {
        (**self).write_u64(pa, value)
    }
    fn flush(&mut self, pa: u64, len: u64) {
        (**self).flush(pa, len)
    }
}

/// Bytes a `u64` access covers.
const WORD: u64 = 8;

/// The error of a misaligned `u64` access at `pa` (`limit` 0 marks it).
const fn misaligned(pa: u64) -> PhysError {
    PhysError::OutOfRange {
        at: pa,
        len: WORD,
        limit: 0,
    }
}

/// Ranges of RAM (and firmware tables) a kernel reaches through its identity
/// map, read by copy: the one reader of memory the kernel does not own (a
/// crashed kernel's RAM, a note it left, firmware tables, its own image).
///
/// A kernel makes it at boot (the boot crate does, and hands it out by
/// reference), the one place its `unsafe` duty is discharged; whoever needs to
/// read physical memory then borrows it, or a narrower map made from it with
/// [`IdentityMap::restrict`] (safe: a part of what was promised). It covers
/// only the ranges it was made with, so device memory between or above them
/// (the MMIO hole, 64-bit BARs) is never read, whatever address is asked for.
///
/// It never writes: memory a kernel writes is memory it owns, a
/// [`RamRegion`] (written through [`OwnedRam`] where a [`PhysWrite`] is
/// needed).
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

    /// The part of this map inside `ranges` (`(start, end)`, end exclusive):
    /// each of them cut to each range of this map. Safe, because every address
    /// of the result was in this map already; pieces past
    /// [`Self::MAX_RANGES`] are dropped (reads there fail).
    #[must_use]
    pub fn restrict(&self, ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut out = Self {
            ranges: [(0, 0); Self::MAX_RANGES],
            count: 0,
        };
        for (start, end) in ranges {
            for &(s, e) in self.ranges() {
                let piece = (start.max(s), end.min(e));
                if piece.0 >= piece.1 {
                    continue;
                }
                if let Some(slot) = out.ranges.get_mut(out.count) {
                    *slot = piece;
                    out.count += 1;
                }
            }
        }
        out
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
            if pa == 0 {
                return Err(PhysError::Null);
            }
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
        if pa % WORD != 0 {
            return Err(misaligned(pa));
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

    /// Reads the `u64` at `pa`: one load when `pa` is 8-aligned (a table
    /// entry a unit may be writing is never seen half old, half new), a byte
    /// copy otherwise.
    fn read_u64(&self, pa: u64) -> Result<u64, PhysError> {
        if pa % WORD == 0 {
            return self.read_u64_volatile(pa);
        }
        let mut b = [0u8; 8];
        self.read(pa, &mut b)?;
        Ok(u64::from_le_bytes(b))
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

    /// The offset of physical `pa..pa + len` in the region, when it lies
    /// inside.
    pub fn offset_of(&self, pa: u64, len: u64) -> Option<u64> {
        let offset = pa.checked_sub(self.start)?;
        let end = offset.checked_add(len)?;
        (end <= self.len).then_some(offset)
    }

    /// Writes back the cache lines of `offset..offset + len` (cut at the end
    /// of the region), so a unit that does not snoop the caches (an IOMMU with
    /// ECAP.C = 0) sees what the CPU wrote there. Off x86_64 this does nothing.
    pub fn flush(&self, offset: u64, len: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::arch::x86_64::cpu::{clflush, CACHE_LINE};
            let Some(first) = self.start.checked_add(offset) else {
                return;
            };
            let end = first
                .saturating_add(len)
                .min(self.start.saturating_add(self.len));
            let mut line = first & !(CACHE_LINE - 1);
            while line < end {
                if line != 0 {
                    // SAFETY: the line holds a byte of the region (it starts
                    // at or before `first` and below `end`, inside the region,
                    // and a line never straddles a page), which `new`'s
                    // contract says is mapped 1:1; clflush changes no memory
                    // contents.
                    unsafe { clflush(line as usize as *const u8) };
                }
                line += CACHE_LINE;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (offset, len);
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

/// RAM a driver owns (a [`RamRegion`]) beside the kernel's identity map: the
/// [`PhysWrite`] a kernel hands a driver that builds structures in its own
/// pages and reads everything else (the VT-d driver writes its tables in the
/// region and reads the dead kernel's tables through the map).
///
/// Writes land only in the region; reads are served from the region when they
/// lie in it, through the map otherwise. Making one needs no `unsafe`: both
/// halves discharged their duty when they were made.
#[derive(Debug)]
pub struct OwnedRam<'m> {
    map: &'m IdentityMap,
    ram: RamRegion,
}

impl<'m> OwnedRam<'m> {
    /// Writes into `ram`, reads the rest through `map`.
    pub fn new(map: &'m IdentityMap, ram: RamRegion) -> Self {
        Self { map, ram }
    }

    /// The region writes go to.
    pub fn region(&self) -> &RamRegion {
        &self.ram
    }

    /// The identity map reads outside the region go through.
    pub fn map(&self) -> &'m IdentityMap {
        self.map
    }

    /// The region back, when the writer is done.
    pub fn into_region(self) -> RamRegion {
        self.ram
    }
}

impl PhysRead for OwnedRam<'_> {
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), PhysError> {
        let Some(offset) = self.ram.offset_of(pa, out.len() as u64) else {
            return self.map.read(pa, out);
        };
        for (o, b) in (offset..).zip(out.iter_mut()) {
            *b = self.ram.read_u8(o).ok_or(PhysError::Null)?;
        }
        Ok(())
    }

    /// Reads the `u64` at `pa`: one load when `pa` is 8-aligned, a byte copy
    /// otherwise.
    fn read_u64(&self, pa: u64) -> Result<u64, PhysError> {
        match self.ram.offset_of(pa, WORD) {
            Some(offset) if pa % WORD == 0 => self.ram.read_u64(offset).ok_or(PhysError::Null),
            Some(_) => {
                let mut b = [0u8; 8];
                self.read(pa, &mut b)?;
                Ok(u64::from_le_bytes(b))
            }
            None => self.map.read_u64(pa),
        }
    }
}

impl PhysWrite for OwnedRam<'_> {
    fn write_u64(&mut self, pa: u64, value: u64) -> Result<(), PhysError> {
        let offset = self.ram.offset_of(pa, WORD).ok_or(PhysError::OutOfRange {
            at: pa,
            len: WORD,
            limit: self.ram.start().saturating_add(self.ram.len()),
        })?;
        if self.ram.write_u64_aligned(offset, value) {
            Ok(())
        } else if pa == 0 {
            Err(PhysError::Null)
        } else {
            Err(misaligned(pa))
        }
    }

    fn flush(&mut self, pa: u64, len: u64) {
        let start = pa.max(self.ram.start());
        let end = pa.saturating_add(len);
        if let Some(offset) = start.checked_sub(self.ram.start()) {
            self.ram.flush(offset, end.saturating_sub(start));
        }
    }
}

/// One range of RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemRange {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
}

impl MemRange {
    /// One past the last byte (saturating).
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
}

/// The RAM ranges of the machine (from the boot information's memory map):
/// every pointer read from untrusted memory (a dead kernel's tables) must
/// land inside one before it is followed.
///
/// A list of facts, not a way in: reading goes through a [`PhysRead`] such as
/// the [`IdentityMap`], which checks its own ranges again.
#[derive(Debug, Clone, Copy)]
pub struct MemoryMap {
    ranges: [MemRange; Self::CAPACITY],
    count: usize,
}

impl Default for MemoryMap {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMap {
    /// Ranges held at most.
    pub const CAPACITY: usize = 64;

    /// An empty map.
    pub const fn new() -> Self {
        Self {
            ranges: [MemRange { base: 0, len: 0 }; Self::CAPACITY],
            count: 0,
        }
    }

    /// Adds a RAM range.
    ///
    /// # Errors
    ///
    /// [`MapFull`] when [`Self::CAPACITY`] ranges are held already.
    pub fn add(&mut self, base: u64, len: u64) -> Result<(), MapFull> {
        let slot = self.ranges.get_mut(self.count).ok_or(MapFull)?;
        *slot = MemRange { base, len };
        self.count += 1;
        Ok(())
    }

    /// The ranges.
    pub fn ranges(&self) -> &[MemRange] {
        self.ranges.get(..self.count).unwrap_or(&[])
    }

    /// True when `pa..pa + len` lies inside one RAM range.
    pub fn contains(&self, pa: u64, len: u64) -> bool {
        let Some(end) = pa.checked_add(len) else {
            return false;
        };
        self.ranges().iter().any(|r| pa >= r.base && end <= r.end())
    }
}

/// The memory map has no room left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapFull;

impl fmt::Display for MapFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memory map full ({} ranges)", MemoryMap::CAPACITY)
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
        // SAFETY: no read below is inside the range, so nothing is dereferenced.
        let id = unsafe { IdentityMap::new([(1, 0x1000)]) };
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
        let id = unsafe { IdentityMap::new([(1, at + 4)]) };
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
    fn map_contains_checks_whole_range_and_overflow() {
        let mut m = MemoryMap::new();
        m.add(0x1000, 0x1000).unwrap();
        m.add(0x10_0000, 0x10_0000).unwrap();
        assert!(m.contains(0x1ff8, 8));
        assert!(!m.contains(0x1ffc, 8));
        assert!(!m.contains(u64::MAX - 3, 8));
        assert!(m.contains(0x10_0000, 0x10_0000));
        for _ in 2..MemoryMap::CAPACITY {
            m.add(0, 0).unwrap();
        }
        assert_eq!(m.add(0, 0), Err(MapFull));
    }

    #[test]
    fn restrict_keeps_only_what_both_cover() {
        // SAFETY: nothing is read through these maps.
        let map = unsafe { IdentityMap::new([(0x1000, 0x3000), (0x8000, 0x9000)]) };
        let part = map.restrict([(0x2000, 0x8800), (0xa000, 0xb000)]);
        assert_eq!(part.ranges(), &[(0x2000, 0x3000), (0x8000, 0x8800)]);
        assert!(!part.contains(0x1000, 8), "cut away");
        assert!(
            map.restrict([(0, 0x1000)]).ranges().is_empty(),
            "nothing outside the map is added"
        );
    }

    #[test]
    fn owned_ram_writes_only_its_region_and_reads_both() {
        let mut owned = vec![0u64; 8];
        let other = [0x5555_aaaa_u64, 7];
        let start = owned.as_mut_ptr() as u64;
        let at = other.as_ptr() as u64;
        // SAFETY: the host process maps `other` at its own address and reading
        // it has no side effect.
        let map = unsafe { IdentityMap::new([(at, at + 16)]) };
        // SAFETY: `owned` is 64 live bytes at its address, touched only through
        // the region until the last use below.
        let ram = unsafe { RamRegion::new(start, 64) };
        let mut mem = OwnedRam::new(&map, ram);
        assert_eq!(mem.write_u64(start + 8, 0x1122), Ok(()));
        assert_eq!(mem.read_u64(start + 8), Ok(0x1122));
        assert_eq!(mem.read_u64(at), Ok(0x5555_aaaa), "read through the map");
        assert!(
            matches!(
                mem.write_u64(at, 1),
                Err(PhysError::OutOfRange { limit, .. }) if limit == start + 64
            ),
            "the map is never written"
        );
        assert_eq!(mem.write_u64(start + 4, 1), Err(misaligned(start + 4)));
        assert!(mem.write_u64(start + 64, 1).is_err(), "past the end");
        mem.flush(start, 64);
        mem.flush(0, u64::MAX);
        let ram = mem.into_region();
        assert_eq!(ram.offset_of(start + 8, 8), Some(8));
        assert_eq!(ram.offset_of(start + 60, 8), None);
        assert_eq!(other[0], 0x5555_aaaa);
        assert_eq!(owned[1], 0x1122);
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
