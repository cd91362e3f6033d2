//! The whole PCI hierarchy, walked from the root bus(es) through every bridge.
//!
//! A recovery kernel finds its devices where the hardware is, not on bus 0:
//! NVMe behind a root port, a NIC behind a conventional bridge, a switch in
//! between. [`Topology::walk`] enumerates each root bus, and for every type-1
//! header (PCI-to-PCI bridge, root port, switch port, PCIe-to-PCI bridge) follows
//! the secondary/subordinate bus numbers *as the dead kernel or the firmware
//! left them*: nothing is renumbered, no bridge register is written.
//!
//! Bus numbers are device values like any other. A bridge whose numbers make no
//! sense (a secondary bus not above its own bus, a subordinate below the
//! secondary, a range outside its parent's or the ECAM window, a range
//! overlapping a sibling's, a bus reached twice, all-ones, a tree deeper than
//! [`MAX_DEPTH`] or wider than the bus budget) is a [`TopologyError`] recorded
//! in the result; that branch is skipped and the rest of the tree is still found.
//!
//! No heap: the result holds at most `N` functions and `E` errors; what does not
//! fit is counted ([`Topology::dropped_functions`], [`Topology::dropped_errors`]).
//!
//! Each [`Node`] carries its path (the bridges above it), its [`Kind`] (told
//! apart by the PCI Express capability's device/port type) and the requester id
//! the IOMMU will see for its DMA ([`Node::requester_id`]), following the rules
//! QEMU (`pci_device_iommu_address_space`) and Linux (`pci_for_each_dma_alias`)
//! use: behind a PCIe-to-PCI bridge a conventional function is seen as (the
//! bridge's secondary bus, 00.0); behind any other conventional bridge as the
//! bridge itself; on an express bus as itself. The topmost alias wins.
//!
//! A machine may have more host bridges than the roots it is walked from: a
//! second root complex (QEMU's `pxb-pcie`, another socket's) has a root bus
//! of its own that no bridge leads to, and only the firmware's AML names it.
//! After the given roots, every bus of the decoded range that was not reached
//! and lies in no bridge's bus range (followed or refused) is probed, device
//! by device, and walked as a peer root bus when a function answers there
//! (Linux's `pcibios_fixup_peer_bridges` does the same without ACPI).

use core::fmt;

use super::caps;
use super::discover::{probe, FunctionInfo};
use super::{ConfigAccess, PciAddress, PciError};

/// Most bridges above a function (a root port, a switch's two ports, a few
/// more switch levels; PCIe allows more but no machine we target has them).
pub const MAX_DEPTH: usize = 8;
/// Buses walked per segment at most (the bus number space).
pub const MAX_BUSES: u16 = 256;

/// Offset of the type-1 header's primary/secondary/subordinate dword.
const BUS_NUMBERS: u16 = 0x18;
/// Offset of the device/port type in the PCI Express capability (bits 7:4 of
/// the PCIe Capabilities register, PCIe 5.0 7.5.3.2).
const PCIE_CAPS: u16 = 0x02;

/// The PCI Express device/port type (PCIe 5.0 7.5.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortType {
    /// PCI Express endpoint.
    Endpoint,
    /// Legacy PCI Express endpoint.
    LegacyEndpoint,
    /// Root complex integrated endpoint.
    RootComplexEndpoint,
    /// Root complex event collector.
    RootComplexEventCollector,
    /// Root port of a root complex.
    RootPort,
    /// Upstream port of a switch.
    SwitchUpstream,
    /// Downstream port of a switch.
    SwitchDownstream,
    /// PCI Express to PCI/PCI-X bridge.
    PcieToPci,
    /// PCI/PCI-X to PCI Express bridge.
    PciToPcie,
    /// A value the specification reserves.
    Reserved(u8),
}

impl PortType {
    /// Decodes the 4-bit field.
    pub const fn from_bits(v: u8) -> Self {
        match v & 0xf {
            0x0 => Self::Endpoint,
            0x1 => Self::LegacyEndpoint,
            0x4 => Self::RootPort,
            0x5 => Self::SwitchUpstream,
            0x6 => Self::SwitchDownstream,
            0x7 => Self::PcieToPci,
            0x8 => Self::PciToPcie,
            0x9 => Self::RootComplexEndpoint,
            0xa => Self::RootComplexEventCollector,
            other => Self::Reserved(other),
        }
    }
}

