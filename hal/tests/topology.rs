//! The PCI topology walk on simulated hierarchies: deep trees, switches,
//! conventional and PCIe-to-PCI bridges with their alias ids, hostile bridges,
//! several segments from an MCFG. Config cycles are routed by the simulated
//! bridges' bus numbers, so a walk that only scans bus 0 finds nothing behind a
//! bridge, and a walk that trusts bus numbers walks into the traps below.

use paranoid::acpi::build::{mcfg, mcfg_entry};
use paranoid::acpi::Mcfg;
use paranoid::pci::topology::{
    AliasReason, BridgeKind, BusNumbers, Kind, PortType, RootBus, Topology, TopologyError,
};
use paranoid::pci::PciAddress;
use paranoid::sim::{ConfigSpace, SimClock, SimPci};
use std::cell::RefCell;
use std::rc::Rc;

fn at(bus: u8, dev: u8, f: u8) -> PciAddress {
    PciAddress::new(0, bus, dev, f).unwrap()
}

fn ep(clock: &SimClock, vendor: u16, device: u16) -> ConfigSpace {
    ConfigSpace::endpoint(clock.clone(), vendor, device, [0x02, 0x00, 0x00])
}
fn nvme(clock: &SimClock) -> ConfigSpace {
    ConfigSpace::endpoint(clock.clone(), 0x1b36, 0x0010, [0x01, 0x08, 0x02]).with_pcie_port(0)
}
fn e1000(clock: &SimClock) -> ConfigSpace {
    ep(clock, 0x8086, 0x100e)
}
fn root_port(clock: &SimClock, b: (u8, u8, u8)) -> ConfigSpace {
    ConfigSpace::bridge(clock.clone(), 0x1b36, 0x000c, b).with_pcie_port(4)
}
fn switch_up(clock: &SimClock, b: (u8, u8, u8)) -> ConfigSpace {
    ConfigSpace::bridge(clock.clone(), 0x104c, 0x8232, b).with_pcie_port(5)
}
fn switch_down(clock: &SimClock, b: (u8, u8, u8)) -> ConfigSpace {
    ConfigSpace::bridge(clock.clone(), 0x104c, 0x8233, b).with_pcie_port(6)
}
fn pci_bridge(clock: &SimClock, b: (u8, u8, u8)) -> ConfigSpace {
    ConfigSpace::bridge(clock.clone(), 0x1b36, 0x0001, b)
}
fn pcie_to_pci(clock: &SimClock, b: (u8, u8, u8)) -> ConfigSpace {
    ConfigSpace::bridge(clock.clone(), 0x1b36, 0x000e, b).with_pcie_port(7)
}

type T = Topology<64, 16>;

fn walk(bus: &mut SimPci) -> T {
    T::walk(bus, &[RootBus::LEGACY])
}

fn path(t: &T, a: PciAddress) -> Vec<PciAddress> {
    t.get(a).expect("found").path.bridges().collect()
}

/// Root port → switch upstream → two downstream ports → NVMe and e1000; a
/// decoy on a bus no bridge leads to.
fn deep(clock: &SimClock) -> (SimPci, Vec<Rc<RefCell<ConfigSpace>>>) {
    let mut bus = SimPci::new();
    let mut bridges = vec![];
    bus.insert(
        at(0, 0, 0),
        ConfigSpace::endpoint(clock.clone(), 0x8086, 0x29c0, [0x06, 0x00, 0x00]),
    );
    bridges.push(bus.insert(at(0, 0x1c, 0), root_port(clock, (0, 1, 4))));
    bridges.push(bus.insert(at(1, 0, 0), switch_up(clock, (1, 2, 4))));
    bridges.push(bus.insert(at(2, 0, 0), switch_down(clock, (2, 3, 3))));
    bridges.push(bus.insert(at(2, 1, 0), switch_down(clock, (2, 4, 4))));
    bus.insert(at(3, 0, 0), nvme(clock));
    bus.insert(at(4, 0, 0), e1000(clock));
    bus.insert(at(9, 0, 0), e1000(clock)); // unreachable: no bridge leads to bus 9
    (bus, bridges)
}

