//! The scenarios, one module each.

use crate::dispatch::Scenario;

pub mod boot;
pub mod demo;
pub mod missing_device;
pub mod mmio_selfcheck;
pub mod pci_discovery;
pub mod poll_timeout;
pub mod pvh_handoff;

/// Every scenario this kernel knows.
pub static ALL: &[Scenario] = &[
    Scenario::new("boot", boot::run),
    Scenario::new("pci-discovery", pci_discovery::run),
    Scenario::new("poll-timeout", poll_timeout::run),
    Scenario::new("missing-device", missing_device::run),
    Scenario::new("mmio-selfcheck", mmio_selfcheck::run),
    Scenario::new("pvh-handoff", pvh_handoff::run),
    Scenario::new("demo", demo::run),
];
