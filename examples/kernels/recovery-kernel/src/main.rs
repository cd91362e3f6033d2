//! The recovery kernel: entered from a crashed kernel's panic path, it takes the
//! IOMMU and the devices over from whatever state they are in, writes a verified
//! dump of the crashed kernel's memory into the declared extent of the NVMe
//! namespace, keeps the node's watchdog fed meanwhile, and reports.
//!
//! Settings come from its command line (see `paranoid_recovery::config`); the
//! crashed kernel passes its own recovery keys through, plus `crash_note=` and
//! `tsc_khz=`.
#![no_std]
#![no_main]

mod drain;
mod fence;
mod heartbeat;
mod iommu;
mod memory;
mod nic;
mod storage;

use core::fmt;

use heartbeat::RecoveryClock;
use paranoid::dma::{DmaArena, Window, WindowMapping};
use paranoid::phys::{PhysRead, RamRegion};
use paranoid::time::Clock;
use paranoid_boot::frames::FrameAllocator;
use paranoid_boot::result::{Fields, Verdict};
use paranoid_boot::{println, BootInfo, ExitCode, MemoryKind, TscClock};
use paranoid_dump::Policy;
use paranoid_recovery::canary::{self, CanaryCheck};
use paranoid_recovery::config::Config;
use paranoid_recovery::dump::DumpStats;
use paranoid_recovery::heartbeat::{Heartbeat, Schedule};
use paranoid_recovery::note::{CrashNote, CrashPoint, NOTE_LEN};
use paranoid_recovery::report::Report;
use paranoid_recovery::result::{
    self, ArmedSource, Findings, Iommu, Nic, RecoveryFailure, RecoveryResult,
};
use paranoid_vtd::policy::FaultPolicy;
use paranoid_vtd::takeover::Policy as VtdPolicy;

paranoid_boot::entry!(main);

/// The canary region: the recovery kernel's free memory, checked at the end for
/// stale DMA.
const CANARY_BASE: u64 = 0x0600_0000;
/// Its size.
const CANARY_LEN: u64 = 16 << 20;
/// Physical memory behind the recovery window.
pub const ARENA_PHYS: u64 = 0x0700_0000;
/// The recovery window's size (the design's default: 1 MiB).
pub const WINDOW_LEN: u64 = 1 << 20;

paranoid::dma_windows! {
    address_width = 39;
    /// The reserved recovery window: the top MiB of the 39-bit IOVA space QEMU's
    /// VT-d offers, which the crashed kernel never maps.
    pub RecoveryWindow = 0x7f_fff0_0000;
    /// The recovery window when no IOMMU translates (`iommu=none`): IOVA = the
    /// physical address of the arena.
    pub DirectWindow = 0x0700_0000, size = 1 MiB;
}

const _: () = assert!(DirectWindow::BASE == ARENA_PHYS && DirectWindow::SIZE == WINDOW_LEN);

/// A step failed: what, and why.
pub struct Failed {
    step: &'static str,
    why: paranoid::init::Note,
    /// Set when the dump was refused by design (no target named, the named
    /// one absent, ambiguous, ...): the name of the refusal.
    refused: Option<&'static str>,
}

/// A [`Failed`] for `step`.
pub fn fail(step: &'static str, why: impl fmt::Debug) -> Failed {
    Failed {
        step,
        why: paranoid::init::Note::format(format_args!("{why:?}")),
        refused: None,
    }
}

/// The dump refused: nothing was written, the reason is reported.
pub fn refuse(e: paranoid_recovery::target::TargetError) -> Failed {
    Failed {
        step: "dump target",
        why: paranoid::init::Note::format(format_args!("{e}")),
        refused: Some(e.name()),
    }
}

