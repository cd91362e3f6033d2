//! paranoid-vtd: the Intel VT-d bring-up core of a recovery kernel.
//!
//! A recovery kernel inherits an IOMMU that may still translate with a dead
//! kernel's tables, and devices whose DMA is still in flight. This crate takes
//! the IOMMU over without letting stale DMA land anywhere new:
//!
//! - [`acpi`]: find the RSDP, walk the RSDT/XSDT and parse the DMAR table
//!   (DRHD, RMRR, ATSR, device scopes), every length and offset checked.
//! - [`regs`], [`unit`](mod@unit), [`invalidate`], [`fault`]: one remapping unit: CAP/ECAP
//!   decoding, the GCMD/GSTS protocol with bounded waits, context and IOTLB
//!   invalidation (register-based or queued), fault recording registers.
//! - [`tables`]: root and context tables, second-level page tables (3 or 4
//!   levels as SAGAW allows).
//! - [`mem`]: physical memory access, the memory map every old pointer is
//!   checked against, and the page pool new tables come from.
//! - [`takeover`]: `adopt` (copy the old root and context tables, keep old
//!   domain ids) or `fence` (block every device the recovery kernel does not
//!   drive), with per-device overrides and a fallback from adopt to fence.
//! - [`window`]: the reserved recovery window and batched map/unmap.
//! - [`policy`]: fault classification (own window bug, stale DMA, unknown
//!   source), quarantine after a threshold, counters and a rate-limited log.
//! - [`drain`]: `drain-then-fence`: under adopt, give each inherited device a
//!   bounded, per-class window for its in-flight DMA to land where the dead
//!   kernel pointed it, watch it go idle, then block it; a per-device report.
//! - [`iommu`]: the vendor-neutral traits the policy and the drain run on
//!   (AMD-Vi can follow).
//! - [`model`] (feature `model`): a simulated VT-d unit with the real register
//!   layout that translates simulated DMA and records faults like hardware.
//!
//! # Examples
//!
//! The recovery kernel's sequence, on the simulated unit:
//!
//! ```
//! # #[cfg(feature = "model")] {
//! use core::time::Duration;
//! use paranoid::dma::WindowSpec;
//! use paranoid::time::Deadline;
//! use paranoid_vtd::{model::Harness, policy::{FaultPolicy, PolicyConfig}, takeover::{Policy, TakeoverConfig}, Vtd};
//!
//! let h = Harness::qemu_like();
//! // The dead kernel left translation on with its own tables.
//! h.old_kernel_tables(&[(0x0010, 1)]);
//! let window = WindowSpec { name: "recovery", base: 0x7ff0_0000, size: 1 << 20, page_size: 4096 };
//! let config = TakeoverConfig::new(Policy::Adopt, window);
//! let deadline = Deadline::after(&h.clock, Duration::from_secs(1));
//! let (mut vtd, report) = Vtd::take_over(h.registers(), h.clock.clone(), h.memory(), h.pool(), h.memory_map(), &config, deadline).unwrap();
//! assert!(report.adopted());
//! vtd.attach(0x0018, deadline).unwrap();
//! vtd.map_range(window.base, h.window_phys(), window.size, deadline).unwrap();
//! let mut policy = FaultPolicy::new(PolicyConfig::default());
//! let summary = policy.service(&mut vtd, &mut |_event| {}, deadline).unwrap();
//! assert_eq!(summary.records, 0);
//! # }
//! ```
#![cfg_attr(not(any(test, feature = "model")), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod mutant;

pub mod acpi;
mod domain;
pub mod drain;
mod error;
pub mod fault;
pub mod invalidate;
pub mod iommu;
pub mod mem;
#[cfg(feature = "model")]
pub mod model;
pub mod policy;
pub mod regs;
pub mod tables;
pub mod takeover;
pub mod unit;
mod vtd;
pub mod window;

pub use domain::DomainIds;
pub use error::VtdError;
pub use vtd::{Vtd, BLOCK_BATCH, MAX_ATTACHED};