#[test]
fn deep_hierarchy_through_a_switch_is_found_with_paths() {
    let clock = SimClock::new();
    let (mut bus, bridges) = deep(&clock);
    let t = walk(&mut bus);
    assert_eq!(
        t.errors().count(),
        0,
        "{:?}",
        t.errors().collect::<Vec<_>>()
    );
    let found: Vec<_> = t.nodes().map(|n| n.address()).collect();
    assert_eq!(
        found,
        vec![
            at(0, 0, 0),
            at(0, 0x1c, 0),
            at(1, 0, 0),
            at(2, 0, 0),
            at(3, 0, 0),
            at(2, 1, 0),
            at(4, 0, 0)
        ]
    );
    assert_eq!(t.buses(), 5);
    let nvme = t.by_ids(0x1b36, 0x0010).collect::<Vec<_>>();
    assert_eq!(nvme.len(), 1);
    assert_eq!(nvme[0].address(), at(3, 0, 0));
    assert_eq!(
        path(&t, at(3, 0, 0)),
        vec![at(0, 0x1c, 0), at(1, 0, 0), at(2, 0, 0)]
    );
    assert_eq!(
        path(&t, at(4, 0, 0)),
        vec![at(0, 0x1c, 0), at(1, 0, 0), at(2, 1, 0)]
    );
    let depth = |a| t.get(a).expect("found").path.depth();
    assert_eq!(
        [depth(at(0, 0, 0)), depth(at(1, 0, 0)), depth(at(3, 0, 0))],
        [0, 1, 3]
    );
    // On an express bus: its own id, no alias.
    assert_eq!(nvme[0].requester_id(), 0x0300);
    assert_eq!(nvme[0].dma_alias(), None);
    assert!(nvme[0].express_bus);
    assert_eq!(
        nvme[0].kind,
        Kind::Endpoint {
            express: Some(PortType::Endpoint)
        }
    );
    let kinds: Vec<_> = t
        .nodes()
        .filter_map(|n| match n.kind {
            Kind::Bridge { kind, .. } => Some(kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            BridgeKind::RootPort,
            BridgeKind::SwitchUpstream,
            BridgeKind::SwitchDownstream,
            BridgeKind::SwitchDownstream
        ]
    );
    // The decoy on bus 9 is not reached, and no bridge was written.
    assert!(t.get(at(9, 0, 0)).is_none());
    assert!(bridges.iter().all(|b| b.borrow().writes() == 0));
    assert_eq!(t.by_class(0x01, 0x08).count(), 1);
    assert_eq!(t.by_requester_id(0, 0x0400).unwrap().address(), at(4, 0, 0));
    // What a printed inventory line looks like.
    assert_eq!(
        t.get(at(3, 0, 0)).unwrap().to_string(),
        "0000:00:1c.0/0000:01:00.0/0000:02:00.0/0000:03:00.0 1b36:0010"
    );
}

#[test]
fn bus_zero_alone_does_not_reach_behind_bridges() {
    // The control for the test above: the simulated bus routes by bridges, so
    // the devices exist only for a walk that follows them.
    let clock = SimClock::new();
    let (mut bus, _) = deep(&clock);
    let flat: Vec<_> = paranoid::pci::discover::scan(&mut bus, 0, 0, 0)
        .map(|f| f.address)
        .collect();
    assert_eq!(flat, vec![at(0, 0, 0), at(0, 0x1c, 0)]);
    // Renumber the root port away: the switch and everything under it vanish.
    bus.insert(at(0, 0x1c, 0), root_port(&clock, (0, 5, 6)));
    let t = walk(&mut bus);
    assert!(t.get(at(3, 0, 0)).is_none());
}

#[test]
fn conventional_bridge_aliases_to_its_own_id() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    bus.insert(at(0, 3, 0), pci_bridge(&clock, (0, 1, 1)));
    bus.insert(at(1, 3, 0), e1000(&clock).multifunction());
    bus.insert(at(1, 3, 1), e1000(&clock));
    let t = walk(&mut bus);
    assert_eq!(t.errors().count(), 0);
    let nic = t.get(at(1, 3, 0)).unwrap();
    assert!(!nic.express_bus);
    let alias = nic.dma_alias().unwrap();
    assert_eq!(alias.reason, AliasReason::ConventionalBridge);
    assert_eq!(alias.via, at(0, 3, 0));
    assert_eq!(nic.requester_id(), 0x0018);
    assert_eq!(nic.own_id(), 0x0118);
    // Both functions of the multi-function device are found, both aliased.
    assert_eq!(t.get(at(1, 3, 1)).unwrap().requester_id(), 0x0018);
    assert_eq!(
        t.get(at(0, 3, 0)).unwrap().kind,
        Kind::Bridge {
            kind: BridgeKind::Conventional,
            buses: BusNumbers {
                primary: 0,
                secondary: 1,
                subordinate: 1
            }
        }
    );
    // The bridge itself, on the root bus, keeps its own id.
    assert_eq!(t.get(at(0, 3, 0)).unwrap().requester_id(), 0x0018);
}