fn main(boot: &'static BootInfo) -> ExitCode {
    let clock = boot.clock();
    println!(
        "recovery: entered at {:#x}, tsc {} kHz",
        boot.kernel_image().start,
        clock.khz()
    );
    let mut report = Report::new();
    let outcome = run(boot, &mut report);
    let _ = report.render(&mut Out);
    let mut fields = Fields::new();
    let verdict = match outcome {
        Ok(pass) => {
            fields = pass;
            Verdict::Pass
        }
        Err(f) => {
            RecoveryFailure {
                step: f.step,
                reason: f.why.as_str(),
                refused: f.refused,
            }
            .write(&mut fields);
            Verdict::Fail
        }
    };
    paranoid_boot::result::finish("recovery", verdict, &fields)
}

/// The watchdog's silence across the handover, for the report: nothing when
/// the crashed kernel noted no pet.
struct Handover(Option<u64>);

impl fmt::Display for Handover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ms) => write!(f, ", handover {ms} ms"),
            None => Ok(()),
        }
    }
}

/// Serial output as a `fmt::Write`.
struct Out;

impl fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        paranoid_boot::print!("{s}");
        Ok(())
    }
}

/// A line of text being built (fixed capacity): a device's found state.
pub type Line = paranoid_recovery::text::Line<768>;

/// The IOMMU (when one translates) and its fault policy.
pub type Translation = Option<(iommu::Unit, FaultPolicy)>;

/// The RAM this kernel places by address: the canaries and the memory behind
/// the recovery window, claimed from the frame allocator before anything else
/// is allocated (so no frame is ever handed out inside them).
struct Fixed {
    canary: RamRegion,
    arena: RamRegion,
}

/// Everything the steps share. The steps are this crate root's child
/// modules, which see these private fields; nothing outside the kernel does.
pub struct Recovery<'r> {
    /// Boot information.
    boot: &'static BootInfo,
    /// The clock (every poll through it also beats).
    clock: RecoveryClock,
    /// Settings.
    config: Config,
    /// What the crashed kernel left.
    note: CrashNote,
    /// The report being written.
    report: &'r mut Report,
    /// This kernel's page frames (inside the reserved region).
    frames: FrameAllocator,
    /// What the steps found and did (the result line reports it).
    found: Findings,
    /// The time-stamp counter when the fence (translation blocked, or bus
    /// mastering off without an IOMMU) was in place: with the crash note's
    /// `armed_tsc` it tells whether the armed DMA could still be stopped.
    fenced_tsc: Option<u64>,
}

