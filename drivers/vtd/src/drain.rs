//! Drain, then fence: let inherited DMA finish where the dead kernel pointed
//! it, for a bounded window per device, then block the devices.
//!
//! Stale DMA is not all alike. A NIC's TX ring drains in microseconds to
//! milliseconds; its RX ring fills slowly and is harmless while nobody services
//! it; a storage controller's outstanding writes may still be landing. Under
//! [`Policy::Adopt`](crate::takeover::Policy::Adopt) the old translation is
//! kept, so those transfers land in the dead kernel's buffers, where they do no
//! harm. [`drain_then_fence`] gives each listed device a window (by
//! [`DeviceClass`], or its own override) to finish, watches for it to go idle,
//! then fences every listed device: its context entry is made not-present and
//! the caches invalidated in one batch, so whatever it still does from then on
//! faults instead of landing.
//!
//! # How idleness is decided
//!
//! Each pass of the wait services the fault log once through the caller's
//! [`FaultPolicy`] (so faults are classified, counted and quarantined as
//! usual) while attributing every record to its source, then asks each
//! unsettled device:
//!
//! - **Faulted**: a fault record from the device arrived during the drain
//!   (records pending when the call starts count too): its DMA hits addresses
//!   the old tables do not map, so waiting longer cannot make it land. It is
//!   settled at once and fenced with the others (the policy may quarantine it
//!   earlier, after its threshold).
//! - **With an [`IdleProbe`]**: the probe saying [`Activity::Idle`] settles
//!   the device as drained. [`Activity::Busy`] and [`Activity::Unknown`] keep
//!   it waiting. When its deadline passes the probe is asked once more; a
//!   device still not idle is busy at the deadline and fenced anyway, unless
//!   the probe never once said busy (it could not tell), in which case it is
//!   judged like a device without a probe.
//! - **Without a probe**: the device counts as drained when its whole window
//!   passes with no fault record from it ([`Evidence::NoFaults`]: a device
//!   whose DMA still lands in mapped memory is not seen by the IOMMU, so this
//!   is a presumption, and the report says so). If the overall deadline ends
//!   the wait before its window, it is reported busy at the deadline.
//!
//! Devices attached to the recovery domain are left alone
//! ([`DrainOutcome::Driven`]); devices whose entry is already not-present
//! (fenced at takeover, or quarantined) are reported as such and not waited for.
//!
//! # Bounds
//!
//! All devices drain at once: the wait ends when every device is settled, at
//! the latest at its window's end or the overall deadline, so it lasts at most
//! the largest window (windows are clamped to [`MAX_DRAIN_WINDOW`]). A device's
//! probe is called at most once per [`DrainConfig::poll_interval`] plus once at
//! its deadline, and the number of passes is capped from the windows and the
//! interval, so a clock that stops advancing cannot hold the loop. The fence
//! afterwards has its own bound ([`DrainConfig::fence_timeout`]). Nothing
//! panics; hardware errors end up in the [`DrainReport`].
//!
//! # Order in the recovery kernel
//!
//! Take over with `Policy::Adopt`, then drain every inherited device,
//! including those the recovery kernel will drive (fencing ends their stale
//! DMA; [`Vtd::attach`](crate::Vtd::attach) then gives them the recovery
//! domain), then attach and reset the devices it drives.
//!
//! # Examples
//!
//! A NIC whose TX ring empties after 3 ms and an `edu` device without a probe,
//! on the simulated unit:
//!
//! ```
//! # #[cfg(feature = "model")] {
//! use core::time::Duration;
//! use paranoid::dma::WindowSpec;
//! use paranoid::time::{Clock, Deadline};
//! use paranoid_vtd::drain::{drain_then_fence, Activity, DeviceClass, DrainConfig, DrainDevice, DrainOutcome};
//! use paranoid_vtd::policy::{FaultPolicy, PolicyConfig};
//! use paranoid_vtd::takeover::{Policy, TakeoverConfig};
//! use paranoid_vtd::{model::Harness, Vtd};
//!
//! const NIC: u16 = 0x0010; // 00:02.0
//! const EDU: u16 = 0x0020; // 00:04.0
//! let h = Harness::qemu_like();
//! let old = h.old_kernel_tables(&[(NIC, 1), (EDU, 2)]);
//! let window = WindowSpec { name: "recovery", base: 0x7ff0_0000, size: 1 << 20, page_size: 4096 };
//! let deadline = Deadline::after(&h.clock, Duration::from_secs(1));
//! let (mut vtd, _) = Vtd::take_over(h.registers(), h.clock.clone(), h.memory(), h.pool(),
//!     h.memory_map(), &TakeoverConfig::new(Policy::Adopt, window), deadline).unwrap();
//!
//! // The NIC's probe: TX head == tail (here: idle 3 ms from now).
//! let clock = h.clock.clone();
//! let tx_empty_at = clock.now_ns() + 3_000_000;
//! let mut tx_idle = move || if clock.now_ns() >= tx_empty_at { Activity::Idle } else { Activity::Busy };
//! let mut devices = [
//!     DrainDevice::new(NIC, DeviceClass::from_base_class(0x02)).with_probe(&mut tx_idle),
//!     DrainDevice::new(EDU, DeviceClass::Other).with_window(Duration::from_millis(50)),
//! ];
//! let mut policy = FaultPolicy::new(PolicyConfig::default());
//! let overall = Deadline::after(&h.clock, Duration::from_secs(1));
//! let report = drain_then_fence(&mut vtd, &mut devices, &DrainConfig::default(), &mut policy,
//!     &mut |_line| {}, overall);
//! println!("{report}");
//! assert!(matches!(report.device(NIC).unwrap().outcome, DrainOutcome::Drained { .. }));
//! assert!(report.all_fenced());
//! assert!(report.total <= Duration::from_millis(51));
//! // From now on the dead kernel's DMA faults instead of landing.
//! assert!(h.dma().write(EDU, old.mappings[1].iova, b"late").is_err());
//! # }
//! ```

