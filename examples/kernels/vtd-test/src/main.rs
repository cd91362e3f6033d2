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

mod devices;
mod scenario;

use scenario::Kind;

paranoid_test_kernel::scenario_kernel! {
    "vtd-adopt" => |boot| scenario::run(boot, Kind::Adopt),
    "vtd-fence" => |boot| scenario::run(boot, Kind::Fence),
    "vtd-fallback" => |boot| scenario::run(boot, Kind::Fallback),
    "vtd-storm" => |boot| scenario::run(boot, Kind::Storm),
}
