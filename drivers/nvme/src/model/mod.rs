//! A register-level model of an NVMe controller, following QEMU 7.2's
//! `hw/nvme/ctrl.c` where a driver can tell the difference:
//!
//! - CC writes are stored as written; CC.EN 0 → 1 checks the admin queue setup
//!   (`nvme_start_ctrl`) and sets CSTS.RDY, or CSTS.CFS when it is bad; CC.EN
//!   1 → 0 resets the controller (queues freed, CC, CSTS and INTMS to 0); CC.SHN
//!   reports CSTS.SHST complete at once.
//! - Doorbells at `0x1000 + (2 qid + cq) × (4 << DSTRD)`; writes to missing
//!   queues or values past the queue end are ignored (and flagged here).
//! - Commands run when their SQ doorbell is written; a failed DMA while reading
//!   a command or posting a completion sets CSTS.CFS, as QEMU does.
//! - DMA only with bus mastering on, through [`SimDma`] (and its IOMMU).
//! - FLR (seen through the shared configuration space) returns the controller
//!   to its power-on state.
//!
//! On top, [`Faults`] make it misbehave (slow or stuck CSTS.RDY, flapping, fatal
//! status, malicious completions, nonsense Identify data), and every out-of-range
//! value the driver acts on is recorded in [`NvmeModel::violations`].

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use paranoid::sim::{ConfigSpace, MmioModel, SimClock, SimDma, Width};
use paranoid::time::{duration_ns, Clock};

mod bench;
mod exec;
pub mod fuzz;
pub mod geometry;
pub mod oracle;
mod params;

pub use bench::{Bench, SimNvme, SimWindow, MEMORY_LEN, OLD_KERNEL_BASE, WINDOW_PHYS};
pub use params::{
    CompletionFault, Faults, IdentifyFaults, NamespaceParams, Params, Persist, QEMU_LBAF,
};

/// A submission queue the controller knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubQueue {
    pub base: u64,
    pub size: u16,
    pub head: u16,
    pub tail: u16,
    pub cqid: u16,
}

/// A completion queue the controller knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompQueue {
    pub base: u64,
    pub size: u16,
    pub head: u16,
    pub tail: u16,
    pub phase: bool,
}

/// A command the controller holds without completing (a dropped command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    pub sqid: u16,
    pub cid: u16,
}

/// A completion waiting for room in its completion queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Posting {
    pub cqid: u16,
    pub sqid: u16,
    pub cid: u16,
    pub status: u16,
    pub dw0: u32,
}

/// A namespace as the model executes commands on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NsView {
    pub nsze: u64,
    pub block_bytes: u64,
    /// No metadata, no protection information: the driver may write it.
    pub writable: bool,
    pub attached: bool,
    /// Its parameters (`None`: the default namespace 1 with its faults).
    pub params: Option<NamespaceParams>,
}

/// The modelled controller.
pub struct NvmeModel {
    pub(crate) clock: SimClock,
    pub(crate) config: Rc<RefCell<ConfigSpace>>,
    pub(crate) dma: SimDma,
    pub(crate) source: u16,
    /// What the controller reports.
    pub params: Params,
    /// How it misbehaves.
    pub faults: Faults,
    pub(crate) cc: u32,
    pub(crate) csts: u32,
    pub(crate) intms: u32,
    pub(crate) aqa: u32,
    pub(crate) asq: u64,
    pub(crate) acq: u64,
    /// A CSTS.RDY change that lands at a clock reading.
    pub(crate) rdy_at: Option<(u64, bool)>,
    pub(crate) sqs: Vec<Option<SubQueue>>,
    pub(crate) cqs: Vec<Option<CompQueue>>,
    pub(crate) held: Vec<Held>,
    pub(crate) overflow: VecDeque<Posting>,
    /// Blocks written, by (nsid, lba).
    pub(crate) storage: HashMap<(u32, u64), Vec<u8>>,
    /// I/O completions held back by [`Faults::reorder_io`].
    pub(crate) stash: Vec<Posting>,
    pub(crate) posted: u64,
    pub(crate) flr_seen: u32,
    pub(crate) violations: Vec<String>,
    /// Commands executed (all queues).
    pub commands: u64,
    /// The last Set Features, Number of Queues request as the host sent it
    /// (CDW11: NSQR in bits 15:0, NCQR in bits 31:16, both 0's based).
    pub queues_requested: Option<u32>,
    /// CC.EN cleared while an enable was still in progress (CC.EN 1, CSTS.RDY
    /// not yet 1): undefined behaviour (NVMe 1.4, 3.1.5) that a driver avoids
    /// by waiting (bounded) for the enable to finish first.
    pub enables_interrupted: u32,
}

