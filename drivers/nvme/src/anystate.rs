//! Proptest strategies for the states a crashed kernel leaves an NVMe controller
//! in, and for a malicious or buggy controller.
//!
//! An [`AnyState`] is applied to a fresh [`Bench`] before the driver runs:
//! the dead kernel's register writes (through the model, as it did them), its
//! queues at addresses outside the recovery window with commands submitted and
//! not fetched, the command register as it left it, and the model's faults.
//!
//! Each state also says which faults it injects ([`AnyState::injected`]), as a
//! typed set of [`Fault`]s; [`check`] holds a run to the oracle that knows them
//! (see its docs), and [`FaultTable`] prints what each fault class led to.

use std::rc::Rc;
use std::time::Duration;

use paranoid::dma::{FromDevice, ToDevice};
use paranoid::lifecycle::Cause;
use paranoid::pci::ConfigAccess;
use paranoid::sim::{SimClock, SimMmio, WatchedPci};
use paranoid::time::Clock;
use proptest::collection::vec;
use proptest::prelude::*;

use crate::model::{
    Bench, CompletionFault, Faults, IdentifyFaults, NvmeModel, Params, Persist, SimWindow,
    OLD_KERNEL_BASE,
};
use crate::regs::offset;
use crate::{Config, Nvme, DEFAULT_INIT_BUDGET};

/// The controller state the dead kernel left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inherited {
    /// Never enabled since power-on.
    PowerOn,
    /// Enabled by firmware (SeaBIOS leaves it so), admin queue in old memory.
    Firmware,
    /// Enabled with I/O queues live and commands submitted, doorbells rung.
    LiveQueues {
        /// Admin commands submitted and not fetched.
        admin_pending: u16,
        /// I/O queue pairs (1..=3).
        io_queues: u16,
        /// I/O commands submitted per queue and not fetched.
        io_pending: u16,
    },
    /// CC.EN just cleared, CSTS.RDY not yet (the reset delay fault decides how long).
    ResetInProgress,
    /// CC.EN just set, CSTS.RDY not yet.
    EnableInProgress,
    /// An enable that failed: CC.EN set, CSTS.CFS set.
    EnableFailed,
    /// A normal shutdown was notified (CC.SHN) and completed.
    ShutDown,
}

/// One crashed-kernel state plus device misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnyState {
    /// PCI command register as left (bus master, memory decoding, INTx).
    pub command: u16,
    /// MSI-X left enabled.
    pub msix: bool,
    /// The controller state.
    pub inherited: Inherited,
    /// Garbage register writes by the dead kernel, in order, after `inherited`.
    pub garbage: Vec<(usize, u32)>,
    /// CAP.TO reported instead of 15.
    pub cap_to: Option<u8>,
    /// CAP.MQES reported instead of 2047.
    pub cap_mqes: Option<u16>,
    /// CAP.DSTRD reported instead of 0.
    pub cap_dstrd: Option<u8>,
    /// CAP.MPSMIN reported instead of 0.
    pub cap_mpsmin: Option<u8>,
    /// CAP.CSS reported instead of 0x41.
    pub cap_css: Option<u8>,
    /// VS reported instead of 1.4.
    pub vs: Option<u32>,
    /// Device misbehaviour.
    pub faults: Faults,
    /// The device vanishes (reads all-ones) after this many register accesses.
    pub gone_after: Option<u64>,
}

/// Registers a dead kernel may have scribbled on.
pub const WRITABLE: [usize; 8] = [
    offset::CC,
    offset::AQA,
    offset::ASQ,
    offset::ASQ + 4,
    offset::ACQ,
    offset::ACQ + 4,
    offset::INTMS,
    offset::INTMC,
];

fn persist() -> impl Strategy<Value = Persist> {
    prop_oneof![
        3 => Just(Persist::Transient),
        2 => Just(Persist::UntilFlr),
        1 => Just(Persist::Forever),
    ]
}

fn rare<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
    percent: u32,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![
        (100 - percent) => Just(None),
        percent => s.prop_map(Some),
    ]
    .boxed()
}