#[test]
fn pcie_to_pci_bridge_aliases_to_secondary_bus_devfn_zero_and_the_topmost_wins() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    bus.insert(at(0, 2, 0), root_port(&clock, (0, 1, 3)));
    bus.insert(at(1, 0, 0), pcie_to_pci(&clock, (1, 2, 3)));
    bus.insert(at(2, 1, 0), e1000(&clock));
    bus.insert(at(2, 2, 0), pci_bridge(&clock, (2, 3, 3)));
    bus.insert(at(3, 4, 0), e1000(&clock));
    let t = walk(&mut bus);
    assert_eq!(t.errors().count(), 0);
    let nic = t.get(at(2, 1, 0)).unwrap();
    let alias = nic.dma_alias().unwrap();
    assert_eq!(alias.reason, AliasReason::PcieToPciBridge);
    assert_eq!(alias.via, at(1, 0, 0));
    assert_eq!(nic.requester_id(), 0x0200);
    // Behind a conventional bridge behind the PCIe-to-PCI bridge: the upper
    // alias, not the conventional bridge's id (0x0210).
    let deeper = t.get(at(3, 4, 0)).unwrap();
    assert_eq!(deeper.requester_id(), 0x0200);
    assert_eq!(
        path(&t, at(3, 4, 0)),
        vec![at(0, 2, 0), at(1, 0, 0), at(2, 2, 0)]
    );
    // The PCIe-to-PCI bridge itself sits on an express bus: its own id.
    assert_eq!(t.get(at(1, 0, 0)).unwrap().requester_id(), 0x0100);
    assert!(matches!(
        t.get(at(1, 0, 0)).unwrap().kind,
        Kind::Bridge {
            kind: BridgeKind::PcieToPci,
            ..
        }
    ));
}

#[test]
fn hostile_bridges_are_typed_errors_and_the_rest_is_found() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    let mut bridges = vec![];
    // A loop: a bridge whose secondary is its own bus.
    bridges.push(bus.insert(at(0, 1, 0), pci_bridge(&clock, (0, 0, 4))));
    // Inverted range.
    bridges.push(bus.insert(at(0, 2, 0), root_port(&clock, (0, 5, 4))));
    // A good root port with a good and a bad child.
    bridges.push(bus.insert(at(0, 3, 0), root_port(&clock, (0, 0x10, 0x12))));
    bus.insert(at(0x10, 0, 0), e1000(&clock));
    bridges.push(bus.insert(at(0x10, 1, 0), pci_bridge(&clock, (0x10, 0x12, 0x20))));
    bus.insert(at(0x12, 0, 0), e1000(&clock)); // only behind the bad child
    bridges.push(bus.insert(at(0x10, 2, 0), pci_bridge(&clock, (0x10, 0x11, 0x11))));
    bus.insert(at(0x11, 0, 0), nvme(&clock));
    // Overlapping the good root port's range.
    bridges.push(bus.insert(at(0, 4, 0), root_port(&clock, (0, 0x11, 0x11))));
    // Bus numbers all-ones.
    let gone = bus.insert(at(0, 5, 0), root_port(&clock, (0, 0x30, 0x30)));
    gone.borrow_mut().poke32(0x18, u32::MAX);
    bridges.push(gone);
    // Past the ECAM range (buses 0..=0x3f here).
    bridges.push(bus.insert(at(0, 6, 0), root_port(&clock, (0, 0x40, 0x40))));
    bus.insert(at(0x40, 0, 0), e1000(&clock));
    // A header type that is no header type.
    let odd = bus.insert(at(0, 7, 0), e1000(&clock));
    odd.borrow_mut().poke8(0x0e, 0x7f);
    // Never numbered.
    bridges.push(bus.insert(at(0, 8, 0), root_port(&clock, (0, 0, 0))));
    // The rest of the tree.
    bus.insert(at(0, 0x1f, 0), e1000(&clock));

    let root = RootBus {
        segment: 0,
        bus: 0,
        first_bus: 0,
        last_bus: 0x3f,
    };
    let t = T::walk(&mut bus, &[root]);
    let errors: Vec<_> = t.errors().copied().collect();
    let b = |p, s, u| BusNumbers {
        primary: p,
        secondary: s,
        subordinate: u,
    };
    assert_eq!(
        errors,
        vec![
            TopologyError::SecondaryNotAbove {
                bridge: at(0, 1, 0),
                secondary: 0
            },
            TopologyError::SubordinateBelowSecondary {
                bridge: at(0, 2, 0),
                buses: b(0, 5, 4)
            },
            TopologyError::OutsideParent {
                bridge: at(0x10, 1, 0),
                buses: b(0x10, 0x12, 0x20),
                parent: (0x11, 0x12)
            },
            TopologyError::OverlappingRange {
                bridge: at(0, 4, 0),
                buses: b(0, 0x11, 0x11)
            },
            TopologyError::BridgeAllOnes {
                bridge: at(0, 5, 0)
            },
            TopologyError::OutsideEcam {
                bridge: at(0, 6, 0),
                buses: b(0, 0x40, 0x40),
                ecam: (0, 0x3f)
            },
            TopologyError::BadHeaderType {
                address: at(0, 7, 0),
                header_type: 0x7f
            },
            TopologyError::NotNumbered {
                bridge: at(0, 8, 0)
            },
        ]
    );
    for e in &errors {
        assert!(!e.to_string().is_empty());
    }
    // Found: the good branch and the rest; not found: what only bad bridges lead to.
    for good in [at(0x10, 0, 0), at(0x11, 0, 0), at(0, 0x1f, 0)] {
        assert!(t.get(good).is_some(), "{good} missing");
    }
    for bad in [at(0x12, 0, 0), at(0x40, 0, 0)] {
        assert!(t.get(bad).is_none(), "{bad} found");
    }
    assert_eq!(path(&t, at(0x11, 0, 0)), vec![at(0, 3, 0), at(0x10, 2, 0)]);
    assert!(bridges.iter().all(|b| b.borrow().writes() == 0));
}

