//! Simulated backends: the same driver code, run on the host against device models.
//!
//! - [`SimClock`]: time that advances as code polls it (a 5 s timeout takes
//!   microseconds of host time).
//! - [`SimMemory`]: simulated physical memory, shared by the driver (through DMA
//!   buffers) and the device models (through [`SimDma`]).
//! - [`SimIommu`] and the [`Translate`] trait: the DMA path of the models, which
//!   records every access outside the allowed mappings.
//! - [`SimMmio`]: a [`RegisterIo`](crate::mmio::RegisterIo) that dispatches to an
//!   [`MmioModel`], and can misbehave (all-ones, gone mid-init).
//! - [`SimPci`] and [`ConfigSpace`]: configuration space with write masks,
//!   write-one-to-clear bits, BAR sizing, capability lists, FLR and CRS.
//! - [`WatchedPci`]: a [`SimPci`] that records, as the function saw it, when
//!   bus mastering first went on (and how much DMA had been refused by then).
//! - [`campaign`]: the fault-class table an any-state campaign prints.

pub mod campaign;
mod clock;
mod dma;
mod memory;
mod mmio;
mod pci;
mod watch;

pub use clock::SimClock;
pub use dma::{DmaAccess, DmaFault, SimDma, SimIommu, SourceMapper, Translate};
pub use memory::SimMemory;
pub use mmio::{MmioModel, RegisterFile, SimMmio, Width};
pub use pci::{ConfigSpace, SimPci};
pub use watch::{BusMasterWatch, WatchedPci};