fn millis(range: std::ops::Range<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_millis)
}

fn completion_fault() -> impl Strategy<Value = CompletionFault> {
    prop_oneof![
        Just(CompletionFault::UnknownCid),
        Just(CompletionFault::WrongPhase),
        Just(CompletionFault::SqHeadOutOfRange),
        Just(CompletionFault::SqHeadAtQueueSize),
        Just(CompletionFault::SqHeadPastTail),
        Just(CompletionFault::WrongSqId),
        Just(CompletionFault::ReservedStatus),
        Just(CompletionFault::Drop),
        Just(CompletionFault::Duplicate),
    ]
}

fn identify_faults() -> impl Strategy<Value = IdentifyFaults> {
    (
        (
            rare(any::<u8>(), 4),
            rare(any::<u8>(), 1),
            rare(any::<u8>(), 1),
            rare(prop_oneof![Just(0u32), any::<u32>()], 1),
        ),
        (
            rare(
                prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>(), 1u64..4096],
                5,
            ),
            rare(any::<u64>(), 3),
            rare(any::<u8>(), 3),
            rare(any::<u8>(), 3),
            rare(prop_oneof![0u8..16, any::<u8>()], 5),
            rare(any::<u16>(), 3),
        ),
    )
        .prop_map(
            |((mdts, sqes, cqes, nn), (nsze, ncap, nlbaf, flbas, lbads, ms))| IdentifyFaults {
                mdts,
                sqes,
                cqes,
                nn,
                nsze,
                ncap,
                nlbaf,
                flbas,
                lbads,
                ms,
            },
        )
}

fn faults() -> impl Strategy<Value = Faults> {
    (
        (
            prop_oneof![6 => Just(Duration::ZERO), 3 => millis(0..200), 1 => millis(0..12_000)],
            prop_oneof![6 => Just(Duration::ZERO), 3 => millis(0..200), 1 => millis(0..12_000)],
            rare(persist(), 4),
            rare(persist(), 4),
            rare(
                prop_oneof![Just(Duration::from_micros(500)), millis(1..50)],
                4,
            ),
            rare(persist(), 6),
        ),
        (
            prop_oneof![
                6 => Just(Vec::new()),
                4 => vec((0u64..10, completion_fault()), 1..3),
            ],
            prop::bool::weighted(0.2),
            identify_faults(),
        ),
    )
        .prop_map(
            |(
                (reset_delay, ready_delay, rdy_stuck, never_ready, rdy_flap, cfs),
                (completions, abort_ineffective, identify),
            )| Faults {
                reset_delay,
                ready_delay,
                rdy_stuck,
                never_ready,
                rdy_flap,
                cfs,
                completions,
                abort_ineffective,
                identify,
                shutdown_never_completes: false,
            },
        )
}

fn inherited() -> impl Strategy<Value = Inherited> {
    prop_oneof![
        2 => Just(Inherited::PowerOn),
        3 => Just(Inherited::Firmware),
        5 => (0u16..8, 1u16..=3, 0u16..16).prop_map(|(admin_pending, io_queues, io_pending)| {
            Inherited::LiveQueues { admin_pending, io_queues, io_pending }
        }),
        2 => Just(Inherited::ResetInProgress),
        2 => Just(Inherited::EnableInProgress),
        2 => Just(Inherited::EnableFailed),
        1 => Just(Inherited::ShutDown),
    ]
}

fn garbage() -> impl Strategy<Value = Vec<(usize, u32)>> {
    prop_oneof![
        3 => Just(Vec::new()),
        2 => vec((prop::sample::select(WRITABLE.to_vec()), any::<u32>()), 1..6),
    ]
}

