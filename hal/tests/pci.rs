//! PCI configuration work against the simulated bus, including hostile devices.

use std::time::Duration;

use paranoid::pci::bar::{self, Bar};
use paranoid::pci::caps::{self, id};
use paranoid::pci::command::{self, Command};
use paranoid::pci::discover::{probe, scan};
use paranoid::pci::reset::{function_level_reset, secondary_bus_reset, CRS_DEFAULT_LIMIT};
use paranoid::pci::{BarProblem, ConfigAccess, PciAddress, PciError};
use paranoid::sim::{ConfigSpace, SimClock, SimPci};
use paranoid::time::Clock;
use proptest::prelude::*;

fn addr(d: u8, f: u8) -> PciAddress {
    PciAddress::new(0, 0, d, f).unwrap()
}

fn nvme(clock: &SimClock) -> ConfigSpace {
    ConfigSpace::endpoint(clock.clone(), 0x1b36, 0x0010, [0x01, 0x08, 0x02])
        .with_bar64(0, 0x4000, 0xfebd_0000, false)
        .with_capability(id::MSIX, 10)
        .with_pcie(true)
}

#[test]
fn discovery_finds_functions_and_reports_empty_slots_absent() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    bus.insert(
        addr(2, 0),
        ConfigSpace::endpoint(clock.clone(), 0x8086, 0x100e, [0x02, 0x00, 0x00]),
    );
    bus.insert(addr(3, 0), nvme(&clock));
    let found: Vec<_> = scan(&mut bus, 0, 0, 0)
        .map(|f| (f.address, f.vendor, f.device))
        .collect();
    assert_eq!(
        found,
        vec![(addr(2, 0), 0x8086, 0x100e), (addr(3, 0), 0x1b36, 0x0010)]
    );
    assert_eq!(
        probe(&mut bus, addr(4, 0)),
        Err(PciError::NotPresent(addr(4, 0)))
    );
    assert_eq!(
        probe(&mut bus, addr(3, 0)).unwrap().class,
        [0x01, 0x08, 0x02]
    );
    assert!(PciAddress::new(0, 0, 32, 0).is_err());
    assert!(PciAddress::new(0, 0, 0, 8).is_err());
    assert_eq!(addr(3, 1).source_id(), 0x19);
}

#[test]
fn all_ones_function_is_absent_everywhere() {
    let mut bus = SimPci::new();
    let a = addr(5, 0);
    assert!(matches!(
        command::read(&mut bus, a),
        Err(PciError::NotPresent(_))
    ));
    assert!(matches!(
        bar::size(&mut bus, a, 0),
        Err(PciError::NotPresent(_))
    ));
    assert!(matches!(
        caps::find(&mut bus, a, id::PCI_EXPRESS),
        Err(PciError::NotPresent(_))
    ));
    assert!(!command::fence(&mut bus, a));
    let clock = SimClock::new();
    assert!(function_level_reset(&mut bus, a, &clock, CRS_DEFAULT_LIMIT).is_err());
}

#[test]
fn bar_sizing_decodes_and_restores_bar_and_command() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let f = bus.insert(
        addr(2, 0),
        ConfigSpace::endpoint(clock.clone(), 0x8086, 0x100e, [2, 0, 0])
            .with_bar32(0, 0x2_0000, 0xfebc_0000)
            .with_io_bar(1, 0x40, 0xc000)
            .with_bar64(2, 0x1_0000_0000, 0x80_0000_0000, true),
    );
    command::update(
        &mut bus,
        addr(2, 0),
        Command::MEMORY_SPACE | Command::BUS_MASTER,
        Command::empty(),
    )
    .unwrap();
    let dwords = |bus: &mut SimPci| -> Vec<u32> {
        (0..6)
            .map(|i| bus.read32(addr(2, 0), 0x10 + 4 * i).into_raw_for_report())
            .collect()
    };
    let before = dwords(&mut bus);
    let bars = bar::all(&mut bus, addr(2, 0)).unwrap();
    assert_eq!(
        dwords(&mut bus),
        before,
        "every BAR dword, both halves of BAR2 too, restored in its place"
    );
    assert_eq!(
        bars[0],
        Bar::Memory {
            base: 0xfebc_0000,
            size: 0x2_0000,
            is_64bit: false,
            prefetchable: false
        }
    );
    assert_eq!(
        bars[1],
        Bar::Io {
            base: 0xc000,
            size: 0x40
        }
    );
    assert_eq!(
        bars[2],
        Bar::Memory {
            base: 0x80_0000_0000,
            size: 0x1_0000_0000,
            is_64bit: true,
            prefetchable: true
        }
    );
    assert_eq!(bars[3], Bar::Unused, "upper half of BAR2 is skipped");
    assert_eq!(bars[4], Bar::Unused);
    assert_eq!(f.borrow().peek16(0x10), 0x0000);
    assert_eq!(
        bus.read32(addr(2, 0), 0x10).into_raw_for_report(),
        0xfebc_0000,
        "BAR restored"
    );
    assert_eq!(
        command::read(&mut bus, addr(2, 0)).unwrap(),
        Command::MEMORY_SPACE | Command::BUS_MASTER,
        "command restored"
    );
    assert_eq!(
        bar::size(&mut bus, addr(2, 0), 6),
        Err(PciError::BadBarIndex(6))
    );
}