/// What kind of bridge a type-1 function is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeKind {
    /// A conventional PCI-to-PCI bridge (no PCI Express capability); its
    /// secondary bus is conventional PCI.
    Conventional,
    /// A PCIe root port.
    RootPort,
    /// A switch's upstream port.
    SwitchUpstream,
    /// A switch's downstream port.
    SwitchDownstream,
    /// A PCIe-to-PCI bridge: conventional secondary bus, downstream requests
    /// carry (secondary bus, 00.0).
    PcieToPci,
    /// A PCI-to-PCIe bridge (express secondary, conventional primary).
    PciToPcie,
    /// A type-1 header whose PCIe capability says it is no bridge.
    Other(PortType),
}

impl BridgeKind {
    /// True when the bridge's secondary bus is PCI Express.
    pub const fn secondary_is_express(&self) -> bool {
        matches!(
            self,
            Self::RootPort | Self::SwitchUpstream | Self::SwitchDownstream | Self::PciToPcie
        )
    }
}

/// What a function found is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A type-0 function; `express` is its PCIe port type when it has the
    /// capability.
    Endpoint {
        /// The PCI Express device type, if any.
        express: Option<PortType>,
    },
    /// A type-1 function (bridge) and its bus numbers as read.
    Bridge {
        /// Which bridge.
        kind: BridgeKind,
        /// Bus numbers as the dead kernel or the firmware left them.
        buses: BusNumbers,
    },
    /// A type-2 (CardBus) bridge: not followed.
    CardBus,
    /// A header type the walk does not know (recorded as an error too).
    Unknown {
        /// Header type, without the multi-function bit.
        header_type: u8,
    },
}

/// A bridge's primary, secondary and subordinate bus numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusNumbers {
    /// The bus the bridge sits on (as programmed; not trusted).
    pub primary: u8,
    /// The bus directly behind it.
    pub secondary: u8,
    /// The highest bus behind it.
    pub subordinate: u8,
}

/// The bridges above a function, root first (at most [`MAX_DEPTH`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    hops: [Option<PciAddress>; MAX_DEPTH],
    len: u8,
}

impl Path {
    /// The empty path (a function on a root bus).
    pub const EMPTY: Self = Self {
        hops: [None; MAX_DEPTH],
        len: 0,
    };

    /// Bridges above the function, root first.
    pub fn bridges(&self) -> impl Iterator<Item = PciAddress> + '_ {
        self.hops
            .iter()
            .take(usize::from(self.len))
            .flatten()
            .copied()
    }

    /// How many bridges are above the function.
    pub const fn depth(&self) -> usize {
        self.len as usize
    }

    /// The path with `bridge` appended; `None` when it is full.
    fn push(&self, bridge: PciAddress) -> Option<Self> {
        let mut p = *self;
        let slot = p.hops.get_mut(usize::from(self.len))?;
        *slot = Some(bridge);
        p.len += 1;
        Some(p)
    }
}

/// Why the IOMMU sees a function under another id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasReason {
    /// Behind a PCIe-to-PCI bridge: (its secondary bus, 00.0) (PCIe-to-PCI/PCI-X
    /// Bridge Specification 1.0, 2.3).
    PcieToPciBridge,
    /// Behind a conventional bridge: the bridge's own id.
    ConventionalBridge,
    /// Behind a PCI-to-PCIe bridge: the bridge's own id (as Linux takes it).
    PciToPcieBridge,
}

/// The id a function's DMA carries when it reaches the IOMMU, if not its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaAlias {
    /// The 16-bit requester id (bus << 8 | devfn).
    pub id: u16,
    /// The bridge that takes the requests over.
    pub via: PciAddress,
    /// Why.
    pub reason: AliasReason,
}

/// One function found in the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Identity read from its header.
    pub info: FunctionInfo,
    /// What it is.
    pub kind: Kind,
    /// The bridges above it.
    pub path: Path,
    /// True when it sits on a PCI Express bus (a root bus counts as one).
    pub express_bus: bool,
    alias: Option<DmaAlias>,
}

