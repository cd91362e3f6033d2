//! `demo`: the PCI inventory and the HAL self-checks, printed for a human.
//!
//! `cargo xtask demo` boots this scenario and shows its serial output. Each
//! self-check is another scenario's `run`; the demo passes when all pass.

use paranoid_boot::{println, BootInfo};

use crate::platform;
use crate::report::{fail, Fields, Outcome};
use crate::scenarios::{
    boot as boot_check, missing_device, mmio_selfcheck, pci_discovery, poll_timeout,
};

/// A self-check: scenario name, what it shows, its `run`.
type Check = (&'static str, &'static str, fn(&'static BootInfo) -> Outcome);

/// The self-checks the demo runs, with a one-line description.
const CHECKS: &[Check] = &[
    (
        "boot",
        "start info, memory map, ACPI, frame allocator",
        boot_check::run,
    ),
    (
        "pci-discovery",
        "CF8 and ECAM agree; e1000 and NVMe ids, BARs, capabilities",
        pci_discovery::run_quiet,
    ),
    (
        "poll-timeout",
        "a poll on a register that never changes times out on time",
        poll_timeout::run,
    ),
    (
        "missing-device",
        "an empty slot reads as absent everywhere",
        missing_device::run,
    ),
    (
        "mmio-selfcheck",
        "MMIO and port I/O agree on real registers",
        mmio_selfcheck::run,
    ),
];

/// Prints the inventory and runs every self-check.
pub fn run(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    println!();
    println!("== paranoid demo: PCI inventory (bus 0, through ECAM) ==");
    match platform::ecam(boot) {
        Ok(mut ecam) => {
            pci_discovery::print_inventory(&mut ecam);
            // Which NIC the e1000 checks use (the harness compares it with
            // the machine it booted: `absent` only where there is none).
            match pci_discovery::first_e1000(&mut ecam) {
                Some(n) => f.add("e1000", n.address()),
                None => f.add("e1000", "absent"),
            };
        }
        Err(e) => println!("  no ECAM: {e}"),
    }
    println!();
    println!("== HAL self-checks on QEMU's devices ==");
    let mut passed = 0usize;
    for (name, what, run) in CHECKS {
        let clock = boot.clock();
        let t0 = paranoid::time::Clock::now_ns(&clock);
        let outcome = run(boot);
        let ms = (paranoid::time::Clock::now_ns(&clock) - t0) / 1_000_000;
        match outcome {
            Ok(fields) => {
                passed += 1;
                println!("  [pass] {name:<15} {what} ({ms} ms)");
                println!("         {fields}");
            }
            Err(e) => {
                println!("  [FAIL] {name:<15} {what} ({ms} ms)");
                println!("         {}", e.fields);
            }
        }
    }
    println!();
    f.add("checks", CHECKS.len());
    f.add("passed", passed);
    if passed != CHECKS.len() {
        return Err(fail(f, "a self-check failed"));
    }
    Ok(f)
}
