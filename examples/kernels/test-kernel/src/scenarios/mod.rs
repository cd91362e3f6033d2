//! The scenarios, one module each.

use paranoid_boot::BootInfo;

use crate::report::Outcome;

pub mod boot;
pub mod demo;
pub mod missing_device;
pub mod mmio_selfcheck;
pub mod pci_discovery;
pub mod poll_timeout;
pub mod pvh_handoff;

/// A named check the harness selects with `test=NAME`.
pub struct Scenario {
    /// The name on the command line and in the result line.
    pub name: &'static str,
    /// Runs the checks.
    pub run: fn(&'static BootInfo) -> Outcome,
}

/// Every scenario this kernel knows.
pub static ALL: &[Scenario] = &[
    Scenario {
        name: "boot",
        run: boot::run,
    },
    Scenario {
        name: "pci-discovery",
        run: pci_discovery::run,
    },
    Scenario {
        name: "poll-timeout",
        run: poll_timeout::run,
    },
    Scenario {
        name: "missing-device",
        run: missing_device::run,
    },
    Scenario {
        name: "mmio-selfcheck",
        run: mmio_selfcheck::run,
    },
    Scenario {
        name: "pvh-handoff",
        run: pvh_handoff::run,
    },
    Scenario {
        name: "demo",
        run: demo::run,
    },
];
