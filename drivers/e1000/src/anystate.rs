//! Proptest strategies for the states a crashed kernel leaves an e1000 in, and
//! for a malicious or buggy device.
//!
//! An [`AnyState`] is plain data (so proptest can shrink it to a minimal
//! failing state); [`AnyState::harness`] builds a simulated NIC in that state:
//!
//! - receive enabled into a ring in the dead kernel's memory while frames keep
//!   arriving, transmit enabled with descriptors posted there (all of it outside
//!   the recovery window: the IOMMU refuses and records every such access);
//! - interrupts pending and masked or unmasked;
//! - a reset in progress, slow, or stuck forever; QEMU's RST that resets nothing;
//! - registers reading all-ones from the start or after some accesses (gone,
//!   gone mid-init);
//! - garbage in every writable register, the receive address table and the
//!   multicast table;
//! - the link down, up late, or flapping;
//! - an EEPROM that is absent, stuck, lying about addresses, with a bad checksum
//!   or an unusable Ethernet address;
//! - bus mastering or memory decoding left off;
//! - a malicious device: write-back lengths past the buffer, reserved status
//!   bits, EOP missing, DD in descriptors it does not own, heads out of range.

//!
//! Each state also says which faults it injects ([`AnyState::injected`]), as a
//! typed set of [`Fault`]s; [`check`] holds a run to the oracle that knows them
//! (see its docs), and [`FaultTable`] prints what each fault class led to.

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;

use crate::device::{Config, LinkPolicy, E1000, LINK_UP_TIMEOUT};
use crate::error::E1000Error;
use crate::init::{init, INIT_BUDGET, RESET_TIMEOUT};
use crate::model::{
    fix_checksum, Behaviour, E1000Model, EerdBehaviour, Harness, LinkBehaviour, MacRegs, Malice,
    RecoveryWindow, ResetBehaviour, Stream, Wire, OLD_KERNEL_BASE,
};
use crate::part::Part;
use crate::regs::{rctl, tctl};
use paranoid::lifecycle::Cause;
use paranoid::pci::command::{self, Command};
use paranoid::sim::{SimClock, SimMmio, WatchedPci};
use paranoid::time::{Clock, Deadline};

/// What is wrong with the EEPROM contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EepromFault {
    /// Nothing.
    None,
    /// A word changed without fixing the checksum.
    Checksum,
    /// Address 00:00:00:00:00:00 (checksum fixed).
    MacZero,
    /// A multicast address (checksum fixed).
    MacMulticast,
    /// The broadcast address (checksum fixed).
    MacBroadcast,
}

/// Receive and transmit left running by the dead kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveDma {
    /// Receive descriptors (a multiple of 8).
    pub rx_len: u32,
    /// RDH.
    pub rx_head: u32,
    /// RDT.
    pub rx_tail: u32,
    /// Transmit descriptors (a multiple of 8).
    pub tx_len: u32,
    /// TDH.
    pub tx_head: u32,
    /// TDT.
    pub tx_tail: u32,
    /// A frame arrives this often (0: no traffic).
    pub stream_period_ns: u64,
}

/// How garbage is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GarbageKind {
    /// Uniformly random words.
    Random,
    /// All-ones words.
    AllOnes,
    /// Random words with every enable bit set.
    Enables,
}

/// A crashed-kernel state of one e1000.
#[derive(Debug, Clone)]
pub struct AnyState {
    /// How the device behaves (reset, link, EEPROM, DMA pace, malice).
    pub behaviour: Behaviour,
    /// The function advertises FLR (a PCIe e1000e-like part).
    pub flr: bool,
    /// PCI command: memory decoding on.
    pub memory_space: bool,
    /// PCI command: bus mastering on.
    pub bus_master: bool,
    /// Garbage in every writable register (seed and kind).
    pub garbage: Option<(u64, GarbageKind)>,
    /// Receive/transmit running into the dead kernel's memory.
    pub live: Option<LiveDma>,
    /// ICR (pending causes).
    pub icr: u32,
    /// IMS (unmasked causes).
    pub ims: u32,
    /// The dead kernel had just written CTRL.RST.
    pub reset_in_progress: bool,
    /// Registers read all-ones after this many accesses (0: from the start).
    pub gone_after: Option<u64>,
    /// EEPROM contents.
    pub eeprom: EepromFault,
    /// The driver's link policy.
    pub link_policy: LinkPolicy,
    /// Time from the crash to the recovery kernel's first access, during which
    /// whatever DMA was running goes on.
    pub crash_to_init_ns: u64,
    /// The 8254x part (EEPROM through EERD or by clocking Microwire, PHY id).
    pub part: Part,
}