fn run(boot: &'static BootInfo, report: &mut Report) -> Result<Fields, Failed> {
    let clock = boot.clock();
    let t = clock.now_ns();
    // Nothing is printed before the IOMMU is taken over: each byte on the
    // serial port is an I/O exit, and stale DMA runs on the dead kernel's
    // translation until the takeover.
    let config = Config::parse(boot.cmdline().as_str()).map_err(|e| fail("config", e))?;
    let note = read_note(boot).map_err(|e| fail("crash note", e))?;
    report.step(
        "crash note",
        t,
        clock.now_ns(),
        format_args!("`{}`: {}", note.point(), note.reason()),
    );
    let mut frames = boot
        .take_frames()
        .ok_or(fail("frames", "taken"))?
        .map_err(|e| fail("frames", e))?;
    let mut fixed = Fixed {
        canary: frames
            .claim_ram(CANARY_BASE, CANARY_LEN)
            .map_err(|e| fail("canary region", e))?,
        arena: frames
            .claim_ram(ARENA_PHYS, WINDOW_LEN)
            .map_err(|e| fail("window memory", e))?,
    };
    let watchdog = if config.heartbeat.watchdog {
        Some(heartbeat::WatchdogBeat::find()?)
    } else {
        None
    };
    let first_beat_tsc = heartbeat::start(watchdog, &clock, config.heartbeat_period);
    let config_policy = config.policy.name();
    let mut r = Recovery {
        boot,
        clock: RecoveryClock::new(clock),
        config,
        note,
        report,
        frames,
        found: Findings::new(Iommu::Vtd(config_policy)),
        fenced_tsc: None,
    };
    // The silence the watchdog saw across the handover: from the crashed
    // kernel's last pet (its note says when) to the beat above.
    if heartbeat::keeps_watchdog() && r.note.watchdog_tsc != 0 {
        r.found.watchdog_handover_ms = Some(clock.ms_between(r.note.watchdog_tsc, first_beat_tsc));
    }

    // The IOMMU first: every millisecond before it, stale DMA runs on the dead
    // kernel's translation.
    let (mut translation, mapping) = r.take_iommu()?;
    println!("recovery: settings: {}", r.config);
    println!(
        "recovery: crashed kernel died at `{}`: {}",
        r.note.point(),
        r.note.reason()
    );
    heartbeat::tick(&clock);
    let t = clock.now_ns();
    canary::fill(&mut fixed.canary, || heartbeat::tick(&clock));
    r.report.step(
        "canary fill",
        t,
        clock.now_ns(),
        format_args!("{} MiB at {CANARY_BASE:#x}", CANARY_LEN >> 20),
    );
    heartbeat::tick(&clock);

    let stats = match (translation.as_mut(), mapping) {
        (Some((unit, faults)), Some(mapping)) => {
            let arena = DmaArena::new(mapping, fixed.arena).map_err(|e| fail("arena", e))?;
            devices::<RecoveryWindow>(&mut r, arena, Some((unit, faults)))?
        }
        _ => {
            // Nothing translates: the window sits on the memory itself.
            let mapping = WindowMapping::<DirectWindow>::identity(ARENA_PHYS, WINDOW_LEN)
                .map_err(|e| fail("arena", e))?;
            let arena = DmaArena::new(mapping, fixed.arena).map_err(|e| fail("arena", e))?;
            devices::<DirectWindow>(&mut r, arena, None)?
        }
    };
    let armed = armed_dma(boot, &r.note, &clock);
    if let Some((unit, faults)) = translation.as_mut() {
        iommu::service(unit, faults, r.report)?;
        // Which source the stale faults came from: the edu, as the bus
        // identifies it (not as the crashed kernel claims).
        let mut cf8 = paranoid_boot::platform::cf8();
        let edu = paranoid_boot::platform::find(&mut cf8, (0x1234, 0x11e8)).ok();
        r.found.armed_source = edu.map(|f| {
            let source_id = f.requester_id();
            ArmedSource {
                source_id,
                stale_faults: faults.source(source_id).map_or(0, |s| s.stale),
            }
        });
    }
    r.report.step(
        "armed DMA",
        clock.now_ns(),
        clock.now_ns(),
        format_args!("{armed}"),
    );
    if let Some((unit, _)) = translation.as_ref() {
        r.report_sources(unit);
    }
    let canary = r.check_canary(&fixed.canary)?;
    let hb = heartbeat::finish(&clock)
        .unwrap_or_else(|| Schedule::new(&clock, r.config.heartbeat_period));
    if hb.beats > 0 {
        r.report.step(
            "heartbeats",
            clock.now_ns(),
            clock.now_ns(),
            format_args!(
                "{} sent, longest gap {} ms (until {} ms){}, period {:?}",
                hb.beats,
                hb.max_gap_ns / 1_000_000,
                hb.max_gap_end_ns / 1_000_000,
                Handover(r.found.watchdog_handover_ms),
                r.config.heartbeat_period,
            ),
        );
    }
    Ok(r.result_line(&stats, &canary, armed, &hb))
}

