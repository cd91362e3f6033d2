//! Physical memory: access, the memory map old pointers are checked against,
//! and the pool of pages new tables come from.
//!
//! The dead kernel's tables live in its memory, which may be garbage: a pointer
//! read from it is followed only when [`MemoryMap::contains`] says it lands in
//! RAM. New tables live in pages from a [`FramePool`] the recovery kernel
//! reserved for us.

use core::fmt;

/// Physical memory as the IOMMU sees it.
pub trait PhysMemory {
    /// Reads the little-endian `u64` at `pa` (8-aligned); `None` when `pa` is not
    /// backed. Callers check the memory map before reading old memory.
    fn read_u64(&mut self, pa: u64) -> Option<u64>;
    /// Writes the little-endian `u64` at `pa` (8-aligned); false when not backed.
    fn write_u64(&mut self, pa: u64, value: u64) -> bool;
    /// Makes writes to `pa..pa + len` visible to a unit that does not snoop
    /// caches (ECAP.C = 0): `clflush` on x86. The default does nothing.
    fn flush(&mut self, pa: u64, len: u64) {
        let _ = (pa, len);
    }
}

impl<M: PhysMemory + ?Sized> PhysMemory for &mut M {
    fn read_u64(&mut self, pa: u64) -> Option<u64> {
        (**self).read_u64(pa)
    }
    fn write_u64(&mut self, pa: u64, value: u64) -> bool {
        (**self).write_u64(pa, value)
    }
    fn flush(&mut self, pa: u64, len: u64) {
        (**self).flush(pa, len)
    }
}

/// Physical memory identity-mapped into the address space (the bare-metal
/// recovery kernel maps the first 4 GiB 1:1).
#[derive(Debug)]
pub struct IdentityMemory {
    limit: u64,
    identity: paranoid::phys::Identity,
}

impl IdentityMemory {
    /// Accesses physical addresses below `limit` through the identity map.
    ///
    /// # Safety
    ///
    /// - every physical address below `limit` that a caller reads or writes
    ///   (RAM listed in the memory map, the frame pool) must be mapped 1:1;
    /// - no Rust reference may alias the pages written (the frame pool's).
    pub const unsafe fn new(limit: u64) -> Self {
        Self {
            limit,
            // SAFETY: this constructor's contract is `Identity::new`'s: every
            // address below `limit` callers use is mapped 1:1, and what is read
            // through it (RAM, firmware tables) has no read side effect.
            identity: unsafe { paranoid::phys::Identity::new(limit) },
        }
    }

    fn ptr(&self, pa: u64) -> Option<*mut u64> {
        if pa % 8 != 0 || pa.checked_add(8)? > self.limit || pa == 0 {
            return None;
        }
        Some(pa as usize as *mut u64)
    }
}

impl PhysMemory for IdentityMemory {
    fn read_u64(&mut self, pa: u64) -> Option<u64> {
        let p = self.ptr(pa)?;
        // SAFETY:
        // - `ptr` checked alignment and the identity-mapped limit;
        // - the constructor's contract says the address is mapped 1:1 and not
        //   aliased by references; a volatile read of plain RAM has no side effect.
        Some(unsafe { core::ptr::read_volatile(p) })
    }

    fn write_u64(&mut self, pa: u64, value: u64) -> bool {
        let Some(p) = self.ptr(pa) else {
            return false;
        };
        // SAFETY: as for `read_u64`; the caller writes only pool pages it owns.
        unsafe { core::ptr::write_volatile(p, value) };
        true
    }

    fn flush(&mut self, pa: u64, len: u64) {
        self.identity.flush(pa, len);
    }
}

impl crate::acpi::PhysRead for IdentityMemory {
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), crate::acpi::PhysError> {
        self.identity.read(pa, out)
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
/// every pointer read from old memory must land inside one.
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

/// A pool of 4 KiB pages in recovery memory for new tables.
#[derive(Debug, Clone)]
pub struct FramePool {
    base: u64,
    pages: usize,
    used: [u64; Self::MAX_PAGES / 64],
}

impl FramePool {
    /// Pages a pool manages at most (4 MiB).
    pub const MAX_PAGES: usize = 1024;

    /// A pool of `pages` pages from `base` (page-aligned); at most
    /// [`Self::MAX_PAGES`] are used.
    pub fn new(base: u64, pages: usize) -> Self {
        Self {
            base: base & !0xfff,
            pages: pages.min(Self::MAX_PAGES),
            used: [0; Self::MAX_PAGES / 64],
        }
    }

    /// The range the pool covers.
    pub fn range(&self) -> MemRange {
        MemRange {
            base: self.base,
            len: self.pages as u64 * 4096,
        }
    }

    /// Pages in use.
    pub fn used(&self) -> usize {
        self.used.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Takes a page and zeroes it through `mem`; `None` when the pool is empty
    /// or the page cannot be written.
    pub fn alloc(&mut self, mem: &mut impl PhysMemory) -> Option<u64> {
        let i = (0..self.pages).find(|&i| !self.is_used(i))?;
        let pa = self.base + i as u64 * 4096;
        for off in (0..4096).step_by(8) {
            if !mem.write_u64(pa + off, 0) {
                return None;
            }
        }
        mem.flush(pa, 4096);
        self.set_used(i, true);
        Some(pa)
    }

    /// Returns a page; a page the pool does not own, or that is free already,
    /// is ignored (false).
    pub fn free(&mut self, pa: u64) -> bool {
        let Some(off) = pa.checked_sub(self.base) else {
            return false;
        };
        let i = (off / 4096) as usize;
        if off % 4096 != 0 || i >= self.pages || !self.is_used(i) {
            return false;
        }
        self.set_used(i, false);
        true
    }

    fn is_used(&self, i: usize) -> bool {
        self.used
            .get(i / 64)
            .is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    }

    fn set_used(&mut self, i: usize, on: bool) {
        if let Some(w) = self.used.get_mut(i / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }
}

#[cfg(feature = "model")]
impl PhysMemory for paranoid::sim::SimMemory {
    fn read_u64(&mut self, pa: u64) -> Option<u64> {
        paranoid::sim::SimMemory::read_u64(self, pa)
    }
    fn write_u64(&mut self, pa: u64, value: u64) -> bool {
        paranoid::sim::SimMemory::write_u64(self, pa, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    struct Flat(Vec<u64>);
    impl PhysMemory for Flat {
        fn read_u64(&mut self, pa: u64) -> Option<u64> {
            self.0.get((pa / 8) as usize).copied()
        }
        fn write_u64(&mut self, pa: u64, v: u64) -> bool {
            self.0.get_mut((pa / 8) as usize).map(|s| *s = v).is_some()
        }
    }

    #[test]
    fn pool_allocates_zeroed_pages_and_rejects_foreign_frees() {
        let mut mem = Flat(vec![0xdead; 4 * 512]);
        let mut p = FramePool::new(0x1000, 2);
        let a = p.alloc(&mut mem).unwrap();
        let b = p.alloc(&mut mem).unwrap();
        assert_eq!((a, b), (0x1000, 0x2000));
        assert_eq!(mem.read_u64(0x1ff8), Some(0));
        assert!(p.alloc(&mut mem).is_none());
        assert!(!p.free(0x3000));
        assert!(!p.free(0x1008));
        assert!(p.free(a));
        assert!(!p.free(a));
        assert_eq!(p.used(), 1);
        let mut q = FramePool::new(0x10_0000, 1);
        assert!(q.alloc(&mut mem).is_none(), "page not backed");
    }
}