impl AnyState {
    /// A NIC at rest (firmware state, honest SDM timing), for tests.
    pub fn clean() -> Self {
        Self {
            behaviour: Behaviour::spec(),
            flr: false,
            memory_space: true,
            bus_master: true,
            garbage: None,
            live: None,
            icr: 0,
            ims: 0,
            reset_in_progress: false,
            gone_after: None,
            eeprom: EepromFault::None,
            link_policy: LinkPolicy::AllowDown,
            crash_to_init_ns: 0,
            part: Part::I82540Em,
        }
    }

    /// The driver configuration this state uses.
    pub fn config(&self) -> Config {
        Config {
            link_policy: self.link_policy,
            link_timeout: LINK_UP_TIMEOUT,
        }
    }

    /// True when no lie is ever told and the device stays present: a Ready
    /// driver must then pass the data check whenever the link is up.
    pub fn honest(&self) -> bool {
        self.behaviour.malice.is_honest()
    }

    /// Builds a simulated NIC (loopback wire) in this state.
    pub fn harness(&self) -> Harness {
        let clock = SimClock::new();
        let mut h = Harness::build_part(
            clock,
            Wire::loopback(),
            0,
            self.behaviour,
            self.flr,
            self.part,
        );
        self.apply(&mut h);
        h
    }

    fn apply(&self, h: &mut Harness) {
        {
            let mut m = h.model.borrow_mut();
            apply_eeprom(&mut m.eeprom, self.eeprom);
            if let Some((seed, kind)) = self.garbage {
                let mut g = Gen(seed | 1);
                let mut word = || match kind {
                    GarbageKind::Random => g.next() as u32,
                    GarbageKind::AllOnes => u32::MAX,
                    GarbageKind::Enables => g.next() as u32 | rctl::EN | tctl::EN,
                };
                let r = MacRegs {
                    ctrl: word() & !crate::regs::ctrl::RST,
                    icr: word(),
                    ims: word(),
                    itr: word() & 0xffff,
                    rctl: word(),
                    tctl: word(),
                    tipg: word(),
                    rdbal: word(),
                    rdbah: word(),
                    rdlen: word() & 0xfff80,
                    rdh: word() & 0xffff,
                    rdt: word() & 0xffff,
                    rdtr: word() & 0xffff,
                    radv: word() & 0xffff,
                    tdbal: word(),
                    tdbah: word(),
                    tdlen: word() & 0xfff80,
                    tdh: word() & 0xffff,
                    tdt: word() & 0xffff,
                    tidv: word() & 0xffff,
                    tadv: word() & 0xffff,
                    eecd: word() & 0x7f,
                    eerd: word(),
                };
                let eecd = r.eecd;
                m.regs = r;
                m.inherit_eecd(eecd);
                for e in m.ra.iter_mut() {
                    *e = word();
                }
                for e in m.mta.iter_mut() {
                    *e = word();
                }
            }
            if let Some(live) = self.live {
                let base = OLD_KERNEL_BASE + (h.port.min(1) as u64) * (16 << 20);
                let r = &mut m.regs;
                r.rdbal = base as u32;
                r.rdbah = (base >> 32) as u32;
                r.rdlen = live.rx_len * 16;
                r.rdh = live.rx_head % live.rx_len;
                r.rdt = live.rx_tail % live.rx_len;
                r.rctl = rctl::EN | rctl::BAM | rctl::UPE;
                let tx = base + 0x1000;
                r.tdbal = tx as u32;
                r.tdbah = (tx >> 32) as u32;
                r.tdlen = live.tx_len * 16;
                r.tdh = live.tx_head % live.tx_len;
                r.tdt = live.tx_tail % live.tx_len;
                r.tctl = tctl::EN | tctl::PSP;
                r.ctrl |= crate::regs::ctrl::SLU;
            }
            m.regs.icr |= self.icr;
            m.regs.ims |= self.ims;
            if self.reset_in_progress {
                m.start_reset();
            }
        }
        if let Some(live) = self.live {
            if live.stream_period_ns > 0 {
                let mut frame = vec![0xff; 6];
                frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99, 0x08, 0x06]);
                frame.resize(60, 0xa5);
                h.wire.set_stream(
                    h.port,
                    Some(Stream {
                        frame,
                        period_ns: live.stream_period_ns,
                        next_ns: 0,
                    }),
                );
            }
        }
        let mut set = Command::empty();
        let mut clear = Command::empty();
        for (on, bit) in [
            (self.memory_space, Command::MEMORY_SPACE),
            (self.bus_master, Command::BUS_MASTER),
        ] {
            if on {
                set |= bit;
            } else {
                clear |= bit;
            }
        }
        let _ = command::update(&mut h.pci, h.address, set, clear);
        if let Some(n) = self.gone_after {
            h.mmio.set_gone_after(Some(n));
        }
        if self.crash_to_init_ns > 0 {
            h.clock.advance_ns(self.crash_to_init_ns);
            h.model.borrow_mut().settle();
        }
    }
}

