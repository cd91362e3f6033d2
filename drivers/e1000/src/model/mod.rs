//! A register-level model of the 8254x MAC, as any supported [`Part`]
//! (QEMU's `-device e1000`, `e1000-82544gc`, `e1000-82545em`).
//!
//! What the driver relies on is modelled after the SDM and checked against
//! QEMU's `hw/net/e1000.c`: CTRL (RST self-clearing after a delay, or at once
//! and without effect as in QEMU, or never), STATUS (LU, FD, speed) with a link
//! that needs SLU and auto-negotiation time, EECD.PRES and EERD reads of a
//! 64-word EEPROM with a valid checksum, RAL/RAH and the MTA, ICR read-to-clear
//! (and write-one-to-clear), ICS, IMS, IMC, RCTL/TCTL, the ring registers
//! (RDLEN/TDLEN masked to 128-byte multiples, heads and tails to 16 bits) and
//! legacy descriptors with write-back of DD/EOP and length. The EEPROM is
//! also readable by clocking Microwire through EECD (as QEMU's `set_eecd` /
//! `get_eecd`); MDIC answers reads of the internal PHY (address 1) with the
//! part's PHY id at once, as QEMU does.
//!
//! Parts ([`E1000Model::set_part`]): the EEPROM image carries the part's device
//! id; the PHY id is the part's; and, unlike QEMU, the 82544GC has no EERD (the
//! offset is reserved there, SDM 13.4.4: reads return 0, writes are dropped),
//! so a driver that used EERD on it times out.
//!
//! Time: the transmit and receive units move one descriptor or frame per
//! configured interval of the shared [`SimClock`], so DMA the dead kernel set
//! up is still in flight while the driver quiesces. DMA goes through
//! [`SimDma`] (and its IOMMU) only while the PCI command register allows bus
//! mastering; refused accesses are recorded with their time.
//!
//! Records: the model flags driver mistakes ([`Violation`]) and logs its own
//! lies ([`Lie`]) and refused DMA ([`Escape`]), for the campaign's oracle.

mod behaviour;
mod engine;
pub mod fuzz;
mod harness;
mod wire;

use std::cell::RefCell;
use std::rc::Rc;

use paranoid::sim::{ConfigSpace, MmioModel, SimClock, SimDma, Width};
use paranoid::time::Clock;

pub use behaviour::{
    Behaviour, EerdBehaviour, Escape, Lie, LinkBehaviour, Malice, Records, ResetBehaviour,
    Violation,
};
pub use harness::{Harness, RecoveryWindow, SimE1000, OLD_KERNEL_BASE};
pub use wire::{Stream, Wire, WireMode, PORT_QUEUE_LIMIT};

use crate::part::{EepromAccess, Part};
use crate::regs::{self, ctrl, eecd, eeprom, eerd, icr, id, mdic};

/// STATUS bits the model always reports (as QEMU: bit 31, GIO master enable,
/// ASDV, MTXCKOK, speed 1000, full duplex).
const STATUS_BASE: u32 = 0x8000_0000 | 1 << 19 | 0x300 | 1 << 10 | 0x80 | 0x1;
/// STATUS.LU.
const STATUS_LU: u32 = 1 << 1;
/// EECD.GNT.
const EECD_GNT: u32 = 1 << 7;
/// EECD bits software can write (SK, CS, DI, FWE, REQ).
const EECD_WRITABLE: u32 = 0b111 | 0b11 << 4 | 1 << 6;
/// RAH.AV.
const RAH_AV: u32 = 1 << 31;