impl Node {
    /// Where it is.
    pub const fn address(&self) -> PciAddress {
        self.info.address
    }

    /// Its own 16-bit id (bus << 8 | device << 3 | function).
    pub const fn own_id(&self) -> u16 {
        self.info.address.source_id()
    }

    /// The requester id the IOMMU sees for this function's DMA: the topmost
    /// alias when a bridge takes its requests over, else its own id. Use it for
    /// context entries and fault attribution.
    pub fn requester_id(&self) -> u16 {
        self.alias.map_or(self.own_id(), |a| a.id)
    }

    /// The alias, when the IOMMU sees the function under another id.
    pub const fn dma_alias(&self) -> Option<DmaAlias> {
        self.alias
    }

    /// True for a type-1 bridge.
    pub const fn is_bridge(&self) -> bool {
        matches!(self.kind, Kind::Bridge { .. })
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.path.bridges() {
            write!(f, "{b}/")?;
        }
        write!(
            f,
            "{} {:04x}:{:04x}",
            self.info.address, self.info.vendor, self.info.device
        )?;
        match self.kind {
            Kind::Endpoint { .. } => {}
            Kind::Bridge { kind, buses } => write!(
                f,
                " {kind:?} [{:02x}-{:02x}]",
                buses.secondary, buses.subordinate
            )?,
            Kind::CardBus => write!(f, " cardbus")?,
            Kind::Unknown { header_type } => write!(f, " header {header_type:#x}")?,
        }
        if let Some(a) = self.alias {
            write!(
                f,
                " alias {:02x}:{:02x}.{}",
                a.id >> 8,
                (a.id >> 3) & 0x1f,
                a.id & 7
            )?;
        }
        Ok(())
    }
}

/// A root bus to walk from, and the buses its configuration access reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootBus {
    /// PCI segment.
    pub segment: u16,
    /// The root bus number.
    pub bus: u8,
    /// First bus the configuration mechanism decodes (MCFG start bus).
    pub first_bus: u8,
    /// Last bus the configuration mechanism decodes (MCFG end bus).
    pub last_bus: u8,
}

impl RootBus {
    /// Bus 0 of segment 0 with all 256 buses reachable (CF8/CFC).
    pub const LEGACY: Self = Self {
        segment: 0,
        bus: 0,
        first_bus: 0,
        last_bus: 0xff,
    };

    /// The root bus of an MCFG allocation: its start bus, its bus range.
    pub const fn from_ecam(region: &crate::acpi::EcamRegion) -> Self {
        Self {
            segment: region.segment,
            bus: region.start_bus,
            first_bus: region.start_bus,
            last_bus: region.end_bus,
        }
    }
}