fn apply_eeprom(words: &mut [u16; 64], fault: EepromFault) {
    let mac = |words: &mut [u16; 64], m: [u8; 6]| {
        for (i, w) in words.iter_mut().take(3).enumerate() {
            *w = u16::from_le_bytes([m[2 * i], m[2 * i + 1]]);
        }
        fix_checksum(words);
    };
    match fault {
        EepromFault::None => {}
        EepromFault::Checksum => words[20] ^= 0x0101,
        EepromFault::MacZero => mac(words, [0; 6]),
        EepromFault::MacMulticast => mac(words, [0x01, 0x00, 0x5e, 0, 0, 1]),
        EepromFault::MacBroadcast => mac(words, [0xff; 6]),
    }
}

/// A small deterministic generator for garbage (xorshift64).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn reset_behaviour() -> impl Strategy<Value = ResetBehaviour> {
    prop_oneof![
        4 => (0u64..3_000).prop_map(|delay_ns| ResetBehaviour::Spec { delay_ns }),
        4 => Just(ResetBehaviour::Qemu),
        1 => (1_000_000u64..40_000_000).prop_map(|delay_ns| ResetBehaviour::Spec { delay_ns }),
        1 => Just(ResetBehaviour::Stuck),
    ]
}

fn link_behaviour() -> impl Strategy<Value = LinkBehaviour> {
    prop_oneof![
        8 => Just(LinkBehaviour::Up),
        1 => Just(LinkBehaviour::Down),
        1 => (0u64..4_000_000_000).prop_map(LinkBehaviour::UpAt),
        1 => (1_000_000u64..300_000_000, 0u64..4_000_000_000)
            .prop_map(|(period_ns, until_ns)| LinkBehaviour::Flapping { period_ns, until_ns }),
    ]
}

fn malice() -> impl Strategy<Value = Malice> {
    let lie = prop_oneof![3 => Just(0u8), 1 => 1u8..60];
    prop_oneof![
        4 => Just(Malice::default()),
        1 => (any::<u64>(), lie.clone(), lie.clone(), lie.clone(), lie.clone(), lie.clone(), lie)
            .prop_map(|(seed, a, b, c, d, e, f)| Malice {
                seed,
                rx_length_past_buffer: a,
                rx_reserved_status: b,
                rx_clear_eop: c,
                rx_dd_unowned: d,
                tx_reserved_status: e,
                head_out_of_range: f,
            }),
    ]
}

fn pace() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 100u64..5_000]
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    (
        reset_behaviour(),
        link_behaviour(),
        prop_oneof![Just(0u64), 0u64..2_000_000_000],
        any::<bool>(),
        prop::bool::weighted(0.97),
        prop_oneof![18 => Just(EerdBehaviour::Normal), 1 => Just(EerdBehaviour::Stuck), 1 => Just(EerdBehaviour::WrongAddress)],
        0u64..50_000,
        pace(),
        pace(),
        malice(),
        prop::bool::weighted(0.01),
    )
        .prop_map(
            |(reset, link, autoneg_ns, slu_required, eeprom_present, eerd, eerd_delay_ns, tx_desc_ns, rx_frame_ns, malice, ring_base_stuck)| Behaviour {
                reset,
                link,
                autoneg_ns,
                slu_required,
                eeprom_present,
                eerd,
                eerd_delay_ns,
                tx_desc_ns,
                rx_frame_ns,
                malice,
                ring_base_stuck,
            },
        )
}

