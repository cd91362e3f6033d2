//! A simulated VT-d unit (feature `model`) for host tests.
//!
//! The register file has the real layout (QEMU 7.2's by default: IOTLB
//! registers at 0xf0, one fault record at 0x220); GCMD/GSTS, CCMD, IOTLB and the
//! invalidation queue behave like hardware, including the caches that make a
//! missing invalidation visible. It implements [`Translate`], so simulated
//! devices' DMA walks the root, context and page tables in [`SimMemory`], and
//! faults land in the fault recording registers exactly as hardware records
//! them: one record, then FSTS.PFO and lost faults while it is pending.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use paranoid::sim::{DmaAccess, DmaFault, MmioModel, SimClock, SimMemory, Translate, Width};
use paranoid::time::Clock;

use crate::regs::{self, Fsts, Global};

pub mod cache;
pub mod harness;

pub use cache::CpuCache;
pub use harness::{Harness, OldMapping, OldState};

/// Size of the register block.
pub const REGISTER_BLOCK: usize = 0x1000;

/// Behaviour switches for misbehaving-hardware tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// GSTS never reflects GCMD writes.
    pub gcmd_stuck: bool,
    /// CCMD.ICC / IOTLB.IVT never clear and the queue never advances.
    pub invalidation_stuck: bool,
    /// Simulated time before a GCMD command shows in GSTS.
    pub gcmd_latency_ns: u64,
    /// Drop a fault silently (no PFO) when a pending record has the same
    /// source-id, as QEMU 7.2 does ("compression of faults"); off by default,
    /// which is the stricter reading of the specification.
    pub collapse_same_source: bool,
    /// Register-based context-cache invalidations complete without being
    /// performed: CCMD.ICC clears with CAIG = 0 (11.4.4.1).
    pub context_invalidation_rejected: bool,
    /// Register-based IOTLB invalidations complete without being performed:
    /// IOTLB.IVT clears with IAIG = 0 (11.4.8.1).
    pub iotlb_invalidation_rejected: bool,
}

/// What the model saw (for assertions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// GCMD writes.
    pub gcmd_writes: u64,
    /// GCMD writes that changed more than one thing at once (a protocol
    /// violation: a replayed one-shot bit, or two commands in one write).
    pub gcmd_multi_command_writes: u64,
    /// GCMD writes that turned translation off.
    pub translation_disables: u64,
    /// Context-cache invalidations performed.
    pub context_invalidations: u64,
    /// IOTLB invalidations performed.
    pub iotlb_invalidations: u64,
    /// Register-based invalidations attempted while the queue was on (ignored,
    /// like QEMU).
    pub register_invalidation_while_queued: u64,
    /// Faults written to a record.
    pub faults_recorded: u64,
    /// Faults lost (overflow, or a record still pending).
    pub faults_lost: u64,
    /// Faults dropped by [`Quirks::collapse_same_source`].
    pub faults_collapsed: u64,
    /// Translations performed.
    pub translations: u64,
    /// GCMD writes that turned translation on while no root table had been
    /// latched (SRTP) since the model was created: the unit would translate
    /// through whatever RTADDR held.
    pub translation_enabled_without_root: u64,
    /// IOTLB invalidations (register or descriptor) that did not ask for the
    /// read or write draining CAP.DRD / CAP.DWD offer (6.5.5): DMA still in
    /// flight through the old translation may land after the invalidation
    /// completed.
    pub iotlb_invalidations_without_drain: u64,
}

/// Most DMA accesses [`VtdModel::accesses`] keeps (later ones are counted in
/// [`VtdModel::accesses_dropped`] only).
pub const ACCESS_LOG_LIMIT: usize = 1 << 16;

/// One DMA access as the unit decided it: the model's own record, for oracles
/// that must not trust the core's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedAccess {
    /// Requester.
    pub source: u16,
    /// Address the device used.
    pub iova: u64,
    /// A write.
    pub write: bool,
    /// Where it landed (`Ok(pa)`), or the fault reason (`Err`).
    pub outcome: Result<u64, u8>,
    /// When (ns).
    pub at_ns: u64,
}