/// The plain registers of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MacRegs {
    /// CTRL.
    pub ctrl: u32,
    /// ICR (pending causes).
    pub icr: u32,
    /// IMS (mask).
    pub ims: u32,
    /// ITR.
    pub itr: u32,
    /// RCTL.
    pub rctl: u32,
    /// TCTL.
    pub tctl: u32,
    /// TIPG.
    pub tipg: u32,
    /// RDBAL.
    pub rdbal: u32,
    /// RDBAH.
    pub rdbah: u32,
    /// RDLEN.
    pub rdlen: u32,
    /// RDH.
    pub rdh: u32,
    /// RDT.
    pub rdt: u32,
    /// RDTR.
    pub rdtr: u32,
    /// RADV.
    pub radv: u32,
    /// TDBAL.
    pub tdbal: u32,
    /// TDBAH.
    pub tdbah: u32,
    /// TDLEN.
    pub tdlen: u32,
    /// TDH.
    pub tdh: u32,
    /// TDT.
    pub tdt: u32,
    /// TIDV.
    pub tidv: u32,
    /// TADV.
    pub tadv: u32,
    /// EECD (software-written bits).
    pub eecd: u32,
    /// EERD as last written.
    pub eerd: u32,
}

/// The Microwire interface's state (what QEMU keeps in `eecd_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Microwire {
    /// Bits shifted in since CS rose.
    shifted_in: u32,
    /// How many.
    count_in: u32,
    /// The EEPROM bit DO shows while reading (word × 16 + bit from the MSB).
    bit_out: u32,
    /// A READ command was received.
    reading: bool,
}

/// The model NIC.
pub struct E1000Model {
    part: Part,
    microwire: Microwire,
    /// MDIC as the last access left it.
    mdic: u32,
    /// Bus mastering as last seen.
    bus_master_seen: bool,
    /// A reset completed since bus mastering was last turned off.
    reset_since_bus_master_off: bool,
    clock: SimClock,
    dma: SimDma,
    config: Rc<RefCell<ConfigSpace>>,
    source: u16,
    wire: Wire,
    port: usize,
    behaviour: Behaviour,
    /// Registers (public for any-state set-up and inspection).
    pub regs: MacRegs,
    /// Receive address pairs (RAL, RAH) × 16.
    pub ra: [u32; 32],
    /// Multicast table.
    pub mta: [u32; 128],
    /// EEPROM words.
    pub eeprom: [u16; 64],
    /// The next this many frames fail with excess collisions (a half-duplex
    /// segment jammed): written back with STA.EC, not sent.
    pub tx_collisions: u32,
    eerd_done_at: u64,
    reset_until: Option<u64>,
    flr_seen: u32,
    link_ready_at: u64,
    link_was_up: bool,
    last_tick: u64,
    tx_credit: u64,
    rx_credit: u64,
    tx_packet: Vec<u8>,
    rng: u64,
    /// Whether a malicious head read is being told (per enable).
    records: Records,
    /// Base of the recovery window's IOVAs, to tell driver rings from old ones.
    window: (u64, u64),
}