fn live_dma() -> impl Strategy<Value = LiveDma> {
    (
        (1u32..=16).prop_map(|n| n * 8),
        any::<u32>(),
        any::<u32>(),
        (1u32..=16).prop_map(|n| n * 8),
        any::<u32>(),
        any::<u32>(),
        prop_oneof![Just(0u64), 1_000u64..200_000],
    )
        .prop_map(
            |(rx_len, rx_head, rx_tail, tx_len, tx_head, tx_tail, stream_period_ns)| LiveDma {
                rx_len,
                rx_head,
                rx_tail,
                tx_len,
                tx_head,
                tx_tail,
                stream_period_ns,
            },
        )
}

fn eeprom_fault() -> impl Strategy<Value = EepromFault> {
    prop_oneof![
        40 => Just(EepromFault::None),
        1 => Just(EepromFault::Checksum),
        1 => Just(EepromFault::MacZero),
        1 => Just(EepromFault::MacMulticast),
        1 => Just(EepromFault::MacBroadcast),
    ]
}

/// Any state a crashed kernel (or a malicious device) can leave an e1000 in.
pub fn any_state() -> impl Strategy<Value = AnyState> {
    let garbage = prop::option::weighted(
        0.4,
        (
            any::<u64>(),
            prop_oneof![3 => Just(GarbageKind::Random), 1 => Just(GarbageKind::AllOnes), 2 => Just(GarbageKind::Enables)],
        ),
    );
    (
        behaviour(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.8),
        garbage,
        prop::option::weighted(0.5, live_dma()),
        any::<u32>(),
        prop_oneof![Just(0u32), any::<u32>()],
        prop::bool::weighted(0.15),
        prop::option::weighted(0.08, prop_oneof![Just(0u64), 0u64..400]),
        eeprom_fault(),
        (
            prop_oneof![Just(LinkPolicy::AllowDown), Just(LinkPolicy::RequireUp)],
            prop_oneof![Just(0u64), 1_000u64..300_000],
            // A quarter of the states keep a healthy device (the dead
            // kernel's state only): the oracle requires those to reach Ready
            // and pass the frame round trip.
            prop::bool::weighted(0.25),
            prop::sample::select(Part::ALL.to_vec()),
        ),
    )
        .prop_map(
            |(
                behaviour,
                flr,
                memory_space,
                bus_master,
                garbage,
                live,
                icr,
                ims,
                reset_in_progress,
                gone_after,
                eeprom,
                (link_policy, crash_to_init_ns, healthy, part),
            )| {
                let state = AnyState {
                    behaviour,
                    flr,
                    memory_space,
                    bus_master,
                    garbage,
                    live,
                    icr,
                    ims,
                    reset_in_progress,
                    gone_after,
                    eeprom,
                    link_policy,
                    crash_to_init_ns,
                    part,
                };
                if healthy {
                    state.healthy()
                } else {
                    state
                }
            },
        )
}

/// A fault an [`AnyState`] injects: the device (or its cable) misbehaving, as
/// opposed to the dead kernel's state (live rings, pending interrupts, a reset
/// in progress, garbage in the registers, decoding or bus mastering off, QEMU's
/// reset that resets nothing), which a correct driver always brings to Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The registers read all-ones from the start or after some accesses.
    Gone,
    /// CTRL.RST never self-clears.
    StuckReset,
    /// CTRL.RST self-clears later than half of [`RESET_TIMEOUT`].
    SlowReset,
    /// EECD.PRES clear: no EEPROM.
    EepromMissing,
    /// EERD never done, EERD answering for another word, or a bad checksum.
    EepromBad,
    /// The EEPROM's Ethernet address is zero, multicast or broadcast.
    BadMac,
    /// No carrier, ever.
    LinkDown,
    /// Carrier (or auto-negotiation) later than 1.5 s, or flapping.
    LinkLate,
    /// Write-backs and head registers that lie (lengths past the buffer,
    /// reserved status bits, EOP missing, DD unowned, heads out of range).
    LyingDescriptors,
    /// RDBAL and TDBAL ignore writes.
    RingBaseStuck,
}

