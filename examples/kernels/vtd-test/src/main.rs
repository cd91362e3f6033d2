//! VT-d end-to-end scenarios under QEMU's intel-iommu.
//!
//! Each run plays both kernels of a crash: first a "dead kernel" builds its own
//! VT-d tables, turns translation on and leaves QEMU's `edu` device with a DMA
//! armed (it lands 100 ms of guest time later); then, at once, the recovery
//! side runs the bring-up core (`paranoid-vtd`) as a recovery kernel would:
//! parse the DMAR, take the unit over (adopt or fence), attach the NVMe
//! controller to the recovery window and send it an Identify through it, and
//! service faults. Scenarios (`-append test=NAME`):
//!
//! - `vtd-adopt`: the stale edu DMA lands in the dead kernel's buffer.
//! - `vtd-fence`: it faults, recorded with edu's source-id, classified stale.
//! - `vtd-fallback`: the old context table is corrupted; adopt falls back to
//!   fence.
//! - `vtd-storm`: an e1000 fetching 255 TX descriptors from unmapped memory
//!   plus edu faults: one fault record, overflow, the core keeps going.
#![no_std]
#![no_main]
#![deny(missing_docs)]
// A failure carries its result line in a fixed buffer (no allocator).
#![allow(clippy::result_large_err)]

mod devices;
mod scenario;

use paranoid_boot::{BootInfo, ExitCode};
use paranoid_test_kernel::report::{self, fail, Fields};

paranoid_boot::entry!(main);

/// Dispatches on `test=NAME`.
fn main(boot: &'static BootInfo) -> ExitCode {
    let name = boot.cmdline().get("test").unwrap_or("none");
    let kind = match name {
        "vtd-adopt" => Some(scenario::Kind::Adopt),
        "vtd-fence" => Some(scenario::Kind::Fence),
        "vtd-fallback" => Some(scenario::Kind::Fallback),
        "vtd-storm" => Some(scenario::Kind::Storm),
        _ => None,
    };
    let outcome = match kind {
        Some(k) => scenario::run(boot, k),
        None => Err(fail(Fields::new(), "unknown-scenario")),
    };
    report::finish(name, outcome)
}
