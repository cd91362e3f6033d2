//! The drain itself: wait for every listed device to settle (idle, faulted or
//! out of time), servicing the fault log on each pass, then fence them.

use core::time::Duration;

use paranoid::dma::WindowSpec;
use paranoid::time::{duration_ns, Deadline};

use crate::iommu::{Drained, Fault, Fencing, Quarantine, RecoveryIommu, SourceKind};
use crate::policy::{FaultPolicy, LogLine};

use super::config::{
    Activity, DrainConfig, DrainDevice, IdleProbe, MAX_DRAIN_DEVICES, MAX_DRAIN_WINDOW,
};
use super::report::{DeviceReport, DrainOutcome, DrainReport, Evidence, Fence, Limit};

#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub(super) report: DeviceReport,
    pub(super) settled: bool,
    /// When its wait ends (clock reading, ns) and which limit that is.
    pub(super) deadline_ns: u64,
    pub(super) limit: Limit,
    pub(super) seen_busy: bool,
}

impl Slot {
    pub(super) const EMPTY: Self = Self {
        report: DeviceReport::EMPTY,
        settled: false,
        deadline_ns: 0,
        limit: Limit::Window,
        seen_busy: false,
    };

    fn settle(&mut self, outcome: DrainOutcome) {
        self.report.outcome = outcome;
        self.settled = true;
    }
}

/// Fault counts of one drain.
#[derive(Default)]
struct Counts {
    faults: u32,
    unattributed: u32,
    overflows: u32,
}

/// The IOMMU as the fault policy sees it, with every fault record counted
/// against its source on the way (the policy's own log is rate limited, so it
/// cannot be relied on for attribution).
struct Tap<'a, I> {
    iommu: &'a mut I,
    slots: &'a mut [Slot],
    counts: &'a mut Counts,
}

impl<I: RecoveryIommu> RecoveryIommu for Tap<'_, I> {
    type Error = I::Error;

    fn window(&self) -> WindowSpec {
        self.iommu.window()
    }

    fn now_ns(&self) -> u64 {
        self.iommu.now_ns()
    }

    fn source_kind(&self, source_id: u16) -> SourceKind {
        self.iommu.source_kind(source_id)
    }

    fn drain_faults(&mut self, sink: &mut dyn FnMut(Fault)) -> Result<Drained, Self::Error> {
        let slots = &mut *self.slots;
        let counts = &mut *self.counts;
        let drained = self.iommu.drain_faults(&mut |fault| {
            counts.faults = counts.faults.saturating_add(1);
            let mut listed = false;
            for s in slots.iter_mut() {
                if s.report.source_id == fault.source_id {
                    s.report.faults = s.report.faults.saturating_add(1);
                    listed = true;
                }
            }
            if !listed {
                counts.unattributed = counts.unattributed.saturating_add(1);
            }
            sink(fault);
        })?;
        if drained.overflow {
            counts.overflows = counts.overflows.saturating_add(1);
        }
        Ok(drained)
    }

    fn quarantine(&mut self, source_id: u16, deadline: Deadline) -> Result<Quarantine, I::Error> {
        self.iommu.quarantine(source_id, deadline)
    }
}