#[test]
fn a_bus_reached_twice_is_walked_once() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    bus.set_root_buses(0, &[0, 0x20]);
    bus.insert(at(0, 1, 0), root_port(&clock, (0, 0x20, 0x20)));
    bus.insert(at(0x20, 0, 0), nvme(&clock));
    let roots = [
        RootBus::LEGACY,
        RootBus {
            bus: 0x20,
            ..RootBus::LEGACY
        },
    ];
    let t = T::walk(&mut bus, &roots);
    assert_eq!(
        t.errors().copied().collect::<Vec<_>>(),
        vec![TopologyError::BusVisitedTwice {
            bridge: None,
            bus: 0x20
        }]
    );
    assert_eq!(t.by_ids(0x1b36, 0x0010).count(), 1);
}

#[test]
fn depth_and_bus_budgets_bound_the_walk() {
    let clock = SimClock::new();
    let mut bus = SimPci::new();
    // A chain of 10 conventional bridges, bus i-1 → bus i, each holding the rest.
    for i in 1..=10u8 {
        bus.insert(at(i - 1, 0, 0), pci_bridge(&clock, (i - 1, i, 10)));
        bus.insert(at(i - 1, 1, 0), e1000(&clock));
    }
    let t = walk(&mut bus);
    assert_eq!(
        t.errors().copied().collect::<Vec<_>>(),
        vec![TopologyError::TooDeep {
            bridge: at(8, 0, 0)
        }]
    );
    assert!(t.get(at(8, 1, 0)).is_some());
    assert!(t.get(at(9, 1, 0)).is_none());
    // Behind conventional bridges the alias is the topmost bridge's id.
    assert_eq!(t.get(at(8, 1, 0)).unwrap().requester_id(), 0x0000);

    let t = T::walk_limited(&mut bus, &[RootBus::LEGACY], 3);
    assert_eq!(
        t.errors().copied().collect::<Vec<_>>(),
        vec![TopologyError::TooManyBuses {
            bridge: at(2, 0, 0),
            limit: 3
        }]
    );
    assert_eq!(t.buses(), 3);

    // Capacity: what does not fit is counted, not lost silently.
    let small = Topology::<4, 16>::walk(&mut bus, &[RootBus::LEGACY]);
    assert_eq!(small.nodes().count(), 4);
    assert_eq!(small.dropped_functions(), 14);
    let few_errors = Topology::<64, 0>::walk(&mut bus, &[RootBus::LEGACY]);
    assert_eq!(few_errors.dropped_errors(), 1);
}

