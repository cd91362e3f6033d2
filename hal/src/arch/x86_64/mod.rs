//! x86_64: each MMIO access is exactly one `mov`, port I/O is `in`/`out`, and the
//! clock is the TSC calibrated against the PIT.

pub mod cpu;
mod mmio;
mod tsc;

pub use self::cpu::{capture_registers, disable_interrupts, flush_lines, halt, rdtsc, Registers};
pub use self::mmio::{read16, read32, read64, read8, write16, write32, write64, write8};
pub use self::tsc::{TscClock, TscError};
