//! `missing-device`: an empty slot reads all-ones and every HAL entry point says
//! `NotPresent` (probe, BAR sizing, capability walk, command register), through
//! both configuration mechanisms, without writing anything that sticks.

use paranoid::pci::caps;
use paranoid::pci::command;
use paranoid::pci::discover;
use paranoid::pci::topology::Kind;
use paranoid::pci::{bar, ConfigAccess, PciAddress, PciError};
use paranoid_boot::BootInfo;

use crate::platform;
use crate::report::{Fields, Outcome};
use crate::{check, ensure};

/// Device 0x1e on bus 0: nothing there on q35 with the harness's devices
/// (override with `slot=NN`, hexadecimal); when the machine has put a device
/// there, the highest free slot of bus 0 the walk found empty.
const DEFAULT_SLOT: u8 = 0x1e;

/// A slot of bus 0 with no function the walk found: `preferred` when free.
fn free_slot(t: &platform::MachineTopology, preferred: u8) -> Option<u8> {
    let used = |d: u8| {
        t.nodes()
            .any(|n| n.info.address.bus() == 0 && n.info.address.device() == d)
    };
    core::iter::once(preferred)
        .chain((1..32u8).rev())
        .find(|&d| !used(d))
}

/// The highest bus number no function and no bridge's bus range is on: a bus
/// no bridge leads to (the machine's own layout decides which, e.g. a switch
/// below a second host bridge may sit on 0x42).
fn bus_nowhere(t: &platform::MachineTopology) -> Option<u8> {
    (1..=0xffu8).rev().find(|&b| {
        !t.nodes().any(|n| {
            n.info.address.bus() == b
                || matches!(n.kind, Kind::Bridge { buses, .. }
                    if b >= buses.secondary && b <= buses.subordinate)
        })
    })
}

fn all_missing<C: ConfigAccess>(cfg: &mut C, a: PciAddress) -> Result<(), &'static str> {
    if !cfg.read32(a, 0).is_all_ones() {
        return Err("vendor/device dword is not all-ones");
    }
    if !matches!(discover::probe(cfg, a), Err(PciError::NotPresent(x)) if x == a) {
        return Err("probe did not say NotPresent");
    }
    if !matches!(bar::size(cfg, a, 0), Err(PciError::NotPresent(_))) {
        return Err("BAR sizing of a missing function did not fail with NotPresent");
    }
    if !matches!(bar::all(cfg, a), Err(PciError::NotPresent(_))) {
        return Err("bar::all of a missing function did not fail with NotPresent");
    }
    if !matches!(caps::walk(cfg, a, |_| true), Err(PciError::NotPresent(_))) {
        return Err("capability walk of a missing function did not fail with NotPresent");
    }
    if !matches!(command::read(cfg, a), Err(PciError::NotPresent(_))) {
        return Err("command read of a missing function did not fail with NotPresent");
    }
    if !cfg.read32(a, 0x10).is_all_ones() {
        return Err("BAR0 of the missing function reads back a value after sizing");
    }
    Ok(())
}

/// Runs the checks.
pub fn run(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let mut walked = check!(f, platform::ecam(boot), "ECAM");
    let topology = platform::topology(&mut walked);
    let slot = match boot.cmdline().get("slot") {
        Some(s) => u8::from_str_radix(s, 16).ok(),
        None => free_slot(&topology, DEFAULT_SLOT),
    };
    let Some(slot) = slot else {
        return Err(crate::report::fail(f, "no free slot on bus 0"));
    };
    let empty = check!(f, PciAddress::new(0, 0, slot, 0), "slot");
    // A bus no bridge leads to.
    let Some(bus) = bus_nowhere(&topology) else {
        return Err(crate::report::fail(f, "every bus number is in use"));
    };
    let nowhere = check!(f, PciAddress::new(0, bus, 0, 0), "bus");
    f.add("empty", empty);
    f.add("nowhere", nowhere);
    let clock = boot.clock();
    let t0 = paranoid::time::Clock::now_ns(&clock);
    let mut cf8 = platform::cf8();
    let mut ecam = check!(f, platform::ecam(boot), "ECAM");
    for (a, mech) in [(empty, "cf8"), (nowhere, "cf8")] {
        if let Err(e) = all_missing(&mut cf8, a) {
            return Err(crate::report::fail(f, format_args!("{mech} {a}: {e}")));
        }
    }
    for (a, mech) in [(empty, "ecam"), (nowhere, "ecam")] {
        if let Err(e) = all_missing(&mut ecam, a) {
            return Err(crate::report::fail(f, format_args!("{mech} {a}: {e}")));
        }
    }
    // The topology walk never reports the empty slot.
    let listed = platform::topology(&mut ecam).get(empty).is_some();
    ensure!(f, !listed, "topology listed the empty slot");
    // Out-of-range addresses are refused before any access.
    ensure!(
        f,
        matches!(
            PciAddress::new(0, 0, 32, 0),
            Err(PciError::BadAddress { device: 32, .. })
        ),
        "device 32 accepted"
    );
    let us = (paranoid::time::Clock::now_ns(&clock) - t0) / 1000;
    f.add("checks_us", us);
    Ok(f)
}