use core::fmt;
use core::time::Duration;

use paranoid::dma::WindowSpec;
use paranoid::time::{duration_ns, Deadline};

use crate::iommu::{Drained, Fault, Fencing, Quarantine, RecoveryIommu, SourceKind};
use crate::policy::{FaultPolicy, LogLine};

/// Devices one call drains and reports on individually; further devices are
/// fenced at once, without a drain (counted in [`DrainReport::excess`]).
pub const MAX_DRAIN_DEVICES: usize = 32;
/// The longest drain window honoured; longer windows are clamped.
pub const MAX_DRAIN_WINDOW: Duration = Duration::from_secs(5);
/// The shortest poll interval honoured (bounds the probe calls).
pub const MIN_POLL_INTERVAL: Duration = Duration::from_micros(10);

/// What kind of device is draining: it sets the default window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceClass {
    /// PCI base class 0x02: TX drains fast, RX only fills.
    Network,
    /// PCI base class 0x01: outstanding writes may still be landing.
    Storage,
    /// Anything else (QEMU's `edu`, accelerators...).
    Other,
}

impl DeviceClass {
    /// The class of a device from its PCI base class code (config space 0x0B,
    /// PCI 3.0 appendix D). Every value maps to a class: a garbage code only
    /// picks another default window.
    pub const fn from_base_class(base_class: u8) -> Self {
        match base_class {
            0x02 => Self::Network,
            0x01 => Self::Storage,
            _ => Self::Other,
        }
    }

    /// A short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Storage => "storage",
            Self::Other => "other",
        }
    }
}

/// What a device's probe reads from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// It still has DMA outstanding (TX head != tail, edu's DMA-busy bit set).
    Busy,
    /// Nothing outstanding.
    Idle,
    /// The probe cannot tell (the device reads all-ones, a register is
    /// nonsense).
    Unknown,
}

/// Tells whether a device still has DMA in flight, from its registers.
///
/// Implemented by the caller, who knows the device: a NIC compares its TX
/// descriptor head and tail, QEMU's `edu` reads its DMA command register's
/// busy bit. An implementation must be bounded: a few register reads, no
/// waiting, every value checked as untrusted. It must not change the
/// device's state. Closures `FnMut() -> Activity` implement it.
pub trait IdleProbe {
    /// The device's activity now.
    fn activity(&mut self) -> Activity;
}

impl<F: FnMut() -> Activity> IdleProbe for F {
    fn activity(&mut self) -> Activity {
        self()
    }
}

/// Drain windows and pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainConfig {
    /// Window of [`DeviceClass::Network`] devices (default 20 ms).
    pub network: Duration,
    /// Window of [`DeviceClass::Storage`] devices (default 200 ms).
    pub storage: Duration,
    /// Window of [`DeviceClass::Other`] devices (default 150 ms; QEMU's `edu`
    /// lands its DMA 100 ms after it is armed).
    pub other: Duration,
    /// Time between passes (fault service and probes); default 100 µs, at
    /// least [`MIN_POLL_INTERVAL`].
    pub poll_interval: Duration,
    /// Bound of the final fence (and of quarantines during the drain);
    /// default 100 ms.
    pub fence_timeout: Duration,
}

impl DrainConfig {
    /// The defaults.
    pub const DEFAULT: Self = Self {
        network: Duration::from_millis(20),
        storage: Duration::from_millis(200),
        other: Duration::from_millis(150),
        poll_interval: Duration::from_micros(100),
        fence_timeout: Duration::from_millis(100),
    };

    /// The configured window of `class` (before clamping).
    pub const fn window(&self, class: DeviceClass) -> Duration {
        match class {
            DeviceClass::Network => self.network,
            DeviceClass::Storage => self.storage,
            DeviceClass::Other => self.other,
        }
    }