#[derive(Debug, Clone, Copy)]
struct CachedContext {
    did: u16,
    pass_through: bool,
    root: u64,
    levels: u32,
}

/// The simulated unit.
pub struct VtdModel {
    clock: SimClock,
    memory: SimMemory,
    cap: u64,
    ecap: u64,
    gsts: u32,
    pending_gsts: Option<(u32, u64)>,
    rtaddr: u64,
    root: u64,
    ccmd: u64,
    iva: u64,
    iotlb: u64,
    fsts: u32,
    fectl: u32,
    iqh: u64,
    iqt: u64,
    iqa: u64,
    ics: u32,
    frcd: Vec<(u64, u64)>,
    next_frcd: usize,
    context_cache: HashMap<u16, CachedContext>,
    /// Sources whose context entry was found not present while CAP.CM is
    /// set: caching mode lets the unit cache not-present entries (VT-d 6.1,
    /// tagged with domain 0), so making one present needs an invalidation.
    not_present_cache: std::collections::HashSet<u16>,
    iotlb_cache: HashMap<(u16, u64), (u64, bool, bool)>,
    /// Misbehaviour switches.
    pub quirks: Quirks,
    /// Counters.
    pub stats: Stats,
    root_latched: bool,
    log: Vec<LoggedAccess>,
    log_dropped: u64,
}

impl VtdModel {
    /// A unit with QEMU 7.2's CAP and ECAP over `memory`.
    pub fn qemu_like(clock: SimClock, memory: SimMemory) -> Self {
        Self::new(clock, memory, regs::QEMU_CAP, regs::QEMU_ECAP)
    }

    /// A unit with the given CAP and ECAP (their FRO, NFR and IRO place the
    /// registers).
    pub fn new(clock: SimClock, memory: SimMemory, cap: u64, ecap: u64) -> Self {
        let nfr = ((cap >> 40) & 0xff) as usize + 1;
        Self {
            clock,
            memory,
            cap,
            ecap,
            gsts: 0,
            pending_gsts: None,
            rtaddr: 0,
            root: 0,
            ccmd: 0,
            iva: 0,
            iotlb: 0,
            fsts: 0,
            fectl: regs::FECTL_IM,
            iqh: 0,
            iqt: 0,
            iqa: 0,
            ics: 0,
            frcd: vec![(0, 0); nfr],
            next_frcd: 0,
            context_cache: HashMap::new(),
            not_present_cache: std::collections::HashSet::new(),
            iotlb_cache: HashMap::new(),
            quirks: Quirks::default(),
            stats: Stats::default(),
            root_latched: false,
            log: Vec::new(),
            log_dropped: 0,
        }
    }

    /// Every DMA access the unit decided, in order (up to
    /// [`ACCESS_LOG_LIMIT`]).
    pub fn accesses(&self) -> &[LoggedAccess] {
        &self.log
    }

    /// Accesses past [`ACCESS_LOG_LIMIT`], not kept.
    pub fn accesses_dropped(&self) -> u64 {
        self.log_dropped
    }

    fn log_access(&mut self, access: DmaAccess, outcome: Result<u64, u8>) {
        if self.log.len() >= ACCESS_LOG_LIMIT {
            self.log_dropped += 1;
            return;
        }
        self.log.push(LoggedAccess {
            source: access.source,
            iova: access.iova,
            write: access.write,
            outcome,
            at_ns: self.clock.now_ns(),
        });
    }

