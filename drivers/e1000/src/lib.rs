//! An Intel 8254x (e1000) NIC driver that comes up from any state a crashed
//! kernel left it in.
//!
//! The recovery kernel inherits the NIC as the dead kernel left it: receiving
//! into rings in the dead kernel's memory, transmit descriptors posted,
//! interrupts pending, a reset half done, or nothing there at all. Init
//! ([`init::init`]) quiesces it (bus mastering and interrupts off, receive and
//! transmit stopped), resets it with a bounded wait, verifies it (STATUS, the
//! EEPROM's checksum and Ethernet address), and only then points it at rings in
//! the DMA window it is given and turns bus mastering back on. Every register
//! and descriptor value the device writes is validated before use; every wait
//! has a deadline.
//!
//! - [`regs`]: register declarations (offsets, bits, access modes).
//! - [`init`]: the lifecycle steps, one small function each, and the init body.
//! - [`part`]: the supported 8254x parts by PCI id, and what differs between
//!   them (EEPROM access, PHY id).
//! - [`ring`]: legacy descriptor rings and write-back validation.
//! - [`device`]: the driver type, configuration and the data path.
//! - [`error`]: the error type.
//! - `model` (feature `model`): a register-level device model with a simulated
//!   wire, and `anystate`, proptest strategies for crashed-kernel states.
//!
//! # Examples
//!
//! ```
//! # #[cfg(feature = "model")] {
//! use paranoid_e1000::{init, model::Harness, Config};
//! use paranoid::time::Deadline;
//! use core::time::Duration;
//!
//! // A simulated NIC whose wire loops frames back.
//! let mut h = Harness::loopback();
//! let driver = h.driver(Config::default()).unwrap();
//! let ready = init::init(driver, &h.clock).unwrap();
//! println!("{}", ready.trace);
//! let mut nic = ready.device.into_inner();
//! let mac = nic.mac().0;
//! let mut frame = [0u8; 60];
//! frame[..6].copy_from_slice(&mac);
//! frame[6..12].copy_from_slice(&mac);
//! frame[12..14].copy_from_slice(&[0x88, 0xb5]);
//! let deadline = Deadline::after(&h.clock, Duration::from_millis(100));
//! nic.send(&frame, deadline).unwrap();
//! let mut buf = [0u8; 2048];
//! let n = nic.receive_wait(&mut buf, deadline).unwrap();
//! assert_eq!(&buf[..n], &frame[..]);
//! # }
//! ```
#![cfg_attr(not(feature = "model"), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod mutant;

pub mod device;
pub mod eeprom;
pub mod error;
pub mod inherited;
pub mod init;
pub mod part;
pub mod regs;
pub mod ring;

#[cfg(feature = "model")]
pub mod anystate;
#[cfg(feature = "model")]
pub mod model;

pub use device::{Config, Link, LinkPolicy, MacAddress, Stats, E1000};
pub use error::{DescriptorProblem, E1000Error};
pub use inherited::{InheritedState, TxActivity};
pub use part::{EepromAccess, Part, SUPPORTED_IDS};