    fn interval_ns(&self) -> u64 {
        duration_ns(self.poll_interval.max(MIN_POLL_INTERVAL))
    }
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One device to drain.
pub struct DrainDevice<'p> {
    /// Its requester id (`PciAddress::source_id()`).
    pub source_id: u16,
    /// Its class (sets the default window).
    pub class: DeviceClass,
    /// A window declared by its driver or the configuration, instead of the
    /// class default.
    pub window: Option<Duration>,
    /// How to tell it is idle, if the device can tell.
    pub probe: Option<&'p mut dyn IdleProbe>,
}

impl<'p> DrainDevice<'p> {
    /// A device with its class's window and no probe.
    pub fn new(source_id: u16, class: DeviceClass) -> Self {
        Self {
            source_id,
            class,
            window: None,
            probe: None,
        }
    }

    /// Overrides the class window.
    #[must_use]
    pub fn with_window(self, window: Duration) -> Self {
        Self {
            window: Some(window),
            ..self
        }
    }

    /// Watches the device through `probe`.
    #[must_use]
    pub fn with_probe(self, probe: &'p mut dyn IdleProbe) -> Self {
        Self {
            probe: Some(probe),
            ..self
        }
    }
}

impl fmt::Debug for DrainDevice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainDevice")
            .field("source_id", &self.source_id)
            .field("class", &self.class)
            .field("window", &self.window)
            .field("probe", &self.probe.is_some())
            .finish()
    }
}

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
    const EMPTY: Self = Self {
        source_id: 0,
        class: DeviceClass::Other,
        window: Duration::ZERO,
        outcome: DrainOutcome::AlreadyBlocked,
        fence: Fence::AlreadyBlocked,
        faults: 0,
        probes: 0,
    };
}

/// What [`drain_then_fence`] saw and did.
#[derive(Debug, Clone)]
#[must_use = "the report says which devices drained and whether the fence held"]
pub struct DrainReport<E> {
    devices: [DeviceReport; MAX_DRAIN_DEVICES],
    count: usize,
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

/// A device being drained.
#[derive(Clone, Copy)]
struct Slot {
    report: DeviceReport,
    settled: bool,
    /// When its wait ends (clock reading, ns) and which limit that is.
    deadline_ns: u64,
    limit: Limit,
    seen_busy: bool,
}

impl Slot {
    const EMPTY: Self = Self {
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
/// fences them; see the [module docs](self) for how idleness is decided.
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
fn step<'p>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_from_pci_base_class() {
        assert_eq!(DeviceClass::from_base_class(0x02), DeviceClass::Network);
        assert_eq!(DeviceClass::from_base_class(0x01), DeviceClass::Storage);
        assert_eq!(DeviceClass::from_base_class(0x00), DeviceClass::Other);
        assert_eq!(DeviceClass::from_base_class(0xff), DeviceClass::Other);
    }

    #[test]
    fn default_windows_per_class() {
        let c = DrainConfig::default();
        assert_eq!(c.window(DeviceClass::Network), Duration::from_millis(20));
        assert_eq!(c.window(DeviceClass::Storage), Duration::from_millis(200));
        assert_eq!(c.window(DeviceClass::Other), Duration::from_millis(150));
        let tiny = DrainConfig {
            poll_interval: Duration::ZERO,
            ..c
        };
        assert_eq!(tiny.interval_ns(), duration_ns(MIN_POLL_INTERVAL));
    }

    #[test]
    fn a_probe_that_never_says_busy_is_judged_by_faults() {
        let mut slot = Slot {
            deadline_ns: 1_000,
            ..Slot::EMPTY
        };
        let mut unknown = || Activity::Unknown;
        step(&mut slot, Some(&mut unknown), 500, 0);
        assert!(!slot.settled);
        step(&mut slot, Some(&mut unknown), 1_000, 0);
        assert_eq!(
            slot.report.outcome,
            DrainOutcome::Drained {
                after: Duration::from_nanos(1_000),
                evidence: Evidence::NoFaults
            }
        );
        let mut slot = Slot {
            deadline_ns: 1_000,
            ..Slot::EMPTY
        };
        let mut busy_then_unknown = {
            let mut calls = 0;
            move || {
                calls += 1;
                if calls == 1 {
                    Activity::Busy
                } else {
                    Activity::Unknown
                }
            }
        };
        step(&mut slot, Some(&mut busy_then_unknown), 0, 0);
        step(&mut slot, Some(&mut busy_then_unknown), 2_000, 0);
        assert_eq!(
            slot.report.outcome,
            DrainOutcome::BusyAtDeadline {
                waited: Duration::from_nanos(2_000),
                limit: Limit::Window
            }
        );
    }

    #[test]
    fn faults_settle_before_the_probe_is_asked() {
        let mut slot = Slot {
            deadline_ns: 1_000,
            ..Slot::EMPTY
        };
        slot.report.faults = 2;
        let mut asked = false;
        let mut probe = || {
            asked = true;
            Activity::Idle
        };
        assert!(!step(&mut slot, Some(&mut probe), 10, 0));
        assert!(!asked);
        assert!(matches!(
            slot.report.outcome,
            DrainOutcome::Faulted { faults: 2, .. }
        ));
    }
}