/// Any crashed-kernel state, with device misbehaviour mixed in.
pub fn any_state() -> impl Strategy<Value = AnyState> {
    (
        (
            prop_oneof![
                Just(0x0006u16),
                Just(0x0002),
                Just(0x0000),
                Just(0x0406),
                any::<u16>()
            ],
            any::<bool>(),
            inherited(),
            garbage(),
        ),
        (
            rare(prop_oneof![Just(0u8), Just(0xff), any::<u8>()], 6),
            rare(prop_oneof![Just(0u16), Just(1), any::<u16>()], 3),
            rare(0u8..16, 3),
            rare(0u8..16, 2),
            rare(any::<u8>(), 2),
            rare(prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()], 2),
        ),
        faults(),
        rare(0u64..400, 4),
        // A quarter of the states keep a healthy device (the dead kernel's
        // state and scribbles only): the oracle requires those to reach Ready
        // with their data verified.
        prop::bool::weighted(0.25),
    )
        .prop_map(
            |(
                (command, msix, inherited, garbage),
                (cap_to, cap_mqes, cap_dstrd, cap_mpsmin, cap_css, vs),
                faults,
                gone_after,
                healthy,
            )| {
                let state = AnyState {
                    command,
                    msix,
                    inherited,
                    garbage,
                    cap_to,
                    cap_mqes,
                    cap_dstrd,
                    cap_mpsmin,
                    cap_css,
                    vs,
                    faults,
                    gone_after,
                };
                if healthy {
                    state.healthy()
                } else {
                    state
                }
            },
        )
}

/// Old-kernel enable: admin queues in the dead kernel's memory, CC.EN.
fn old_enable(model: &mut crate::model::NvmeModel) {
    model.old_kernel_write(offset::AQA, 0x001f_001f);
    model.old_kernel_write(offset::ASQ, OLD_KERNEL_BASE as u32);
    model.old_kernel_write(offset::ASQ + 4, (OLD_KERNEL_BASE >> 32) as u32);
    model.old_kernel_write(offset::ACQ, (OLD_KERNEL_BASE + 0x1000) as u32);
    model.old_kernel_write(offset::ACQ + 4, ((OLD_KERNEL_BASE + 0x1000) >> 32) as u32);
    model.old_kernel_write(offset::CC, 0x0046_0001);
}

impl AnyState {
    /// Puts `bench` into this state (bus mastering stays off until the end, so
    /// setting up makes no DMA).
    pub fn apply(&self, bench: &Bench) {
        bench.set_command(0);
        {
            let mut m = bench.model.borrow_mut();
            let p = &mut m.params;
            if let Some(v) = self.cap_to {
                p.to = v;
            }
            if let Some(v) = self.cap_mqes {
                p.mqes = v;
            }
            if let Some(v) = self.cap_dstrd {
                p.dstrd = v;
            }
            if let Some(v) = self.cap_mpsmin {
                p.mpsmin = v;
            }
            if let Some(v) = self.cap_css {
                p.css = v;
            }
            if let Some(v) = self.vs {
                p.vs = v;
            }
            // The dead kernel's history runs on a healthy device; the faults
            // that shape the inherited state apply where they belong.
            let faults = self.faults.clone();
            m.faults = Faults {
                reset_delay: faults.reset_delay,
                ready_delay: faults.ready_delay,
                ..Faults::default()
            };
            match self.inherited {
                Inherited::PowerOn => {}
                Inherited::Firmware => old_enable(&mut m),
                Inherited::LiveQueues {
                    admin_pending,
                    io_queues,
                    io_pending,
                } => {
                    old_enable(&mut m);
                    for q in 1..=io_queues {
                        let base = OLD_KERNEL_BASE + 0x2000 * u64::from(q);
                        m.inherit_io_queue(q, base, base + 0x1000, 32, io_pending);
                    }
                    m.inherit_admin_pending(admin_pending);
                }
                Inherited::ResetInProgress => {
                    old_enable(&mut m);
                    m.old_kernel_write(offset::CC, 0);
                }
                Inherited::EnableInProgress => old_enable(&mut m),
                Inherited::EnableFailed => {
                    m.old_kernel_write(offset::AQA, 0);
                    m.old_kernel_write(offset::CC, 1);
                }
                Inherited::ShutDown => {
                    old_enable(&mut m);
                    m.old_kernel_write(offset::CC, 0x0046_4001);
                }
            }
            for &(reg, v) in &self.garbage {
                m.old_kernel_write(reg, v);
            }
            m.faults = faults;
            // The dead kernel's own mistakes are not the driver's.
            m.violations.clear();
            if m.faults.cfs.is_some() {
                m.csts |= 2;
            }
            if m.faults.rdy_stuck.is_some() && m.cc & 1 == 0 && self.inherited != Inherited::PowerOn
            {
                m.csts |= 1;
            }
        }
        // A live MSI-X capability (Message Control at cap + 2, bit 15).
        if self.msix {
            let mut pci = bench.pci.clone();
            if let Ok(Some(at)) = paranoid::pci::caps::find(&mut pci, bench.address, 0x11) {
                bench.config.borrow_mut().poke8(at + 3, 0x80);
            }
        }
        bench.set_command(self.command);
        bench.mmio.set_gone_after(self.gone_after);
    }
}

