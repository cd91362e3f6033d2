//! paranoid: a hardware-access layer for drivers that must bring devices up from any state.
//!
//! A recovery kernel inherits devices exactly as a dead kernel left them: DMA in
//! flight, controllers wedged, registers reading all-ones. This crate gives driver
//! authors the pieces to handle that without panicking or hanging:
//!
//! - [`mmio`] and [`port`]: register access that never forms a reference to device
//!   memory; on x86_64 each access is exactly one `mov` (or `in`/`out`).
//! - [`untrusted::Untrusted`]: every value a device controls, usable only after a
//!   validating call (range check, all-ones check).
//! - [`time`] and [`poll`]: clocks, [`time::Deadline`]s and bounded polling that
//!   returns a typed timeout carrying the last value seen.
//! - [`pci`]: configuration access (CF8/CFC and ECAM), discovery, the whole
//!   topology through bridges and switches with the requester ids the IOMMU sees
//!   ([`pci::topology`]), BAR sizing, bounded capability walks, function-level
//!   reset.
//! - [`acpi`] and [`phys`]: the one firmware-table walker (RSDP, XSDT/RSDT,
//!   MCFG) reading physical memory through a bounds-checked seam; physical
//!   memory read and write ([`phys::PhysRead`], [`phys::PhysWrite`]), the
//!   memory map, and the one identity-map type a kernel makes once at boot
//!   ([`phys::IdentityMap`]).
//! - [`dma`]: IOVA windows, a window-confined allocator, and DMA buffers typed by
//!   direction and branded by their window.
//! - [`lifecycle`] and [`init`]: the `Unknown → Quiesced → Reset → Verified → Ready`
//!   typestate, init traces and the escalation ladder used by `#[paranoid_init]`.
//! - [`sync`]: a write-once cell and a never-waiting lock for statics.
//! - [`sim`] (feature `std`): a simulated clock, physical memory, IOMMU and bus that
//!   dispatches to device models, so the same driver code runs in host tests.
//!
//! # Examples
//!
//! Waiting for a ready bit with a deadline, on the simulated backend:
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use core::time::Duration;
//! use paranoid::mmio::RegisterIo;
//! use paranoid::poll::poll;
//! use paranoid::sim::{RegisterFile, SimClock, SimMmio};
//! use paranoid::time::Deadline;
//!
//! let clock = SimClock::new();
//! // A 4 KiB register block whose status register (offset 0x1c) never sets bit 0.
//! let mut regs = SimMmio::new(RegisterFile::new(0x1000), clock.clone());
//! let deadline = Deadline::after(&clock, Duration::from_millis(500));
//! let seen = poll(&clock, deadline, || regs.read32(0x1c), |status| status.bit(0));
//! let timeout = seen.unwrap_err();
//! assert!(timeout.waited >= Duration::from_millis(500));
//! assert_eq!(timeout.last.is_all_ones(), false);
//! # }
//! ```
//!
#![doc = include_str!("driver_example.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod acpi;
pub mod arch;
pub mod dma;
pub mod init;
pub mod lifecycle;
pub mod mmio;
pub mod pci;
pub mod phys;
pub mod poll;
#[cfg(target_arch = "x86_64")]
pub mod port;
pub mod regs;
#[cfg(feature = "std")]
pub mod sim;
pub mod sync;
pub mod time;
pub mod untrusted;

pub use bitflags;
pub use paranoid_macros::{dma_windows, paranoid_init, register_block};
pub use untrusted::Untrusted;
pub use volatile;
