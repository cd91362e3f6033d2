//! What to do about DMA faults.
//!
//! Every fault is classified by source and address:
//!
//! - [`FaultClass::OwnWindow`]: a recovery device faulted inside the recovery
//!   window: a recovery-kernel bug. Reported, or a halt when configured.
//! - [`FaultClass::Stale`]: anything else from a known device (outside the
//!   window, or a device the recovery kernel does not drive): DMA the dead
//!   kernel set up. After [`PolicyConfig::quarantine_after`] faults the source
//!   is quarantined (its entry made not-present), so one transient bus error
//!   does not cost a device. Devices the recovery kernel drives are never
//!   quarantined: their driver's reset stops their stale DMA.
//! - [`FaultClass::UnknownSource`]: a source no one set up; counted, and
//!   quarantined on the same threshold.
//!
//! Under a fault storm the unit's few fault records fill and it drops faults
//! (overflow); each service call drains what is there, counts the overflow and
//! returns, so the core keeps going. The log is rate limited; suppressed lines
//! are counted and reported with the next line that gets through.

use paranoid::time::Deadline;

use crate::iommu::{Fault, Quarantine, RecoveryIommu, SourceKind};

/// Fault policy settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Halt (report [`ServiceSummary::halt`]) on a fault inside the window.
    pub halt_on_window_fault: bool,
    /// Faults a stale or unknown source may cause before it is quarantined
    /// (at least 1).
    pub quarantine_after: u32,
    /// Log lines allowed per interval.
    pub log_burst: u32,
    /// The rate-limit interval in nanoseconds.
    pub log_interval_ns: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            halt_on_window_fault: false,
            quarantine_after: 3,
            log_burst: 10,
            log_interval_ns: 1_000_000_000,
        }
    }
}

/// How a fault was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultClass {
    /// A recovery device inside the window: our bug.
    OwnWindow,
    /// DMA set up by the dead kernel.
    Stale,
    /// A source no one set up.
    UnknownSource,
}

/// What was done about a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reported only.
    Reported,
    /// Counted; the source is below the quarantine threshold.
    Counted,
    /// The source was quarantined now.
    Quarantined,
    /// The source was blocked already.
    AlreadyBlocked,
    /// Quarantine failed (the IOMMU error is in the summary).
    QuarantineFailed,
    /// A window fault with `halt_on_window_fault`.
    Halt,
}

/// One classified fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultEvent {
    /// The fault.
    pub fault: Fault,
    /// Its class.
    pub class: FaultClass,
    /// What was done.
    pub action: Action,
    /// Faults counted for this source so far (this one included).
    pub source_faults: u32,
}

/// A line of the rate-limited log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLine {
    /// A fault.
    Fault(FaultEvent),
    /// Lines dropped by the rate limit since the last line that got through.
    Suppressed(u32),
    /// The unit overflowed: faults were lost before we could read them.
    Overflow {
        /// Overflows seen so far.
        total: u32,
    },
}

/// Counters of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceStats {
    /// The source.
    pub source_id: u16,
    /// Faults inside the window.
    pub own: u32,
    /// Stale faults.
    pub stale: u32,
    /// Faults as an unknown source.
    pub unknown: u32,
    /// Quarantined.
    pub quarantined: bool,
}

impl SourceStats {
    fn total(&self) -> u32 {
        self.own
            .saturating_add(self.stale)
            .saturating_add(self.unknown)
    }
}

/// Totals since the policy was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Fault records read.
    pub records: u64,
    /// Own-window faults.
    pub own: u64,
    /// Stale faults.
    pub stale: u64,
    /// Unknown-source faults.
    pub unknown: u64,
    /// Sources quarantined.
    pub quarantines: u32,
    /// Drains that found the overflow flag set (each: at least one fault lost).
    pub overflows: u32,
    /// Log lines suppressed by the rate limit.
    pub suppressed: u64,
    /// Faults from sources beyond the per-source table (quarantined at once).
    pub untracked: u64,
}

/// The result of one [`FaultPolicy::service`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceSummary {
    /// Records read.
    pub records: u32,
    /// The unit had overflowed (faults lost).
    pub overflow: bool,
    /// Sources quarantined by this call.
    pub quarantined: u32,
    /// The first window fault, when halting on them is configured.
    pub halt: Option<Fault>,
}

/// Sources tracked individually.
pub const MAX_SOURCES: usize = 64;
/// Faults taken per drain (the most fault records a VT-d unit has).
const MAX_PER_DRAIN: usize = 256;

/// The fault policy's state.
#[derive(Debug, Clone)]
pub struct FaultPolicy {
    config: PolicyConfig,
    sources: [SourceStats; MAX_SOURCES],
    count: usize,
    totals: Totals,
    tokens: u32,
    interval_start: u64,
    pending_suppressed: u32,
}