#[test]
fn sixty_four_bit_bar_in_last_slot_is_refused() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let f = bus.insert(addr(2, 0), ConfigSpace::endpoint(clock, 1, 2, [0, 0, 0]));
    f.borrow_mut().poke8(0x24, 0x04);
    assert!(matches!(
        bar::size(&mut bus, addr(2, 0), 5),
        Err(PciError::BadBar {
            index: 5,
            reason: BarProblem::NoUpperHalf,
            ..
        })
    ));
}

#[test]
fn capability_walk_detects_loops_and_out_of_range_pointers() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let f = bus.insert(addr(3, 0), nvme(&clock));
    let mut seen = vec![];
    caps::walk(&mut bus, addr(3, 0), |c| {
        seen.push((c.id, c.offset));
        true
    })
    .unwrap();
    assert_eq!(seen, vec![(0x11, 0x40), (0x10, 0x4c)]);
    assert_eq!(
        caps::find(&mut bus, addr(3, 0), id::PCI_EXPRESS),
        Ok(Some(0x4c))
    );
    assert_eq!(caps::find(&mut bus, addr(3, 0), id::MSI), Ok(None));

    // The last capability points back at the first: a loop.
    f.borrow_mut().poke8(0x4d, 0x40);
    assert_eq!(
        caps::find(&mut bus, addr(3, 0), id::MSI),
        Err(PciError::CapabilityLoop { at: 0x40 })
    );
    // A self-loop.
    f.borrow_mut().poke8(0x41, 0x40);
    assert_eq!(
        caps::find(&mut bus, addr(3, 0), id::MSI),
        Err(PciError::CapabilityLoop { at: 0x40 })
    );
    // Into the header.
    f.borrow_mut().poke8(0x41, 0x10);
    assert_eq!(
        caps::find(&mut bus, addr(3, 0), id::MSI),
        Err(PciError::CapabilityOutOfRange { pointer: 0x10 })
    );
}

#[test]
fn extended_capabilities_walk_is_bounded() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let f = bus.insert(addr(3, 0), nvme(&clock));
    // One extended capability (AER, id 1) whose next pointer is itself.
    for (i, b) in 0x1001_0001u32.to_le_bytes().into_iter().enumerate() {
        f.borrow_mut().poke8(0x100 + i as u16, b);
    }
    assert_eq!(
        caps::walk_extended(&mut bus, addr(3, 0), |_| true),
        Err(PciError::CapabilityLoop { at: 0x100 })
    );
    let mut legacy = SimPci::legacy();
    legacy.insert(addr(3, 0), nvme(&clock));
    assert_eq!(
        caps::walk_extended(&mut legacy, addr(3, 0), |_| panic!("no extended space")),
        Ok(())
    );
}

#[test]
fn a_function_without_extended_space_has_no_extended_capabilities() {
    // A conventional PCI function behind a PCIe-to-PCI bridge: ECAM decodes
    // its bus, but the bridge cannot forward offsets past 0xff, so 0x100
    // reads all-ones while the header still answers (QEMU 7.2, an NVMe
    // behind a `pcie-pci-bridge`). That is no extended space, not a gone
    // device (Linux's `pci_cfg_space_size_ext` reads it the same way).
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let f = bus.insert(addr(3, 0), nvme(&clock));
    f.borrow_mut().poke32(0x100, 0xffff_ffff);
    assert_eq!(
        caps::walk_extended(&mut bus, addr(3, 0), |_| panic!("no extended space")),
        Ok(())
    );
    // A function that is gone reads all-ones everywhere: still absent.
    bus.remove(addr(3, 0));
    assert_eq!(
        caps::walk_extended(&mut bus, addr(3, 0), |_| true),
        Err(PciError::NotPresent(addr(3, 0)))
    );
}

