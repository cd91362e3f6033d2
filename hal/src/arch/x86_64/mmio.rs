//! MMIO as inline `mov`s.
//!
//! `core::ptr::read_volatile` promises one access but not which instruction; some
//! hypervisors (and confidential-computing guests) only emulate simple `mov`s, and
//! a compiler may pick a form they cannot decode. `asm!` pins the instruction: the
//! compiler cannot fuse, split, reorder across, or elide it.

use core::arch::asm;

macro_rules! mov_access {
    ($read:ident, $write:ident, $t:ty, $reg:ident, $rmod:literal) => {
        #[doc = concat!("Reads a `", stringify!($t), "` from device memory with one `mov`.")]
        ///
        /// # Safety
        ///
        /// `ptr` must be mapped, aligned for this width, and point at device memory
        /// (or memory) that no Rust reference aliases.
        #[inline(always)]
        pub unsafe fn $read(ptr: *const $t) -> $t {
            let value: $t;
            // SAFETY:
            // - the caller guarantees `ptr` is mapped, aligned and unaliased;
            // - the asm only reads that location (`nostack`, `preserves_flags`) and
            //   is not `pure`, so it is neither elided nor merged with a neighbour.
            unsafe {
                asm!(concat!("mov {val", $rmod, "}, [{ptr}]"), ptr = in(reg) ptr, val = out($reg) value,
                     options(nostack, preserves_flags, readonly));
            }
            value
        }

        #[doc = concat!("Writes a `", stringify!($t), "` to device memory with one `mov`.")]
        ///
        /// # Safety
        ///
        /// `ptr` must be mapped, aligned for this width, and point at device memory
        /// (or memory) that no Rust reference aliases.
        #[inline(always)]
        pub unsafe fn $write(ptr: *mut $t, value: $t) {
            // SAFETY:
            // - the caller guarantees `ptr` is mapped, aligned and unaliased;
            // - the asm writes only that location and keeps the stack and flags.
            unsafe {
                asm!(concat!("mov [{ptr}], {val", $rmod, "}"), ptr = in(reg) ptr, val = in($reg) value,
                     options(nostack, preserves_flags));
            }
        }
    };
}

mov_access!(read8, write8, u8, reg_byte, "");
mov_access!(read16, write16, u16, reg, ":x");
mov_access!(read32, write32, u32, reg, ":e");
mov_access!(read64, write64, u64, reg, ":r");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        any(),
        paranoid::allow(
            dma_outside_window,
            reason = "test patterns written to a local array through the primitives, not DMA"
        )
    )]
    fn round_trips_every_width_on_ordinary_memory() {
        let mut mem = [0u64; 2];
        let base = mem.as_mut_ptr().cast::<u8>();
        // SAFETY: `mem` is a live local array; every pointer below is inside it and
        // aligned for its width; no reference to `mem` is used meanwhile.
        unsafe {
            write64(base.cast(), 0x1122_3344_5566_7788);
            assert_eq!(read64(base.cast()), 0x1122_3344_5566_7788);
            write32(base.add(8).cast(), 0xdead_beef);
            assert_eq!(read32(base.add(8).cast()), 0xdead_beef);
            write16(base.add(12).cast(), 0xcafe);
            assert_eq!(read16(base.add(12).cast()), 0xcafe);
            write8(base.add(14), 0x5a);
            assert_eq!(read8(base.add(14)), 0x5a);
            assert_eq!(read8(base), 0x88);
        }
    }
}
