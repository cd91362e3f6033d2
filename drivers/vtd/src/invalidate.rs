//! Context-cache and IOTLB invalidation: register-based (VT-d 4.1, 6.5.1) or
//! through the invalidation queue (6.5.2).
//!
//! The queue is ours: a dead kernel's queue (QIES left on, IQA in its memory)
//! is drained and switched off first. Requests are submitted in batches that
//! end with one invalidation-wait descriptor, so a batch of page unmaps costs
//! one round trip.

use core::time::Duration;

use paranoid::mmio::RegisterIo;
use paranoid::poll::{poll, try_poll, PollError};
use paranoid::time::{Clock, Deadline};

use crate::mem::FramePool;
use crate::regs::{self, ccmd, iotlb, Fsts, Global};
use crate::unit::{Command, Unit};
use crate::VtdError;
use paranoid::phys::PhysWrite;

/// Which context-cache entries to invalidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextScope {
    /// Every entry.
    Global,
    /// Entries of one domain.
    Domain(u16),
    /// The entry of one device, tagged with the domain it had.
    Device {
        /// Domain id the cached entry carried.
        did: u16,
        /// Source-id of the device.
        sid: u16,
    },
}

/// Which IOTLB (and paging-structure cache) entries to invalidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IotlbScope {
    /// Every entry.
    Global,
    /// Entries of one domain.
    Domain(u16),
    /// 2^order pages from `iova` (aligned to 2^order pages) in one domain;
    /// falls back to [`IotlbScope::Domain`] without CAP.PSI or past CAP.MAMV.
    Pages {
        /// Domain id.
        did: u16,
        /// First IOVA.
        iova: u64,
        /// Log2 of the page count.
        order: u8,
    },
}

/// One invalidation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Context cache.
    Context(ContextScope),
    /// IOTLB.
    Iotlb(IotlbScope),
}

/// How invalidations reach the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Queued when ECAP.QI, else registers.
    Auto,
    /// CCMD and IOTLB registers.
    Register,
    /// The invalidation queue.
    Queued,
}

/// Invalidation requests counted since setup (for reports and the benchmark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Context-cache requests.
    pub context: u64,
    /// IOTLB requests.
    pub iotlb: u64,
    /// Round trips (register handshakes or queue waits).
    pub waits: u64,
}

/// How long a dead kernel's queue gets to drain before we switch it off.
pub const OLD_QUEUE_DRAIN: Duration = Duration::from_millis(10);

/// Descriptors in our queue: one 4 KiB page of 128-bit descriptors (IQA.QS = 0).
const QUEUE_ENTRIES: u64 = 256;

#[derive(Debug, Clone, Copy)]
struct Queue {
    base: u64,
    status: u64,
    tail: u64,
    seq: u32,
}

/// The invalidation path of one unit.
#[derive(Debug, Clone, Copy)]
pub struct Invalidator {
    queue: Option<Queue>,
    counters: Counters,
}

/// What setup found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupReport {
    /// The dead kernel had queued invalidation on.
    pub old_queue_was_enabled: bool,
    /// The old queue had not drained (IQH ≠ IQT) by the deadline; it was
    /// switched off anyway.
    pub old_queue_stuck: bool,
    /// Queued invalidation is in use now.
    pub queued: bool,
}

