//! What the paranoid recovery kernel does, apart from the hardware glue: parse
//! its configuration, write a verified dump into the declared extent and nowhere
//! else, keep the cluster's watchdogs fed while it does, check that no stale DMA
//! landed in its own memory, and report.
//!
//! Everything here is `no_std`, generic over small traits ([`dump::BlockSink`],
//! the HAL's [`paranoid::phys::PhysRead`], [`heartbeat::Heartbeat`]) and runs unchanged against the
//! simulated clock in host tests; the bare-metal kernel in `examples/kernels`
//! plugs the NVMe driver, identity-mapped memory, the i6300esb watchdog and the
//! e1000 into them.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod canary;
pub mod config;
pub mod descriptor;
pub mod dump;
pub mod dump_settings;
pub mod heartbeat;
pub mod note;
pub mod nvme_sink;
pub mod plan;
pub mod report;
pub mod result;
pub mod target;
pub mod text;