/// Error kinds ([`E1000Error::class`], and `"budget"` when the init wrapper's
/// budget ran out) each fault may explain. The oracle fails a typed error that
/// no injected fault explains.
const ALLOWED: [(Fault, &[&str]); 10] = [
    // Gone mid-I/O: doorbells are lost, heads read all-ones (out of range),
    // STATUS reads all-ones.
    (
        Fault::Gone,
        &[
            "device-gone",
            "head-out-of-range",
            "tx-timeout",
            "rx-timeout",
            "not-running",
        ],
    ),
    // While RST is pending the MAC ignores writes and CTRL reads back with
    // RST set: a CTRL the dead kernel filled with ones then reads all-ones,
    // which is what a gone device shows.
    (
        Fault::StuckReset,
        &["reset-timeout", "budget", "device-gone"],
    ),
    (
        Fault::SlowReset,
        &["reset-timeout", "budget", "device-gone"],
    ),
    (Fault::EepromMissing, &["no-eeprom"]),
    (
        Fault::EepromBad,
        &["eeprom-timeout", "eeprom-address", "eeprom-checksum"],
    ),
    (Fault::BadMac, &["bad-mac"]),
    // With FLR offered, the ladder tries again after a link-down and the
    // second link wait ends at the budget.
    (Fault::LinkDown, &["link-down", "budget"]),
    (Fault::LinkLate, &["link-down", "budget"]),
    // A lie is refused with a typed descriptor error; a frame the lie cost
    // never arrives.
    (
        Fault::LyingDescriptors,
        &[
            "rx-descriptor",
            "tx-descriptor",
            "head-out-of-range",
            "frame-length",
            "rx-timeout",
            "tx-timeout",
        ],
    ),
    // Ring bases that do not take the driver's writes fail the read-back
    // before bus mastering goes on; one stuck at all-ones (the dead kernel's
    // garbage, kept by QEMU's reset) reads as a device gone.
    (Fault::RingBaseStuck, &["readback", "device-gone"]),
];

impl Fault {
    /// Every fault class, in table order.
    pub const ALL: [Fault; 10] = [
        Fault::Gone,
        Fault::StuckReset,
        Fault::SlowReset,
        Fault::EepromMissing,
        Fault::EepromBad,
        Fault::BadMac,
        Fault::LinkDown,
        Fault::LinkLate,
        Fault::LyingDescriptors,
        Fault::RingBaseStuck,
    ];

    /// Short name for the fault-class table.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::Gone => "device gone",
            Fault::StuckReset => "stuck reset",
            Fault::SlowReset => "slow reset",
            Fault::EepromMissing => "EEPROM missing",
            Fault::EepromBad => "EEPROM bad",
            Fault::BadMac => "bad MAC",
            Fault::LinkDown => "link down",
            Fault::LinkLate => "link late/flapping",
            Fault::LyingDescriptors => "lying descriptors",
            Fault::RingBaseStuck => "ring base stuck",
        }
    }

    /// The error kinds this fault may explain.
    pub fn allowed(self) -> &'static [&'static str] {
        ALLOWED
            .iter()
            .find(|(f, _)| *f == self)
            .map_or(&[], |(_, kinds)| *kinds)
    }
}

impl paranoid::sim::campaign::FaultClass for Fault {
    const ALL: &'static [Self] = &Fault::ALL;

    fn name(self) -> &'static str {
        Fault::name(self)
    }
}

/// The faults one state injects.
pub type FaultSet = BTreeSet<Fault>;

/// Carrier or auto-negotiation later than this is a fault ([`Fault::LinkLate`]):
/// half of [`LINK_UP_TIMEOUT`], so the link wait of init and of the data check
/// both have room.
const LINK_LATE: Duration = Duration::from_millis(1_500);

