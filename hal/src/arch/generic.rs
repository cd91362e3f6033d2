//! MMIO on targets without a dedicated file: `core::ptr` volatile accesses.

macro_rules! volatile_access {
    ($read:ident, $write:ident, $t:ty) => {
        #[doc = concat!("Reads a `", stringify!($t), "` from device memory with one volatile access.")]
        ///
        /// # Safety
        ///
        /// `ptr` must be valid for a volatile read of this width, aligned, and map
        /// device memory (or memory) that no Rust reference aliases.
        #[inline(always)]
        pub unsafe fn $read(ptr: *const $t) -> $t {
            // SAFETY: the caller guarantees `ptr` is valid, aligned and unaliased.
            unsafe { core::ptr::read_volatile(ptr) }
        }

        #[doc = concat!("Writes a `", stringify!($t), "` to device memory with one volatile access.")]
        ///
        /// # Safety
        ///
        /// `ptr` must be valid for a volatile write of this width, aligned, and map
        /// device memory (or memory) that no Rust reference aliases.
        #[inline(always)]
        pub unsafe fn $write(ptr: *mut $t, value: $t) {
            // SAFETY: the caller guarantees `ptr` is valid, aligned and unaliased.
            unsafe { core::ptr::write_volatile(ptr, value) }
        }
    };
}

volatile_access!(read8, write8, u8);
volatile_access!(read16, write16, u16);
volatile_access!(read32, write32, u32);
volatile_access!(read64, write64, u64);