impl Recovery<'_> {
    /// Without an IOMMU translating, the only fence is each device's bus
    /// mastering: off everywhere, before any memory this kernel cares about
    /// is touched.
    fn fence_without_iommu(&mut self, why: &'static str) {
        let t = self.clock.now_ns();
        let mut cf8 = paranoid_boot::platform::cf8();
        let f = fence::bus_masters_off(&mut cf8);
        self.fenced_tsc = Some(paranoid::arch::x86_64::rdtsc());
        println!(
            "recovery: {why}: bus mastering off on {} of {} functions",
            f.were_mastering, f.functions
        );
        if self.boot.cmdline().get("negative_control") == Some("stale-dma") {
            // The canaries' negative control (the harness's `canary-stale-dma`
            // scenario): a hole in the fence on purpose. The edu kernel A armed
            // toward this kernel's canary region may master the bus again, so
            // its transfer lands there and the canary check must fail.
            let edu = paranoid_boot::platform::find(&mut cf8, (0x1234, 0x11e8)).ok();
            let reopened = edu.is_some_and(|e| {
                paranoid::pci::command::update(
                    &mut cf8,
                    e.address(),
                    paranoid::pci::command::Command::BUS_MASTER,
                    paranoid::pci::command::Command::empty(),
                )
                .is_ok()
            });
            println!("recovery: negative_control=stale-dma: edu bus mastering back on: {reopened}");
        }
        self.report.step(
            "fence without iommu",
            t,
            self.clock.now_ns(),
            format_args!(
                "{why}: bus mastering turned off on {} of {} endpoint functions ({} gone), {} ms after the crash",
                f.were_mastering,
                f.functions,
                f.failed,
                ms_since_crash(&self.note, self.clock.tsc())
            ),
        );
    }

    /// Takes the IOMMU over (when one is to translate) and maps the recovery
    /// window; the mapping comes back beside the unit.
    fn take_iommu(
        &mut self,
    ) -> Result<(Translation, Option<WindowMapping<RecoveryWindow>>), Failed> {
        let policy = self.config.policy;
        if policy == Policy::None {
            self.found.iommu = Iommu::Off;
            self.fence_without_iommu("iommu=none: no translation");
            return Ok((None, None));
        }
        if let Err(paranoid_boot::platform::PlatformError::NoDmar) =
            paranoid_boot::platform::dmar(self.boot)
        {
            self.found.iommu = Iommu::Absent;
            self.fence_without_iommu("no IOMMU on this machine (no DMAR table)");
            return Ok((None, None));
        }
        let vtd_policy = match policy {
            Policy::None => return Ok((None, None)),
            // Drain keeps the old translation while in-flight DMA completes.
            Policy::Adopt | Policy::DrainThenFence => VtdPolicy::Adopt,
            Policy::Fence => VtdPolicy::Fence,
        };
        let t = self.clock.now_ns();
        let mut rmrrs = [(0, 0); 8];
        let (mut unit, taken) =
            match iommu::take_over(self.boot, vtd_policy, &mut self.frames, &mut rmrrs) {
                Ok(taken) => taken,
                Err(iommu::NotTaken::Failed(f)) => return Err(f),
                Err(iommu::NotTaken::CannotTranslate(e)) => {
                    self.found.iommu = Iommu::NoTranslation;
                    self.fence_without_iommu("the VT-d unit translates no DMA (CAP.SAGAW = 0)");
                    // Printed once the fence is up (serial output is slow).
                    println!("recovery: {e}");
                    return Ok((None, None));
                }
            };
        if vtd_policy == VtdPolicy::Fence {
            self.fenced_tsc = Some(paranoid::arch::x86_64::rdtsc());
        }
        println!("recovery: {taken}");
        self.report.step(
            "iommu takeover",
            t,
            self.clock.now_ns(),
            format_args!(
                "{:?}, {} old contexts, {} adopted, {} ms after the crash",
                taken.outcome,
                taken.old_contexts,
                taken.contexts_adopted,
                ms_since_crash(&self.note, self.clock.tsc())
            ),
        );
        let mapping = iommu::map_window(&mut unit, ARENA_PHYS)?;
        let mut faults = FaultPolicy::new(iommu::policy_config(
            self.config.quarantine_after,
            self.config.halt_on_own_fault,
        ));
        if policy == Policy::DrainThenFence {
            let c = drain::run(self, &mut unit, &mut faults)?;
            self.found.drain = Some(result::Drain {
                drained: c.drained,
                busy: c.busy,
                faulted: c.faulted,
            });
        } else {
            iommu::service(&mut unit, &mut faults, self.report)?;
        }
        Ok((Some((unit, faults)), Some(mapping)))
    }

    /// What happened to each device the crashed kernel left with DMA live and
    /// this kernel does not drive: kept on its old translation, or blocked.
    fn report_sources(&mut self, unit: &iommu::Unit) {
        if self.found.drain.is_some() {
            return; // the drain reported every device already
        }
        for &sid in self.note.live_sources() {
            if unit.is_attached(sid) {
                continue;
            }
            let (bus, dev, func) = (sid >> 8, (sid >> 3) & 0x1f, sid & 7);
            let result = match self.config.policy {
                Policy::Adopt => {
                    "kept on its old translation (adopt): its DMA lands in the old buffers"
                }
                _ => "blocked (fence): its stale DMA faults",
            };
            self.report.device(
                format_args!("dma source {bus:02x}:{dev:02x}.{func}"),
                format_args!("left with DMA live"),
                format_args!("{result}"),
            );
        }
    }

    fn check_canary(&mut self, region: &RamRegion) -> Result<CanaryCheck, Failed> {
        let t = self.clock.now_ns();
        let canary = canary::check(region, || heartbeat::tick(&self.clock));
        self.report.step(
            "canary check",
            t,
            self.clock.now_ns(),
            format_args!("{} words changed", canary.changed),
        );
        if canary.changed != 0 {
            return Err(fail("canary check", canary));
        }
        Ok(canary)
    }

    /// The typed result of a successful run, rendered as the result line's
    /// pairs.
    fn result_line(
        &self,
        stats: &DumpStats,
        canary: &CanaryCheck,
        armed: &'static str,
        hb: &Schedule,
    ) -> Fields {
        let result = RecoveryResult {
            point: self.note.point(),
            found: self.found,
            dump: *stats,
            crash_to_dump_ms: ms_since_crash(&self.note, self.clock.tsc()),
            canary: *canary,
            armed_dma: armed,
            faults: self.report.faults,
            heartbeats: hb.beats,
            max_heartbeat_gap_ns: hb.max_gap_ns,
            armed_fenced_ms: self.armed_fenced_ms(),
        };
        println!(
            "recovery: crash to dump complete {} ms, dump {} MiB in {} ms ({} MiB/s)",
            result.crash_to_dump_ms,
            stats.bytes >> 20,
            result.dump_ms(),
            result.mib_s()
        );
        let mut fields = Fields::new();
        result.write(&mut fields);
        fields
    }

    /// Milliseconds from the crashed kernel arming its DMA to this kernel's
    /// fence (`None`: nothing armed, or no fence: adopt, drain).
    fn armed_fenced_ms(&self) -> Option<u64> {
        let armed = self.note.armed_tsc;
        let fenced = self.fenced_tsc?;
        (armed != 0 && self.note.armed_dma.len != 0)
            .then(|| self.clock.tsc().ms_between(armed, fenced))
    }
}

