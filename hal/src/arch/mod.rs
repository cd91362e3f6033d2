//! The access instructions, one small file per target.
//!
//! Everything else in the crate reaches device memory through these functions.
//! On x86_64 also the safe CPU primitives ([`x86_64::cpu`]: TSC, interrupt
//! masking, halt, cache-line flush) kernels and drivers use instead of `asm!`.

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(not(target_arch = "x86_64"))]
pub mod generic;

#[cfg(target_arch = "x86_64")]
pub use self::x86_64::{read16, read32, read64, read8, write16, write32, write64, write8};

#[cfg(not(target_arch = "x86_64"))]
pub use self::generic::{read16, read32, read64, read8, write16, write32, write64, write8};