/// A fault an [`AnyState`] injects: the device misbehaving, as opposed to the
/// dead kernel's state (live queues, a reset or an enable in progress, garbage
/// in the registers, the command register as left), which a correct driver
/// always brings back to Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// BAR0 reads all-ones after some accesses (surprise removal), or VS
    /// reads all-ones (indistinguishable).
    Gone,
    /// CSTS.RDY clears later than half the ready timeout CAP.TO allows.
    SlowReset,
    /// CSTS.RDY sets later than half the ready timeout CAP.TO allows.
    SlowReady,
    /// CSTS.RDY never clears after CC.EN = 0 (for one reset, until FLR, or ever).
    StuckReset,
    /// CSTS.RDY never sets after CC.EN = 1.
    NeverReady,
    /// CSTS.RDY toggles while the controller is disabled.
    ReadyFlapping,
    /// CSTS.CFS (controller fatal status).
    Cfs,
    /// CAP or VS report values other than the healthy device's (MQES, DSTRD,
    /// MPSMIN, CSS, VS; some are legal and some not).
    BadCapability,
    /// Completion queue entries that lie (unknown command id, wrong SQ id, SQ
    /// head out of range, reserved status, wrong phase, dropped, duplicated).
    LyingCompletion,
    /// Identify Controller or Namespace data other than the healthy device's.
    IdentifyGarbage,
}

/// Error kinds ([`crate::NvmeError::class`], and `"init budget"` when the
/// init wrapper's budget ran out) each fault may explain. The oracle fails a
/// typed error that no injected fault explains.
const ALLOWED: [(Fault, &[&str]); 10] = [
    // Gone mid-I/O: the doorbell write is lost, the command times out, the
    // reset that follows reads all-ones and fences; later I/O is refused.
    (
        Fault::Gone,
        &["device gone", "command timeout", "not ready"],
    ),
    (Fault::SlowReset, &["ready timeout", "init budget"]),
    (Fault::SlowReady, &["ready timeout", "init budget"]),
    (Fault::StuckReset, &["ready timeout", "init budget"]),
    (Fault::NeverReady, &["ready timeout", "init budget"]),
    (
        Fault::ReadyFlapping,
        &["ready flapping", "ready timeout", "init budget"],
    ),
    (
        Fault::Cfs,
        &["controller fatal", "ready timeout", "init budget"],
    ),
    (Fault::BadCapability, &["bad capability", "unsupported"]),
    // A lie is refused (bad completion); a hidden or dropped entry times out;
    // after a failed recovery the driver is fenced and refuses I/O.
    (
        Fault::LyingCompletion,
        &[
            "bad completion",
            "bad feature",
            "command timeout",
            "not ready",
        ],
    ),
    // A namespace claimed larger than the controller's own: the controller
    // fails the I/O past its real end (LBA Out of Range). A metadata size or a
    // block size the driver cannot write is refused as an unsupported format.
    // The garbage persists across resets, so the driver escalates, and each
    // attempt repeats the reset and enable waits: with slow (in-spec) timing
    // the init budget runs out before the ladder does.
    (
        Fault::IdentifyGarbage,
        &[
            "init budget",
            "bad identify",
            "unsupported",
            "unsupported format",
            "namespace absent",
            "namespace inactive",
            "command failed",
        ],
    ),
];

