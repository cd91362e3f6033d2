//! Doorbells, command execution and completion posting of the model.

use crate::command::{admin, nvm, sc, sct, Command, RawCompletion, Status, SQE_SIZE};
use crate::model::{CompQueue, CompletionFault, Held, NvmeModel, Posting, SubQueue, QEMU_LBAF};

const PAGE: u64 = 4096;

fn status(t: u8, c: u8) -> u16 {
    Status::new(t, c).raw()
}

fn ok() -> Option<(u16, u32)> {
    Some((0, 0))
}

fn generic(c: u8) -> Option<(u16, u32)> {
    Some((status(sct::GENERIC, c), 0))
}

fn specific(c: u8) -> Option<(u16, u32)> {
    Some((status(sct::COMMAND_SPECIFIC, c), 0))
}

/// Bytes of a 16-bit circular distance from `from` to `to` in a queue of `size`.
fn ahead(from: u16, to: u16, size: u16) -> u32 {
    let size = u32::from(size.max(1));
    (u32::from(to) + size - u32::from(from) % size) % size
}

impl NvmeModel {
    pub(crate) fn sq_doorbell(&mut self, qid: usize, value: u32) {
        let Some(Some(sq)) = self.sqs.get(qid).copied() else {
            self.flag(format!(
                "SQ {qid} tail doorbell {value} for a missing queue"
            ));
            return;
        };
        let tail = value as u16;
        if value > 0xffff || tail >= sq.size {
            self.flag(format!(
                "SQ {qid} tail doorbell {value} past its {} entries",
                sq.size
            ));
            return;
        }
        // Entries the host adds must fit in the slots the controller consumed.
        let used = ahead(sq.head, sq.tail, sq.size);
        let added = ahead(sq.tail, tail, sq.size);
        if used + added >= u32::from(sq.size) {
            self.flag(format!(
                "SQ {qid} overrun: tail {tail}, head {}, size {}",
                sq.head, sq.size
            ));
        }
        if let Some(Some(q)) = self.sqs.get_mut(qid) {
            q.tail = tail;
        }
        self.run_pending();
    }

    pub(crate) fn cq_doorbell(&mut self, qid: usize, value: u32) {
        let Some(Some(cq)) = self.cqs.get(qid).copied() else {
            self.flag(format!(
                "CQ {qid} head doorbell {value} for a missing queue"
            ));
            return;
        };
        let head = value as u16;
        if value > 0xffff || head >= cq.size {
            self.flag(format!(
                "CQ {qid} head doorbell {value} past its {} entries",
                cq.size
            ));
            return;
        }
        if ahead(cq.head, head, cq.size) > ahead(cq.head, cq.tail, cq.size) {
            self.flag(format!(
                "CQ {qid} head {head} moved past the entries posted (tail {})",
                cq.tail
            ));
        }
        if let Some(Some(q)) = self.cqs.get_mut(qid) {
            q.head = head;
        }
        self.drain_overflow();
    }

