//! A submission/completion queue pair (NVMe 1.4, 4.1): submitting commands and
//! consuming validated completions.
//!
//! Everything the controller writes into the completion queue is untrusted. An
//! entry is consumed only after its phase tag matches, its SQ identifier is this
//! queue's, its SQ head lies inside the entries the controller could have
//! fetched, its command identifier names a command outstanding here, and its
//! status uses no reserved status code type. A bad entry is an error and stays
//! where it is; the caller resets the controller.

use paranoid::dma::{Bidirectional, DmaArena, DmaBuffer, Iova, ToDevice, Window};
use paranoid::mmio::RegisterIo;
use paranoid::Untrusted;

use crate::command::{Command, RawCompletion, Status, CQE_SIZE, SQE_SIZE};
use crate::error::{CompletionProblem, NvmeError};
use crate::regs::Registers;

/// Commands a queue keeps outstanding at most (also bounded by its depth − 1).
pub const MAX_OUTSTANDING: usize = 16;
/// Bytes of the NVMe memory page we program (CC.MPS = 0).
pub const NVME_PAGE: usize = 4096;

/// A command submitted and not yet completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    cid: u16,
    opcode: u8,
}

/// A validated completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The command identifier (known to have been outstanding).
    pub cid: u16,
    /// The opcode of the command it completes.
    pub opcode: u8,
    /// The status field (no reserved bits).
    pub status: Status,
    /// Command-specific DW0, still untrusted.
    pub dw0: Untrusted<u32>,
    /// The outstanding slot the command held (`0..MAX_OUTSTANDING`), now free.
    pub slot: usize,
}

/// One queue pair: a submission queue the CPU writes and a completion queue the
/// controller writes, both in the DMA window.
pub struct QueuePair<W: Window> {
    qid: u16,
    capacity: u16,
    depth: u16,
    sq: DmaBuffer<W, ToDevice>,
    cq: DmaBuffer<W, Bidirectional>,
    sq_tail: u16,
    sq_head: u16,
    cq_head: u16,
    phase: bool,
    next_cid: u16,
    outstanding: [Option<Pending>; MAX_OUTSTANDING],
}

impl<W: Window> QueuePair<W> {
    /// The submission and completion queue memory, for giving back to the
    /// arena once the controller no longer uses them.
    pub(crate) fn into_buffers(self) -> (DmaBuffer<W, ToDevice>, DmaBuffer<W, Bidirectional>) {
        (self.sq, self.cq)
    }

    /// Allocates a pair of `capacity` entries from `arena`.
    ///
    /// # Errors
    ///
    /// [`NvmeError::Dma`] when the window is exhausted.
    pub fn new<const N: usize>(
        arena: &mut DmaArena<W, N>,
        qid: u16,
        capacity: u16,
    ) -> Result<Self, NvmeError> {
        let capacity = capacity.max(2);
        let sq = arena.alloc::<ToDevice>(usize::from(capacity) * SQE_SIZE, NVME_PAGE)?;
        let cq = arena.alloc::<Bidirectional>(usize::from(capacity) * CQE_SIZE, NVME_PAGE)?;
        Ok(Self {
            qid,
            capacity,
            depth: capacity,
            sq,
            cq,
            sq_tail: 0,
            sq_head: 0,
            cq_head: 0,
            phase: true,
            next_cid: 0,
            outstanding: [None; MAX_OUTSTANDING],
        })
    }

    /// Entries in use (≤ capacity).
    pub fn depth(&self) -> u16 {
        self.depth
    }

    /// Entries allocated.
    pub fn capacity(&self) -> u16 {
        self.capacity
    }

    /// IOVA of the submission queue.
    pub fn sq_iova(&self) -> Iova<W> {
        self.sq.iova()
    }

    /// IOVA of the completion queue.
    pub fn cq_iova(&self) -> Iova<W> {
        self.cq.iova()
    }

    /// The slot the next [`submit`](Self::submit) will use, if one is free
    /// and the submission queue has room.
    pub fn free_slot(&self) -> Option<usize> {
        let next_tail = (self.sq_tail + 1) % self.depth;
        if next_tail == self.sq_head {
            return None;
        }
        self.outstanding.iter().position(Option::is_none)
    }

    /// Commands submitted and not completed.
    pub fn outstanding(&self) -> usize {
        self.outstanding.iter().flatten().count()
    }

    /// Starts the pair afresh with `depth` entries (clamped to 2..=capacity):
    /// indexes to zero, phase 1, nothing outstanding, and the completion queue
    /// zeroed so no stale entry carries phase 1. Call only while the controller
    /// does not own the queue (disabled, or before Create I/O queue).
    ///
    /// # Errors
    ///
    /// [`NvmeError::Dma`] (never for a buffer this pair allocated).
    pub fn restart(&mut self, depth: u16) -> Result<(), NvmeError> {
        self.depth = depth.clamp(2, self.capacity);
        let zero = [0u8; CQE_SIZE];
        for i in 0..usize::from(self.capacity) {
            self.cq.write_bytes(i * CQE_SIZE, &zero)?;
        }
        self.sq_tail = 0;
        self.sq_head = 0;
        self.cq_head = 0;
        self.phase = true;
        self.outstanding = [None; MAX_OUTSTANDING];
        Ok(())
    }