impl Fault {
    /// Every fault class, in table order.
    pub const ALL: [Fault; 10] = [
        Fault::Gone,
        Fault::SlowReset,
        Fault::SlowReady,
        Fault::StuckReset,
        Fault::NeverReady,
        Fault::ReadyFlapping,
        Fault::Cfs,
        Fault::BadCapability,
        Fault::LyingCompletion,
        Fault::IdentifyGarbage,
    ];

    /// Short name for the fault-class table.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::Gone => "device gone",
            Fault::SlowReset => "slow reset",
            Fault::SlowReady => "slow ready",
            Fault::StuckReset => "stuck reset (RDY)",
            Fault::NeverReady => "never ready",
            Fault::ReadyFlapping => "RDY flapping",
            Fault::Cfs => "CFS",
            Fault::BadCapability => "bad capability",
            Fault::LyingCompletion => "lying completion",
            Fault::IdentifyGarbage => "identify garbage",
        }
    }

    /// The error kinds this fault may explain.
    pub fn allowed(self) -> &'static [&'static str] {
        ALLOWED
            .iter()
            .find(|(f, _)| *f == self)
            .map_or(&[], |(_, kinds)| *kinds)
    }
}

impl paranoid::sim::campaign::FaultClass for Fault {
    const ALL: &'static [Self] = &Fault::ALL;

    fn name(self) -> &'static str {
        Fault::name(self)
    }
}

/// The faults one state injects.
pub type FaultSet = std::collections::BTreeSet<Fault>;

/// The ready timeout the driver derives from CAP.TO (floor and ceiling of
/// [`Config::default`]).
fn ready_timeout(cap_to: u8) -> Duration {
    let c = Config::default();
    (Duration::from_millis(500) * u32::from(cap_to))
        .max(c.ready_timeout_floor)
        .min(c.ready_timeout_ceiling)
}

impl AnyState {
    /// This state with a healthy device: the dead kernel's state and
    /// scribbles kept, every device fault removed.
    pub fn healthy(self) -> Self {
        Self {
            cap_to: None,
            cap_mqes: None,
            cap_dstrd: None,
            cap_mpsmin: None,
            cap_css: None,
            vs: None,
            faults: Faults::default(),
            gone_after: None,
            ..self
        }
    }

    /// The faults this state injects, by class.
    pub fn injected(&self) -> FaultSet {
        let mut set = FaultSet::new();
        let healthy = Params::default();
        let f = &self.faults;
        let timeout = ready_timeout(self.cap_to.unwrap_or(healthy.to));
        let mut add = |on: bool, fault| {
            if on {
                set.insert(fault);
            }
        };
        // VS reading 0xffff_ffff is what a gone device shows: no driver can
        // tell the two apart.
        add(
            self.gone_after.is_some() || self.vs == Some(u32::MAX),
            Fault::Gone,
        );
        add(f.reset_delay * 2 > timeout, Fault::SlowReset);
        add(f.ready_delay * 2 > timeout, Fault::SlowReady);
        add(f.rdy_stuck.is_some(), Fault::StuckReset);
        add(f.never_ready.is_some(), Fault::NeverReady);
        add(f.rdy_flap.is_some(), Fault::ReadyFlapping);
        add(f.cfs.is_some(), Fault::Cfs);
        add(
            self.cap_mqes.is_some_and(|v| v != healthy.mqes)
                || self.cap_dstrd.is_some_and(|v| v != healthy.dstrd)
                || self.cap_mpsmin.is_some_and(|v| v != healthy.mpsmin)
                || self.cap_css.is_some_and(|v| v != healthy.css)
                || self.vs.is_some_and(|v| v != healthy.vs),
            Fault::BadCapability,
        );
        add(!f.completions.is_empty(), Fault::LyingCompletion);
        add(
            f.identify != IdentifyFaults::default(),
            Fault::IdentifyGarbage,
        );
        set
    }
}