impl NvmeModel {
    /// A powered-on, disabled controller with QEMU's defaults.
    pub fn new(
        clock: SimClock,
        config: Rc<RefCell<ConfigSpace>>,
        dma: SimDma,
        source: u16,
    ) -> Self {
        let params = Params::default();
        let queues = usize::from(params.max_ioqpairs) + 1;
        let flr_seen = config.borrow().flr_count();
        Self {
            clock,
            config,
            dma,
            source,
            params,
            faults: Faults::default(),
            cc: 0,
            csts: 0,
            intms: 0,
            aqa: 0,
            asq: 0,
            acq: 0,
            rdy_at: None,
            sqs: vec![None; queues],
            cqs: vec![None; queues],
            held: Vec::new(),
            overflow: VecDeque::new(),
            storage: HashMap::new(),
            queues_requested: None,
            enables_interrupted: 0,
            stash: Vec::new(),
            posted: 0,
            flr_seen,
            violations: Vec::new(),
            commands: 0,
        }
    }

    /// Out-of-range values the driver acted on (doorbells past a queue, LBAs
    /// past the namespace it was told, transfers past MDTS, ...): must stay
    /// empty.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Records a driver misbehaviour.
    pub(crate) fn flag(&mut self, what: String) {
        if self.violations.len() < 64 {
            self.violations.push(what);
        }
    }

    /// Completions posted so far (the index completion faults refer to).
    pub fn completions_posted(&self) -> u64 {
        self.posted
    }

    /// The block contents the controller holds at `lba` of namespace 1
    /// (zeros if never written).
    pub fn block(&self, lba: u64) -> Vec<u8> {
        self.block_in(1, lba)
    }

    /// The block contents at `lba` of namespace `nsid`, in that namespace's
    /// block size (zeros if never written).
    pub fn block_in(&self, nsid: u32, lba: u64) -> Vec<u8> {
        self.storage.get(&(nsid, lba)).cloned().unwrap_or_else(|| {
            let bytes = self.namespace(nsid).map_or(512, |n| n.block_bytes);
            vec![0; bytes as usize]
        })
    }

    /// Every block written to namespace `nsid`, by LBA (for "left untouched"
    /// checks).
    pub fn written_blocks(&self, nsid: u32) -> Vec<(u64, Vec<u8>)> {
        let mut out: Vec<(u64, Vec<u8>)> = self
            .storage
            .iter()
            .filter(|((n, _), _)| *n == nsid)
            .map(|((_, lba), data)| (*lba, data.clone()))
            .collect();
        out.sort();
        out
    }

    /// The namespace `nsid` as the controller holds it: `None` when it does
    /// not exist (0, above NN, or not configured).
    pub(crate) fn namespace(&self, nsid: u32) -> Option<NsView> {
        if nsid == 0 || nsid > self.params.nn {
            return None;
        }
        if let Some(n) = self.params.namespaces.iter().find(|n| n.nsid == nsid) {
            return Some(NsView {
                nsze: n.nsze,
                block_bytes: n.block_bytes(),
                writable: n.writable(),
                attached: n.attached,
                params: Some(*n),
            });
        }
        (nsid == 1).then(|| NsView {
            nsze: self.params.nsze,
            block_bytes: self.block_bytes(),
            writable: true,
            attached: true,
            params: None,
        })
    }

    /// CC as stored.
    pub fn cc(&self) -> u32 {
        self.cc
    }