impl E1000Model {
    /// A NIC with Ethernet address `mac`, on `port` of `wire`, doing DMA through
    /// `dma` as requester `source`, gated by the bus-master bit of `config`.
    /// Registers start at their reset values.
    #[expect(
        clippy::too_many_arguments,
        reason = "a model is wired to many simulated parts"
    )]
    pub fn new(
        clock: SimClock,
        dma: SimDma,
        config: Rc<RefCell<ConfigSpace>>,
        source: u16,
        wire: Wire,
        port: usize,
        mac: [u8; 6],
        behaviour: Behaviour,
    ) -> Self {
        let flr_seen = config.borrow().flr_count();
        let now = clock.now_ns();
        let mut m = Self {
            part: Part::I82540Em,
            microwire: Microwire::default(),
            mdic: 0,
            bus_master_seen: true,
            reset_since_bus_master_off: false,
            clock,
            dma,
            config,
            source,
            wire,
            port,
            behaviour,
            regs: MacRegs::default(),
            ra: [0; 32],
            mta: [0; 128],
            eeprom: eeprom_image(mac),
            tx_collisions: 0,
            eerd_done_at: 0,
            reset_until: None,
            flr_seen,
            link_ready_at: now,
            link_was_up: false,
            last_tick: now,
            tx_credit: 0,
            rx_credit: 0,
            tx_packet: Vec::new(),
            rng: behaviour.malice.seed | 1,
            records: Records::default(),
            window: (0, 0),
        };
        m.apply_reset();
        m.bus_master_seen = m.bus_master();
        m.reset_since_bus_master_off = false;
        m.link_ready_at = now;
        m.link_was_up = m.link_up(now);
        m
    }

    /// Tells the model which IOVA range is the recovery window (only used to
    /// flag null receive buffers in the driver's ring, not to gate DMA).
    pub fn set_window(&mut self, base: u64, size: u64) {
        self.window = (base, size);
    }

    /// Makes this model the given part: its device id in the EEPROM (checksum
    /// fixed), its PHY id, and its EEPROM interface. The configuration space's
    /// ids are the harness's to set ([`Harness::build_part`]).
    pub fn set_part(&mut self, part: Part) {
        self.part = part;
        for at in id::EEPROM_DEVICE_WORDS {
            if let Some(w) = self.eeprom.get_mut(at) {
                *w = part.device_id();
            }
        }
        fix_checksum(&mut self.eeprom);
    }

    /// The part modelled.
    pub fn part(&self) -> Part {
        self.part
    }

    /// The behaviour.
    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// Changes the behaviour (any-state set-up, fault injection mid-test).
    pub fn set_behaviour(&mut self, b: Behaviour) {
        self.rng = b.malice.seed | 1;
        self.behaviour = b;
    }

    /// What the model recorded.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// Starts a reset now, as if the dead kernel had just written CTRL.RST.
    pub fn start_reset(&mut self) {
        self.regs.ctrl |= ctrl::RST;
        self.begin_reset();
    }

    /// True while the interrupt line would be asserted (ICR & IMS).
    pub fn irq_asserted(&self) -> bool {
        self.regs.icr & self.regs.ims != 0
    }

    /// Lets the model catch up with the clock (DMA in flight, reset, link) as
    /// if the device had been accessed now.
    pub fn settle(&mut self) {
        self.tick();
    }

    /// True while the model is in reset.
    pub fn in_reset(&self) -> bool {
        self.reset_until.is_some()
    }

    fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `percent` %.
    fn chance(&mut self, percent: u8) -> bool {
        percent > 0 && self.next_random() % 100 < u64::from(percent)
    }

    fn begin_reset(&mut self) {
        match self.behaviour.reset {
            ResetBehaviour::Spec { delay_ns } => {
                self.reset_until = Some(self.now().saturating_add(delay_ns));
            }
            ResetBehaviour::Stuck => self.reset_until = Some(u64::MAX),
            ResetBehaviour::Qemu => {
                // Accepted and done at once, though nothing goes back to its
                // default.
                self.regs.ctrl &= !ctrl::RST;
                self.reset_since_bus_master_off = true;
            }
        }
    }

    /// Every register to its default; RAL0/RAH0 from the EEPROM; MTA untouched.
    fn apply_reset(&mut self) {
        let (eecd, keep_mta) = (self.regs.eecd, self.mta);
        self.regs = MacRegs {
            tctl: crate::regs::tctl::PSP,
            eecd,
            ..MacRegs::default()
        };
        let [a, b, c, d, e, f] = self.eeprom_mac();
        self.ra = [0; 32];
        let [ral0, rah0, ..] = &mut self.ra;
        *ral0 = u32::from_le_bytes([a, b, c, d]);
        *rah0 = u32::from(u16::from_le_bytes([e, f])) | RAH_AV;
        self.mta = keep_mta;
        self.tx_packet.clear();
        self.reset_until = None;
        self.reset_since_bus_master_off = true;
        self.link_ready_at = self.now().saturating_add(self.behaviour.autoneg_ns);
    }

    fn eeprom_mac(&self) -> [u8; 6] {
        let mut mac = [0; 6];
        for (i, w) in self.eeprom.iter().take(3).enumerate() {
            let [lo, hi] = w.to_le_bytes();
            if let Some(pair) = mac.get_mut(2 * i..2 * i + 2) {
                pair.copy_from_slice(&[lo, hi]);
            }
        }
        mac
    }

    /// Whether the link is up at `now`.
    fn link_up(&self, now: u64) -> bool {
        let carrier = match self.behaviour.link {
            LinkBehaviour::Up => true,
            LinkBehaviour::Down => false,
            LinkBehaviour::UpAt(t) => now >= t,
            LinkBehaviour::Flapping {
                period_ns,
                until_ns,
            } => now >= until_ns || (now / period_ns.max(1)) % 2 == 0,
        };
        let slu = !self.behaviour.slu_required || self.regs.ctrl & ctrl::SLU != 0;
        carrier && slu && now >= self.link_ready_at && self.reset_until.is_none()
    }

    fn bus_master(&self) -> bool {
        self.config.borrow().bus_master()
    }

    /// Advances the model to the clock: reset completion, FLR, link changes,
    /// and the transmit and receive units.
    fn tick(&mut self) {
        let now = self.now();
        let elapsed = now.saturating_sub(self.last_tick);
        self.last_tick = now;
        let flr = self.config.borrow().flr_count();
        if flr != self.flr_seen {
            self.flr_seen = flr;
            self.apply_reset();
        }
        self.watch_bus_master(now);
        if let Some(until) = self.reset_until {
            if now >= until {
                self.apply_reset();
            } else {
                return;
            }
        }
        let up = self.link_up(now);
        if up != self.link_was_up {
            self.link_was_up = up;
            self.regs.icr |= icr::LSC;
        }
        self.tx_credit = self.tx_credit.saturating_add(elapsed).min(1 << 26);
        self.rx_credit = self.rx_credit.saturating_add(elapsed).min(1 << 26);
        if self.regs.tctl & crate::regs::tctl::EN != 0 && self.regs.tdh != self.regs.tdt {
            self.run_tx(up);
        }
        if self.wire.has_traffic(self.port, now) {
            self.run_rx(up);
        }
    }

    /// Records each off-to-on change of bus mastering, and flags one with no
    /// reset completed since bus mastering went off.
    fn watch_bus_master(&mut self, now: u64) {
        let on = self.bus_master();
        if on == self.bus_master_seen {
            return;
        }
        self.bus_master_seen = on;
        if on {
            self.records.bus_master_on_ns.push(now);
            if !self.reset_since_bus_master_off {
                self.records
                    .violations
                    .push(Violation::BusMasterBeforeReset { at_ns: now });
            }
        } else {
            self.reset_since_bus_master_off = false;
        }
    }

    fn read32(&mut self, offset: usize) -> u32 {
        if self.reset_until.is_some() {
            // Registers do not answer during reset, but CTRL shows RST.
            return if offset == regs::e1000_regs::ctrl::OFFSET {
                self.regs.ctrl | ctrl::RST
            } else {
                0
            };
        }
        match offset {
            0x0008 => {
                let lu = if self.link_up(self.clock.now_ns()) {
                    STATUS_LU
                } else {
                    0
                };
                return STATUS_BASE | lu;
            }
            0x0014 if self.part.eeprom_access() == EepromAccess::Microwire => return 0,
            0x0014 => return self.read_eerd(),
            0x0010 => return self.read_eecd(),
            0x2810 => return self.read_head(true),
            0x3810 => return self.read_head(false),
            _ => {}
        }
        let r = &mut self.regs;
        match offset {
            0x0000 => r.ctrl,
            0x0020 => self.mdic,
            0x00c0 => {
                let v = r.icr;
                r.icr = 0;
                v
            }
            0x00c4 => r.itr,
            0x00c8 => r.icr,
            0x00d0 => r.ims,
            0x0100 => r.rctl,
            0x0400 => r.tctl,
            0x0410 => r.tipg,
            0x2800 => r.rdbal,
            0x2804 => r.rdbah,
            0x2808 => r.rdlen,
            0x2818 => r.rdt,
            0x2820 => r.rdtr,
            0x282c => r.radv,
            0x3800 => r.tdbal,
            0x3804 => r.tdbah,
            0x3808 => r.tdlen,
            0x3818 => r.tdt,
            0x3820 => r.tidv,
            0x382c => r.tadv,
            o if (regs::MTA_BASE..regs::MTA_BASE + 4 * regs::MTA_ENTRIES).contains(&o) => {
                self.mta.get((o - regs::MTA_BASE) / 4).copied().unwrap_or(0)
            }
            o if (0x5400..0x5480).contains(&o) => {
                self.ra.get((o - 0x5400) / 4).copied().unwrap_or(0)
            }
            _ => 0,
        }
    }

    fn read_head(&mut self, rx: bool) -> u32 {
        let (value, enabled, len, name) = if rx {
            (
                self.regs.rdh,
                self.regs.rctl & crate::regs::rctl::EN != 0,
                self.regs.rdlen / 16,
                "RDH",
            )
        } else {
            (
                self.regs.tdh,
                self.regs.tctl & crate::regs::tctl::EN != 0,
                self.regs.tdlen / 16,
                "TDH",
            )
        };
        if enabled && self.chance(self.behaviour.malice.head_out_of_range) {
            let lie = len + (self.next_random() % 0x1000) as u32;
            self.records.lies.push(Lie::HeadOutOfRange {
                register: name,
                value: lie,
            });
            return lie;
        }
        value
    }

    fn read_eerd(&mut self) -> u32 {
        let stored = self.regs.eerd;
        if stored & eerd::START == 0 {
            return stored;
        }
        if self.behaviour.eerd == EerdBehaviour::Stuck || self.now() < self.eerd_done_at {
            return stored & !(1 << eerd::DONE_BIT);
        }
        let mut addr = (stored >> eerd::ADDR_SHIFT) & 0xff;
        if self.behaviour.eerd == EerdBehaviour::WrongAddress {
            addr = (addr + 1) & 0xff;
        }
        let data = self.eeprom.get(addr as usize).copied().unwrap_or(0);
        u32::from(data) << eerd::DATA_SHIFT | addr << eerd::ADDR_SHIFT | 1 << eerd::DONE_BIT
    }

    /// EECD: PRES (when present), GNT, the software bits, and DO: the EEPROM
    /// bit being read, high when idle (QEMU `get_eecd`).
    fn read_eecd(&self) -> u32 {
        let pres = if self.behaviour.eeprom_present {
            crate::regs::e1000_regs::eecd::PRES.mask()
        } else {
            0
        };
        let m = self.microwire;
        let word = self.eeprom.get((m.bit_out >> 4) as usize & 0x3f).copied();
        let bit = word.map_or(1, |w| (w >> (15 - (m.bit_out & 0xf))) & 1);
        let eeprom_do = if !self.behaviour.eeprom_present {
            0
        } else if !m.reading || bit == 1 {
            eecd::DO
        } else {
            0
        };
        pres | EECD_GNT | self.regs.eecd | eeprom_do
    }

    /// EECD writes clock the Microwire interface: a CS rising edge starts a
    /// command, each SK rising edge shifts DI in, each falling edge moves DO
    /// on; after the 3 opcode and 6 address bits of a READ, DO shows the
    /// word's bits from the MSB (QEMU `set_eecd`).
    fn write_eecd(&mut self, v: u32) {
        let old = self.regs.eecd;
        let fwe = |x: u32| (x >> 4) & 0b11;
        if fwe(v) != fwe(old) && matches!(fwe(v), 0b00 | 0b11) {
            self.records
                .violations
                .push(Violation::FlashWriteEnableInvalid { value: v });
        }
        self.regs.eecd = v & EECD_WRITABLE;
        if v & eecd::CS == 0 {
            return;
        }
        let m = &mut self.microwire;
        if (v ^ old) & eecd::CS != 0 {
            // CS rising starts a command. The EEPROM needs CS high for a setup
            // time before SK rises (93C46: tCSS), so an SK edge in the same
            // write is not clocked. QEMU clocks it; the part does not.
            *m = Microwire::default();
            return;
        }
        if (v ^ old) & eecd::SK == 0 {
            return;
        }
        if v & eecd::SK == 0 {
            m.bit_out = m.bit_out.wrapping_add(1);
            return;
        }
        m.shifted_in = m.shifted_in << 1 | u32::from(v & eecd::DI != 0);
        m.count_in = m.count_in.saturating_add(1);
        let bits = eecd::OPCODE_BITS + eecd::ADDRESS_BITS;
        if m.count_in == bits && !m.reading {
            let address = m.shifted_in & 0x3f;
            m.bit_out = (address << 4).wrapping_sub(1);
            m.reading = (m.shifted_in >> eecd::ADDRESS_BITS) & 0b111 == eecd::READ_OPCODE;
        }
    }

    /// EECD's software bits as the dead kernel left them. With CS high the
    /// EEPROM is mid-command: three bits of a READ shifted in, as a kernel
    /// stopped in the middle of a Microwire read leaves it.
    pub fn inherit_eecd(&mut self, eecd: u32) {
        self.regs.eecd = eecd & EECD_WRITABLE;
        self.microwire = if eecd & eecd::CS != 0 {
            Microwire {
                shifted_in: eecd::READ_OPCODE,
                count_in: eecd::OPCODE_BITS,
                ..Microwire::default()
            }
        } else {
            Microwire::default()
        };
    }

    /// MDIC: a read of the internal PHY returns PHY_ID1/PHY_ID2 (other
    /// registers read 0), a write is accepted; another PHY address sets E.
    /// Ready at once (QEMU `set_mdic`).
    fn write_mdic(&mut self, v: u32) {
        use crate::regs::e1000_regs::mdic as f;
        let phy = (v >> f::PHYADD.shift()) & 0x1f;
        let reg = (v >> f::REGADD.shift()) & 0x1f;
        if phy != mdic::PHY_INTERNAL {
            self.mdic |= mdic::ERROR | mdic::READY;
            return;
        }
        let data = if v & f::OP.mask() == mdic::OP_READ {
            let id = self.part.phy_id();
            match reg as u8 {
                mdic::PHY_ID1 => id >> 16,
                mdic::PHY_ID2 => id & 0xffff,
                _ => 0,
            }
        } else {
            v & 0xffff
        };
        self.mdic = (v & !0xffff & !mdic::ERROR) | data | mdic::READY;
    }

    fn write32(&mut self, offset: usize, v: u32) {
        if self.reset_until.is_some() {
            return;
        }
        let r = &mut self.regs;
        match offset {
            0x0000 => {
                let was_slu = r.ctrl & ctrl::SLU != 0;
                r.ctrl = v;
                if v & ctrl::SLU != 0 && !was_slu && self.behaviour.slu_required {
                    self.link_ready_at = self.now().saturating_add(self.behaviour.autoneg_ns);
                }
                if v & ctrl::RST != 0 {
                    self.begin_reset();
                }
            }
            0x0010 => self.write_eecd(v),
            0x0014 if self.part.eeprom_access() == EepromAccess::Microwire => {}
            0x0020 => self.write_mdic(v),
            0x0014 => {
                r.eerd = v & !(1 << eerd::DONE_BIT);
                self.eerd_done_at = self
                    .clock
                    .now_ns()
                    .saturating_add(self.behaviour.eerd_delay_ns);
            }
            0x00c0 => r.icr &= !v,
            0x00c4 => r.itr = v & 0xffff,
            0x00c8 => r.icr |= v,
            0x00d0 => r.ims |= v,
            0x00d8 => r.ims &= !v,
            0x0100 => r.rctl = v,
            0x0400 => r.tctl = v,
            0x0410 => r.tipg = v,
            0x2800 | 0x3800 if self.behaviour.ring_base_stuck => {}
            0x2800 => r.rdbal = v,
            0x2804 => r.rdbah = v,
            0x2808 => r.rdlen = v & 0xfff80,
            0x2810 => r.rdh = v & 0xffff,
            0x2818 => {
                r.rdt = v & 0xffff;
                let len = r.rdlen / 16;
                if len > 0 && r.rdt >= len {
                    self.records.violations.push(Violation::DoorbellOutOfRange {
                        register: "RDT",
                        value: v,
                        ring_len: len,
                    });
                }
            }
            0x2820 => r.rdtr = v & 0xffff,
            0x282c => r.radv = v & 0xffff,
            0x3800 => r.tdbal = v,
            0x3804 => r.tdbah = v,
            0x3808 => r.tdlen = v & 0xfff80,
            0x3810 => r.tdh = v & 0xffff,
            0x3818 => {
                r.tdt = v & 0xffff;
                let len = r.tdlen / 16;
                if len > 0 && r.tdt >= len {
                    self.records.violations.push(Violation::DoorbellOutOfRange {
                        register: "TDT",
                        value: v,
                        ring_len: len,
                    });
                }
            }
            0x3820 => r.tidv = v & 0xffff,
            0x382c => r.tadv = v & 0xffff,
            o if (regs::MTA_BASE..regs::MTA_BASE + 4 * regs::MTA_ENTRIES).contains(&o) => {
                if let Some(e) = self.mta.get_mut((o - regs::MTA_BASE) / 4) {
                    *e = v;
                }
            }
            o if (0x5400..0x5480).contains(&o) => {
                if let Some(e) = self.ra.get_mut((o - 0x5400) / 4) {
                    *e = v;
                }
            }
            _ => {}
        }
    }
}

