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

use proptest::prelude::*;

use crate::device::{Config, LinkPolicy, LINK_UP_TIMEOUT};
use crate::model::{
    fix_checksum, Behaviour, EerdBehaviour, Harness, LinkBehaviour, MacRegs, Malice,
    ResetBehaviour, Stream, Wire, OLD_KERNEL_BASE,
};
use crate::regs::{rctl, tctl};
use paranoid::pci::command::{self, Command};
use paranoid::sim::SimClock;

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
        let mut h = Harness::build(clock, Wire::loopback(), 0, self.behaviour, self.flr);
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
                m.regs = r;
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
    )
        .prop_map(
            |(reset, link, autoneg_ns, slu_required, eeprom_present, eerd, eerd_delay_ns, tx_desc_ns, rx_frame_ns, malice)| Behaviour {
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
                (link_policy, crash_to_init_ns),
            )| AnyState {
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
            },
        )
}
