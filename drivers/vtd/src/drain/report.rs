//! What a drain found: each device's outcome, evidence and fence, and the
//! totals of the call.

use core::fmt;
use core::time::Duration;

use super::config::{DeviceClass, MAX_DRAIN_DEVICES};

/// Why a device was judged drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Its probe said idle.
    Probe,
    /// No probe (or one that could never tell): its whole window passed with
    /// no fault record from it. A presumption, not an observation.
    NoFaults,
}

/// What ended a wait that did not see the device idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The device's own window.
    Window,
    /// The overall deadline, before the device's window ended.
    Overall,
    /// The wait stopped early: the fault log could not be read (see
    /// [`DrainReport::service_error`]) or the clock did not advance.
    Aborted,
}

/// How one device's drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// It went idle (or stayed quiet) and was fenced.
    Drained {
        /// Time from the start of the drain.
        after: Duration,
        /// Why it counts as drained.
        evidence: Evidence,
    },
    /// Not seen idle when its deadline passed; fenced anyway.
    BusyAtDeadline {
        /// Time from the start of the drain.
        waited: Duration,
        /// Which deadline.
        limit: Limit,
    },
    /// Its DMA faulted during the drain (it was hitting addresses the old
    /// tables do not map); fenced without waiting further.
    Faulted {
        /// Fault records from it, from the start of the drain to the fence.
        faults: u32,
        /// Time of the first fault seen, from the start of the drain.
        after: Duration,
    },
    /// Its entry was not present when the drain started (fenced at takeover,
    /// quarantined, or never set up): its DMA faults already, so there was
    /// nothing to wait for.
    AlreadyBlocked,
    /// Attached to the recovery domain: the recovery kernel drives it, so it
    /// was neither waited for nor fenced (its driver's reset stops its DMA).
    Driven,
}

impl fmt::Display for DrainOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Drained {
                after,
                evidence: Evidence::Probe,
            } => write!(f, "drained after {after:?} (probe said idle)"),
            Self::Drained {
                after,
                evidence: Evidence::NoFaults,
            } => write!(
                f,
                "drained after {after:?} (no probe: no faults in its window)"
            ),
            Self::BusyAtDeadline { waited, limit } => {
                let limit = match limit {
                    Limit::Window => "its window",
                    Limit::Overall => "the overall deadline",
                    Limit::Aborted => "wait aborted",
                };
                write!(f, "busy at deadline after {waited:?} ({limit})")
            }
            Self::Faulted { faults, after } => {
                write!(f, "faulted ({faults} fault records, first at {after:?})")
            }
            Self::AlreadyBlocked => write!(f, "already blocked before the drain"),
            Self::Driven => write!(f, "driven by the recovery kernel"),
        }
    }
}

/// What the fence did to one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// Its entry was made not-present now and the caches invalidated.
    Blocked,
    /// Its entry was not present any more (quarantined by the fault policy
    /// during the drain, or before).
    AlreadyBlocked,
    /// The fence failed (see [`DrainReport::fence_error`]): its entry may be
    /// cleared in memory but the invalidation was not confirmed.
    Failed,
    /// Not fenced: the recovery kernel drives it.
    Kept,
}

impl Fence {
    /// True when the device's DMA is blocked.
    pub const fn is_blocked(self) -> bool {
        matches!(self, Self::Blocked | Self::AlreadyBlocked)
    }
}

/// One device's line of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceReport {
    /// The device.
    pub source_id: u16,
    /// Its class.
    pub class: DeviceClass,
    /// Its window, after override and clamping.
    pub window: Duration,
    /// How its drain ended.
    pub outcome: DrainOutcome,
    /// What the fence did.
    pub fence: Fence,
    /// Fault records from it between the start of the drain and the fence.
    pub faults: u32,
    /// Probe calls.
    pub probes: u32,
}

