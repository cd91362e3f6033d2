//! The pool of pages new tables come from.
//!
//! Physical memory itself is the HAL's ([`paranoid::phys`]): the VT-d code
//! writes through a [`PhysWrite`] (the kernel's [`OwnedRam`](paranoid::phys::OwnedRam)
//! over the pages it reserved for us, or simulated memory on the host), and
//! the dead kernel's tables live in its memory, which may be garbage: a
//! pointer read from it is followed only when the HAL's [`MemoryMap`] says it
//! lands in RAM. New tables live in pages from a [`FramePool`].

#[cfg(doc)]
use paranoid::phys::MemoryMap;
use paranoid::phys::{MemRange, PhysWrite};

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
    pub fn alloc(&mut self, mem: &mut impl PhysWrite) -> Option<u64> {
        let i = (0..self.pages).find(|&i| !self.is_used(i))?;
        let pa = self.base + i as u64 * 4096;
        for off in (0..4096).step_by(8) {
            if mem.write_u64(pa + off, 0).is_err() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use paranoid::phys::{PhysError, PhysRead};

    struct Flat(Vec<u64>);
    fn outside(pa: u64) -> PhysError {
        PhysError::OutOfRange {
            at: pa,
            len: 8,
            limit: 0,
        }
    }
    impl PhysRead for Flat {
        fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), PhysError> {
            let word = self.read_u64(pa & !7)?.to_le_bytes();
            let at = (pa % 8) as usize;
            let bytes = word.get(at..at + out.len()).ok_or(outside(pa))?;
            out.copy_from_slice(bytes);
            Ok(())
        }
        fn read_u64(&self, pa: u64) -> Result<u64, PhysError> {
            self.0.get((pa / 8) as usize).copied().ok_or(outside(pa))
        }
    }
    impl PhysWrite for Flat {
        fn write_u64(&mut self, pa: u64, v: u64) -> Result<(), PhysError> {
            let slot = self.0.get_mut((pa / 8) as usize).ok_or(outside(pa))?;
            *slot = v;
            Ok(())
        }
    }

    #[test]
    fn pool_allocates_zeroed_pages_and_rejects_foreign_frees() {
        let mut mem = Flat(vec![0xdead; 4 * 512]);
        let mut p = FramePool::new(0x1000, 2);
        let a = p.alloc(&mut mem).unwrap();
        let b = p.alloc(&mut mem).unwrap();
        assert_eq!((a, b), (0x1000, 0x2000));
        assert_eq!(mem.read_u64(0x1ff8), Ok(0));
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