    /// True when bus mastering is on in configuration space.
    pub(crate) fn bus_master(&self) -> bool {
        self.config.borrow().bus_master()
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Brings time-driven and FLR-driven state up to date.
    fn sync(&mut self) {
        let flr = self.config.borrow().flr_count();
        if flr != self.flr_seen {
            self.flr_seen = flr;
            self.function_reset();
        }
        if let Some((at, rdy)) = self.rdy_at {
            if self.now() >= at {
                self.rdy_at = None;
                self.set_rdy(rdy);
            }
        }
        self.run_pending();
    }

    pub(crate) fn set_rdy(&mut self, on: bool) {
        if on {
            self.csts |= 1;
        } else {
            self.csts &= !1;
        }
    }

    fn enabled(&self) -> bool {
        self.cc & 1 == 1
    }

    /// True when the controller processes commands: enabled and ready.
    pub(crate) fn running(&self) -> bool {
        self.enabled() && self.csts & 1 == 1 && self.csts & 2 == 0
    }

    fn csts_read(&self) -> u32 {
        let mut v = self.csts;
        if let (Some(period), false) = (self.faults.rdy_flap, self.enabled()) {
            let p = duration_ns(period).max(1);
            if (self.now() / p) % 2 == 1 {
                v |= 1;
            }
        }
        v
    }

    fn regs_read(&self, offset: usize) -> u32 {
        let cap = self.params.cap();
        match offset {
            0x00 => cap as u32,
            0x04 => (cap >> 32) as u32,
            0x08 => self.params.vs,
            0x0c | 0x10 => self.intms,
            0x14 => self.cc,
            0x1c => self.csts_read(),
            0x24 => self.aqa,
            0x28 => self.asq as u32,
            0x2c => (self.asq >> 32) as u32,
            0x30 => self.acq as u32,
            0x34 => (self.acq >> 32) as u32,
            _ => 0,
        }
    }

    /// CC write (QEMU's `nvme_write_bar`, case CC).
    pub(crate) fn write_cc(&mut self, value: u32) {
        let old = self.cc;
        self.cc = value;
        let (shn_new, shn_old) = ((value >> 14) & 3, (old >> 14) & 3);
        if shn_new != 0 && shn_old == 0 {
            self.csts &= !(3 << 2);
            self.csts |= if self.faults.shutdown_never_completes {
                1 << 2
            } else {
                2 << 2
            };
        } else if shn_new == 0 && shn_old != 0 {
            self.csts &= !(3 << 2);
        }
        let (en_new, en_old) = (value & 1 == 1, old & 1 == 1);
        if en_new && !en_old {
            self.start();
        } else if !en_new && en_old {
            if matches!(self.rdy_at, Some((_, true))) {
                self.enables_interrupted += 1;
            }
            self.controller_reset();
        }
    }

    /// CC.EN 0 → 1 (`nvme_start_ctrl`).
    fn start(&mut self) {
        if self.csts & 1 == 1 {
            self.flag(format!(
                "CC.EN set while CSTS.RDY still 1 (CSTS {:#x})",
                self.csts
            ));
        }
        let page = 4096u64;
        let mps = (self.cc >> 7) & 0xf;
        let css = (self.cc >> 4) & 7;
        let ok = self.sqs.first().is_some_and(Option::is_none)
            && self.asq % page == 0
            && self.acq % page == 0
            && mps >= u32::from(self.params.mpsmin)
            && mps <= u32::from(self.params.mpsmax)
            && (u32::from(self.params.css) >> css) & 1 == 1
            && self.aqa & 0xfff != 0
            && (self.aqa >> 16) & 0xfff != 0
            && self.faults.cfs.is_none();
        if !ok {
            self.csts = 2;
            return;
        }
        let sq_size = (self.aqa & 0xfff) as u16 + 1;
        let cq_size = ((self.aqa >> 16) & 0xfff) as u16 + 1;
        if let Some(s) = self.sqs.get_mut(0) {
            *s = Some(SubQueue {
                base: self.asq,
                size: sq_size,
                head: 0,
                tail: 0,
                cqid: 0,
            });
        }
        if let Some(c) = self.cqs.get_mut(0) {
            *c = Some(CompQueue {
                base: self.acq,
                size: cq_size,
                head: 0,
                tail: 0,
                phase: true,
            });
        }
        self.csts &= !3;
        if self.faults.never_ready.is_some() {
            return;
        }
        if self.faults.ready_delay.is_zero() {
            self.set_rdy(true);
        } else {
            self.rdy_at = Some((self.now() + duration_ns(self.faults.ready_delay), true));
        }
    }

    /// CC.EN 1 → 0 (`nvme_ctrl_reset`).
    fn controller_reset(&mut self) {
        self.drop_queues();
        self.intms = 0;
        self.cc = 0;
        let keep_cfs = matches!(self.faults.cfs, Some(Persist::UntilFlr | Persist::Forever));
        if self.faults.cfs == Some(Persist::Transient) {
            self.faults.cfs = None;
        }
        if self.faults.never_ready == Some(Persist::Transient) {
            self.faults.never_ready = None;
        }
        let rdy = self.csts & 1;
        self.csts = if keep_cfs { 2 } else { 0 };
        self.rdy_at = None;
        if self.faults.rdy_stuck.is_some() {
            self.csts |= rdy;
            if self.faults.rdy_stuck == Some(Persist::Transient) {
                self.faults.rdy_stuck = None;
            }
        } else if !self.faults.reset_delay.is_zero() && rdy == 1 {
            self.csts |= 1;
            self.rdy_at = Some((self.now() + duration_ns(self.faults.reset_delay), false));
        }
    }

    /// FLR: everything back to power-on, faults that FLR clears cleared.
    fn function_reset(&mut self) {
        self.drop_queues();
        self.cc = 0;
        self.intms = 0;
        self.aqa = 0;
        self.asq = 0;
        self.acq = 0;
        self.rdy_at = None;
        let clear = |p: &mut Option<Persist>| {
            if *p != Some(Persist::Forever) {
                *p = None;
            }
        };
        clear(&mut self.faults.cfs);
        clear(&mut self.faults.rdy_stuck);
        clear(&mut self.faults.never_ready);
        self.faults.rdy_flap = None;
        self.faults.reset_delay = std::time::Duration::ZERO;
        self.csts = if self.faults.cfs.is_some() { 2 } else { 0 };
        if self.faults.rdy_stuck == Some(Persist::Forever) {
            self.csts |= 1;
        }
    }

    fn drop_queues(&mut self) {
        for q in self.sqs.iter_mut() {
            *q = None;
        }
        for q in self.cqs.iter_mut() {
            *q = None;
        }
        self.held.clear();
        self.overflow.clear();
        self.stash.clear();
    }

    fn write_reg(&mut self, offset: usize, width: Width, value: u64) {
        let v32 = value as u32;
        match (offset, width) {
            (0x0c, _) => self.intms |= v32,
            (0x10, _) => self.intms &= !v32,
            (0x14, _) => self.write_cc(v32),
            (0x24, _) => self.aqa = v32,
            (0x28, Width::W64) => self.asq = value,
            (0x28, _) => self.asq = (self.asq & !0xffff_ffff) | u64::from(v32),
            (0x2c, _) => self.asq = (self.asq & 0xffff_ffff) | u64::from(v32) << 32,
            (0x30, Width::W64) => self.acq = value,
            (0x30, _) => self.acq = (self.acq & !0xffff_ffff) | u64::from(v32),
            (0x34, _) => self.acq = (self.acq & 0xffff_ffff) | u64::from(v32) << 32,
            _ => {}
        }
    }

    fn doorbell(&mut self, offset: usize, value: u32) {
        let stride = 4usize << self.params.dstrd.min(15);
        let rel = offset - 0x1000;
        if rel % stride != 0 {
            self.flag(format!("doorbell write between doorbells at {offset:#x}"));
            return;
        }
        let index = rel / stride;
        let qid = index / 2;
        if index % 2 == 1 {
            self.cq_doorbell(qid, value);
        } else {
            self.sq_doorbell(qid, value);
        }
    }
}

impl NvmeModel {
    /// A register write by the dead kernel (any-state setup): applied even
    /// with memory decoding off, and without running submitted commands.
    pub fn old_kernel_write(&mut self, offset: usize, value: u32) {
        self.write_reg(offset, Width::W32, u64::from(value));
    }