impl FaultPolicy {
    /// A policy with no faults seen.
    pub fn new(config: PolicyConfig) -> Self {
        Self {
            config: PolicyConfig {
                quarantine_after: config.quarantine_after.max(1),
                ..config
            },
            sources: [SourceStats::default(); MAX_SOURCES],
            count: 0,
            totals: Totals::default(),
            tokens: config.log_burst,
            interval_start: 0,
            pending_suppressed: 0,
        }
    }

    /// Totals so far.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Per-source counters.
    pub fn sources(&self) -> &[SourceStats] {
        self.sources.get(..self.count).unwrap_or(&[])
    }

    /// The counters of `source_id`, if tracked.
    pub fn source(&self, source_id: u16) -> Option<SourceStats> {
        self.sources()
            .iter()
            .copied()
            .find(|s| s.source_id == source_id)
    }

    fn slot(&mut self, source_id: u16) -> Option<&mut SourceStats> {
        if let Some(i) = self.sources().iter().position(|s| s.source_id == source_id) {
            return self.sources.get_mut(i);
        }
        let s = self.sources.get_mut(self.count)?;
        *s = SourceStats {
            source_id,
            ..SourceStats::default()
        };
        self.count += 1;
        Some(s)
    }

    /// Classifies a fault.
    pub fn classify(kind: SourceKind, in_window: bool) -> FaultClass {
        match kind {
            SourceKind::Recovery if in_window && !mutant!("vtd_window_faults_as_stale") => {
                FaultClass::OwnWindow
            }
            SourceKind::Recovery | SourceKind::Inherited => FaultClass::Stale,
            SourceKind::Unknown => FaultClass::UnknownSource,
        }
    }

    /// Emits a log line through the rate limiter.
    fn log(&mut self, now: u64, line: LogLine, out: &mut dyn FnMut(&LogLine)) {
        if now.saturating_sub(self.interval_start) >= self.config.log_interval_ns {
            self.interval_start = now;
            self.tokens = self.config.log_burst;
        }
        if self.tokens == 0 {
            self.pending_suppressed = self.pending_suppressed.saturating_add(1);
            self.totals.suppressed += 1;
            return;
        }
        self.tokens -= 1;
        if self.pending_suppressed > 0 {
            out(&LogLine::Suppressed(self.pending_suppressed));
            self.pending_suppressed = 0;
        }
        out(&line);
    }