/// The driver on a bench, its configuration access watched.
pub type WatchedNvme = Nvme<SimMmio<NvmeModel>, WatchedPci, SimClock, SimWindow>;

/// How a case ended: the HAL's campaign outcome.
pub use paranoid::sim::campaign::Outcome;

/// One case that held to the oracle.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// The faults the state injected.
    pub faults: FaultSet,
    /// How it ended.
    pub outcome: Outcome,
    /// Bus mastering was off at the end.
    pub fenced: bool,
    /// DMA the IOMMU refused before the driver first turned bus mastering on
    /// (the dead kernel's, excused).
    pub stale_escapes: usize,
}

/// Time an init may overshoot its budget: an FLR's fixed 100 ms recovery and
/// its wait for Configuration Retry Status (up to 1 s) are not cut short.
pub const BUDGET_SLACK: Duration = Duration::from_millis(1_200);

/// The data check's time bound: three attempts of a write, a read and a flush,
/// each command bounded by its timeout, its abort and one recovery budget.
pub fn data_check_bound(c: &Config) -> Duration {
    (c.io_timeout + c.abort_timeout + c.recovery_budget + BUDGET_SLACK) * 9
}

/// True when some fault of `faults` explains an error of `kind`.
fn explained(faults: &FaultSet, kind: &str) -> bool {
    faults.iter().any(|f| f.allowed().contains(&kind))
}