impl Invalidator {
    /// Sets up invalidation: takes the queue away from a dead kernel if it left
    /// one on, then either programs our own queue (two pages from `pool`) or
    /// leaves register-based invalidation.
    ///
    /// # Errors
    ///
    /// [`VtdError::Unsupported`] for [`Mode::Queued`] without ECAP.QI;
    /// [`VtdError::OutOfFrames`]; GCMD timeouts.
    pub fn setup<R: RegisterIo, C: Clock>(
        unit: &mut Unit<R, C>,
        mem: &mut impl PhysWrite,
        pool: &mut FramePool,
        mode: Mode,
        deadline: Deadline,
    ) -> Result<(Self, SetupReport), VtdError> {
        let qi = unit.caps().queued_invalidation;
        let queued = match mode {
            Mode::Auto => qi,
            Mode::Register => false,
            Mode::Queued if qi => true,
            Mode::Queued => {
                return Err(VtdError::Unsupported {
                    what: "queued invalidation (ECAP.QI)",
                })
            }
        };
        let mut report = SetupReport {
            old_queue_was_enabled: false,
            old_queue_stuck: false,
            queued,
        };
        if unit.status()?.contains(Global::QIE) {
            report.old_queue_was_enabled = true;
            // 6.5.2.1: before disabling, let the hardware finish fetching (IQH
            // reaches IQT). A queue wedged on a bad descriptor never does; we
            // switch it off regardless once the deadline passes.
            let drained = {
                let (regs, clock) = unit.parts();
                let drain_deadline = Deadline::after(clock, OLD_QUEUE_DRAIN).min(deadline);
                poll(
                    clock,
                    drain_deadline,
                    || (regs.read64(regs::IQH), regs.read64(regs::IQT)),
                    |(h, t)| !h.is_all_ones() && h.into_raw_for_report() == t.into_raw_for_report(),
                )
            };
            report.old_queue_stuck = drained.is_err();
            unit.command(Command::DisableQueuedInvalidation, deadline)?;
        }
        // Clear stale queue errors left by the dead kernel.
        let stale = (Fsts::IQE | Fsts::ICE | Fsts::ITE).bits();
        unit.regs().write32(regs::FSTS, stale);
        let mut this = Self {
            queue: None,
            counters: Counters::default(),
        };
        if queued {
            let base = pool.alloc(mem).ok_or(VtdError::OutOfFrames)?;
            let status = pool.alloc(mem).ok_or(VtdError::OutOfFrames)?;
            unit.regs().write64(regs::IQT, 0);
            // IQA: base, DW = 0 (128-bit descriptors), QS = 0 (one page).
            unit.regs().write64(regs::IQA, base);
            unit.command(Command::EnableQueuedInvalidation, deadline)?;
            this.queue = Some(Queue {
                base,
                status,
                tail: 0,
                seq: 0,
            });
        }
        Ok((this, report))
    }

    /// True when the queue is in use.
    pub fn is_queued(&self) -> bool {
        self.queue.is_some()
    }