    /// Shares the model as an MMIO model and a DMA translator.
    pub fn shared(self) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(self))
    }

    fn fro(&self) -> usize {
        (((self.cap >> 24) & 0x3ff) * 16) as usize
    }

    fn iro(&self) -> usize {
        (((self.ecap >> 8) & 0x3ff) * 16) as usize
    }

    fn mgaw(&self) -> u32 {
        ((self.cap >> 16) & 0x3f) as u32 + 1
    }

    /// GSTS now (after any pending command completed).
    pub fn gsts(&mut self) -> Global {
        self.tick();
        Global::from_bits_truncate(self.gsts)
    }

    /// The latched root table address.
    pub fn root_table(&self) -> u64 {
        self.root
    }

    /// The fault records (low, high) as the registers hold them.
    pub fn fault_records(&self) -> &[(u64, u64)] {
        &self.frcd
    }

    /// FSTS as software reads it.
    pub fn fsts(&self) -> u32 {
        self.fsts_value()
    }

    /// Entries in the IOTLB cache (for invalidation tests).
    pub fn iotlb_entries(&self) -> usize {
        self.iotlb_cache.len()
    }

    fn tick(&mut self) {
        if let Some((value, at)) = self.pending_gsts {
            if self.clock.now_ns() >= at {
                self.gsts = value;
                self.pending_gsts = None;
            }
        }
    }

    fn fsts_value(&self) -> u32 {
        let ppf = self.frcd.iter().any(|&(_, hi)| hi >> 63 == 1);
        (self.fsts & !Fsts::PPF.bits()) | if ppf { Fsts::PPF.bits() } else { 0 }
    }

    fn read_qword(&mut self, q: usize) -> u64 {
        self.tick();
        let fro = self.fro();
        let iro = self.iro();
        if q >= fro && q < fro + self.frcd.len() * 16 {
            let (lo, hi) = self.frcd.get((q - fro) / 16).copied().unwrap_or((0, 0));
            return if (q - fro) % 16 == 0 { lo } else { hi };
        }
        match q {
            _ if q == iro => self.iva,
            _ if q == iro + 8 => self.iotlb,
            0x00 => 0x10,
            0x08 => self.cap,
            0x10 => self.ecap,
            0x18 => u64::from(self.gsts) << 32,
            0x20 => self.rtaddr,
            0x28 => self.ccmd,
            0x30 => u64::from(self.fsts_value()) << 32,
            0x38 => u64::from(self.fectl),
            0x80 => self.iqh,
            0x88 => self.iqt,
            0x90 => self.iqa,
            0x98 => u64::from(self.ics) << 32,
            _ => 0,
        }
    }

    fn handle_gcmd(&mut self, value: u32) {
        self.stats.gcmd_writes += 1;
        self.tick();
        let value = Global::from_bits_truncate(value);
        let now = Global::from_bits_truncate(self.gsts);
        let changed = (value ^ now) & Global::PERSISTENT;
        let one_shot = value & (Global::SRTP | Global::SFL | Global::WBF | Global::SIRTP);
        if changed.bits().count_ones() + one_shot.bits().count_ones() > 1 {
            self.stats.gcmd_multi_command_writes += 1;
        }
        if self.quirks.gcmd_stuck {
            return;
        }
        let mut next = now;
        if changed.contains(Global::TE) {
            next.set(Global::TE, value.contains(Global::TE));
            if !value.contains(Global::TE) {
                self.stats.translation_disables += 1;
            } else if !self.root_latched {
                self.stats.translation_enabled_without_root += 1;
            }
        }
        for bit in [Global::EAFL, Global::IRE, Global::CFI] {
            if changed.contains(bit) {
                next.set(bit, value.contains(bit));
            }
        }
        if value.contains(Global::SRTP) {
            self.root = self.rtaddr;
            self.root_latched = true;
            next.insert(Global::SRTP);
        }
        if value.contains(Global::SFL) {
            next.insert(Global::SFL);
        }
        if value.contains(Global::SIRTP) {
            next.insert(Global::SIRTP);
        }
        if changed.contains(Global::QIE) {
            if value.contains(Global::QIE) {
                next.insert(Global::QIE);
            } else {
                next.remove(Global::QIE);
                // QEMU resets the head when the queue is switched off.
                self.iqh = 0;
            }
        }
        // WBF completes at once: WBFS never shows set.
        next.remove(Global::WBF);
        if self.quirks.gcmd_latency_ns > 0 {
            self.pending_gsts = Some((
                next.bits(),
                self.clock.now_ns() + self.quirks.gcmd_latency_ns,
            ));
        } else {
            self.gsts = next.bits();
        }
        if next.contains(Global::QIE) && changed.contains(Global::QIE) {
            self.process_queue();
        }
    }

    fn invalidate_context(&mut self, granularity: u64, did: u16, sid: u16) {
        self.stats.context_invalidations += 1;
        match granularity {
            1 => {
                self.context_cache.clear();
                self.not_present_cache.clear();
            }
            2 => {
                self.context_cache.retain(|_, c| c.did != did);
                if did == 0 {
                    self.not_present_cache.clear();
                }
            }
            // Device-selective (VT-d 6.5.1.1): the request names the domain id
            // and the source id, and software must give the domain the entry
            // held (Linux passes the old DID). QEMU ignores the DID here; the
            // model is the stricter of the two: a request naming another
            // domain leaves the cached entry usable, as a cache tagged by
            // domain would.
            _ => {
                if self.context_cache.get(&sid).is_some_and(|c| c.did == did) {
                    self.context_cache.remove(&sid);
                }
                if did == 0 {
                    self.not_present_cache.remove(&sid);
                }
            }
        }
    }

    /// Counts an IOTLB invalidation whose drain bits (`read`, `write`) leave
    /// out a drain the unit offers.
    fn check_drain(&mut self, read: bool, write: bool) {
        let drd = self.cap >> 55 & 1 == 1;
        let dwd = self.cap >> 54 & 1 == 1;
        if (drd && !read) || (dwd && !write) {
            self.stats.iotlb_invalidations_without_drain += 1;
        }
    }

    /// Sets FSTS error bits as the unit would on a bad descriptor (IQE), a
    /// device-TLB invalidation completion error (ICE) or its time-out (ITE).
    /// While IQE or ITE is set the queue fetches nothing (6.5.2.10).
    pub fn raise_queue_error(&mut self, errors: Fsts) {
        self.fsts |= (errors & (Fsts::IQE | Fsts::ICE | Fsts::ITE)).bits();
    }

    fn invalidate_iotlb(&mut self, granularity: u64, did: u16, addr: u64, am: u32) {
        self.stats.iotlb_invalidations += 1;
        match granularity {
            1 => self.iotlb_cache.clear(),
            2 => self.iotlb_cache.retain(|&(d, _), _| d != did),
            _ => {
                let base = addr & !0xfff;
                let end = base.saturating_add(4096u64 << am.min(52));
                self.iotlb_cache
                    .retain(|&(d, page), _| d != did || page < base || page >= end);
            }
        }
    }

    fn handle_ccmd(&mut self) {
        if self.ccmd & regs::ccmd::ICC == 0 || self.quirks.invalidation_stuck {
            return;
        }
        if self.gsts & Global::QIE.bits() != 0 {
            self.stats.register_invalidation_while_queued += 1;
            return;
        }
        let g = (self.ccmd >> 61) & 3;
        // CIRG 0 is reserved: nothing is performed (CAIG 0).
        if self.quirks.context_invalidation_rejected || g == 0 {
            self.ccmd &= !(regs::ccmd::ICC | 3 << 59);
            return;
        }
        self.invalidate_context(g, self.ccmd as u16, (self.ccmd >> 16) as u16);
        self.ccmd = (self.ccmd & !(regs::ccmd::ICC | 3 << 59)) | g << 59;
    }

    fn handle_iotlb(&mut self) {
        if self.iotlb & regs::iotlb::IVT == 0 || self.quirks.invalidation_stuck {
            return;
        }
        if self.gsts & Global::QIE.bits() != 0 {
            self.stats.register_invalidation_while_queued += 1;
            return;
        }
        let g = (self.iotlb >> 60) & 3;
        let did = (self.iotlb >> 32) as u16;
        // IIRG 0 is reserved: nothing is performed (IAIG 0).
        if self.quirks.iotlb_invalidation_rejected || g == 0 {
            self.iotlb &= !(regs::iotlb::IVT | 3 << 57);
            return;
        }
        self.check_drain(
            self.iotlb & regs::iotlb::DR != 0,
            self.iotlb & regs::iotlb::DW != 0,
        );
        self.invalidate_iotlb(g, did, self.iva, (self.iva & 0x3f) as u32);
        self.iotlb = (self.iotlb & !(regs::iotlb::IVT | 3 << 57)) | g << 57;
    }

    fn process_queue(&mut self) {
        if self.gsts & Global::QIE.bits() == 0
            || self.quirks.invalidation_stuck
            || self.fsts & (Fsts::IQE | Fsts::ITE).bits() != 0
        {
            return;
        }
        let entries = 256u64 << (self.iqa & 7).min(7);
        let base = self.iqa & !0xfff;
        // At most one lap: a tail the software never advanced past stops us.
        for _ in 0..entries {
            let head = (self.iqh >> 4) % entries;
            let tail = (self.iqt >> 4) % entries;
            if head == tail {
                break;
            }
            let at = base + head * 16;
            let (Some(lo), Some(hi)) = (self.memory.read_u64(at), self.memory.read_u64(at + 8))
            else {
                self.fsts |= Fsts::IQE.bits();
                return;
            };
            // A granularity of 0 is reserved: an invalid descriptor (6.5.2.10).
            if matches!(lo & 0xf, 1 | 2) && (lo >> 4) & 3 == 0 {
                self.fsts |= Fsts::IQE.bits();
                return;
            }
            match lo & 0xf {
                1 => self.invalidate_context((lo >> 4) & 3, (lo >> 16) as u16, (lo >> 32) as u16),
                2 => {
                    self.check_drain(lo & 1 << 7 != 0, lo & 1 << 6 != 0);
                    self.invalidate_iotlb((lo >> 4) & 3, (lo >> 16) as u16, hi, (hi & 0x3f) as u32)
                }
                // Device-TLB and interrupt-entry-cache invalidations: nothing
                // cached here.
                3 | 4 => {}
                5 => {
                    if lo & (1 << 5) != 0 {
                        let data = (lo >> 32) as u32;
                        self.memory.write(hi & !3, &data.to_le_bytes());
                    }
                    if lo & (1 << 4) != 0 {
                        self.ics |= 1;
                    }
                }
                _ => {
                    self.fsts |= Fsts::IQE.bits();
                    return;
                }
            }
            self.iqh = ((head + 1) % entries) << 4;
        }
    }

    /// Records a fault like hardware (7.2.1): lost when PFO is set or the next
    /// record is still pending (which sets PFO).
    fn record_fault(&mut self, sid: u16, addr: u64, reason: u8, write: bool) {
        if self.fsts & Fsts::PFO.bits() != 0 {
            self.stats.faults_lost += 1;
            return;
        }
        if self.quirks.collapse_same_source
            && self
                .frcd
                .iter()
                .any(|&(_, hi)| hi >> 63 == 1 && hi as u16 == sid)
        {
            self.stats.faults_collapsed += 1;
            return;
        }
        let fri = self.next_frcd % self.frcd.len().max(1);
        let pending_before = self.frcd.iter().any(|&(_, hi)| hi >> 63 == 1);
        let Some(slot) = self.frcd.get_mut(fri) else {
            return;
        };
        if slot.1 >> 63 == 1 {
            self.fsts |= Fsts::PFO.bits();
            self.stats.faults_lost += 1;
            return;
        }
        let t = if write { 0 } else { 1u64 << 62 };
        *slot = (
            addr & !0xfff,
            1 << 63 | t | u64::from(reason) << 32 | u64::from(sid),
        );
        // FSTS.FRI names the first pending record when PPF became set (11.4.9).
        if !pending_before {
            self.fsts = (self.fsts & !(0xff << 8)) | (fri as u32) << 8;
        }
        self.next_frcd = (fri + 1) % self.frcd.len();
        self.stats.faults_recorded += 1;
    }

    /// Under caching mode (CAP.CM) the unit may keep a not-present entry in
    /// its context cache; without it, nothing is cached.
    fn remember_not_present(&mut self, sid: u16) {
        if self.cap & (1 << 7) != 0 {
            self.not_present_cache.insert(sid);
        }
    }

    /// The domain id in `sid`'s context entry as the tables in memory hold
    /// it now (not the context cache); `None` when its root or context entry
    /// is not present.
    pub fn context_did(&self, sid: u16) -> Option<u16> {
        let root = self.memory.read_u64(self.root + u64::from(sid >> 8) * 16)?;
        if root & 1 == 0 {
            return None;
        }
        let at = (root & !0xfff) + u64::from(sid & 0xff) * 16;
        let lo = self.memory.read_u64(at)?;
        let hi = self.memory.read_u64(at + 8)?;
        (lo & 1 == 1).then_some((hi >> 8) as u16)
    }

    fn context(&mut self, sid: u16) -> Result<CachedContext, u8> {
        if let Some(c) = self.context_cache.get(&sid) {
            return Ok(*c);
        }
        if self.not_present_cache.contains(&sid) {
            return Err(0x2);
        }
        let bus = u64::from(sid >> 8);
        let devfn = u64::from(sid & 0xff);
        let re = self.root + bus * 16;
        let (Some(rlo), Some(rhi)) = (self.memory.read_u64(re), self.memory.read_u64(re + 8))
        else {
            return Err(0x8);
        };
        if rlo & 1 == 0 {
            self.remember_not_present(sid);
            return Err(0x1);
        }
        if rlo & 0xffe != 0 || rhi != 0 {
            return Err(0xa);
        }
        let ce = (rlo & !0xfff) + devfn * 16;
        let (Some(lo), Some(hi)) = (self.memory.read_u64(ce), self.memory.read_u64(ce + 8)) else {
            return Err(0x9);
        };
        if lo & 1 == 0 {
            self.remember_not_present(sid);
            return Err(0x2);
        }
        if lo & 0xff0 != 0 || hi & 0xffff_ffff_ff00_0080 != 0 {
            return Err(0xb);
        }
        let tt = (lo >> 2) & 3;
        let pass_through = match tt {
            0 | 1 => false,
            2 if self.ecap & (1 << 6) != 0 => true,
            _ => return Err(0xd),
        };
        let sagaw = (self.cap >> 8) & 0x1f;
        let levels = match hi & 7 {
            1 if sagaw & 2 != 0 => 3,
            2 if sagaw & 4 != 0 => 4,
            _ if pass_through => 0,
            _ => return Err(0x3),
        };
        let c = CachedContext {
            did: (hi >> 8) as u16,
            pass_through,
            root: lo & !0xfff,
            levels,
        };
        self.context_cache.insert(sid, c);
        Ok(c)
    }

    fn walk(&mut self, c: CachedContext, page: u64, write: bool) -> Result<u64, u8> {
        if let Some(&(pa, r, w)) = self.iotlb_cache.get(&(c.did, page)) {
            return if (write && !w) || (!write && !r) {
                Err(if write { 0x5 } else { 0x6 })
            } else {
                Ok(pa)
            };
        }
        let deny = if write { 0x5 } else { 0x6 };
        let mut table = c.root;
        let mut level = c.levels;
        loop {
            let idx = (page >> (12 + 9 * (level - 1))) & 0x1ff;
            let e = self.memory.read_u64(table + idx * 8).ok_or(0x7u8)?;
            let (r, w) = (e & 1 != 0, e & 2 != 0);
            if !r && !w {
                return Err(deny);
            }
            let large = level > 1 && e & (1 << 7) != 0;
            if level == 1 || large {
                let span = 1u64 << (12 + 9 * (level - 1));
                let pa = (e & 0x000f_ffff_ffff_f000 & !(span - 1)) | (page & (span - 1));
                self.iotlb_cache.insert((c.did, page), (pa, r, w));
                if (write && !w) || (!write && !r) {
                    return Err(deny);
                }
                return Ok(pa);
            }
            table = e & 0x000f_ffff_ffff_f000;
            level -= 1;
        }
    }

    fn translate_access(&mut self, a: DmaAccess) -> Result<u64, u8> {
        let c = self.context(a.source)?;
        if c.pass_through {
            return Ok(a.iova);
        }
        let width = self.mgaw().min(if c.levels == 4 { 48 } else { 39 });
        let end = a.iova.checked_add(a.len.max(1)).ok_or(0x4u8)?;
        if end > 1u64 << width {
            return Err(0x4);
        }
        let first = a.iova & !0xfff;
        let pa0 = self.walk(c, first, a.write)?;
        let mut page = first + 4096;
        while page < end {
            let pa = self.walk(c, page, a.write)?;
            if pa != pa0 + (page - first) {
                // Not one physical run: the simulated DMA engine needs one.
                return Err(0x7);
            }
            page += 4096;
        }
        Ok(pa0 | (a.iova & 0xfff))
    }
}