fn fault_names(faults: &FaultSet) -> String {
    if faults.is_empty() {
        return "none".into();
    }
    faults
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes a pattern, reads it back, compares; then a flush. `Err(kind)` for a
/// typed error, `Err("DATA MISMATCH..")` for wrong data, `Err("BENCH: ..")`
/// when the bench itself failed. The any-state oracle and the fuzz oracle
/// (`model::oracle`) both run it.
pub(crate) fn round_trip<P: ConfigAccess>(
    b: &mut Bench,
    nvme: &mut Nvme<SimMmio<NvmeModel>, P, SimClock, SimWindow>,
    salt: u64,
) -> Result<(), String> {
    let ns = nvme.namespace_info().ok_or("ready without a namespace")?;
    let blocks = 12u64.min(ns.blocks);
    let lba = salt % (ns.blocks - blocks + 1);
    let bytes = (blocks * u64::from(ns.block_size)) as usize;
    let offset = 512;
    let mut out = b
        .arena
        .alloc::<ToDevice>(bytes + offset, 4096)
        .map_err(|e| format!("BENCH: {e}"))?;
    let data: Vec<u8> = (0..bytes)
        .map(|i| (i as u64 ^ salt).wrapping_mul(0x9e37_79b9) as u8)
        .collect();
    out.write_bytes(offset, &data)
        .map_err(|e| format!("BENCH: {e}"))?;
    let mut back = b
        .arena
        .alloc::<FromDevice>(bytes + offset, 4096)
        .map_err(|e| format!("BENCH: {e}"))?;
    let result = (|| {
        nvme.write_blocks(lba, blocks, &out, offset)
            .map_err(|e| e.class())?;
        nvme.read_blocks(lba, blocks, &mut back, offset)
            .map_err(|e| e.class())?;
        nvme.flush().map_err(|e| e.class())
    })();
    let mut got = vec![0u8; bytes];
    back.read_bytes(offset, &mut got)
        .map_err(|e| format!("BENCH: {e}"))?;
    let _ = b.arena.free(out);
    let _ = b.arena.free(back);
    match result {
        Ok(()) if got == data => Ok(()),
        Ok(()) => Err("DATA MISMATCH: read back differs from what was written".into()),
        Err(class) => Err(class.to_string()),
    }
}

/// Applies `state` to `b`, runs init and a block round trip, and holds the
/// run to the oracle that knows the injected faults:
///
/// - no fault injected: Ready within the init budget, and the round trip
///   (write, read back, compare, flush) passes at the first attempt;
/// - any typed error (at init or I/O) must be explained by an injected fault
///   (the table behind [`Fault::allowed`]); an init error leaves the device
///   fenced, an I/O error leaves it ready again or fenced;
/// - Ready only within the budget; init never longer than the budget (plus
///   [`BUDGET_SLACK`]), the data check never longer than [`data_check_bound`]
///   (simulated time);
/// - no DMA refused by the IOMMU after the driver first turned bus mastering
///   on, as the device's configuration space saw it ([`WatchedPci`]); and
///   when the dead kernel left bus mastering on, the driver's first
///   command-register write turns it off;
/// - no value the model flagged, no wrong data.
///
/// # Errors
///
/// Why the oracle failed, starting with a kind in capitals (`UNEXPLAINED`,
/// `NOT READY`, `HANG`, `DMA ESCAPE`, `NOT QUIESCED`, `NOT FENCED`,
/// `UNCHECKED VALUE`, `DATA MISMATCH`, `BENCH`).
pub fn check(state: &AnyState, mut b: Bench, salt: u64) -> Result<CaseReport, String> {
    let faults = state.injected();
    state.apply(&b);
    b.clock.set_poll_step(Duration::from_micros(500));
    let dma = b.dma.clone();
    let (pci, watch) = WatchedPci::new(
        b.pci.clone(),
        b.config.clone(),
        b.clock.clone(),
        Rc::new(move || dma.refused().len()),
    );
    let config = Config::default();
    let nvme = Nvme::new(
        b.mmio.clone(),
        pci,
        b.address,
        b.clock.clone(),
        &mut b.arena,
        config,
    )
    .map_err(|e| format!("BENCH: new: {e}"))?;
    let why = |what: String| format!("{what} [faults: {}]", fault_names(&faults));
    let start = b.clock.now_ns();
    let result = nvme.init(DEFAULT_INIT_BUDGET);
    let init_time = Duration::from_nanos(b.clock.now_ns().saturating_sub(start));
    if init_time > DEFAULT_INIT_BUDGET + BUDGET_SLACK {
        return Err(why(format!(
            "HANG: init took {init_time:?} of simulated time (budget {DEFAULT_INIT_BUDGET:?})"
        )));
    }
    let outcome = match result {
        Err(f) => {
            let kind = match f.cause {
                Cause::Device(e) => e.class(),
                Cause::Budget { .. } => "init budget",
            };
            if b.bus_master() {
                return Err(why(format!(
                    "NOT FENCED: init failed ({f}) with bus mastering on"
                )));
            }
            Outcome::InitError(kind)
        }
        Ok(ok) => {
            if init_time > DEFAULT_INIT_BUDGET {
                return Err(why(format!(
                    "HANG: Ready after {init_time:?}, past the budget {DEFAULT_INIT_BUDGET:?}"
                )));
            }
            let mut nvme = ok.device.into_inner();
            let data_start = b.clock.now_ns();
            let mut outcome = Outcome::Ready;
            for attempt in 0..3u64 {
                match round_trip(&mut b, &mut nvme, salt.wrapping_add(attempt)) {
                    Ok(()) => break,
                    Err(e) if e.starts_with("DATA MISMATCH") || e.starts_with("BENCH") => {
                        return Err(why(e))
                    }
                    Err(kind) => {
                        let kind = kind_name(&kind);
                        if !nvme.is_ready() && b.bus_master() {
                            return Err(why(format!(
                                "NOT FENCED: I/O error `{kind}` left the driver neither ready nor fenced"
                            )));
                        }
                        let first = match outcome {
                            Outcome::Recovered(k) | Outcome::IoError(k) => k,
                            _ => kind,
                        };
                        if !explained(&faults, kind) {
                            return Err(why(format!("UNEXPLAINED: I/O error `{kind}`")));
                        }
                        outcome = if nvme.is_ready() && attempt < 2 {
                            Outcome::Recovered(first)
                        } else {
                            Outcome::IoError(first)
                        };
                        if !nvme.is_ready() {
                            break;
                        }
                    }
                }
            }
            let data_time = Duration::from_nanos(b.clock.now_ns().saturating_sub(data_start));
            if data_time > data_check_bound(&config) {
                return Err(why(format!(
                    "HANG: the data check took {data_time:?} of simulated time"
                )));
            }
            outcome
        }
    };
    if let Outcome::InitError(kind) = outcome {
        if !explained(&faults, kind) {
            return Err(why(format!("UNEXPLAINED: init error `{kind}`")));
        }
    }
    if faults.is_empty() && outcome != Outcome::Ready {
        return Err(why(format!(
            "NOT READY: a healthy device ended {outcome:?}"
        )));
    }
    let w = watch.borrow().clone();
    let refused = b.dma.refused();
    let stale = w.escapes_before_on.unwrap_or(refused.len());
    if let Some(e) = refused.get(stale) {
        return Err(why(format!(
            "DMA ESCAPE: after bus mastering went on at {:?} ns: {e:?}",
            w.first_on_ns
        )));
    }
    if w.inherited && w.first_write_left_on == Some(true) {
        return Err(why(
            "NOT QUIESCED: bus mastering was on and the driver's first command write kept it on"
                .into(),
        ));
    }
    let flags = b.model.borrow().violations().to_vec();
    if !flags.is_empty() {
        return Err(why(format!("UNCHECKED VALUE: model flagged {flags:?}")));
    }
    Ok(CaseReport {
        faults,
        outcome,
        fenced: !b.bus_master(),
        stale_escapes: stale,
    })
}

/// The static name of an error kind seen as text.
fn kind_name(kind: &str) -> &'static str {
    const KINDS: [&str; 23] = [
        "device gone",
        "pci",
        "dma",
        "bad capability",
        "unsupported",
        "ready timeout",
        "ready flapping",
        "controller fatal",
        "bad identify",
        "unsupported format",
        "namespace absent",
        "namespace inactive",
        "bad completion",
        "bad feature",
        "command timeout",
        "command failed",
        "queue full",
        "lba out of range",
        "bad buffer",
        "not ready",
        "shutdown timeout",
        "unsupported reset",
        "init budget",
    ];
    KINDS.into_iter().find(|k| *k == kind).unwrap_or("other")
}