fn read_note(boot: &'static BootInfo) -> Result<CrashNote, &'static str> {
    let at = boot
        .cmdline()
        .get("crash_note")
        .ok_or("no crash_note= on the command line")?;
    let addr = u64::from_str_radix(at.trim_start_matches("0x"), 16)
        .map_err(|_| "crash_note= is not hex")?;
    if addr % 4096 != 0 || addr >= 1 << 32 {
        return Err("crash_note= is not a page below 4 GiB");
    }
    let mut page = [0u8; NOTE_LEN];
    boot.ram()
        .read(addr, &mut page)
        .map_err(|_| "crash_note= is not in RAM")?;
    CrashNote::decode(&page).map_err(|_| "crash note damaged or missing")
}

/// Milliseconds since the crashed kernel panicked (both read the same TSC).
pub fn ms_since_crash(note: &CrashNote, clock: &TscClock) -> u64 {
    clock.ms_between(note.crash_tsc, paranoid::arch::x86_64::rdtsc())
}

/// How long after the crash an armed DMA (edu: 100 ms) has surely landed.
const ARMED_DMA_SETTLE_MS: u64 = 300;

/// Whether the DMA the crashed kernel armed landed in its memory (adopt: it
/// should; fence: it must not). Waits, bounded, until it must have happened.
fn armed_dma(boot: &BootInfo, note: &CrashNote, clock: &TscClock) -> &'static str {
    let target = note.armed_dma;
    if target.len < 8 {
        return "none";
    }
    let since_ms = ms_since_crash(note, clock);
    clock.delay(core::time::Duration::from_millis(
        ARMED_DMA_SETTLE_MS.saturating_sub(since_ms),
    ));
    if !crashed_ram(boot).any(|(start, end)| target.start >= start && target.start + 8 <= end) {
        return "outside-ram";
    }
    // One volatile read: the device may be writing it.
    let Ok(word) = boot.ram().read_u64_volatile(target.start) else {
        return "outside-ram";
    };
    if word == note.armed_word {
        "landed"
    } else {
        "blocked"
    }
}