    /// Runs every command submitted and not yet fetched, if the controller runs.
    pub(crate) fn run_pending(&mut self) {
        if !self.running() {
            return;
        }
        // Bounded: each pass fetches at most one entry per queue, and queues
        // hold at most 64 Ki entries; stop when nothing moved.
        for _ in 0..0x1_0000 {
            let mut moved = false;
            for qid in 0..self.sqs.len() {
                if self.step_sq(qid) {
                    moved = true;
                }
                if !self.running() {
                    return;
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Fetches and executes one command of SQ `qid`; false when it is empty.
    fn step_sq(&mut self, qid: usize) -> bool {
        let Some(Some(sq)) = self.sqs.get(qid).copied() else {
            return false;
        };
        if sq.head == sq.tail {
            return false;
        }
        let mut bytes = [0u8; SQE_SIZE];
        let at = sq.base + u64::from(sq.head) * SQE_SIZE as u64;
        if !self.dma_read(at, &mut bytes) {
            // QEMU: a command that cannot be fetched is a controller fatal error.
            self.csts |= 2;
            return false;
        }
        let head = (sq.head + 1) % sq.size;
        if let Some(Some(q)) = self.sqs.get_mut(qid) {
            q.head = head;
        }
        let cmd = Command::from_bytes(&bytes);
        self.commands += 1;
        let result = if qid == 0 {
            self.admin_command(&cmd)
        } else {
            self.io_command(&cmd)
        };
        let sqid = qid as u16;
        if let Some((st, dw0)) = result {
            self.complete(sq.cqid, sqid, cmd.cid(), st, dw0);
        }
        true
    }

    /// Posts a completion, applying the completion fault due for it.
    pub(crate) fn complete(&mut self, cqid: u16, sqid: u16, cid: u16, st: u16, dw0: u32) {
        let n = self.posted;
        self.posted += 1;
        let fault = self
            .faults
            .completions
            .iter()
            .find(|(i, _)| *i == n)
            .map(|(_, f)| *f);
        let mut p = Posting {
            cqid,
            sqid,
            cid,
            status: st,
            dw0,
        };
        let mut twice = false;
        let mut wrong_phase = false;
        let mut sq_head_override = None;
        match fault {
            None if cqid != 0 && self.params.reorder_io > 1 => {
                self.stash.push(p);
                if self.stash.len() >= usize::from(self.params.reorder_io) {
                    self.post_stash();
                }
                return;
            }
            None => {}
            Some(CompletionFault::Drop) => {
                self.held.push(Held { sqid, cid });
                return;
            }
            Some(CompletionFault::UnknownCid) => p.cid = cid.wrapping_add(0x5a5a),
            Some(CompletionFault::WrongSqId) => p.sqid = sqid.wrapping_add(7),
            Some(CompletionFault::ReservedStatus) => p.status = (5 << 8) | 0x11,
            Some(CompletionFault::Status(status)) => p.status = status,
            Some(CompletionFault::WrongPhase) => wrong_phase = true,
            Some(CompletionFault::SqHeadOutOfRange) => sq_head_override = Some(0xfff0),
            Some(CompletionFault::SqHeadAtQueueSize) => {
                sq_head_override = self.sq(sqid).map(|s| s.size);
            }
            Some(CompletionFault::SqHeadPastTail) => {
                // One past the tail, inside the queue. In a 2-entry queue with
                // a command in flight that wraps onto the host's own head, a
                // value it must accept (the head did not move): there, one
                // past the end instead.
                sq_head_override = self.sq(sqid).map(|s| {
                    if s.size <= 2 {
                        s.size
                    } else {
                        (s.tail + 1) % s.size
                    }
                });
            }
            Some(CompletionFault::Duplicate) => twice = true,
            Some(CompletionFault::Raw { dw, keep_phase }) => {
                self.post_raw(cqid, dw, keep_phase);
                return;
            }
        }
        self.post(p, wrong_phase, sq_head_override);
        if twice {
            self.post(p, false, None);
        }
    }

    /// Submission queue `sqid` as the controller knows it.
    fn sq(&self, sqid: u16) -> Option<SubQueue> {
        self.sqs.get(usize::from(sqid)).copied().flatten()
    }

    fn post(&mut self, p: Posting, wrong_phase: bool, sq_head: Option<u16>) {
        let Some(Some(cq)) = self.cqs.get(usize::from(p.cqid)).copied() else {
            return;
        };
        if (cq.tail + 1) % cq.size == cq.head {
            self.overflow.push_back(p);
            return;
        }
        let head = sq_head.unwrap_or_else(|| self.sq(p.sqid).map_or(0, |s| s.head));
        let phase = cq.phase != wrong_phase;
        let entry = RawCompletion::build(p.dw0, head, p.sqid, p.cid, phase, p.status);
        let at = cq.base + u64::from(cq.tail) * 16;
        if !self.dma_write(at, &entry.to_bytes()) {
            self.csts |= 2;
            return;
        }
        let mut next = CompQueue {
            tail: (cq.tail + 1) % cq.size,
            ..cq
        };
        if next.tail == 0 {
            next.phase = !next.phase;
        }
        if let Some(slot) = self.cqs.get_mut(usize::from(p.cqid)) {
            *slot = Some(next);
        }
    }

    /// Posts four raw dwords as the next entry of completion queue `cqid`.
    fn post_raw(&mut self, cqid: u16, mut dw: [u32; 4], keep_phase: bool) {
        let Some(Some(cq)) = self.cqs.get(usize::from(cqid)).copied() else {
            return;
        };
        if (cq.tail + 1) % cq.size == cq.head {
            return;
        }
        if keep_phase {
            dw[3] = (dw[3] & !(1 << 16)) | u32::from(cq.phase) << 16;
        }
        let entry = RawCompletion::new(dw);
        let at = cq.base + u64::from(cq.tail) * 16;
        if !self.dma_write(at, &entry.to_bytes()) {
            self.csts |= 2;
            return;
        }
        let mut next = CompQueue {
            tail: (cq.tail + 1) % cq.size,
            ..cq
        };
        if next.tail == 0 {
            next.phase = !next.phase;
        }
        if let Some(slot) = self.cqs.get_mut(usize::from(cqid)) {
            *slot = Some(next);
        }
    }

    /// Posts the held-back I/O completions, newest first.
    pub(crate) fn post_stash(&mut self) {
        let held = std::mem::take(&mut self.stash);
        for p in held.into_iter().rev() {
            self.post(p, false, None);
        }
    }

    fn drain_overflow(&mut self) {
        for _ in 0..self.overflow.len() {
            let Some(p) = self.overflow.pop_front() else {
                return;
            };
            self.post(p, false, None);
        }
    }

    pub(crate) fn dma_read(&mut self, iova: u64, out: &mut [u8]) -> bool {
        self.bus_master() && self.dma.read(self.source, iova, out).is_ok()
    }

    pub(crate) fn dma_write(&mut self, iova: u64, data: &[u8]) -> bool {
        self.bus_master() && self.dma.write(self.source, iova, data).is_ok()
    }

    fn admin_command(&mut self, cmd: &Command) -> Option<(u16, u32)> {
        match cmd.opcode() {
            admin::IDENTIFY => self.identify(cmd),
            admin::CREATE_IO_CQ => self.create_cq(cmd),
            admin::CREATE_IO_SQ => self.create_sq(cmd),
            admin::DELETE_IO_SQ => self.delete_sq(cmd),
            admin::DELETE_IO_CQ => self.delete_cq(cmd),
            admin::ABORT => self.abort(cmd),
            admin::SET_FEATURES => self.set_features(cmd),
            _ => generic(sc::INVALID_OPCODE),
        }
    }

    fn identify(&mut self, cmd: &Command) -> Option<(u16, u32)> {
        let data = match cmd.dword(10) & 0xff {
            1 => self.identify_controller_data(),
            0 => {
                let nsid = cmd.dword(1);
                if nsid == 0 || nsid > self.params.nn {
                    return generic(sc::INVALID_NAMESPACE);
                }
                self.identify_namespace_data(nsid)
            }
            2 => {
                // QEMU `nvme_identify_nslist`: 0xfffffffe and above are invalid.
                let after = cmd.dword(1);
                if after >= 0xffff_fffe {
                    return generic(sc::INVALID_NAMESPACE);
                }
                self.active_list(after)
            }
            _ => return generic(sc::INVALID_FIELD),
        };
        self.transfer_out(cmd, &data)
    }

    pub(crate) fn reported_mdts(&self) -> u8 {
        self.faults.identify.mdts.unwrap_or(self.params.mdts)
    }

    pub(crate) fn reported_nsze(&self) -> u64 {
        self.faults.identify.nsze.unwrap_or(self.params.nsze)
    }

    fn identify_controller_data(&self) -> Vec<u8> {
        let f = &self.faults.identify;
        let mut d = vec![0u8; 4096];
        d[0..2].copy_from_slice(&0x1b36u16.to_le_bytes());
        d[4..24].copy_from_slice(b"t0                  ");
        d[24..64].copy_from_slice(b"QEMU NVMe Ctrl                          ");
        d[77] = self.reported_mdts();
        d[80..84].copy_from_slice(&self.params.vs.to_le_bytes());
        d[88..92].copy_from_slice(&self.params.rtd3e.to_le_bytes());
        d[512] = f.sqes.unwrap_or(self.params.sqes);
        d[513] = f.cqes.unwrap_or(self.params.cqes);
        d[516..520].copy_from_slice(&f.nn.unwrap_or(self.params.nn).to_le_bytes());
        d
    }

    /// Active namespace ids above `after`, ascending, zero-terminated.
    fn active_list(&self, after: u32) -> Vec<u8> {
        let mut d = vec![0u8; 4096];
        let ids = (after.saturating_add(1)..=self.params.nn)
            .filter(|&n| self.namespace(n).is_some_and(|v| v.attached))
            .take(1024);
        for (i, id) in ids.enumerate() {
            d[4 * i..4 * i + 4].copy_from_slice(&id.to_le_bytes());
        }
        d
    }

    /// Set Features (QEMU `nvme_set_feature`): Number of Queues grants
    /// `max_ioqpairs` whatever was asked; 65535 (0's based) is invalid.
    fn set_features(&mut self, cmd: &Command) -> Option<(u16, u32)> {
        match cmd.dword(10) & 0xff {
            0x07 => {
                let dw11 = cmd.dword(11);
                self.queues_requested = Some(dw11);
                if dw11 & 0xffff == 0xffff || dw11 >> 16 == 0xffff {
                    return generic(sc::INVALID_FIELD);
                }
                let n = u32::from(self.params.max_ioqpairs.max(1) - 1);
                Some((0, self.params.queues_granted.unwrap_or(n | n << 16)))
            }
            _ => generic(sc::INVALID_FIELD),
        }
    }

    fn identify_namespace_data(&self, nsid: u32) -> Vec<u8> {
        let mut d = vec![0u8; 4096];
        let Some(view) = self.namespace(nsid).filter(|v| v.attached) else {
            // An inactive namespace reads as zeros (NVMe 1.4, 5.15.2.1).
            return d;
        };
        if let Some(n) = view.params {
            d[0..8].copy_from_slice(&n.nsze.to_le_bytes());
            d[8..16].copy_from_slice(&n.nsze.to_le_bytes());
            d[16..24].copy_from_slice(&n.nsze.to_le_bytes());
            d[25] = (QEMU_LBAF.len() - 1) as u8;
            d[26] = (n.format & 0xf) | u8::from(n.extended) << 4;
            d[29] = n.pi & 7;
            for (i, (ms, lbads)) in QEMU_LBAF.iter().enumerate() {
                let v = u32::from(*ms) | u32::from(*lbads) << 16;
                d[128 + 4 * i..132 + 4 * i].copy_from_slice(&v.to_le_bytes());
            }
            return d;
        }
        let f = &self.faults.identify;
        let nsze = self.reported_nsze();
        d[0..8].copy_from_slice(&nsze.to_le_bytes());
        d[8..16].copy_from_slice(&f.ncap.unwrap_or(nsze).to_le_bytes());
        d[16..24].copy_from_slice(&nsze.to_le_bytes());
        d[25] = f.nlbaf.unwrap_or(7);
        d[26] = f.flbas.unwrap_or(0);
        for (i, (ms, lbads)) in self.formats().iter().enumerate() {
            let v = u32::from(*ms) | u32::from(*lbads) << 16;
            let at = 128 + 4 * i;
            d[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        d
    }

    /// QEMU's LBA formats: 512 and 4096 bytes with 0/8/16/64 bytes of
    /// metadata; format 0 carries the identify faults.
    fn formats(&self) -> [(u16, u8); 8] {
        let f = &self.faults.identify;
        [
            (f.ms.unwrap_or(0), f.lbads.unwrap_or(self.params.lbads)),
            (8, 9),
            (16, 9),
            (64, 9),
            (0, 12),
            (8, 12),
            (16, 12),
            (64, 12),
        ]
    }

    /// Bytes per block of the format FLBAS selects: a device that reports a
    /// valid format also uses it (lying about the format would be silent
    /// corruption no driver can see).
    pub(crate) fn block_bytes(&self) -> u64 {
        let flbas = self.faults.identify.flbas.unwrap_or(0);
        let index = usize::from((flbas & 0xf) | ((flbas >> 5) & 3) << 4);
        match self.formats().get(index) {
            Some(&(_, lbads)) if (9..=12).contains(&lbads) => 1 << lbads,
            _ => 1 << self.params.lbads,
        }
    }

    fn create_cq(&mut self, cmd: &Command) -> Option<(u16, u32)> {
        let qid = (cmd.dword(10) & 0xffff) as u16;
        let entries = (cmd.dword(10) >> 16) + 1;
        let base = u64::from(cmd.dword(6)) | u64::from(cmd.dword(7)) << 32;
        if qid == 0 || usize::from(qid) >= self.cqs.len() || self.cq_exists(qid) {
            return specific(sc::INVALID_QUEUE_ID);
        }
        if let Some(status) = self.check_new_queue("CQ", entries, cmd, base) {
            return Some(status);
        }
        if let Some(slot) = self.cqs.get_mut(usize::from(qid)) {
            *slot = Some(CompQueue {
                base,
                size: entries as u16,
                head: 0,
                tail: 0,
                phase: true,
            });
        }
        ok()
    }

    /// The checks Create I/O CQ and Create I/O SQ share: a size within
    /// CAP.MQES (flagged: the driver must never ask for more), physically
    /// contiguous (PC), and a page-aligned non-zero base. The error status, if any.
    fn check_new_queue(
        &mut self,
        kind: &str,
        entries: u32,
        cmd: &Command,
        base: u64,
    ) -> Option<(u16, u32)> {
        if entries < 2 || entries > u32::from(self.params.mqes) + 1 {
            self.flag(format!(
                "Create I/O {kind} with {entries} entries (MQES {})",
                self.params.mqes
            ));
            return specific(sc::INVALID_QUEUE_SIZE);
        }
        if cmd.dword(11) & 1 == 0 || base == 0 || base % PAGE != 0 {
            return generic(sc::INVALID_FIELD);
        }
        // CC.IOCQES / CC.IOSQES must be the entry sizes Identify Controller
        // allows (CQES and SQES: 16 and 64 bytes here); QEMU checked them at
        // enable, later versions when the queue is created.
        let (field, want) = if kind == "CQ" { (20, 4) } else { (16, 6) };
        let size = (self.cc >> field) & 0xf;
        if size != want {
            self.flag(format!(
                "Create I/O {kind} with CC entry size 2^{size} (Identify allows 2^{want})"
            ));
            return generic(sc::INVALID_FIELD);
        }
        None
    }

    fn cq_exists(&self, qid: u16) -> bool {
        self.cqs.get(usize::from(qid)).is_some_and(Option::is_some)
    }

    fn create_sq(&mut self, cmd: &Command) -> Option<(u16, u32)> {
        let qid = (cmd.dword(10) & 0xffff) as u16;
        let entries = (cmd.dword(10) >> 16) + 1;
        let cqid = (cmd.dword(11) >> 16) as u16;
        let base = u64::from(cmd.dword(6)) | u64::from(cmd.dword(7)) << 32;
        let exists = self.sqs.get(usize::from(qid)).is_some_and(Option::is_some);
        if qid == 0 || usize::from(qid) >= self.sqs.len() || exists {
            return specific(sc::INVALID_QUEUE_ID);
        }
        if cqid == 0 || !self.cq_exists(cqid) {
            return specific(sc::INVALID_CQ);
        }
        if let Some(status) = self.check_new_queue("SQ", entries, cmd, base) {
            return Some(status);
        }
        if let Some(slot) = self.sqs.get_mut(usize::from(qid)) {
            *slot = Some(SubQueue {
                base,
                size: entries as u16,
                head: 0,
                tail: 0,
                cqid,
            });
        }
        ok()
    }

    fn delete_sq(&mut self, cmd: &Command) -> Option<(u16, u32)> {
        let qid = (cmd.dword(10) & 0xffff) as u16;
        match self.sqs.get_mut(usize::from(qid)) {
            Some(slot @ Some(_)) if qid != 0 => {
                *slot = None;
                self.held.retain(|h| h.sqid != qid);
                ok()
            }
            _ => specific(sc::INVALID_QUEUE_ID),
        }
    }

    fn delete_cq(&mut self, cmd: &Command) -> Option<(u16, u32)> {
        let qid = (cmd.dword(10) & 0xffff) as u16;
        if self.sqs.iter().flatten().any(|s| s.cqid == qid && qid != 0) {
            // Invalid Queue Deletion.
            return specific(0x0c);
        }
        match self.cqs.get_mut(usize::from(qid)) {
            Some(slot @ Some(_)) if qid != 0 => {
                *slot = None;
                ok()
            }
            _ => specific(sc::INVALID_QUEUE_ID),
        }
    }

    fn abort(&mut self, cmd: &Command) -> Option<(u16, u32)> {
        let sqid = (cmd.dword(10) & 0xffff) as u16;
        let cid = (cmd.dword(10) >> 16) as u16;
        // Held-back (reordered) completions are posted first: the command
        // asked for may be among them.
        self.post_stash();
        let found = self
            .held
            .iter()
            .position(|h| h.sqid == sqid && h.cid == cid);
        match found {
            Some(i) if !self.faults.abort_ineffective => {
                self.held.remove(i);
                let cqid = self
                    .sqs
                    .get(usize::from(sqid))
                    .copied()
                    .flatten()
                    .map_or(0, |s| s.cqid);
                self.complete(
                    cqid,
                    sqid,
                    cid,
                    status(sct::GENERIC, sc::ABORT_REQUESTED),
                    0,
                );
                Some((0, 0))
            }
            // DW0 bit 0 set: command not aborted.
            _ => Some((0, 1)),
        }
    }

    fn io_command(&mut self, cmd: &Command) -> Option<(u16, u32)> {
        let nsid = cmd.dword(1);
        let Some(view) = self.namespace(nsid).filter(|v| v.attached) else {
            self.flag(format!(
                "I/O opcode {:#x} to namespace {nsid}, absent or inactive",
                cmd.opcode()
            ));
            return generic(sc::INVALID_NAMESPACE);
        };
        if !view.writable && cmd.opcode() != nvm::FLUSH {
            // QEMU would move metadata (and check PI) here: a driver that
            // supplies none must never get this far.
            self.flag(format!(
                "I/O opcode {:#x} to namespace {nsid}, whose format needs metadata or PI",
                cmd.opcode()
            ));
            return generic(sc::INVALID_FIELD);
        }
        match cmd.opcode() {
            nvm::FLUSH => ok(),
            nvm::READ | nvm::WRITE => self.read_write(cmd, nsid, view),
            _ => generic(sc::INVALID_OPCODE),
        }
    }

    fn read_write(
        &mut self,
        cmd: &Command,
        nsid: u32,
        view: crate::model::NsView,
    ) -> Option<(u16, u32)> {
        let slba = u64::from(cmd.dword(10)) | u64::from(cmd.dword(11)) << 32;
        let nlb = u64::from(cmd.dword(12) & 0xffff) + 1;
        let block = view.block_bytes;
        let reported = if view.params.is_some() {
            view.nsze
        } else {
            self.reported_nsze()
        };
        if slba.checked_add(nlb).is_none_or(|end| end > reported) {
            self.flag(format!(
                "I/O at LBA {slba}+{nlb} past the {reported} blocks reported"
            ));
        }
        if slba.checked_add(nlb).is_none_or(|end| end > view.nsze) {
            return generic(sc::LBA_OUT_OF_RANGE);
        }
        let bytes = nlb * block;
        let mdts = self.reported_mdts();
        if mdts != 0 && mdts < 40 && bytes > PAGE << mdts {
            self.flag(format!("transfer of {bytes} bytes past MDTS {mdts}"));
            return generic(sc::INVALID_FIELD);
        }
        let Some(pages) = self.prp_pages(cmd, bytes) else {
            return generic(sc::INVALID_FIELD);
        };
        if cmd.opcode() == nvm::WRITE {
            let mut data = vec![0u8; bytes as usize];
            let mut at = 0usize;
            for (addr, len) in &pages {
                let end = at + *len as usize;
                if !self.dma_read(*addr, &mut data[at..end]) {
                    return generic(sc::DATA_TRANSFER_ERROR);
                }
                at = end;
            }
            for (i, chunk) in data.chunks(block as usize).enumerate() {
                self.storage.insert((nsid, slba + i as u64), chunk.to_vec());
            }
        } else {
            let mut data = Vec::with_capacity(bytes as usize);
            for i in 0..nlb {
                data.extend_from_slice(&self.block_in(nsid, slba + i));
            }
            let mut at = 0usize;
            for (addr, len) in &pages {
                let end = at + *len as usize;
                let chunk = data[at..end].to_vec();
                if !self.dma_write(*addr, &chunk) {
                    return generic(sc::DATA_TRANSFER_ERROR);
                }
                at = end;
            }
        }
        ok()
    }

    /// The (address, length) pieces PRP1/PRP2 describe for `bytes` (NVMe 1.4,
    /// 4.3); `None` for a misaligned entry (flagged: our driver never sends one).
    fn prp_pages(&mut self, cmd: &Command, bytes: u64) -> Option<Vec<(u64, u64)>> {
        let prp1 = u64::from(cmd.dword(6)) | u64::from(cmd.dword(7)) << 32;
        let prp2 = u64::from(cmd.dword(8)) | u64::from(cmd.dword(9)) << 32;
        if prp1 % 4 != 0 {
            self.flag(format!("PRP1 {prp1:#x} not dword aligned"));
            return None;
        }
        let first = (PAGE - prp1 % PAGE).min(bytes);
        let mut pages = vec![(prp1, first)];
        let mut rest = bytes - first;
        if rest == 0 {
            return Some(pages);
        }
        if prp2 % PAGE != 0 {
            self.flag(format!("PRP2 {prp2:#x} not page aligned"));
            return None;
        }
        if rest <= PAGE {
            pages.push((prp2, rest));
            return Some(pages);
        }
        let entries = rest.div_ceil(PAGE);
        if entries > PAGE / 8 {
            self.flag(format!("PRP list of {entries} entries needs chaining"));
            return None;
        }
        let mut list = vec![0u8; entries as usize * 8];
        if !self.dma_read(prp2, &mut list) {
            return None;
        }
        for e in list.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(e);
            let addr = u64::from_le_bytes(b);
            if addr % PAGE != 0 {
                self.flag(format!("PRP list entry {addr:#x} not page aligned"));
                return None;
            }
            let len = rest.min(PAGE);
            pages.push((addr, len));
            rest -= len;
        }
        Some(pages)
    }

    /// Copies `data` to the PRPs of `cmd` (4096 bytes at most here).
    fn transfer_out(&mut self, cmd: &Command, data: &[u8]) -> Option<(u16, u32)> {
        let Some(pages) = self.prp_pages(cmd, data.len() as u64) else {
            return generic(sc::INVALID_FIELD);
        };
        let mut at = 0usize;
        for (addr, len) in pages {
            let end = at + len as usize;
            if !self.dma_write(addr, &data[at..end]) {
                return generic(sc::DATA_TRANSFER_ERROR);
            }
            at = end;
        }
        ok()
    }
}
