//! Simulated physical memory.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::rc::Rc;

/// Physical memory at `base..base + len`, page-aligned on the host, shared by
/// clones.
#[derive(Clone)]
pub struct SimMemory {
    inner: Rc<Backing>,
}

struct Backing {
    base: u64,
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Drop for Backing {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed(layout)` and is freed once, here.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

impl std::fmt::Debug for SimMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SimMemory({:#x}+{:#x})",
            self.inner.base,
            self.inner.layout.size()
        )
    }
}

impl SimMemory {
    /// `len` bytes of zeroed memory at physical address `base`.
    ///
    /// # Panics
    ///
    /// When `len` is zero or the host is out of memory (test setup only).
    pub fn new(base: u64, len: usize) -> Self {
        let layout = Layout::from_size_align(len.max(1), 4096).expect("memory layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("host out of memory");
        Self {
            inner: Rc::new(Backing { base, ptr, layout }),
        }
    }

    /// Physical base address.
    pub fn base(&self) -> u64 {
        self.inner.base
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.inner.layout.size()
    }

    /// Always false (memory has at least one byte).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The host pointer for physical address `pa`, if `pa..pa + len` is inside.
    pub fn host_ptr(&self, pa: u64, len: usize) -> Option<NonNull<u8>> {
        let off = usize::try_from(pa.checked_sub(self.inner.base)?).ok()?;
        if off.checked_add(len)? > self.len() {
            return None;
        }
        NonNull::new(self.inner.ptr.as_ptr().wrapping_add(off))
    }

    /// Copies out `out.len()` bytes at `pa`; false (and nothing read) when outside.
    pub fn read(&self, pa: u64, out: &mut [u8]) -> bool {
        let Some(p) = self.host_ptr(pa, out.len()) else {
            return false;
        };
        // SAFETY: `host_ptr` checked the range is inside the allocation; `out` is a
        // distinct Rust buffer. Memory is shared only through raw pointers.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), out.as_mut_ptr(), out.len()) };
        true
    }

    /// Copies `data` in at `pa`; false (and nothing written) when outside.
    pub fn write(&self, pa: u64, data: &[u8]) -> bool {
        let Some(p) = self.host_ptr(pa, data.len()) else {
            return false;
        };
        // SAFETY: as for `read`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p.as_ptr(), data.len()) };
        true
    }

    /// Reads a little-endian `u64` (test convenience).
    pub fn read_u64(&self, pa: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(pa, &mut b).then(|| u64::from_le_bytes(b))
    }

    /// Writes a little-endian `u64` (test convenience).
    pub fn write_u64(&self, pa: u64, v: u64) -> bool {
        self.write(pa, &v.to_le_bytes())
    }
}

impl SimMemory {
    /// The error of an access at `pa..pa + len` outside the memory.
    fn outside(&self, pa: u64, len: u64) -> crate::phys::PhysError {
        match pa.checked_add(len) {
            None => crate::phys::PhysError::Overflow { at: pa, len },
            Some(_) => crate::phys::PhysError::OutOfRange {
                at: pa,
                len,
                limit: self.inner.base.saturating_add(self.len() as u64),
            },
        }
    }
}

/// The HAL's reader over simulated memory: what a driver's generic code reads
/// through on the host.
impl crate::phys::PhysRead for SimMemory {
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), crate::phys::PhysError> {
        if SimMemory::read(self, pa, out) {
            Ok(())
        } else {
            Err(self.outside(pa, out.len() as u64))
        }
    }
}

/// The HAL's writer over simulated memory. Simulated device models read it
/// coherently, so [`PhysWrite::flush`](crate::phys::PhysWrite::flush) keeps
/// its default (nothing to write back).
impl crate::phys::PhysWrite for SimMemory {
    fn write_u64(&mut self, pa: u64, value: u64) -> Result<(), crate::phys::PhysError> {
        if pa % 8 != 0 {
            return Err(crate::phys::PhysError::OutOfRange {
                at: pa,
                len: 8,
                limit: 0,
            });
        }
        if SimMemory::write_u64(self, pa, value) {
            Ok(())
        } else {
            Err(self.outside(pa, 8))
        }
    }
}

#[cfg(test)]
mod phys_tests {
    use super::SimMemory;
    use crate::phys::{PhysError, PhysRead, PhysWrite};

    #[test]
    fn hal_traits_check_bounds_and_alignment() {
        let mut m = SimMemory::new(0x1000, 0x1000);
        assert_eq!(PhysWrite::write_u64(&mut m, 0x1ff8, 0xabcd), Ok(()));
        assert_eq!(PhysRead::read_u64(&m, 0x1ff8), Ok(0xabcd));
        assert_eq!(
            PhysWrite::write_u64(&mut m, 0x1ffc, 1),
            Err(PhysError::OutOfRange {
                at: 0x1ffc,
                len: 8,
                limit: 0
            })
        );
        assert_eq!(
            PhysWrite::write_u64(&mut m, 0x2000, 1),
            Err(PhysError::OutOfRange {
                at: 0x2000,
                len: 8,
                limit: 0x2000
            })
        );
        assert!(matches!(
            PhysRead::read_u64(&m, u64::MAX - 3),
            Err(PhysError::Overflow { .. })
        ));
    }
}