#[test]
fn every_segment_of_a_multi_segment_mcfg_is_walked() {
    let clock = SimClock::new();
    let table = mcfg(&[
        mcfg_entry(0xb000_0000, 0, 0, 0xff),
        mcfg_entry(0xc000_0000, 1, 0x40, 0x4f),
    ]);
    let m = Mcfg::parse(&table).unwrap();
    let roots: Vec<_> = m.allocations().map(|r| RootBus::from_ecam(&r)).collect();
    let mut bus = SimPci::new();
    bus.set_root_buses(1, &[0x40]);
    let s1 = |b, d, f| PciAddress::new(1, b, d, f).unwrap();
    bus.insert(at(0, 2, 0), e1000(&clock));
    bus.insert(s1(0x40, 1, 0), root_port(&clock, (0x40, 0x41, 0x41)));
    bus.insert(s1(0x41, 0, 0), nvme(&clock));
    // Outside segment 1's decoded buses.
    bus.insert(s1(0x40, 2, 0), root_port(&clock, (0x40, 0x50, 0x50)));
    bus.insert(s1(0x50, 0, 0), nvme(&clock));
    let t = T::walk(&mut bus, &roots);
    assert!(t.get(at(0, 2, 0)).is_some());
    let n = t.get(s1(0x41, 0, 0)).expect("segment 1 NVMe");
    assert_eq!(n.path.bridges().collect::<Vec<_>>(), vec![s1(0x40, 1, 0)]);
    assert!(t.get(s1(0x50, 0, 0)).is_none());
    assert_eq!(
        t.errors().copied().collect::<Vec<_>>(),
        vec![TopologyError::OutsideEcam {
            bridge: s1(0x40, 2, 0),
            buses: BusNumbers {
                primary: 0x40,
                secondary: 0x50,
                subordinate: 0x50
            },
            ecam: (0x40, 0x4f)
        }]
    );
    assert_eq!(
        t.by_requester_id(1, 0x4100).unwrap().address(),
        s1(0x41, 0, 0)
    );
}

#[test]
fn a_peer_root_bus_no_bridge_leads_to_is_walked_as_a_root() {
    // QEMU's `pxb-pcie,bus_nr=128`: a second host bridge whose root bus 0x80
    // holds a root port (bus 0x81) with the NVMe behind it. Nothing on bus 0
    // leads there; the walk is given bus 0 only (MCFG names no peer roots).
    let clock = SimClock::new();
    let (mut bus, _) = deep(&clock);
    bus.set_root_buses(0, &[0, 0x80]);
    bus.insert(at(0x80, 0, 0), root_port(&clock, (0x80, 0x81, 0x81)));
    bus.insert(at(0x81, 0, 0), nvme(&clock));
    // (That a refused bridge's buses are not walked as peer roots either is
    // what `hostile_bridges_are_typed_errors_and_the_rest_is_found` and
    // `depth_and_bus_budgets_bound_the_walk` check: both fail when the peer
    // scan ignores refused bridges' ranges.)
    let t = walk(&mut bus);
    let n = t
        .get(at(0x81, 0, 0))
        .expect("the NVMe behind the peer root");
    assert_eq!(n.path.bridges().collect::<Vec<_>>(), vec![at(0x80, 0, 0)]);
    assert_eq!(n.requester_id(), 0x8100);
    // The tree under bus 0 is found as before, once; the decoy on bus 9
    // (no host bridge decodes it) stays unreachable.
    assert_eq!(path(&t, at(3, 0, 0)).len(), 3);
    assert_eq!(
        t.nodes().filter(|n| n.info.address == at(3, 0, 0)).count(),
        1
    );
    assert!(t.get(at(9, 0, 0)).is_none());
    assert_eq!(t.errors().count(), 0);
}

/// A root bus outside the bus range its configuration mechanism decodes is
/// not walked (its cycles would reach another segment's or nobody's space),
/// whichever side of the range it is on.
#[test]
fn a_root_bus_outside_its_ecam_range_is_not_walked() {
    let clock = SimClock::new();
    for (root, first, last, walked) in [
        (0x10, 0x10, 0x1f, true),
        (0x1f, 0x10, 0x1f, true),
        (0x0f, 0x10, 0x1f, false),
        (0x20, 0x10, 0x1f, false),
    ] {
        let mut bus = SimPci::new();
        bus.set_root_buses(0, &[root]);
        bus.insert(at(root, 2, 0), nvme(&clock));
        let t = T::walk(
            &mut bus,
            &[RootBus {
                segment: 0,
                bus: root,
                first_bus: first,
                last_bus: last,
            }],
        );
        assert_eq!(
            t.get(at(root, 2, 0)).is_some(),
            walked,
            "root {root:#x} in {first:#x}..={last:#x}"
        );
    }
}
