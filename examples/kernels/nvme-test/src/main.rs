//! NVMe end-to-end scenarios on QEMU's `nvme` device (1b36:0010, VS 1.4).
//!
//! No IOMMU translation here: the driver's DMA window is an identity window
//! over 1 MiB of RAM at 48 MiB, reserved from the frame allocator; the "dead
//! kernel" memory is 64 KiB elsewhere. Scenarios (`-append test=NAME`):
//!
//! - `nvme-init`: init from the state SeaBIOS leaves (enabled, bus mastering
//!   on); 128 blocks written from the window and read back (PRP list), an
//!   unaligned transfer, flush, LBAs past the namespace refused. The host
//!   check finds the pattern in the disk image.
//! - `nvme-dirty`: the test kernel plays the dead kernel first: admin and I/O
//!   queues in old memory, a 4-entry completion queue it never drains so
//!   commands stay outstanding inside QEMU, more commands submitted with their
//!   doorbells rung, garbage in INTMS/AQA/ASQ/ACQ. Init must still succeed,
//!   blocks round-trip, and the old memory (refilled with a canary after init)
//!   is never written again.
//! - `nvme-cfs`: an enable with a misaligned ASQ leaves CSTS.CFS set; init
//!   clears it with the controller reset.
//! - `nvme-handoff`: init, write, `shutdown()` (CSTS.SHST complete, CC.EN 0,
//!   bus mastering off), then a second init from that state reads the blocks
//!   back.
#![no_std]
#![no_main]
#![deny(missing_docs)]

mod scenario;

paranoid_test_kernel::scenario_kernel! {
    "nvme-init" => scenario::init,
    "nvme-dirty" => scenario::dirty,
    "nvme-cfs" => scenario::cfs,
    "nvme-handoff" => scenario::handoff,
}
