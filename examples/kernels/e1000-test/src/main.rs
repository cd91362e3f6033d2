//! e1000 end-to-end scenarios on QEMU's e1000 (82540EM).
//!
//! The harness machine has one e1000 without a peer; the scenarios that move
//! frames add two more on one QEMU hub (`-netdev hubport`), so what one sends
//! the other receives: both transmit and receive run on real device models.
//! There is no IOMMU translation here: the driver's DMA window is an identity
//! window over 1 MiB of RAM at 32 MiB, reserved from the frame allocator.
//! Scenarios (`-append test=NAME`):
//!
//! - `e1000-init`: init from the firmware state; a frame goes out (DD
//!   written back) on the NIC without a peer.
//! - `e1000-pair`: both hub NICs initialised from firmware state exchange
//!   frames both ways, of every size, with the contents verified.
//! - `e1000-dirty`: before init, the test kernel plays the dead kernel: NIC A
//!   receives into a ring in "old" memory (NIC B, driven raw, sends to it),
//!   has transmit descriptors posted there, interrupts unmasked and pending,
//!   garbage in its multicast table and receive addresses. After init, frames
//!   cross both ways, none of the stale ones leaks, and the old memory stays
//!   untouched (a canary) while A receives.
//! - `e1000-handoff`: init, traffic, `shutdown()`, frames sent to the stopped
//!   NIC never reach memory, then a second init from that state works.
#![no_std]
#![no_main]
#![deny(missing_docs)]

mod scenario;

paranoid_test_kernel::scenario_kernel! {
    "e1000-init" => scenario::init_only,
    "e1000-pair" => |boot| scenario::pair(boot, false),
    "e1000-dirty" => |boot| scenario::pair(boot, true),
    "e1000-handoff" => scenario::handoff,
}