    /// Forgets every outstanding command (after the controller was reset, it
    /// will complete none of them).
    pub fn forget_all(&mut self) {
        self.outstanding = [None; MAX_OUTSTANDING];
    }

    fn is_outstanding(&self, cid: u16) -> bool {
        self.outstanding.iter().flatten().any(|p| p.cid == cid)
    }

    fn allocate_cid(&mut self) -> u16 {
        // At most MAX_OUTSTANDING identifiers are taken, so MAX_OUTSTANDING + 1
        // candidates always contain a free one.
        let mut cid = self.next_cid;
        for _ in 0..=MAX_OUTSTANDING {
            if !self.is_outstanding(cid) {
                break;
            }
            cid = cid.wrapping_add(1);
        }
        self.next_cid = cid.wrapping_add(1);
        cid
    }

    /// Writes `cmd` into the next submission slot and rings the tail doorbell.
    ///
    /// # Errors
    ///
    /// [`NvmeError::QueueFull`] when no slot or no command identifier is free
    /// (the controller stopped consuming).
    pub fn submit<R: RegisterIo>(
        &mut self,
        regs: &mut Registers<R>,
        mut cmd: Command,
    ) -> Result<u16, NvmeError> {
        let next_tail = (self.sq_tail + 1) % self.depth;
        let Some(slot) = self.free_slot() else {
            return Err(NvmeError::QueueFull { queue: self.qid });
        };
        let cid = self.allocate_cid();
        cmd.set_cid(cid);
        self.sq
            .write_bytes(usize::from(self.sq_tail) * SQE_SIZE, &cmd.to_bytes())?;
        if let Some(s) = self.outstanding.get_mut(slot) {
            *s = Some(Pending {
                cid,
                opcode: cmd.opcode(),
            });
        }
        self.sq_tail = next_tail;
        regs.ring_sq_tail(self.qid, self.sq_tail);
        Ok(cid)
    }

    /// Consumes the next completion if the controller has posted one.
    ///
    /// # Errors
    ///
    /// [`NvmeError::BadCompletion`] when the entry fails validation (it is not
    /// consumed), [`NvmeError::Dma`] never for buffers this pair owns.
    pub fn poll_once<R: RegisterIo>(
        &mut self,
        regs: &mut Registers<R>,
    ) -> Result<Option<Completion>, NvmeError> {
        self.poll_once_with::<R, true>(regs)
    }

    /// [`poll_once`](Self::poll_once), with validation compiled out when
    /// `CHECKED` is false: only the `unchecked-bench` benchmark asks for that,
    /// to measure what validation costs.
    pub(crate) fn poll_once_with<R: RegisterIo, const CHECKED: bool>(
        &mut self,
        regs: &mut Registers<R>,
    ) -> Result<Option<Completion>, NvmeError> {
        let at = usize::from(self.cq_head) * CQE_SIZE;
        let dw3 = self.cq.read::<u32>(at + 12)?;
        if dw3.bit(16) != self.phase {
            return Ok(None);
        }
        // The phase tag is written last by the controller: order the reads of
        // the rest of the entry after it.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
        let raw = RawCompletion::new([
            self.cq.read::<u32>(at)?.into_raw_for_report(),
            self.cq.read::<u32>(at + 4)?.into_raw_for_report(),
            self.cq.read::<u32>(at + 8)?.into_raw_for_report(),
            dw3.into_raw_for_report(),
        ]);
        let (slot, sq_head, status) = if CHECKED {
            self.validate(&raw)?
        } else {
            self.trust(&raw)
        };
        let pending = self.outstanding.get_mut(slot).and_then(Option::take);
        let Some(pending) = pending else {
            return Err(NvmeError::BadCompletion {
                queue: self.qid,
                problem: CompletionProblem::UnknownCid,
                value: raw.cid().into_raw_for_report().into(),
            });
        };
        self.sq_head = sq_head;
        self.cq_head += 1;
        if self.cq_head == self.depth {
            self.cq_head = 0;
            self.phase = !self.phase;
        }
        regs.ring_cq_head(self.qid, self.cq_head);
        Ok(Some(Completion {
            cid: pending.cid,
            opcode: pending.opcode,
            status,
            dw0: raw.dw0(),
            slot,
        }))
    }