/// Lets the listed devices' in-flight DMA finish under the adopted
/// translation, each for at most its window and all before `deadline`, then
/// fences them; see the [module docs](super) for how idleness is decided.
///
/// Precondition: the takeover adopted the old tables
/// ([`Policy::Adopt`](crate::takeover::Policy::Adopt)), or kept a device's old
/// entry by an override; a device whose entry is not present has nothing to
/// drain and is reported [`DrainOutcome::AlreadyBlocked`].
///
/// `policy` services the fault log during the drain (its `log` lines go to
/// `log`); `deadline` ends the wait, and the fence after it gets
/// [`DrainConfig::fence_timeout`] of its own. Never panics and never waits
/// unbounded: failures are in [`DrainReport::service_error`] and
/// [`DrainReport::fence_error`], and every device's fence in its line.
pub fn drain_then_fence<I: Fencing>(
    iommu: &mut I,
    devices: &mut [DrainDevice<'_>],
    config: &DrainConfig,
    policy: &mut FaultPolicy,
    log: &mut dyn FnMut(&LogLine),
    deadline: Deadline,
) -> DrainReport<I::Error> {
    let start = iommu.now_ns();
    let fence_ns = duration_ns(config.fence_timeout);
    let mut report = DrainReport {
        devices: [DeviceReport::EMPTY; MAX_DRAIN_DEVICES],
        count: 0,
        waited: Duration::ZERO,
        total: Duration::ZERO,
        faults: 0,
        unattributed: 0,
        overflows: 0,
        probes: 0,
        excess: 0,
        service_error: None,
        fence_error: None,
    };
    let (listed, excess) = devices.split_at_mut(devices.len().min(MAX_DRAIN_DEVICES));
    if !excess.is_empty() {
        report.excess = u32::try_from(excess.len()).unwrap_or(u32::MAX);
        let fence_deadline = Deadline::at_ns(iommu.now_ns().saturating_add(fence_ns));
        if let Err(e) = fence_excess(iommu, excess, fence_deadline) {
            report.fence_error = Some(e);
        }
    }
    let mut slots = [Slot::EMPTY; MAX_DRAIN_DEVICES];
    let slots = match slots.get_mut(..listed.len()) {
        Some(s) => s,
        None => &mut [],
    };
    for (slot, dev) in slots.iter_mut().zip(listed.iter()) {
        *slot = prepare(iommu, dev, config, start, deadline);
    }
    let mut counts = Counts::default();
    let waited_until = wait(
        iommu,
        slots,
        listed,
        config,
        policy,
        log,
        &mut counts,
        &mut report,
        start,
    );
    report.waited = Duration::from_nanos(waited_until.saturating_sub(start));
    let fence_deadline = Deadline::at_ns(iommu.now_ns().saturating_add(fence_ns));
    if let Err(e) = fence(iommu, slots, fence_deadline) {
        report.fence_error.get_or_insert(e);
    }
    for (out, slot) in report.devices.iter_mut().zip(slots.iter()) {
        *out = slot.report;
        if let DrainOutcome::Faulted { after, .. } = out.outcome {
            out.outcome = DrainOutcome::Faulted {
                faults: out.faults,
                after,
            };
        }
    }
    report.count = slots.len();
    report.faults = counts.faults;
    report.unattributed = counts.unattributed;
    report.overflows = counts.overflows;
    report.total = Duration::from_nanos(iommu.now_ns().saturating_sub(start));
    report
}

/// A device's slot at the start: its window and deadline, or settled at once
/// when it is driven or blocked already.
fn prepare<I: Fencing>(
    iommu: &mut I,
    dev: &DrainDevice<'_>,
    config: &DrainConfig,
    start: u64,
    deadline: Deadline,
) -> Slot {
    let window = dev
        .window
        .unwrap_or(config.window(dev.class))
        .min(MAX_DRAIN_WINDOW);
    let own = start.saturating_add(duration_ns(window));
    let (deadline_ns, limit) = if own <= deadline.as_ns() {
        (own, Limit::Window)
    } else {
        (deadline.as_ns(), Limit::Overall)
    };
    let mut slot = Slot {
        report: DeviceReport {
            source_id: dev.source_id,
            class: dev.class,
            window,
            ..DeviceReport::EMPTY
        },
        deadline_ns,
        limit,
        ..Slot::EMPTY
    };
    if iommu.source_kind(dev.source_id) == SourceKind::Recovery {
        slot.settle(DrainOutcome::Driven);
    } else if !iommu.translates(dev.source_id) {
        slot.settle(DrainOutcome::AlreadyBlocked);
    }
    slot
}

/// The wait: passes of fault service and probes until every device is
/// settled. Returns the clock reading when it ended.
#[expect(
    clippy::too_many_arguments,
    reason = "one private step of drain_then_fence; its state is passed explicitly"
)]
fn wait<I: Fencing>(
    iommu: &mut I,
    slots: &mut [Slot],
    devices: &mut [DrainDevice<'_>],
    config: &DrainConfig,
    policy: &mut FaultPolicy,
    log: &mut dyn FnMut(&LogLine),
    counts: &mut Counts,
    report: &mut DrainReport<I::Error>,
    start: u64,
) -> u64 {
    let interval = config.interval_ns();
    let fence_ns = duration_ns(config.fence_timeout);
    // Each pass either settles a device or sleeps until the next interval or
    // deadline, so this many passes cover the longest wait; more means the
    // clock is not advancing.
    let longest = slots
        .iter()
        .filter(|s| !s.settled)
        .map(|s| s.deadline_ns.saturating_sub(start))
        .max()
        .unwrap_or(0);
    let passes = (longest / interval)
        .saturating_add(slots.len() as u64)
        .saturating_add(2);
    let mut now = iommu.now_ns();
    // Passes start on a grid of the interval from the start, so their cost
    // does not stretch the pacing.
    let mut pass_start = now;
    for _ in 0..passes {
        if slots.iter().all(|s| s.settled) {
            return now;
        }
        let service_deadline = Deadline::at_ns(now.saturating_add(fence_ns));
        let mut tap = Tap {
            iommu: &mut *iommu,
            slots: &mut *slots,
            counts: &mut *counts,
        };
        if let Err(e) = policy.service(&mut tap, log, service_deadline) {
            report.service_error = Some(e);
            break;
        }
        now = iommu.now_ns();
        let mut next = u64::MAX;
        for (slot, dev) in slots.iter_mut().zip(devices.iter_mut()) {
            if slot.settled {
                continue;
            }
            if step(slot, dev.probe.as_deref_mut(), now, start) {
                report.probes = report.probes.saturating_add(1);
                slot.report.probes = slot.report.probes.saturating_add(1);
            }
            if !slot.settled {
                next = next.min(slot.deadline_ns);
            }
        }
        if next == u64::MAX {
            continue;
        }
        let wake = pass_start.saturating_add(interval).min(next);
        let at = iommu.now_ns();
        if wake > at {
            iommu.delay(Duration::from_nanos(wake - at));
        }
        // A pass longer than the interval moves the grid instead of
        // accumulating passes owed.
        pass_start = wake.max(at);
        now = iommu.now_ns();
    }
    let waited = Duration::from_nanos(now.saturating_sub(start));
    for slot in slots.iter_mut().filter(|s| !s.settled) {
        slot.settle(DrainOutcome::BusyAtDeadline {
            waited,
            limit: Limit::Aborted,
        });
    }
    now
}

/// One look at one unsettled device, after the fault service of this pass.
/// Returns true when the probe was called.
pub(super) fn step<'p>(
    slot: &mut Slot,
    probe: Option<&mut (dyn IdleProbe + 'p)>,
    now: u64,
    start: u64,
) -> bool {
    let elapsed = Duration::from_nanos(now.saturating_sub(start));
    if slot.report.faults > 0 {
        slot.settle(DrainOutcome::Faulted {
            faults: slot.report.faults,
            after: elapsed,
        });
        return false;
    }
    let probed = probe.is_some();
    if let Some(p) = probe {
        match p.activity() {
            Activity::Idle => {
                slot.settle(DrainOutcome::Drained {
                    after: elapsed,
                    evidence: Evidence::Probe,
                });
                return true;
            }
            Activity::Busy => slot.seen_busy = true,
            Activity::Unknown => {}
        }
    }
    if now < slot.deadline_ns {
        return probed;
    }
    // A probe that never said busy could not tell: judge by faults alone,
    // which needs the whole window.
    let outcome = if slot.seen_busy || slot.limit != Limit::Window {
        DrainOutcome::BusyAtDeadline {
            waited: elapsed,
            limit: slot.limit,
        }
    } else {
        DrainOutcome::Drained {
            after: elapsed,
            evidence: Evidence::NoFaults,
        }
    };
    slot.settle(outcome);
    probed
}

/// Blocks every listed device not driven by the recovery kernel, in one batch.
fn fence<I: Fencing>(
    iommu: &mut I,
    slots: &mut [Slot],
    deadline: Deadline,
) -> Result<(), I::Error> {
    let mut batch = [0u16; MAX_DRAIN_DEVICES];
    let mut n = 0usize;
    for slot in slots.iter_mut() {
        let sid = slot.report.source_id;
        slot.report.fence = if slot.report.outcome == DrainOutcome::Driven {
            Fence::Kept
        } else if !iommu.translates(sid) {
            Fence::AlreadyBlocked
        } else {
            if let Some(b) = batch.get_mut(n) {
                *b = sid;
                n += 1;
            }
            Fence::Blocked
        };
    }
    let result = iommu.block_all(batch.get(..n).unwrap_or(&[]), deadline);
    if result.is_err() {
        for slot in slots
            .iter_mut()
            .filter(|s| s.report.fence == Fence::Blocked)
        {
            slot.report.fence = Fence::Failed;
        }
    }
    result.map(|_| ())
}

/// Fences the devices past [`MAX_DRAIN_DEVICES`] without a drain (driven ones
/// are left alone).
fn fence_excess<I: Fencing>(
    iommu: &mut I,
    devices: &[DrainDevice<'_>],
    deadline: Deadline,
) -> Result<(), I::Error> {
    let mut first_error = None;
    for chunk in devices.chunks(MAX_DRAIN_DEVICES) {
        let mut batch = [0u16; MAX_DRAIN_DEVICES];
        let mut n = 0usize;
        for d in chunk {
            if iommu.source_kind(d.source_id) == SourceKind::Recovery {
                continue;
            }
            if let Some(b) = batch.get_mut(n) {
                *b = d.source_id;
                n += 1;
            }
        }
        if let Err(e) = iommu.block_all(batch.get(..n).unwrap_or(&[]), deadline) {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
