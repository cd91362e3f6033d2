//! Register access: the [`RegisterIo`] seam drivers are generic over, and
//! [`Mmio`], the real backend over a mapped BAR.
//!
//! No reference to device memory is ever formed: [`Mmio`] holds a raw base
//! pointer and every access goes through [`crate::arch`], one instruction each.
//! Reads come back as [`Untrusted`] values.

use core::ptr::NonNull;

use crate::Untrusted;

/// Register access over one register block (a BAR, a VT-d unit).
///
/// Offsets are bytes from the start of the block. An access that is out of the
/// block or misaligned is a driver bug; implementations must not touch memory for
/// it: reads return all-ones (what a missing device returns, so the driver's
/// device-gone path handles it) and writes are dropped.
pub trait RegisterIo {
    /// Size of the block in bytes.
    fn size(&self) -> usize;
    /// Reads 8 bits.
    fn read8(&mut self, offset: usize) -> Untrusted<u8>;
    /// Reads 16 bits.
    fn read16(&mut self, offset: usize) -> Untrusted<u16>;
    /// Reads 32 bits.
    fn read32(&mut self, offset: usize) -> Untrusted<u32>;
    /// Reads 64 bits in one access.
    fn read64(&mut self, offset: usize) -> Untrusted<u64>;
    /// Writes 8 bits.
    fn write8(&mut self, offset: usize, value: u8);
    /// Writes 16 bits.
    fn write16(&mut self, offset: usize, value: u16);
    /// Writes 32 bits.
    fn write32(&mut self, offset: usize, value: u32);
    /// Writes 64 bits in one access.
    fn write64(&mut self, offset: usize, value: u64);
}

impl<R: RegisterIo + ?Sized> RegisterIo for &mut R {
    fn size(&self) -> usize {
        (**self).size()
    }
    fn read8(&mut self, offset: usize) -> Untrusted<u8> {
        (**self).read8(offset)
    }
    fn read16(&mut self, offset: usize) -> Untrusted<u16> {
        (**self).read16(offset)
    }
    fn read32(&mut self, offset: usize) -> Untrusted<u32> {
        (**self).read32(offset)
    }
    fn read64(&mut self, offset: usize) -> Untrusted<u64> {
        (**self).read64(offset)
    }
    fn write8(&mut self, offset: usize, value: u8) {
        (**self).write8(offset, value)
    }
    fn write16(&mut self, offset: usize, value: u16) {
        (**self).write16(offset, value)
    }
    fn write32(&mut self, offset: usize, value: u32) {
        (**self).write32(offset, value)
    }
    fn write64(&mut self, offset: usize, value: u64) {
        (**self).write64(offset, value)
    }
}

/// True when an access of `width` bytes at `offset` lies inside `size` and is
/// naturally aligned.
#[inline(always)]
pub const fn access_ok(offset: usize, width: usize, size: usize) -> bool {
    offset % width == 0 && offset < size && width <= size - offset
}

/// A mapped register block: the real backend.
///
/// # Invariants
///
/// `base..base + size` is mapped device memory (uncached), owned by this value,
/// and never referenced by a Rust reference.
#[derive(Debug)]
pub struct Mmio {
    base: NonNull<u8>,
    size: usize,
}

// SAFETY: `Mmio` owns its register block; moving it to another thread moves the
// ownership, and access needs `&mut`.
unsafe impl Send for Mmio {}

macro_rules! mmio_access {
    ($read:ident, $write:ident, $t:ty) => {
        #[inline(always)]
        fn $read(&mut self, offset: usize) -> Untrusted<$t> {
            if !access_ok(offset, size_of::<$t>(), self.size) {
                return Untrusted::new(<$t>::MAX);
            }
            // SAFETY:
            // - `access_ok` keeps the access inside the block and aligned;
            // - the type invariant says the block is mapped and unreferenced.
            Untrusted::new(unsafe { crate::arch::$read(self.base.as_ptr().add(offset).cast()) })
        }

        #[inline(always)]
        fn $write(&mut self, offset: usize, value: $t) {
            if !access_ok(offset, size_of::<$t>(), self.size) {
                return;
            }
            // SAFETY: as for the read: in bounds, aligned, mapped, unreferenced.
            unsafe { crate::arch::$write(self.base.as_ptr().add(offset).cast(), value) }
        }
    };
}

impl Mmio {
    /// Takes ownership of the register block at `base`, `size` bytes long.
    ///
    /// # Safety
    ///
    /// - `base..base + size` must be mapped device memory (uncached) for as long as
    ///   the returned value lives;
    /// - nothing else may access it meanwhile, and no Rust reference may point
    ///   into it.
    pub const unsafe fn new(base: NonNull<u8>, size: usize) -> Self {
        Self { base, size }
    }

    /// The base address of the block.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }
}

impl RegisterIo for Mmio {
    #[inline(always)]
    fn size(&self) -> usize {
        self.size
    }
    mmio_access!(read8, write8, u8);
    mmio_access!(read16, write16, u16);
    mmio_access!(read32, write32, u32);
    mmio_access!(read64, write64, u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_block_and_misaligned_accesses_touch_nothing() {
        let mut mem = [0u32; 4];
        let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
        // SAFETY: `mem` outlives `m` and is only accessed through `m` meanwhile.
        let mut m = unsafe { Mmio::new(base, 16) };
        m.write32(4, 0xabcd_0123);
        assert_eq!(m.read32(4).into_raw_for_report(), 0xabcd_0123);
        m.write32(16, 1);
        m.write32(2, 1);
        m.write64(12, 1);
        assert!(m.read32(16).is_all_ones());
        assert!(m.read16(3).is_all_ones());
        assert!(m.read64(usize::MAX - 3).is_all_ones());
        assert_eq!(mem, [0, 0xabcd_0123, 0, 0]);
    }

    #[test]
    fn access_ok_edges() {
        assert!(access_ok(0, 4, 4));
        assert!(!access_ok(4, 4, 4));
        assert!(!access_ok(1, 2, 8));
        assert!(!access_ok(usize::MAX - 7, 8, usize::MAX));
        assert!(!access_ok(0, 8, 4));
    }
}