/// A bridge or bus the walk refused, with what it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologyError {
    /// A bus was reached a second time (by a second bridge or root).
    BusVisitedTwice {
        /// The bridge leading there (`None`: a root bus given twice).
        bridge: Option<PciAddress>,
        /// The bus.
        bus: u8,
    },
    /// A bridge's secondary bus is not above the bus it sits on.
    SecondaryNotAbove {
        /// The bridge.
        bridge: PciAddress,
        /// Its secondary bus.
        secondary: u8,
    },
    /// A bridge's subordinate bus is below its secondary bus.
    SubordinateBelowSecondary {
        /// The bridge.
        bridge: PciAddress,
        /// Bus numbers read.
        buses: BusNumbers,
    },
    /// A bridge's bus range leaves its parent bridge's range.
    OutsideParent {
        /// The bridge.
        bridge: PciAddress,
        /// Bus numbers read.
        buses: BusNumbers,
        /// The parent's range for its children, `first..=last`.
        parent: (u8, u8),
    },
    /// A bridge's bus range leaves the buses the configuration access decodes.
    OutsideEcam {
        /// The bridge.
        bridge: PciAddress,
        /// Bus numbers read.
        buses: BusNumbers,
        /// The decoded range, `first..=last`.
        ecam: (u8, u8),
    },
    /// A bridge's bus range overlaps a sibling bridge's.
    OverlappingRange {
        /// The bridge skipped.
        bridge: PciAddress,
        /// Bus numbers read.
        buses: BusNumbers,
    },
    /// A bridge's bus-number register reads all-ones (gone, or hostile).
    BridgeAllOnes {
        /// The bridge.
        bridge: PciAddress,
    },
    /// A bridge with secondary and subordinate 0: never numbered.
    NotNumbered {
        /// The bridge.
        bridge: PciAddress,
    },
    /// A header type that is none of 0, 1, 2.
    BadHeaderType {
        /// The function.
        address: PciAddress,
        /// The header type read (without bit 7).
        header_type: u8,
    },
    /// A bridge below [`MAX_DEPTH`] bridges.
    TooDeep {
        /// The bridge not followed.
        bridge: PciAddress,
    },
    /// The bus budget of the segment is spent.
    TooManyBuses {
        /// The bridge not followed.
        bridge: PciAddress,
        /// The budget.
        limit: u16,
    },
    /// A broken capability list (the function is kept, as conventional).
    Capability {
        /// The function.
        address: PciAddress,
        /// What the walk said.
        error: PciError,
    },
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = |b: &BusNumbers| (b.secondary, b.subordinate);
        match self {
            Self::BusVisitedTwice {
                bridge: Some(b),
                bus,
            } => write!(f, "bridge {b}: bus {bus:#04x} reached twice"),
            Self::BusVisitedTwice { bridge: None, bus } => {
                write!(f, "root bus {bus:#04x} reached twice")
            }
            Self::SecondaryNotAbove { bridge, secondary } => write!(
                f,
                "bridge {bridge}: secondary bus {secondary:#04x} not above its own bus"
            ),
            Self::SubordinateBelowSecondary { bridge, buses } => write!(
                f,
                "bridge {bridge}: subordinate {:#04x} below secondary {:#04x}",
                buses.subordinate, buses.secondary
            ),
            Self::OutsideParent {
                bridge,
                buses,
                parent,
            } => write!(
                f,
                "bridge {bridge}: buses {:02x?} outside parent's {parent:02x?}",
                range(buses)
            ),
            Self::OutsideEcam {
                bridge,
                buses,
                ecam,
            } => write!(
                f,
                "bridge {bridge}: buses {:02x?} outside decoded {ecam:02x?}",
                range(buses)
            ),
            Self::OverlappingRange { bridge, buses } => write!(
                f,
                "bridge {bridge}: buses {:02x?} overlap a sibling's",
                range(buses)
            ),
            Self::BridgeAllOnes { bridge } => write!(f, "bridge {bridge}: bus numbers all-ones"),
            Self::NotNumbered { bridge } => write!(f, "bridge {bridge}: never numbered"),
            Self::BadHeaderType {
                address,
                header_type,
            } => write!(f, "{address}: header type {header_type:#x}"),
            Self::TooDeep { bridge } => write!(f, "bridge {bridge}: deeper than {MAX_DEPTH}"),
            Self::TooManyBuses { bridge, limit } => {
                write!(f, "bridge {bridge}: more than {limit} buses")
            }
            Self::Capability { address, error } => {
                write!(f, "{address}: capability list: {error:?}")
            }
        }
    }
}

/// The hierarchy found: at most `N` functions and `E` errors.
#[derive(Debug, Clone)]
pub struct Topology<const N: usize, const E: usize = 16> {
    nodes: [Option<Node>; N],
    len: usize,
    dropped_nodes: usize,
    errors: [Option<TopologyError>; E],
    n_errors: usize,
    dropped_errors: usize,
    buses: u16,
}

/// What the walk carries down into a bus.
#[derive(Clone, Copy)]
struct BusContext {
    segment: u16,
    bus: u8,
    /// Child bridges' ranges must lie in `lo..=hi`.
    lo: u8,
    hi: u8,
    ecam: (u8, u8),
    path: Path,
    express: bool,
    alias: Option<DmaAlias>,
}

/// Per-segment bookkeeping.
struct Segment {
    visited: [u64; 4],
    buses: u16,
    max_buses: u16,
}

impl Segment {
    fn visited(&self, bus: u8) -> bool {
        self.visited
            .get(usize::from(bus / 64))
            .is_some_and(|w| w & (1 << (bus % 64)) != 0)
    }
    fn mark(&mut self, bus: u8) {
        if let Some(w) = self.visited.get_mut(usize::from(bus / 64)) {
            *w |= 1 << (bus % 64);
        }
    }
}