    /// Makes the dead kernel's I/O queue pair `qid` exist at `sq_base` /
    /// `cq_base` with `size` entries, and `pending` commands submitted (tail
    /// doorbell rung) but not yet fetched. Needs the admin queue (enabled).
    pub fn inherit_io_queue(
        &mut self,
        qid: u16,
        sq_base: u64,
        cq_base: u64,
        size: u16,
        pending: u16,
    ) {
        let size = size.max(2);
        if let Some(slot) = self.cqs.get_mut(usize::from(qid)) {
            *slot = Some(CompQueue {
                base: cq_base,
                size,
                head: 0,
                tail: 0,
                phase: true,
            });
        }
        if let Some(slot) = self.sqs.get_mut(usize::from(qid)) {
            *slot = Some(SubQueue {
                base: sq_base,
                size,
                head: 0,
                tail: pending % size,
                cqid: qid,
            });
        }
    }

    /// Marks `pending` admin commands as submitted and not yet fetched.
    pub fn inherit_admin_pending(&mut self, pending: u16) {
        if let Some(Some(sq)) = self.sqs.get_mut(0) {
            sq.tail = pending % sq.size;
        }
    }
}

impl MmioModel for NvmeModel {
    fn size(&self) -> usize {
        self.params.bar_size
    }

    fn read(&mut self, offset: usize, width: Width) -> u64 {
        self.sync();
        if !self.config.borrow().memory_space() {
            return u64::MAX;
        }
        if offset >= 0x1000 {
            // Doorbells are write-only; QEMU reads back zero.
            return 0;
        }
        let aligned = offset & !3;
        let lo = u64::from(self.regs_read(aligned));
        let hi = u64::from(self.regs_read(aligned + 4));
        let both = lo | hi << 32;
        let shifted = both >> (8 * (offset - aligned));
        match width {
            Width::W8 => shifted & 0xff,
            Width::W16 => shifted & 0xffff,
            Width::W32 => shifted & 0xffff_ffff,
            Width::W64 => shifted,
        }
    }

    fn write(&mut self, offset: usize, width: Width, value: u64) {
        self.sync();
        if !self.config.borrow().memory_space() {
            return;
        }
        if offset >= 0x1000 {
            self.doorbell(offset, value as u32);
        } else {
            self.write_reg(offset, width, value);
        }
        self.run_pending();
    }
}