    /// Drains the IOMMU's faults once and acts on each.
    ///
    /// # Errors
    ///
    /// The IOMMU's error when the fault registers cannot be read. A failed
    /// quarantine is not an error: it is logged as
    /// [`Action::QuarantineFailed`] and the source retried on its next fault.
    pub fn service<I: RecoveryIommu>(
        &mut self,
        iommu: &mut I,
        log: &mut dyn FnMut(&LogLine),
        deadline: Deadline,
    ) -> Result<ServiceSummary, I::Error> {
        let mut faults = [Fault {
            source_id: 0,
            address: 0,
            write: false,
            reason: 0,
        }; MAX_PER_DRAIN];
        let mut n = 0usize;
        let drained = iommu.drain_faults(&mut |f| {
            if let Some(slot) = faults.get_mut(n) {
                *slot = f;
                n += 1;
            }
        })?;
        let mut summary = ServiceSummary {
            records: drained.faults,
            overflow: drained.overflow,
            ..ServiceSummary::default()
        };
        self.totals.records += u64::from(drained.faults);
        let now = iommu.now_ns();
        if drained.overflow {
            self.totals.overflows = self.totals.overflows.saturating_add(1);
            let total = self.totals.overflows;
            self.log(now, LogLine::Overflow { total }, log);
        }
        let window = iommu.window();
        for &fault in faults.get(..n).unwrap_or(&[]) {
            let kind = iommu.source_kind(fault.source_id);
            let class = Self::classify(kind, window.contains(fault.address, 1));
            let threshold = self.config.quarantine_after;
            let halt = self.config.halt_on_window_fault;
            let (count, quarantined_already) = match self.slot(fault.source_id) {
                Some(s) => {
                    match class {
                        FaultClass::OwnWindow => s.own = s.own.saturating_add(1),
                        FaultClass::Stale => s.stale = s.stale.saturating_add(1),
                        FaultClass::UnknownSource => s.unknown = s.unknown.saturating_add(1),
                    }
                    (s.total(), s.quarantined)
                }
                // Table full: treat as past the threshold.
                None => {
                    self.totals.untracked += 1;
                    (u32::MAX, false)
                }
            };
            match class {
                FaultClass::OwnWindow => self.totals.own += 1,
                FaultClass::Stale => self.totals.stale += 1,
                FaultClass::UnknownSource => self.totals.unknown += 1,
            }
            let action = match class {
                FaultClass::OwnWindow if halt => {
                    summary.halt.get_or_insert(fault);
                    Action::Halt
                }
                FaultClass::OwnWindow => Action::Reported,
                // A device we drive is stopped by its driver's reset.
                FaultClass::Stale if kind == SourceKind::Recovery => Action::Reported,
                _ if quarantined_already => Action::AlreadyBlocked,
                _ if count < threshold => Action::Counted,
                _ if mutant!("vtd_never_quarantine") => Action::Counted,
                _ => match iommu.quarantine(fault.source_id, deadline) {
                    Ok(q) => {
                        if let Some(s) = self.slot(fault.source_id) {
                            s.quarantined = true;
                        }
                        if q == Quarantine::Blocked {
                            summary.quarantined += 1;
                            self.totals.quarantines += 1;
                            Action::Quarantined
                        } else {
                            Action::AlreadyBlocked
                        }
                    }
                    Err(_) => Action::QuarantineFailed,
                },
            };
            let event = FaultEvent {
                fault,
                class,
                action,
                source_faults: count,
            };
            self.log(now, LogLine::Fault(event), log);
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iommu::Drained;
    use paranoid::dma::WindowSpec;

    /// Every (source, window) pair: only the recovery kernel's own device
    /// faulting inside its window is its own fault; the same device outside
    /// the window is stale DMA, like any inherited one. Found by
    /// cargo-mutants: `in_window && ..` turned into `in_window || ..` (every
    /// recovery-device fault taken as its own) passed every other test.
    #[test]
    fn classify_every_source_and_window() {
        for (kind, in_window, class) in [
            (SourceKind::Recovery, true, FaultClass::OwnWindow),
            (SourceKind::Recovery, false, FaultClass::Stale),
            (SourceKind::Inherited, true, FaultClass::Stale),
            (SourceKind::Inherited, false, FaultClass::Stale),
            (SourceKind::Unknown, true, FaultClass::UnknownSource),
            (SourceKind::Unknown, false, FaultClass::UnknownSource),
        ] {
            assert_eq!(
                FaultPolicy::classify(kind, in_window),
                class,
                "{kind:?} in_window={in_window}"
            );
        }
    }

    /// A unit whose faults are a fixed list, drained once per service.
    struct Faulting {
        pending: Vec<Fault>,
        kind: SourceKind,
        quarantined: Vec<u16>,
    }

    impl RecoveryIommu for Faulting {
        type Error = ();
        fn window(&self) -> WindowSpec {
            WindowSpec {
                name: "recovery",
                base: 0x10_0000,
                size: 0x1_0000,
                page_size: 4096,
            }
        }
        fn now_ns(&self) -> u64 {
            0
        }
        fn source_kind(&self, _: u16) -> SourceKind {
            self.kind
        }
        fn drain_faults(&mut self, sink: &mut dyn FnMut(Fault)) -> Result<Drained, ()> {
            let n = self.pending.len();
            self.pending.drain(..).for_each(sink);
            Ok(Drained {
                faults: u32::try_from(n).unwrap_or(u32::MAX),
                overflow: false,
            })
        }
        fn quarantine(&mut self, source_id: u16, _: Deadline) -> Result<Quarantine, ()> {
            self.quarantined.push(source_id);
            Ok(Quarantine::Blocked)
        }
    }

    /// The recovery kernel's own device is never quarantined by the policy,
    /// however often it faults: inside its window (halting off) it is reported,
    /// outside it its driver's reset stops it. Found by cargo-mutants: without
    /// those two arms, both went through the threshold and were blocked.
    #[test]
    fn the_recovery_device_is_reported_not_quarantined() {
        let clock = paranoid::sim::SimClock::new();
        let deadline = Deadline::after(&clock, core::time::Duration::from_secs(1));
        for address in [0x10_0000, 0x4000_0000] {
            let fault = Fault {
                source_id: 0x18,
                address,
                write: true,
                reason: 5,
            };
            let mut unit = Faulting {
                pending: vec![fault; 40],
                kind: SourceKind::Recovery,
                quarantined: Vec::new(),
            };
            let mut policy = FaultPolicy::new(PolicyConfig {
                halt_on_window_fault: false,
                ..PolicyConfig::default()
            });
            let summary = policy
                .service(&mut unit, &mut |_| {}, deadline)
                .unwrap_or_else(|()| panic!("drain failed"));
            assert_eq!(summary.records, 40, "{address:#x}");
            assert_eq!(summary.quarantined, 0, "{address:#x}");
            assert!(unit.quarantined.is_empty(), "{address:#x}");
            assert!(summary.halt.is_none(), "{address:#x}");
        }
    }
}