impl MmioModel for VtdModel {
    fn size(&self) -> usize {
        REGISTER_BLOCK
    }

    fn read(&mut self, offset: usize, width: Width) -> u64 {
        let q = self.read_qword(offset & !7);
        let shift = (offset & 7) * 8;
        let bits = (width as usize) * 8;
        let v = q >> shift;
        if bits >= 64 {
            v
        } else {
            v & ((1u64 << bits) - 1)
        }
    }

    fn write(&mut self, offset: usize, width: Width, value: u64) {
        self.tick();
        let q = offset & !7;
        let shift = (offset & 7) * 8;
        let bits = (width as usize) * 8;
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            ((1u64 << bits) - 1) << shift
        };
        let v = (value << shift) & mask;
        let merge = |old: u64| (old & !mask) | v;
        let fro = self.fro();
        let iro = self.iro();
        if q >= fro && q < fro + self.frcd.len() * 16 {
            // Only F (bit 127) is writable: write-one-to-clear.
            if (q - fro) % 16 == 8 && v & (1 << 63) != 0 {
                if let Some(r) = self.frcd.get_mut((q - fro) / 16) {
                    r.1 &= !(1 << 63);
                }
            }
            return;
        }
        match q {
            _ if q == iro => self.iva = merge(self.iva),
            _ if q == iro + 8 => {
                self.iotlb = merge(self.iotlb);
                self.handle_iotlb();
            }
            0x18 if shift == 0 => self.handle_gcmd(value as u32),
            0x20 => self.rtaddr = merge(self.rtaddr),
            0x28 => {
                self.ccmd = merge(self.ccmd);
                self.handle_ccmd();
            }
            0x30 if shift == 32 => {
                let w1c = (value as u32) & Fsts::W1C.bits();
                self.fsts &= !w1c;
                if w1c & (Fsts::IQE | Fsts::ITE).bits() != 0 {
                    self.process_queue();
                }
            }
            0x38 if shift == 0 => self.fectl = value as u32 & (1 << 31),
            0x88 => {
                self.iqt = merge(self.iqt) & 0x7fff0;
                self.process_queue();
            }
            0x90 => self.iqa = merge(self.iqa),
            0x98 if shift == 32 => self.ics &= !(value as u32 & 1),
            _ => {}
        }
    }
}

impl Translate for VtdModel {
    fn translate(&mut self, access: DmaAccess) -> Result<u64, DmaFault> {
        self.tick();
        self.stats.translations += 1;
        if self.gsts & Global::TE.bits() == 0 {
            self.log_access(access, Ok(access.iova));
            return Ok(access.iova);
        }
        let result = self.translate_access(access);
        self.log_access(access, result);
        result.map_err(|reason| {
            self.record_fault(access.source, access.iova, reason, access.write);
            DmaFault {
                access,
                reason: crate::fault::reason_name(reason),
            }
        })
    }
}