impl AnyState {
    /// This state with a healthy device: the dead kernel's state kept, every
    /// device fault removed.
    pub fn healthy(self) -> Self {
        let b = self.behaviour;
        let reset = match b.reset {
            ResetBehaviour::Stuck => ResetBehaviour::Spec { delay_ns: 1_000 },
            ResetBehaviour::Spec { delay_ns } => ResetBehaviour::Spec {
                delay_ns: delay_ns.min(3_000),
            },
            ResetBehaviour::Qemu => ResetBehaviour::Qemu,
        };
        Self {
            behaviour: Behaviour {
                reset,
                link: LinkBehaviour::Up,
                autoneg_ns: b.autoneg_ns.min(1_000_000),
                eeprom_present: true,
                eerd: EerdBehaviour::Normal,
                malice: Malice::default(),
                ring_base_stuck: false,
                ..b
            },
            gone_after: None,
            eeprom: EepromFault::None,
            ..self
        }
    }

    /// The faults this state injects, by class.
    pub fn injected(&self) -> FaultSet {
        let b = &self.behaviour;
        let late = LINK_LATE.as_nanos() as u64;
        let mut set = FaultSet::new();
        let mut add = |on: bool, fault| {
            if on {
                set.insert(fault);
            }
        };
        add(self.gone_after.is_some(), Fault::Gone);
        add(b.reset == ResetBehaviour::Stuck, Fault::StuckReset);
        add(
            matches!(b.reset, ResetBehaviour::Spec { delay_ns } if delay_ns * 2 > RESET_TIMEOUT.as_nanos() as u64),
            Fault::SlowReset,
        );
        add(!b.eeprom_present, Fault::EepromMissing);
        add(
            b.eerd != EerdBehaviour::Normal || self.eeprom == EepromFault::Checksum,
            Fault::EepromBad,
        );
        add(
            matches!(
                self.eeprom,
                EepromFault::MacZero | EepromFault::MacMulticast | EepromFault::MacBroadcast
            ),
            Fault::BadMac,
        );
        add(b.link == LinkBehaviour::Down, Fault::LinkDown);
        add(
            match b.link {
                LinkBehaviour::UpAt(t) => t > late,
                LinkBehaviour::Flapping { .. } => true,
                LinkBehaviour::Up | LinkBehaviour::Down => false,
            } || b.autoneg_ns > late,
            Fault::LinkLate,
        );
        add(!b.malice.is_honest(), Fault::LyingDescriptors);
        add(b.ring_base_stuck, Fault::RingBaseStuck);
        set
    }
}

/// The driver on a harness, its configuration access watched.
pub type WatchedE1000 = E1000<SimMmio<E1000Model>, WatchedPci, SimClock, RecoveryWindow>;

/// How a case ended: the HAL's campaign outcome.
pub use paranoid::sim::campaign::Outcome;

/// One case that held to the oracle.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// The faults the state injected.
    pub faults: FaultSet,
    /// How it ended.
    pub outcome: Outcome,
    /// Bus mastering was off at the end.
    pub fenced: bool,
    /// DMA the IOMMU refused before the driver first turned bus mastering on
    /// (the dead kernel's, excused).
    pub stale_escapes: usize,
    /// Lies the model told.
    pub lies: usize,
}

/// Simulated time init may overshoot its budget by: FLR's fixed 100 ms
/// recovery and its wait for Configuration Retry Status are not cut short.
pub const BUDGET_SLACK: Duration = Duration::from_millis(500);

/// The data check's bound: the link wait (6 s, after a flapping link settles),
/// then three frames of 20 ms send and 20 ms receive deadlines, and drains.
pub const DATA_CHECK_BOUND: Duration = Duration::from_secs(7);

/// A test frame to `dst` from `src` with an experimental ethertype and a
/// payload derived from `seed`, `len` bytes long.
pub fn frame(dst: [u8; 6], src: [u8; 6], seed: u64, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    let mut g = Gen(seed | 1);
    while f.len() < len {
        f.push(g.next() as u8);
    }
    f.truncate(len);
    f
}

/// Drains whatever the receive ring holds (bounded).
fn drain(nic: &mut WatchedE1000) {
    let mut buf = vec![0u8; 2048];
    for _ in 0..256 {
        if let Ok(None) = nic.receive(&mut buf) {
            break;
        }
    }
}