/// Brings the devices up in window `W` (the NIC, then storage) and writes the
/// dump, with UDP heartbeats through the NIC when configured.
fn devices<W: Window>(
    r: &mut Recovery<'_>,
    mut arena: DmaArena<W>,
    mut translation: Option<(&mut iommu::Unit, &mut FaultPolicy)>,
) -> Result<DumpStats, Failed> {
    let nic = if r.config.nic {
        nic::bring_up(r, &mut arena, translation.as_mut().map(|(u, _)| &mut **u))?
    } else {
        r.found.nic = Nic::Off;
        None
    };
    heartbeat::tick(&r.clock);
    // The NIC serves the heartbeats and the dump stream in turn.
    let nic = nic.map(core::cell::RefCell::new);
    let mut udp = match nic.as_ref() {
        Some(n) if r.config.heartbeat.udp => Some(nic::UdpBeat::new(n, r.clock)),
        _ => None,
    };
    let mut streamer = match nic.as_ref() {
        Some(n) if r.config.stream => Some(nic::Streamer::new(n, r.clock)),
        _ => None,
    };
    let beat = udp.as_mut().map(|u| u as &mut dyn Heartbeat);
    let stats = storage::dump(r, &mut arena, translation, beat, streamer.as_mut())?;
    if let Some(s) = streamer.as_mut() {
        s.end(
            stats.chunks,
            stats.bytes,
            r.note.pattern_seed,
            r.note.pattern,
        );
        r.report.step(
            "stream",
            stats.end_ns,
            r.clock.now_ns(),
            format_args!("{} datagrams sent, {} failed", s.sent, s.failed),
        );
        r.found.streamed = Some((s.sent, s.failed));
    }
    if r.note.crash_point() == Some(CrashPoint::Handoff) {
        // The comparison of a planned handoff: the same controller, now left
        // enabled with live queues, brought up again by the any-state path.
        r.found.nvme_paths = Some(storage::compare_paths(r, &mut arena)?);
    }
    Ok(stats)
}

/// The crashed kernel's RAM, as `[start, end)`: the regions it typed
/// `CRASHED_RAM_KIND` in the memory map it handed over (all of its RAM, whatever
/// part of it the dump covers).
pub fn crashed_ram(boot: &BootInfo) -> impl Iterator<Item = (u64, u64)> + '_ {
    let kind = MemoryKind::Other(paranoid_recovery::note::CRASHED_RAM_KIND);
    boot.memory_map()
        .iter()
        .filter(move |r| r.kind == kind)
        .map(|r| (r.start, r.end()))
}