impl DeviceReport {
    pub(crate) const EMPTY: Self = Self {
        source_id: 0,
        class: DeviceClass::Other,
        window: Duration::ZERO,
        outcome: DrainOutcome::AlreadyBlocked,
        fence: Fence::AlreadyBlocked,
        faults: 0,
        probes: 0,
    };
}

/// What [`drain_then_fence`](super::drain_then_fence) saw and did.
#[derive(Debug, Clone)]
#[must_use = "the report says which devices drained and whether the fence held"]
pub struct DrainReport<E> {
    pub(crate) devices: [DeviceReport; MAX_DRAIN_DEVICES],
    pub(crate) count: usize,
    /// Time spent waiting (from the call to the last device settled).
    pub waited: Duration,
    /// Time of the whole call, fence included.
    pub total: Duration,
    /// Fault records serviced during the drain, all sources.
    pub faults: u32,
    /// Of those, records from sources not in the list.
    pub unattributed: u32,
    /// Fault services that found the unit had overflowed: records were lost,
    /// so fault attribution (and [`Evidence::NoFaults`]) is incomplete.
    pub overflows: u32,
    /// Probe calls, all devices.
    pub probes: u32,
    /// Devices past [`MAX_DRAIN_DEVICES`]: fenced at the start without a
    /// drain and not reported individually.
    pub excess: u32,
    /// Why the wait was aborted, when the fault log could not be read.
    pub service_error: Option<E>,
    /// The first error of the fence, when it failed.
    pub fence_error: Option<E>,
}

impl<E> DrainReport<E> {
    /// The devices, in the order given.
    pub fn devices(&self) -> &[DeviceReport] {
        self.devices.get(..self.count).unwrap_or(&[])
    }

    /// The line of `source_id` (its first, if listed twice).
    pub fn device(&self, source_id: u16) -> Option<&DeviceReport> {
        self.devices().iter().find(|d| d.source_id == source_id)
    }

    /// True when every listed device not driven by the recovery kernel is
    /// blocked, excess devices included.
    pub fn all_fenced(&self) -> bool {
        self.fence_error.is_none()
            && self
                .devices()
                .iter()
                .all(|d| d.fence.is_blocked() || d.outcome == DrainOutcome::Driven)
    }

    fn count_of(&self, f: impl Fn(&DrainOutcome) -> bool) -> usize {
        self.devices().iter().filter(|d| f(&d.outcome)).count()
    }
}

impl<E: fmt::Display> fmt::Display for DrainReport<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vtd drain: {} devices in {:?} (waited {:?}): {} drained, {} busy at deadline, {} faulted; {} fault records ({} unattributed), {} overflows, {} probe calls",
            self.count,
            self.total,
            self.waited,
            self.count_of(|o| matches!(o, DrainOutcome::Drained { .. })),
            self.count_of(|o| matches!(o, DrainOutcome::BusyAtDeadline { .. })),
            self.count_of(|o| matches!(o, DrainOutcome::Faulted { .. })),
            self.faults,
            self.unattributed,
            self.overflows,
            self.probes,
        )?;
        for d in self.devices() {
            let fence = match d.fence {
                Fence::Blocked => "blocked",
                Fence::AlreadyBlocked => "already blocked",
                Fence::Failed => "FENCE FAILED",
                Fence::Kept => "kept",
            };
            write!(
                f,
                "\n  {:02x}:{:02x}.{} {} window {:?}: {}; fence: {fence}",
                d.source_id >> 8,
                (d.source_id >> 3) & 0x1f,
                d.source_id & 7,
                d.class.name(),
                d.window,
                d.outcome,
            )?;
        }
        if self.excess > 0 {
            write!(f, "\n  {} more devices fenced without a drain", self.excess)?;
        }
        if self.overflows > 0 {
            write!(f, "\n  fault records were lost: attribution is incomplete")?;
        }
        if let Some(e) = &self.service_error {
            write!(f, "\n  fault service failed, wait aborted: {e}")?;
        }
        if let Some(e) = &self.fence_error {
            write!(f, "\n  fence failed: {e}")?;
        }
        Ok(())
    }
}