    /// Checks an entry whose phase matched; returns the outstanding slot, the
    /// new SQ head and the status.
    fn validate(&self, raw: &RawCompletion) -> Result<(usize, u16, Status), NvmeError> {
        let bad = |problem, value: u64| NvmeError::BadCompletion {
            queue: self.qid,
            problem,
            value,
        };
        if !raw.sq_id().is(self.qid) {
            return Err(bad(
                CompletionProblem::WrongSqId,
                raw.sq_id().into_raw_for_report().into(),
            ));
        }
        // NVMe 1.4, 4.6: SQ Head is the entry the controller will fetch next, so
        // it lies between the head we knew and our tail (inclusive).
        let depth = u32::from(self.depth);
        let head = raw.sq_head().validate(|h| {
            let in_queue = u32::from(h) < depth;
            let advanced = (u32::from(h) + depth - u32::from(self.sq_head)) % depth;
            let in_flight = (u32::from(self.sq_tail) + depth - u32::from(self.sq_head)) % depth;
            if in_queue && advanced <= in_flight {
                Ok(h)
            } else {
                Err(bad(CompletionProblem::SqHeadOutOfRange, u64::from(h)))
            }
        })?;
        let cid = if mutant!("nvme_trust_cid") {
            Untrusted::new(
                self.outstanding
                    .iter()
                    .flatten()
                    .next()
                    .map_or(0, |p| p.cid),
            )
        } else {
            raw.cid()
        };
        let slot = self
            .outstanding
            .iter()
            .position(|p| p.is_some_and(|p| cid.is(p.cid)))
            .ok_or_else(|| {
                bad(
                    CompletionProblem::UnknownCid,
                    cid.into_raw_for_report().into(),
                )
            })?;
        let status = Status::validate(raw.status())
            .map_err(|v| bad(CompletionProblem::ReservedStatus, u64::from(v)))?;
        Ok((slot, head, status))
    }

    /// Benchmark-only twin of `validate`: trusts the entry (the slot lookup
    /// stays, it is bookkeeping every driver does).
    fn trust(&self, raw: &RawCompletion) -> (usize, u16, Status) {
        // The unchecked-bench baseline: the raw cid is only compared, never used as an index.
        let cid = raw.cid().into_raw_for_report();
        let slot = self
            .outstanding
            .iter()
            .position(|p| p.is_some_and(|p| p.cid == cid))
            .unwrap_or(0);
        let st = raw.status().into_raw_for_report();
        let status = Status::new((st >> 8) as u8, st as u8);
        (slot, raw.sq_head().into_raw_for_report(), status)
    }
}

#[cfg(all(test, feature = "model"))]
mod tests {
    use super::*;
    use crate::model::Bench;

    /// The counter coming round to a command identifier still outstanding
    /// (a command the controller holds while thousands of others complete)
    /// skips it: two commands in flight never share an identifier.
    #[test]
    fn an_outstanding_command_id_is_skipped() {
        let mut bench = Bench::qemu_like();
        let mut q = QueuePair::new(&mut bench.arena, 1, 8).unwrap();
        q.outstanding[0] = Some(Pending { cid: 7, opcode: 1 });
        q.outstanding[1] = Some(Pending {
            cid: u16::MAX,
            opcode: 1,
        });
        q.next_cid = 7;
        assert_eq!(q.allocate_cid(), 8);
        q.next_cid = u16::MAX;
        assert_eq!(q.allocate_cid(), 0, "wraps past the outstanding 65535");
    }

    /// One entry stays empty: with the tail one behind the head (wrapping)
    /// the queue is full even though command slots are free.
    #[test]
    fn a_full_submission_queue_has_no_free_slot() {
        let mut bench = Bench::qemu_like();
        let mut q = QueuePair::new(&mut bench.arena, 1, 8).unwrap();
        q.restart(4).unwrap();
        assert_eq!(q.free_slot(), Some(0));
        (q.sq_head, q.sq_tail) = (0, 3);
        assert_eq!(q.free_slot(), None);
        (q.sq_head, q.sq_tail) = (2, 1);
        assert_eq!(q.free_slot(), None);
        (q.sq_head, q.sq_tail) = (2, 2);
        assert_eq!(q.free_slot(), Some(0));
    }

    /// A restart zeroes every completion entry of the capacity (no stale
    /// entry keeps phase 1) and forgets what was outstanding, as does
    /// `forget_all` after a controller reset.
    #[test]
    fn restart_and_forget_all_leave_nothing_behind() {
        let mut bench = Bench::qemu_like();
        let mut q = QueuePair::new(&mut bench.arena, 1, 8).unwrap();
        let ones = [0xffu8; CQE_SIZE];
        for i in 0..8 {
            q.cq.write_bytes(i * CQE_SIZE, &ones).unwrap();
        }
        q.outstanding[3] = Some(Pending { cid: 3, opcode: 1 });
        q.restart(8).unwrap();
        for i in 0..8 {
            let dw3 = q.cq.read::<u32>(i * CQE_SIZE + 12).unwrap();
            assert!(dw3.is(0), "entry {i} not zeroed");
        }
        assert_eq!(q.outstanding(), 0);
        q.outstanding[5] = Some(Pending { cid: 9, opcode: 2 });
        q.forget_all();
        assert_eq!(q.outstanding(), 0);
        assert_eq!(q.free_slot(), Some(0));
    }
}