impl MmioModel for E1000Model {
    fn size(&self) -> usize {
        id::BAR0_SIZE
    }

    fn read(&mut self, offset: usize, width: Width) -> u64 {
        self.tick();
        if !self.config.borrow().memory_space() {
            // Memory decoding off: the access is a master abort.
            return u64::MAX;
        }
        // The MAC decodes 32-bit accesses (QEMU: min = max access size 4).
        let aligned = offset & !3;
        let v = u64::from(self.read32(aligned));
        let shift = 8 * (offset - aligned);
        let mask = match width {
            Width::W8 => 0xff,
            Width::W16 => 0xffff,
            Width::W32 | Width::W64 => 0xffff_ffff,
        };
        (v >> shift) & mask
    }

    fn write(&mut self, offset: usize, width: Width, value: u64) {
        self.tick();
        if width == Width::W32 && self.config.borrow().memory_space() {
            self.write32(offset, value as u32);
        }
    }
}

/// A 64-word EEPROM image holding `mac`, the 82540EM's ids, and the checksum.
pub fn eeprom_image(mac: [u8; 6]) -> [u16; 64] {
    let [m0, m1, m2, m3, m4, m5] = mac;
    let mut words = [0u16; 64];
    let ids = [
        (0, u16::from_le_bytes([m0, m1])),
        (1, u16::from_le_bytes([m2, m3])),
        (2, u16::from_le_bytes([m4, m5])),
        (11, id::DEVICE_82540EM),
        (12, id::VENDOR_INTEL),
        (13, id::DEVICE_82540EM),
        (14, id::VENDOR_INTEL),
    ];
    for (at, value) in ids {
        if let Some(w) = words.get_mut(at) {
            *w = value;
        }
    }
    fix_checksum(&mut words);
    words
}

/// Rewrites word 0x3f so the image sums to 0xBABA.
pub fn fix_checksum(words: &mut [u16; 64]) {
    let at = usize::from(eeprom::CHECKSUM_WORD);
    let sum = words.iter().take(at).fold(0u16, |s, w| s.wrapping_add(*w));
    if let Some(w) = words.get_mut(at) {
        *w = eeprom::SUM.wrapping_sub(sum);
    }
}