/// What each injected fault class led to, over a campaign (the HAL's table
/// with this driver's fault classes as rows).
pub type FaultTable = paranoid::sim::campaign::FaultTable<Fault>;

impl CaseReport {
    /// Counts this case in `table`.
    pub fn tally(&self, table: &mut FaultTable) {
        table.add(self.faults.iter().copied(), self.outcome, self.fenced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn every_fault_class_explains_some_error() {
        for f in Fault::ALL {
            assert!(!f.allowed().is_empty(), "{f:?}");
            for kind in f.allowed() {
                assert_eq!(kind_name(kind), *kind, "{f:?}: unknown kind {kind}");
            }
        }
    }

    #[test]
    fn healthy_states_inject_nothing() {
        let mut runner = TestRunner::deterministic();
        for _ in 0..512 {
            let s = any_state().new_tree(&mut runner).unwrap().current();
            assert!(s.clone().healthy().injected().is_empty(), "{s:?}");
        }
    }

    #[test]
    fn the_oracle_sees_a_healthy_controller_ready_and_a_gone_one_explained() {
        let mut runner = TestRunner::deterministic();
        let s = any_state().new_tree(&mut runner).unwrap().current();
        let healthy = AnyState {
            inherited: Inherited::LiveQueues {
                admin_pending: 3,
                io_queues: 2,
                io_pending: 5,
            },
            command: 0x0006,
            ..s.healthy()
        };
        let r = check(&healthy, Bench::qemu_like(), 1).unwrap();
        assert_eq!(r.outcome, Outcome::Ready);
        assert!(r.faults.is_empty());
        let gone = AnyState {
            gone_after: Some(0),
            ..healthy
        };
        let r = check(&gone, Bench::qemu_like(), 1).unwrap();
        assert_eq!(r.outcome, Outcome::InitError("device gone"));
        assert!(r.fenced);
    }
}