#[test]
fn flr_waits_out_crs_and_restores_power_on_state() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let f = bus.insert(
        addr(3, 0),
        nvme(&clock).with_crs_time(Duration::from_millis(250)),
    );
    command::update(
        &mut bus,
        addr(3, 0),
        Command::BUS_MASTER | Command::MEMORY_SPACE,
        Command::empty(),
    )
    .unwrap();
    let start = clock.now_ns();
    function_level_reset(&mut bus, addr(3, 0), &clock, CRS_DEFAULT_LIMIT).unwrap();
    let took = clock.now_ns() - start;
    assert!(took >= 250_000_000, "waited out CRS ({took} ns)");
    assert!(took < 300_000_000);
    assert_eq!(f.borrow().flr_count(), 1);
    assert!(!f.borrow().bus_master());
}

#[test]
fn flr_that_never_completes_is_a_timeout_not_a_hang() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    bus.insert(addr(3, 0), nvme(&clock).with_crs_time(Duration::MAX));
    let err =
        function_level_reset(&mut bus, addr(3, 0), &clock, Duration::from_secs(1)).unwrap_err();
    match err {
        PciError::ResetTimeout {
            waited,
            last_vendor,
            ..
        } => {
            assert_eq!(
                last_vendor, 0x0001,
                "still answering Configuration Retry Status"
            );
            assert!(waited >= Duration::from_millis(1100) && waited < Duration::from_millis(1200));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn flr_needs_the_capability() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    bus.insert(
        addr(3, 0),
        ConfigSpace::endpoint(clock.clone(), 1, 2, [0, 0, 0]).with_pcie(false),
    );
    assert_eq!(
        function_level_reset(&mut bus, addr(3, 0), &clock, CRS_DEFAULT_LIMIT),
        Err(PciError::FlrUnsupported(addr(3, 0)))
    );
}

#[test]
fn command_update_does_not_clear_w1c_status() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let f = bus.insert(addr(2, 0), ConfigSpace::endpoint(clock, 1, 2, [0, 0, 0]));
    // A latched error bit in status (W1C).
    f.borrow_mut().poke8(0x07, 0x80);
    command::update(&mut bus, addr(2, 0), Command::BUS_MASTER, Command::empty()).unwrap();
    assert_eq!(
        f.borrow().peek16(0x06) & 0x8000,
        0x8000,
        "status survives a 16-bit command write"
    );
    bus.write16(addr(2, 0), 0x06, 0x8000);
    assert_eq!(f.borrow().peek16(0x06) & 0x8000, 0, "W1C clears");
}

proptest! {
    /// Random configuration space: every walk ends, with a list or a typed error.
    #[test]
    fn capability_walk_on_garbage_terminates(bytes in proptest::collection::vec(any::<u8>(), 256)) {
        let clock = SimClock::new();
        let mut bus = SimPci::legacy();
        let f = bus.insert(addr(1, 0), ConfigSpace::endpoint(clock, 1, 2, [0, 0, 0]));
        for (i, b) in bytes.iter().enumerate().skip(4) {
            f.borrow_mut().poke8(i as u16, *b);
        }
        let mut visits = 0;
        let r = caps::walk(&mut bus, addr(1, 0), |_| { visits += 1; true });
        prop_assert!(visits <= 48);
        if let Err(e) = r {
            let typed = matches!(e, PciError::CapabilityLoop { .. } | PciError::CapabilityOutOfRange { .. } | PciError::NotPresent(_));
            prop_assert!(typed, "unexpected error {:?}", e);
        }
        // BAR sizing of garbage never panics and never returns nonsense.
        for i in 0..6 {
            if let Ok(Bar::Memory { base, size, .. }) = bar::size(&mut bus, addr(1, 0), i) {
                prop_assert!(size.is_power_of_two() && base % size == 0);
            }
        }
    }
}

/// Functions 1..=7 are scanned only behind a multi-function function 0
/// (header type bit 7): a single-function device that decodes every function
/// number answers at all eight, and is one function.
#[test]
fn scan_looks_past_function_0_only_of_multifunction_devices() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let nic = || ConfigSpace::endpoint(clock.clone(), 0x8086, 0x100e, [0x02, 0x00, 0x00]);
    // 00:02: single-function, but answering at every function number.
    for f in 0..8 {
        bus.insert(addr(2, f), nic());
    }
    // 00:03: multi-function with functions 0, 3 and 7.
    bus.insert(addr(3, 0), nic().multifunction());
    bus.insert(addr(3, 3), nic());
    bus.insert(addr(3, 7), nic());
    bus.insert(addr(4, 0), nvme(&clock));
    let found: Vec<_> = scan(&mut bus, 0, 0, 0).map(|f| f.address).collect();
    assert_eq!(
        found,
        vec![addr(2, 0), addr(3, 0), addr(3, 3), addr(3, 7), addr(4, 0)]
    );
}

