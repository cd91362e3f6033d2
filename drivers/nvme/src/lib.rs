//! paranoid-nvme: an NVMe driver that a recovery kernel can bring up from any
//! state a crashed kernel left the controller in.
//!
//! - [`regs`]: controller registers and fields, apart from the logic.
//! - [`init`](mod@init): paranoid init, one step per function in spec order (quiesce,
//!   controller reset without shutdown notification, verify CAP/VS/CSTS, admin
//!   queues from the window, enable, Identify, one I/O queue pair), run through
//!   [`paranoid::init::run`] with its escalation to FLR and its trace.
//! - [`queue`]: a queue pair whose completions are validated before use.
//! - [`io`]: block Read/Write/Flush with PRPs from the window, per-command
//!   timeouts, abort-and-reset recovery.
//! - [`shutdown`]: normal shutdown for a clean handoff.
//! - `model` and `anystate` (feature `model`, host only): a register-level
//!   device model following QEMU's `hw/nvme`, and proptest strategies for the
//!   states a crashed kernel leaves.
//!
//! # Examples
//!
//! A recovery kernel (or a host test, as here on the model) takes the
//! controller, initializes it, writes a dump extent and reads it back:
//!
//! ```
//! # #[cfg(feature = "model")] {
//! use paranoid::dma::ToDevice;
//! use paranoid_nvme::model::Bench;
//! use paranoid_nvme::{Config, Nvme, DEFAULT_INIT_BUDGET};
//!
//! let mut bench = Bench::qemu_like();
//! let (regs, pci, address, clock) = bench.parts();
//! let nvme = Nvme::new(regs, pci, address, clock, &mut bench.arena, Config::default()).unwrap();
//! let ready = nvme.init(DEFAULT_INIT_BUDGET).map_err(|f| f.to_string()).unwrap();
//! println!("{}", ready.trace);
//! let mut nvme = ready.device.into_inner();
//! let mut dump = bench.arena.alloc::<ToDevice>(8192, 4096).unwrap();
//! dump.write_bytes(0, &[0x5a; 8192]).unwrap();
//! nvme.write_blocks(100, 16, &dump, 0).unwrap();
//! nvme.flush().unwrap();
//! assert!(nvme.write_blocks(u64::MAX - 1, 16, &dump, 0).is_err(), "outside the namespace");
//! # }
//! ```
#![cfg_attr(not(any(test, feature = "model")), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod mutant;

pub mod command;
pub mod controller;
pub mod error;
pub mod identify;
pub mod inherited;
pub mod init;
pub mod io;
pub mod pipeline;
pub mod queue;
pub mod regs;
pub mod shutdown;

#[cfg(feature = "model")]
pub mod anystate;
#[cfg(feature = "model")]
pub mod model;

pub use controller::{Capabilities, Config, Nvme, State, Stats, MAX_IN_FLIGHT};
pub use error::{CompletionProblem, NvmeError};
pub use identify::{ActiveNamespaces, BlockSize, ControllerInfo, FormatProblem, NamespaceInfo};
pub use inherited::InheritedState;
pub use init::{init, DEFAULT_INIT_BUDGET, MAX_INIT_BUDGET};
pub use io::{Refused, Written};
pub use pipeline::WritePipeline;