    /// Requests submitted since setup.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Performs `requests` and waits until the unit has completed all of them.
    ///
    /// # Errors
    ///
    /// [`VtdError::Timeout`] (register or queue wait),
    /// [`VtdError::InvalidationRejected`], [`VtdError::QueueError`],
    /// [`VtdError::MemoryWrite`].
    pub fn run<R: RegisterIo, C: Clock>(
        &mut self,
        unit: &mut Unit<R, C>,
        mem: &mut impl PhysWrite,
        requests: &[Request],
        deadline: Deadline,
    ) -> Result<(), VtdError> {
        for r in requests {
            match r {
                Request::Context(_) => self.counters.context += 1,
                Request::Iotlb(_) => self.counters.iotlb += 1,
            }
        }
        match self.queue {
            Some(mut q) => {
                let r = queued(unit, mem, &mut q, requests, deadline);
                self.queue = Some(q);
                self.counters.waits += 1;
                r
            }
            None => {
                for &r in requests {
                    self.counters.waits += 1;
                    match r {
                        Request::Context(s) => register_context(unit, s, deadline)?,
                        Request::Iotlb(s) => register_iotlb(unit, s, deadline)?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// Resolves a page-selective request the unit cannot do to domain-selective.
fn effective(scope: IotlbScope, psi: bool, mamv: u8) -> IotlbScope {
    match scope {
        IotlbScope::Pages { did, order, .. } if !psi || order > mamv => IotlbScope::Domain(did),
        IotlbScope::Pages { did, iova, order } => IotlbScope::Pages {
            did,
            iova: iova & !((4096u64 << order.min(51)) - 1),
            order,
        },
        s => s,
    }
}

fn register_context<R: RegisterIo, C: Clock>(
    unit: &mut Unit<R, C>,
    scope: ContextScope,
    deadline: Deadline,
) -> Result<(), VtdError> {
    let value = ccmd::ICC
        | match scope {
            ContextScope::Global => ccmd::GLOBAL,
            ContextScope::Domain(did) => ccmd::DOMAIN | u64::from(did),
            ContextScope::Device { did, sid } => {
                ccmd::DEVICE | u64::from(sid) << ccmd::SID_SHIFT | u64::from(did)
            }
        };
    unit.regs().write64(regs::CCMD, value);
    let done = wait_clear(
        unit,
        regs::CCMD,
        "CCMD",
        ccmd::ICC,
        "CCMD.ICC clear",
        deadline,
    )?;
    if done >> ccmd::CAIG_SHIFT & 3 == 0 {
        return Err(VtdError::InvalidationRejected {
            register: "CCMD",
            value: done,
        });
    }
    Ok(())
}

fn register_iotlb<R: RegisterIo, C: Clock>(
    unit: &mut Unit<R, C>,
    scope: IotlbScope,
    deadline: Deadline,
) -> Result<(), VtdError> {
    let caps = *unit.caps();
    let drain = ((caps.cap >> 55 & 1) * iotlb::DR) | ((caps.cap >> 54 & 1) * iotlb::DW);
    let base = caps.iotlb_offset;
    let value = iotlb::IVT
        | drain
        | match effective(scope, caps.psi, caps.mamv) {
            IotlbScope::Global => iotlb::GLOBAL,
            IotlbScope::Domain(did) => iotlb::DOMAIN | u64::from(did) << iotlb::DID_SHIFT,
            IotlbScope::Pages { did, iova, order } => {
                unit.regs()
                    .write64(base + regs::IVA_REG, iova | u64::from(order & 0x3f));
                iotlb::PAGE | u64::from(did) << iotlb::DID_SHIFT
            }
        };
    let reg = base + regs::IOTLB_REG;
    unit.regs().write64(reg, value);
    let done = wait_clear(unit, reg, "IOTLB", iotlb::IVT, "IOTLB.IVT clear", deadline)?;
    if done >> iotlb::IAIG_SHIFT & 3 == 0 {
        return Err(VtdError::InvalidationRejected {
            register: "IOTLB",
            value: done,
        });
    }
    Ok(())
}

/// Polls a 64-bit register until `bit` clears; returns the final value.
fn wait_clear<R: RegisterIo, C: Clock>(
    unit: &mut Unit<R, C>,
    offset: usize,
    register: &'static str,
    bit: u64,
    waiting_for: &'static str,
    deadline: Deadline,
) -> Result<u64, VtdError> {
    let r = {
        let (regs, clock) = unit.parts();
        try_poll(
            clock,
            deadline,
            || {
                regs.read64(offset)
                    .not_all_ones()
                    .map(|v| v.into_raw_for_report())
                    .map_err(|_| VtdError::RegisterGone { register })
            },
            |v| v & bit == 0,
        )
    };
    match r {
        Ok(v) => Ok(v),
        Err(PollError::Failed(e)) => Err(e),
        Err(PollError::Timeout(t)) => Err(VtdError::Timeout {
            register,
            waiting_for,
            last: t.last,
            waited: t.waited,
            deadline_ns: deadline.as_ns(),
        }),
    }
}

/// Encodes a request as a 128-bit queue descriptor (6.5.2.1, 6.5.2.3).
fn descriptor(r: Request, psi: bool, mamv: u8, drain: u64) -> (u64, u64) {
    match r {
        Request::Context(s) => {
            let (g, did, sid) = match s {
                ContextScope::Global => (1u64, 0u16, 0u16),
                ContextScope::Domain(did) => (2, did, 0),
                ContextScope::Device { did, sid } => (3, did, sid),
            };
            (1 | g << 4 | u64::from(did) << 16 | u64::from(sid) << 32, 0)
        }
        Request::Iotlb(s) => match effective(s, psi, mamv) {
            IotlbScope::Global => (2 | 1 << 4 | drain, 0),
            IotlbScope::Domain(did) => (2 | 2 << 4 | drain | u64::from(did) << 16, 0),
            IotlbScope::Pages { did, iova, order } => (
                2 | 3 << 4 | drain | u64::from(did) << 16,
                iova | u64::from(order & 0x3f),
            ),
        },
    }
}

/// Submits `requests` through the queue in chunks, each closed by an
/// invalidation-wait descriptor whose status write we poll for.
fn queued<R: RegisterIo, C: Clock>(
    unit: &mut Unit<R, C>,
    mem: &mut impl PhysWrite,
    q: &mut Queue,
    requests: &[Request],
    deadline: Deadline,
) -> Result<(), VtdError> {
    let caps = *unit.caps();
    // Descriptor DR (bit 7) and DW (bit 6) when CAP.DRD/DWD.
    let drain = (caps.cap >> 55 & 1) << 7 | (caps.cap >> 54 & 1) << 6;
    // One chunk leaves room for its wait descriptor and one free slot.
    for chunk in requests.chunks((QUEUE_ENTRIES - 2) as usize) {
        let needed = chunk.len() as u64 + 1;
        wait_room(unit, q, needed, deadline)?;
        for &r in chunk {
            let (lo, hi) = descriptor(r, caps.psi, caps.mamv, drain);
            write_descriptor(mem, q, lo, hi)?;
        }
        q.seq = q.seq.wrapping_add(1).max(1);
        // Invalidation wait: SW (status write) and FN (fence: after everything
        // before it completes), status data = seq.
        let wait = 5 | 1 << 5 | 1 << 6 | u64::from(q.seq) << 32;
        write_descriptor(mem, q, wait, q.status)?;
        if !caps.coherent {
            mem.flush(q.base, QUEUE_ENTRIES * 16);
        }
        unit.regs().write64(regs::IQT, q.tail << 4);
        let seq = q.seq;
        let status = q.status;
        let r = {
            let (regs, clock) = unit.parts();
            try_poll(
                clock,
                deadline,
                || {
                    let fsts = regs.read32(regs::FSTS);
                    if fsts.is_all_ones() {
                        return Err(VtdError::RegisterGone { register: "FSTS" });
                    }
                    let errors = fsts.flags::<Fsts>() & (Fsts::IQE | Fsts::ICE | Fsts::ITE);
                    if !errors.is_empty() {
                        let head = regs.read64(regs::IQH).into_raw_for_report();
                        return Err(VtdError::QueueError {
                            fsts: fsts.into_raw_for_report(),
                            head,
                        });
                    }
                    Ok(mem.read_u64(status).unwrap_or(0) & 0xffff_ffff)
                },
                |&v| v == u64::from(seq),
            )
        };
        match r {
            Ok(_) => {}
            Err(PollError::Failed(e)) => {
                recover(unit, q);
                return Err(e);
            }
            Err(PollError::Timeout(t)) => {
                return Err(VtdError::Timeout {
                    register: "invalidation wait status",
                    waiting_for: "status data written",
                    last: t.last,
                    waited: t.waited,
                    deadline_ns: deadline.as_ns(),
                })
            }
        }
    }
    Ok(())
}

/// Waits until the queue has `needed` free slots.
fn wait_room<R: RegisterIo, C: Clock>(
    unit: &mut Unit<R, C>,
    q: &Queue,
    needed: u64,
    deadline: Deadline,
) -> Result<(), VtdError> {
    let tail = q.tail;
    let (regs, clock) = unit.parts();
    let r = try_poll(
        clock,
        deadline,
        // IQH.QH is bits 18:4; with QS = 0 only 8 bits index our 256 slots.
        || {
            regs.read64(regs::IQH)
                .not_all_ones()
                .map(|h| h.field(4, 8).into_raw_for_report())
                .map_err(|_| VtdError::RegisterGone { register: "IQH" })
        },
        |&head| (head + QUEUE_ENTRIES - tail - 1) % QUEUE_ENTRIES >= needed,
    );
    match r {
        Ok(_) => Ok(()),
        Err(PollError::Failed(e)) => Err(e),
        Err(PollError::Timeout(t)) => Err(VtdError::Timeout {
            register: "IQH",
            waiting_for: "free invalidation queue slots",
            last: t.last,
            waited: t.waited,
            deadline_ns: deadline.as_ns(),
        }),
    }
}

fn write_descriptor(
    mem: &mut impl PhysWrite,
    q: &mut Queue,
    lo: u64,
    hi: u64,
) -> Result<(), VtdError> {
    let at = q.base + q.tail * 16;
    if mem.write_u64(at, lo).is_err() || mem.write_u64(at + 8, hi).is_err() {
        return Err(VtdError::MemoryWrite { pa: at });
    }
    q.tail = (q.tail + 1) % QUEUE_ENTRIES;
    Ok(())
}

/// After a queue error: clear the error bits and skip what is left (6.5.2.10:
/// hardware stops fetching at the bad descriptor until IQE is cleared).
fn recover<R: RegisterIo, C: Clock>(unit: &mut Unit<R, C>, q: &mut Queue) {
    unit.regs()
        .write32(regs::FSTS, (Fsts::IQE | Fsts::ICE | Fsts::ITE).bits());
    // A unit that reads all-ones is gone: leave the tail alone.
    if let Ok(head) = unit.regs().read64(regs::IQH).not_all_ones() {
        q.tail = head.field(4, 8).into_raw_for_report() % QUEUE_ENTRIES;
        unit.regs().write64(regs::IQT, q.tail << 4);
    }
}