/// Bus numbers claimed by the bridges already followed on one bus.
struct Claimed([u64; 4]);

impl Claimed {
    fn any(&self, lo: u8, hi: u8) -> bool {
        (lo..=hi).any(|b| {
            self.0
                .get(usize::from(b / 64))
                .is_some_and(|w| w & (1 << (b % 64)) != 0)
        })
    }
    fn claim(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            if let Some(w) = self.0.get_mut(usize::from(b / 64)) {
                *w |= 1 << (b % 64);
            }
        }
    }
}

impl<const N: usize, const E: usize> Topology<N, E> {
    /// Walks every root in `roots` with the default bus budget ([`MAX_BUSES`]
    /// per segment). Only reads configuration space.
    pub fn walk<C: ConfigAccess + ?Sized>(cfg: &mut C, roots: &[RootBus]) -> Self {
        Self::walk_limited(cfg, roots, MAX_BUSES)
    }

    /// As [`Topology::walk`], with at most `max_buses` buses per segment.
    pub fn walk_limited<C: ConfigAccess + ?Sized>(
        cfg: &mut C,
        roots: &[RootBus],
        max_buses: u16,
    ) -> Self {
        let mut t = Self {
            nodes: [None; N],
            len: 0,
            dropped_nodes: 0,
            errors: [None; E],
            n_errors: 0,
            dropped_errors: 0,
            buses: 0,
        };
        for (i, root) in roots.iter().enumerate() {
            // Roots of one segment share its bookkeeping; walk each segment once,
            // at its first root.
            if roots.iter().take(i).any(|r| r.segment == root.segment) {
                continue;
            }
            let mut seg = Segment {
                visited: [0; 4],
                buses: 0,
                max_buses,
            };
            for r in roots.iter().skip(i).filter(|r| r.segment == root.segment) {
                t.walk_root(cfg, r, &mut seg);
            }
            for r in roots.iter().skip(i).filter(|r| r.segment == root.segment) {
                t.walk_peer_roots(cfg, r, &mut seg);
            }
            t.buses = t.buses.saturating_add(seg.buses);
        }
        t
    }

    fn walk_root<C: ConfigAccess + ?Sized>(&mut self, cfg: &mut C, r: &RootBus, seg: &mut Segment) {
        if seg.visited(r.bus) {
            self.error(TopologyError::BusVisitedTwice {
                bridge: None,
                bus: r.bus,
            });
            return;
        }
        if r.bus < r.first_bus || r.bus > r.last_bus || seg.buses >= seg.max_buses {
            return;
        }
        let ctx = BusContext {
            segment: r.segment,
            bus: r.bus,
            lo: r.bus.saturating_add(1),
            hi: r.last_bus,
            ecam: (r.first_bus, r.last_bus),
            path: Path::EMPTY,
            express: true,
            alias: None,
        };
        self.walk_bus(cfg, &ctx, seg);
    }