fn send_and_receive(nic: &mut WatchedE1000, h: &Harness, f: &[u8]) -> Result<Vec<u8>, E1000Error> {
    nic.send(f, Deadline::after(&h.clock, Duration::from_millis(20)))?;
    let mut buf = vec![0u8; 2048];
    let n = nic.receive_wait(
        &mut buf,
        Deadline::after(&h.clock, Duration::from_millis(20)),
    )?;
    buf.truncate(n);
    Ok(buf)
}

fn explained(faults: &FaultSet, kind: &str) -> bool {
    faults.iter().any(|f| f.allowed().contains(&kind))
}

fn fault_names(faults: &FaultSet) -> String {
    if faults.is_empty() {
        return "none".into();
    }
    faults
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// After Ready: the dead kernel's traffic stopped, the link awaited, the ring
/// drained, then three frames of different sizes must come back intact.
/// `Err` is an oracle failure; typed errors are in the outcome.
fn data_check(
    state: &AnyState,
    faults: &FaultSet,
    h: &Harness,
    nic: &mut WatchedE1000,
) -> Result<Outcome, String> {
    h.wire.set_stream(h.port, None);
    h.wire.clear_inbox(h.port);
    if let LinkBehaviour::Flapping { until_ns, .. } = state.behaviour.link {
        let now = h.clock.now_ns();
        h.clock.advance_ns(until_ns.saturating_sub(now));
    }
    if let Err(e) = nic.wait_link(Deadline::after(&h.clock, Duration::from_secs(6))) {
        if !explained(faults, e.class()) {
            return Err(format!("UNEXPLAINED: ready, but the link: {e:?}"));
        }
        return Ok(Outcome::IoError(e.class()));
    }
    drain(nic);
    let mac = nic.mac().0;
    let mut first_error = None;
    for (k, len) in [60usize, 600, 1514].into_iter().enumerate() {
        let f = frame(mac, mac, k as u64 ^ state.behaviour.malice.seed, len);
        match send_and_receive(nic, h, &f) {
            Ok(got) if got == f => {}
            Ok(got) => {
                return Err(format!(
                "DATA MISMATCH: frame {k} ({len} bytes) came back as {} bytes, first diff at {:?}",
                got.len(),
                got.iter().zip(&f).position(|(a, b)| a != b)
            ))
            }
            Err(e) => {
                if !explained(faults, e.class()) {
                    return Err(format!("UNEXPLAINED: frame {k} ({len} bytes): {e:?}"));
                }
                first_error.get_or_insert(e.class());
                // Whatever a lie did, the ring goes on: drop what is there.
                drain(nic);
            }
        }
    }
    Ok(first_error.map_or(Outcome::Ready, Outcome::Recovered))
}

/// Builds the NIC in `state`, runs init and a frame round trip over the
/// loopback wire, and holds the run to the oracle that knows the injected
/// faults:
///
/// - no fault injected: Ready within the init budget, and three frames come
///   back intact;
/// - any typed error (at init, on the link or a frame) must be explained by
///   an injected fault (the table behind [`Fault::allowed`]); an init error
///   leaves the device fenced;
/// - Ready only within the budget; init never longer than the budget (plus
///   [`BUDGET_SLACK`]), the data check never longer than [`DATA_CHECK_BOUND`]
///   (simulated time);
/// - no DMA refused by the IOMMU after the driver first turned bus mastering
///   on, as the function's configuration space saw it ([`WatchedPci`]); and
///   when the dead kernel left bus mastering on, the driver's first
///   command-register write turns it off;
/// - no driver action the model flags, no frame that comes back wrong.
///
/// # Errors
///
/// Why the oracle failed, starting with a kind in capitals (`UNEXPLAINED`,
/// `NOT READY`, `HANG`, `DMA ESCAPE`, `NOT QUIESCED`, `NOT FENCED`,
/// `VIOLATION`, `DATA MISMATCH`, `BENCH`).
pub fn check(state: &AnyState) -> Result<CaseReport, String> {
    let faults = state.injected();
    let why = |what: String| format!("{what} [faults: {}]", fault_names(&faults));
    let mut h = state.harness();
    let model = h.model.clone();
    let (pci, watch) = WatchedPci::new(
        h.pci.clone(),
        h.config.clone(),
        h.clock.clone(),
        Rc::new(move || model.borrow().records().escapes.len()),
    );
    let driver = h
        .driver_on(pci, state.config())
        .map_err(|e| format!("BENCH: driver: {e:?}"))?;
    let origin = h.clock.now_ns();
    let result = init(driver, &h.clock);
    let spent = Duration::from_nanos(h.clock.now_ns().saturating_sub(origin));
    if spent > INIT_BUDGET + BUDGET_SLACK {
        return Err(why(format!(
            "HANG: init took {spent:?} of simulated time (budget {INIT_BUDGET:?})"
        )));
    }
    let outcome = match result {
        Ok(ok) => {
            if spent > INIT_BUDGET {
                return Err(why(format!(
                    "HANG: Ready after {spent:?}, past the budget {INIT_BUDGET:?}"
                )));
            }
            let mut nic = ok.device.into_inner();
            let data_start = h.clock.now_ns();
            let outcome = data_check(state, &faults, &h, &mut nic).map_err(&why)?;
            let data_time = Duration::from_nanos(h.clock.now_ns().saturating_sub(data_start));
            if data_time > DATA_CHECK_BOUND {
                return Err(why(format!(
                    "HANG: the data check took {data_time:?} of simulated time"
                )));
            }
            outcome
        }
        Err(fail) => {
            if !h.fenced() {
                return Err(why(format!(
                    "NOT FENCED: init failed without fencing: {fail}"
                )));
            }
            let kind = match &fail.cause {
                Cause::Device(e) => e.class(),
                Cause::Budget { .. } => "budget",
            };
            if !explained(&faults, kind) {
                return Err(why(format!("UNEXPLAINED: init error `{kind}` ({fail})")));
            }
            Outcome::InitError(kind)
        }
    };
    if faults.is_empty() && outcome != Outcome::Ready {
        return Err(why(format!(
            "NOT READY: a healthy device ended {outcome:?}"
        )));
    }
    let w = watch.borrow().clone();
    let m = h.model.borrow();
    let r = m.records();
    if let Some(v) = r.violations.first() {
        return Err(why(format!(
            "VIOLATION: the model flagged the driver: {v:?}"
        )));
    }
    let stale = w.escapes_before_on.unwrap_or(r.escapes.len());
    if let Some(e) = r.escapes.get(stale) {
        return Err(why(format!(
            "DMA ESCAPE: after bus mastering went on at {:?} ns: {e:?}",
            w.first_on_ns
        )));
    }
    if w.inherited && w.first_write_left_on == Some(true) {
        return Err(why(
            "NOT QUIESCED: bus mastering was on and the driver's first command write kept it on"
                .into(),
        ));
    }
    Ok(CaseReport {
        faults,
        outcome,
        fenced: h.fenced(),
        stale_escapes: stale,
        lies: r.lies.len(),
    })
}

/// What each injected fault class led to, over a campaign (the HAL's table
/// with this driver's fault classes as rows).
pub type FaultTable = paranoid::sim::campaign::FaultTable<Fault>;

impl CaseReport {
    /// Counts this case in `table`.
    pub fn tally(&self, table: &mut FaultTable) {
        table.add(self.faults.iter().copied(), self.outcome, self.fenced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn every_fault_class_explains_some_error() {
        for f in Fault::ALL {
            assert!(!f.allowed().is_empty(), "{f:?}");
        }
    }

    #[test]
    fn healthy_states_inject_nothing() {
        let mut runner = TestRunner::deterministic();
        for _ in 0..512 {
            let s = any_state().new_tree(&mut runner).unwrap().current();
            assert!(s.clone().healthy().injected().is_empty(), "{s:?}");
        }
    }

    #[test]
    fn the_oracle_sees_a_clean_nic_ready_and_a_missing_eeprom_explained() {
        let r = check(&AnyState::clean()).unwrap();
        assert_eq!(r.outcome, Outcome::Ready);
        let mut s = AnyState::clean();
        s.behaviour.eeprom_present = false;
        let r = check(&s).unwrap();
        assert_eq!(r.outcome, Outcome::InitError("no-eeprom"));
        assert!(r.fenced);
        assert_eq!(r.faults, FaultSet::from([Fault::EepromMissing]));
    }
}