/// A secondary bus reset pulses SBR on the bridge and waits for the device
/// below it: that device comes back with its power-on values (bus mastering
/// off), a device beside the bridge is untouched, and the bridge is left with
/// SBR released.
#[test]
fn secondary_bus_reset_resets_what_is_below_the_bridge() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let bridge = addr(1, 0);
    let child = PciAddress::new(0, 1, 0, 0).unwrap();
    let beside = addr(2, 0);
    bus.insert(
        bridge,
        ConfigSpace::bridge(clock.clone(), 0x8086, 0x244e, (0, 1, 1)),
    );
    let below = bus.insert(child, nvme(&clock));
    let next = bus.insert(beside, nvme(&clock));
    for f in [child, beside] {
        command::update(&mut bus, f, Command::BUS_MASTER, Command::empty()).unwrap();
    }
    let start = clock.now_ns();
    secondary_bus_reset(&mut bus, bridge, child, &clock, CRS_DEFAULT_LIMIT).unwrap();
    assert_eq!(below.borrow().bus_reset_count(), 1);
    assert!(!below.borrow().bus_master(), "the device below is reset");
    assert_eq!(next.borrow().bus_reset_count(), 0);
    assert!(next.borrow().bus_master(), "the device beside is not");
    assert_eq!(bus.read16(bridge, 0x3e).into_raw_for_report() & 0x40, 0);
    assert!(
        clock.now_ns() - start >= 100_000_000,
        "the 100 ms recovery wait"
    );
    let gone = secondary_bus_reset(&mut bus, addr(9, 0), child, &clock, CRS_DEFAULT_LIMIT);
    assert!(gone.is_err(), "a bridge reading all-ones: {gone:?}");
}

/// Capabilities may sit anywhere from 0x40 to the last dword (0xfc) of the
/// standard space: a list that reaches the top is walked to its end.
#[test]
fn capabilities_up_to_the_top_of_the_standard_space_are_found() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    // 0x40 (MSI-X, 10 bytes), 0x4c (vendor, 0x6e bytes), 0xbc (vendor,
    // 0x3e bytes), 0xfc (MSI): the last one in the last dword.
    let f = ConfigSpace::endpoint(clock.clone(), 0x1b36, 0x0010, [0x01, 0x08, 0x02])
        .with_capability(id::MSIX, 10)
        .with_capability(0x09, 0x6e)
        .with_capability(0x09, 0x3e)
        .with_capability(id::MSI, 2);
    bus.insert(addr(3, 0), f);
    let mut seen = vec![];
    caps::walk(&mut bus, addr(3, 0), |c| {
        seen.push(c.offset);
        true
    })
    .unwrap();
    assert_eq!(seen, vec![0x40, 0x4c, 0xbc, 0xfc]);
    assert_eq!(caps::find(&mut bus, addr(3, 0), id::MSI), Ok(Some(0xfc)));
}

/// An extended capability list that loops is refused where it first comes
/// back to a capability it visited, after visiting each once.
#[test]
fn extended_capability_loops_are_refused_at_the_first_revisit() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let f = bus.insert(addr(3, 0), nvme(&clock));
    // 0x100 (AER, v1) → 0x140 (SR-IOV) → back to 0x100.
    f.borrow_mut().poke32(0x100, 0x140 << 20 | 1 << 16 | 0x0001);
    f.borrow_mut().poke32(0x140, 0x100 << 20 | 1 << 16 | 0x0010);
    let mut visited = vec![];
    let r = caps::walk_extended(&mut bus, addr(3, 0), |c| {
        visited.push(c.offset);
        true
    });
    assert_eq!(r, Err(PciError::CapabilityLoop { at: 0x100 }));
    assert_eq!(visited, vec![0x100, 0x140]);
    // Ended by a zero next pointer, the same list is walked to its end.
    f.borrow_mut().poke32(0x140, 1 << 16 | 0x0010);
    visited.clear();
    let r = caps::walk_extended(&mut bus, addr(3, 0), |c| {
        visited.push(c.offset);
        true
    });
    assert_eq!(r, Ok(()));
    assert_eq!(visited, vec![0x100, 0x140]);
}