    /// Walks, as roots, the buses of `r`'s decoded range that the walk did
    /// not reach, that lie in no bridge's bus range of the segment, and where
    /// a function answers: the root buses of other host bridges.
    fn walk_peer_roots<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
        r: &RootBus,
        seg: &mut Segment,
    ) {
        for bus in r.first_bus..=r.last_bus {
            if seg.visited(bus)
                || seg.buses >= seg.max_buses
                || self.behind_a_bridge(r.segment, bus)
            {
                continue;
            }
            let answers = (0..32u8).any(|device| {
                PciAddress::new(r.segment, bus, device, 0).is_ok_and(|a| probe(cfg, a).is_ok())
            });
            if answers {
                let peer = RootBus { bus, ..*r };
                self.walk_root(cfg, &peer, seg);
            }
        }
    }

    /// Whether `bus` lies in the bus range of a bridge found in `segment`,
    /// whether the walk followed it or refused it (a refused bridge's buses
    /// are not to be reached another way).
    fn behind_a_bridge(&self, segment: u16, bus: u8) -> bool {
        self.nodes.iter().flatten().any(|n| match n.kind {
            Kind::Bridge { buses, .. } => {
                n.info.address.segment() == segment
                    && bus >= buses.secondary
                    && bus <= buses.subordinate
            }
            _ => false,
        })
    }

    fn walk_bus<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
        ctx: &BusContext,
        seg: &mut Segment,
    ) {
        seg.mark(ctx.bus);
        seg.buses = seg.buses.saturating_add(1);
        let mut claimed = Claimed([0; 4]);
        for device in 0..32u8 {
            let mut functions = 1;
            let mut function = 0u8;
            while function < functions {
                let Ok(a) = PciAddress::new(ctx.segment, ctx.bus, device, function) else {
                    break;
                };
                function += 1;
                let Ok(info) = probe(cfg, a) else {
                    continue;
                };
                if a.function() == 0 && info.multifunction {
                    functions = 8;
                }
                self.found(cfg, ctx, seg, &mut claimed, info);
            }
        }
    }

    fn found<C: ConfigAccess + ?Sized>(
        &mut self,
        cfg: &mut C,
        ctx: &BusContext,
        seg: &mut Segment,
        claimed: &mut Claimed,
        info: FunctionInfo,
    ) {
        let a = info.address;
        let express = match caps::find(cfg, a, caps::id::PCI_EXPRESS) {
            Ok(Some(at)) => {
                let v = cfg.read16(a, at + PCIE_CAPS).into_raw_for_report();
                Some(PortType::from_bits((v >> 4) as u8))
            }
            Ok(None) => None,
            Err(error) => {
                self.error(TopologyError::Capability { address: a, error });
                None
            }
        };
        let mut node = Node {
            info,
            kind: Kind::Endpoint { express },
            path: ctx.path,
            express_bus: ctx.express,
            alias: ctx.alias,
        };
        match info.header_type {
            0 => self.push(node),
            2 => {
                node.kind = Kind::CardBus;
                self.push(node);
            }
            1 => {
                let raw = cfg.read32(a, BUS_NUMBERS);
                let v = raw.into_raw_for_report();
                let buses = BusNumbers {
                    primary: v as u8,
                    secondary: (v >> 8) as u8,
                    subordinate: (v >> 16) as u8,
                };
                let kind = match express {
                    None => BridgeKind::Conventional,
                    Some(PortType::RootPort) => BridgeKind::RootPort,
                    Some(PortType::SwitchUpstream) => BridgeKind::SwitchUpstream,
                    Some(PortType::SwitchDownstream) => BridgeKind::SwitchDownstream,
                    Some(PortType::PcieToPci) => BridgeKind::PcieToPci,
                    Some(PortType::PciToPcie) => BridgeKind::PciToPcie,
                    Some(other) => BridgeKind::Other(other),
                };
                node.kind = Kind::Bridge { kind, buses };
                self.push(node);
                if raw.is_all_ones() {
                    self.error(TopologyError::BridgeAllOnes { bridge: a });
                    return;
                }
                if let Some(child) = self.check_bridge(ctx, seg, claimed, a, kind, buses) {
                    self.walk_bus(cfg, &child, seg);
                }
            }
            header_type => {
                node.kind = Kind::Unknown { header_type };
                self.push(node);
                self.error(TopologyError::BadHeaderType {
                    address: a,
                    header_type,
                });
            }
        }
    }

    /// Checks a bridge's bus numbers against its parent, its siblings, the
    /// decoded range and the budgets; the context of its secondary bus when it
    /// may be followed. Each rule that fails records its error.
    fn check_bridge(
        &mut self,
        ctx: &BusContext,
        seg: &mut Segment,
        claimed: &mut Claimed,
        bridge: PciAddress,
        kind: BridgeKind,
        buses: BusNumbers,
    ) -> Option<BusContext> {
        let BusNumbers {
            secondary: sec,
            subordinate: sub,
            ..
        } = buses;
        let error = if sec == 0 && sub == 0 {
            Some(TopologyError::NotNumbered { bridge })
        } else if sec <= ctx.bus {
            Some(TopologyError::SecondaryNotAbove {
                bridge,
                secondary: sec,
            })
        } else if sub < sec {
            Some(TopologyError::SubordinateBelowSecondary { bridge, buses })
        } else if sec < ctx.ecam.0 || sub > ctx.ecam.1 {
            Some(TopologyError::OutsideEcam {
                bridge,
                buses,
                ecam: ctx.ecam,
            })
        } else if sec < ctx.lo || sub > ctx.hi {
            Some(TopologyError::OutsideParent {
                bridge,
                buses,
                parent: (ctx.lo, ctx.hi),
            })
        } else if claimed.any(sec, sub) {
            Some(TopologyError::OverlappingRange { bridge, buses })
        } else if seg.visited(sec) {
            Some(TopologyError::BusVisitedTwice {
                bridge: Some(bridge),
                bus: sec,
            })
        } else if seg.buses >= seg.max_buses {
            Some(TopologyError::TooManyBuses {
                bridge,
                limit: seg.max_buses,
            })
        } else {
            None
        };
        if let Some(e) = error {
            self.error(e);
            return None;
        }
        claimed.claim(sec, sub);
        let Some(path) = ctx.path.push(bridge) else {
            self.error(TopologyError::TooDeep { bridge });
            return None;
        };
        let express = kind.secondary_is_express();
        // The topmost alias wins: an alias from above is kept.
        let alias = ctx.alias.or(match kind {
            BridgeKind::PcieToPci => Some(DmaAlias {
                id: u16::from(sec) << 8,
                via: bridge,
                reason: AliasReason::PcieToPciBridge,
            }),
            BridgeKind::Conventional => Some(DmaAlias {
                id: bridge.source_id(),
                via: bridge,
                reason: AliasReason::ConventionalBridge,
            }),
            BridgeKind::PciToPcie => Some(DmaAlias {
                id: bridge.source_id(),
                via: bridge,
                reason: AliasReason::PciToPcieBridge,
            }),
            BridgeKind::RootPort
            | BridgeKind::SwitchUpstream
            | BridgeKind::SwitchDownstream
            | BridgeKind::Other(_) => None,
        });
        Some(BusContext {
            segment: ctx.segment,
            bus: sec,
            lo: sec.saturating_add(1),
            hi: sub,
            ecam: ctx.ecam,
            path,
            express,
            alias,
        })
    }

    fn push(&mut self, node: Node) {
        match self.nodes.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(node);
                self.len += 1;
            }
            None => self.dropped_nodes = self.dropped_nodes.saturating_add(1),
        }
    }

    fn error(&mut self, e: TopologyError) {
        match self.errors.get_mut(self.n_errors) {
            Some(slot) => {
                *slot = Some(e);
                self.n_errors += 1;
            }
            None => self.dropped_errors = self.dropped_errors.saturating_add(1),
        }
    }

    /// Every function found, in walk order (a bridge before what is behind it).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        self.nodes.iter().take(self.len).flatten()
    }

    /// Every bridge or bus refused, in walk order.
    pub fn errors(&self) -> impl Iterator<Item = &TopologyError> + '_ {
        self.errors.iter().take(self.n_errors).flatten()
    }

    /// Functions found but not kept (the capacity `N` was full).
    pub const fn dropped_functions(&self) -> usize {
        self.dropped_nodes
    }

    /// Errors seen but not kept (the capacity `E` was full).
    pub const fn dropped_errors(&self) -> usize {
        self.dropped_errors
    }

    /// Buses walked, over all segments.
    pub const fn buses(&self) -> u16 {
        self.buses
    }

    /// The function at `address`.
    pub fn get(&self, address: PciAddress) -> Option<&Node> {
        self.nodes().find(|n| n.address() == address)
    }

    /// Every function with these vendor and device ids.
    pub fn by_ids(&self, vendor: u16, device: u16) -> impl Iterator<Item = &Node> + '_ {
        self.nodes()
            .filter(move |n| n.info.vendor == vendor && n.info.device == device)
    }

    /// Every function of this class and subclass (`class[0]`, `class[1]` of
    /// [`FunctionInfo::class`]).
    pub fn by_class(&self, class: u8, subclass: u8) -> impl Iterator<Item = &Node> + '_ {
        self.nodes()
            .filter(move |n| n.info.class[0] == class && n.info.class[1] == subclass)
    }

    /// The function whose requester id (as the IOMMU sees it) is `id`: the
    /// first in walk order when an alias covers several.
    pub fn by_requester_id(&self, segment: u16, id: u16) -> Option<&Node> {
        self.nodes()
            .find(|n| n.address().segment() == segment && n.requester_id() == id)
    }
}
