//! The recovery kernel: entered from a crashed kernel's panic path, it takes the
//! devices over from whatever state they are in, writes a verified dump of the
//! crashed kernel's memory into the declared extent of the NVMe namespace, and
//! reports.
//!
//! Settings come from its command line (see `paranoid_recovery::config`); the
//! crashed kernel passes its own recovery keys through, plus `crash_note=`.
#![no_std]
#![no_main]

mod iommu;
mod memory;
mod storage;

use core::fmt::{self, Write as _};
use core::ptr::NonNull;

use paranoid::dma::{DmaArena, ToDevice, Window};
use paranoid::mmio::RegisterIo;
use paranoid::time::Clock;
use paranoid_boot::platform::{self, NVME};
use paranoid_boot::{println, BootInfo, ExitCode, TscClock};
use paranoid_dump::{Header, Policy};
use paranoid_recovery::canary;
use paranoid_recovery::config::Config;
use paranoid_recovery::dump::{write_dump, DumpJob, DumpStats};
use paranoid_recovery::heartbeat::Schedule;
use paranoid_recovery::note::{CrashNote, NOTE_LEN};
use paranoid_recovery::report::Report;
use paranoid_vtd::policy::FaultPolicy;
use paranoid_vtd::takeover::Policy as VtdPolicy;

paranoid_boot::entry!(main);

/// The canary region: the recovery kernel's free memory, checked at the end for
/// stale DMA.
const CANARY_BASE: u64 = 0x0600_0000;
/// Its size.
const CANARY_LEN: u64 = 16 << 20;
/// Physical memory behind the recovery window.
const ARENA_PHYS: u64 = 0x0700_0000;
/// The recovery window's size (the design's default: 1 MiB).
const WINDOW_LEN: u64 = 1 << 20;
/// Staging buffer for dump writes.
const STAGING: usize = 256 * 1024;

/// The recovery window when no IOMMU translates: IOVA = physical address of the
/// arena.
pub enum DirectWindow {}

impl Window for DirectWindow {
    const NAME: &'static str = "recovery (direct)";
    const BASE: u64 = ARENA_PHYS;
    const SIZE: u64 = WINDOW_LEN;
}

/// A step failed: what, and why.
struct Failed {
    step: &'static str,
    why: paranoid::init::Note,
}

fn fail(step: &'static str, why: impl fmt::Debug) -> Failed {
    Failed {
        step,
        why: paranoid::init::Note::format(format_args!("{why:?}")),
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
    let outcome = run(boot, &clock, &mut report);
    let mut text = Out;
    let _ = report.render(&mut text);
    match outcome {
        Ok(line) => {
            println!(
                "PARANOID-RESULT test=recovery verdict=pass {}",
                line.as_str()
            );
            ExitCode::Success
        }
        Err(f) => {
            println!(
                "PARANOID-RESULT test=recovery verdict=fail step=\"{}\" reason=\"{}\"",
                f.step,
                f.why.as_str()
            );
            ExitCode::Failure
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

/// A result line being built.
struct Line {
    buf: [u8; 768],
    len: usize,
}

impl Line {
    fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn run(boot: &'static BootInfo, clock: &TscClock, report: &mut Report) -> Result<Line, Failed> {
    let t = clock.now_ns();
    let config = Config::parse(boot.cmdline().as_str()).map_err(|e| fail("config", e))?;
    let note = read_note(boot).map_err(|e| fail("crash note", e))?;
    report.step(
        "crash note",
        t,
        clock.now_ns(),
        format_args!("`{}`: {}", note.point(), note.reason()),
    );
    println!(
        "recovery: crashed kernel died at `{}`: {}",
        note.point(),
        note.reason()
    );

    let mut frames = boot
        .take_frames()
        .ok_or(fail("frames", "taken"))?
        .map_err(|e| fail("frames", e))?;
    let policy = config.policy;
    // The IOMMU first: every millisecond before it, stale DMA runs on the dead
    // kernel's translation.
    let mut translation = match policy {
        Policy::None => None,
        Policy::Adopt | Policy::Fence | Policy::DrainThenFence => {
            let t = clock.now_ns();
            let vtd_policy = if policy == Policy::Adopt {
                VtdPolicy::Adopt
            } else {
                VtdPolicy::Fence
            };
            let mut rmrrs = [(0, 0); 8];
            let (unit, taken) = iommu::take_over(boot, &note, vtd_policy, &mut frames, &mut rmrrs)?;
            println!("recovery: {taken}");
            report.step(
                "iommu takeover",
                t,
                clock.now_ns(),
                format_args!(
                    "{:?}, {} old contexts, {} adopted, {} ms after the crash",
                    taken.outcome,
                    taken.old_contexts,
                    taken.contexts_adopted,
                    ms_since_crash(&note, clock)
                ),
            );
            let faults = FaultPolicy::new(iommu::policy_config(
                config.quarantine_after,
                config.halt_on_own_fault,
            ));
            Some((unit, faults))
        }
    };
    if let Some((unit, faults)) = translation.as_mut() {
        iommu::service(unit, faults, report)?;
    }

    let t = clock.now_ns();
    // SAFETY: the canary region is inside the reserved region this kernel owns
    // (RAM in its memory map, past its image), identity-mapped, unused otherwise.
    unsafe {
        canary::fill(
            CANARY_BASE as *mut u64,
            CANARY_BASE,
            (CANARY_LEN / 8) as usize,
        )
    };
    report.step(
        "canary fill",
        t,
        clock.now_ns(),
        format_args!("{} MiB at {CANARY_BASE:#x}", CANARY_LEN >> 20),
    );

    let stats = match translation.as_mut() {
        None => storage_and_dump::<DirectWindow>(
            boot,
            clock,
            &config,
            &note,
            policy,
            report,
            &mut frames,
            None,
        )?,
        Some((unit, faults)) => storage_and_dump::<iommu::RecoveryWindow>(
            boot,
            clock,
            &config,
            &note,
            policy,
            report,
            &mut frames,
            Some((unit, faults)),
        )?,
    };
    let armed = armed_dma(&note, clock);
    if let Some((unit, faults)) = translation.as_mut() {
        iommu::service(unit, faults, report)?;
    }
    report.step(
        "armed DMA",
        clock.now_ns(),
        clock.now_ns(),
        format_args!("{armed}"),
    );

    let t = clock.now_ns();
    // SAFETY: as for the fill: our own canary region.
    let canary = unsafe {
        canary::check(
            CANARY_BASE as *const u64,
            CANARY_BASE,
            (CANARY_LEN / 8) as usize,
        )
    };
    report.step(
        "canary check",
        t,
        clock.now_ns(),
        format_args!("{} words changed", canary.changed),
    );
    if canary.changed != 0 {
        return Err(fail("canary check", canary));
    }

    let crash_to_dump_ms = ms_since_crash(&note, clock);
    let dump_ms = (stats.end_ns - stats.start_ns) / 1_000_000;
    let mib_s = if dump_ms == 0 {
        0
    } else {
        (stats.bytes >> 20) * 1000 / dump_ms
    };
    println!("recovery: crash to dump complete {crash_to_dump_ms} ms, dump {} MiB in {dump_ms} ms ({mib_s} MiB/s)", stats.bytes >> 20);
    let mut line = Line {
        buf: [0; 768],
        len: 0,
    };
    let _ = write!(
        line,
        "point={} policy={} dump_lba={} dump_bytes={} chunks={} crash_to_dump_ms={crash_to_dump_ms} dump_ms={dump_ms} mib_s={mib_s} canary_changed={} armed_dma={armed} stale_faults={} own_faults={} lost_faults={} quarantined={}",
        note.point(),
        policy.name(),
        config.dump_lba,
        stats.bytes,
        stats.chunks,
        canary.changed,
        report.faults.stale,
        report.faults.own,
        report.faults.lost,
        report.faults.quarantined,
    );
    Ok(line)
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
    // SAFETY: a page below 4 GiB (checked), identity-mapped; the crashed kernel
    // wrote it; we only copy it out.
    unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, page.as_mut_ptr(), NOTE_LEN) };
    CrashNote::decode(&page).map_err(|_| "crash note damaged or missing")
}

/// The IOMMU (when one translates) and its fault policy.
type Translation<'a> = Option<(&'a mut iommu::Unit, &'a mut FaultPolicy)>;

#[allow(clippy::too_many_arguments)]
fn storage_and_dump<W: Window>(
    boot: &'static BootInfo,
    clock: &TscClock,
    config: &Config,
    note: &CrashNote,
    policy: Policy,
    report: &mut Report,
    frames: &mut paranoid_boot::frames::FrameAllocator,
    mut translation: Translation<'_>,
) -> Result<DumpStats, Failed> {
    let t = clock.now_ns();
    let mut cfg = platform::ecam(boot).map_err(|e| fail("ecam", e))?;
    let nvme_fn = platform::find(&mut cfg, NVME).map_err(|e| fail("find nvme", e))?;
    let (mut regs, _) =
        platform::map_bar0(&mut cfg, nvme_fn.address).map_err(|e| fail("nvme bar", e))?;
    let found = describe_nvme(&mut regs);
    if let Some((unit, _)) = translation.as_mut() {
        // The controller gets the recovery domain before init: from here on its
        // stale DMA to the crashed kernel's IOVAs faults instead of landing.
        iommu::attach(unit, nvme_fn.address.source_id(), ARENA_PHYS, true)?;
    }
    let cpu = NonNull::new(ARENA_PHYS as *mut u8).ok_or(fail("arena", "null"))?;
    // SAFETY: the arena is RAM of the reserved region, owned by this kernel and
    // used only through this arena; W maps its IOVAs to it (1:1 or via the IOMMU).
    let mut arena = unsafe { DmaArena::<W>::new(cpu, ARENA_PHYS, WINDOW_LEN) };
    let nvme = paranoid_nvme::Nvme::new(
        regs,
        cfg,
        nvme_fn.address,
        *clock,
        &mut arena,
        paranoid_nvme::Config::default(),
    )
    .map_err(|e| fail("nvme", e))?;
    let ready = match nvme.init(config.init_budget) {
        Ok(r) => r,
        Err(f) => {
            println!("{}", f.trace);
            report.device(
                format_args!("nvme {}", nvme_fn.address),
                format_args!("{}", found.as_str()),
                format_args!("fenced: {}", f.cause),
            );
            return Err(fail("nvme init", f.cause));
        }
    };
    println!("{}", ready.trace);
    report.device(
        format_args!("nvme {}", nvme_fn.address),
        format_args!("{}", found.as_str()),
        format_args!(
            "ready in {:?}, {} escalation(s)",
            ready.trace.total(),
            ready.trace.escalations()
        ),
    );
    report.step("nvme init", t, clock.now_ns(), format_args!("ready"));
    let mut nvme = ready.device.into_inner();
    let ns = nvme.namespace_info().ok_or(fail("namespace", "none"))?;

    let t = clock.now_ns();
    let buffer = arena
        .alloc::<ToDevice>(STAGING, 4096)
        .map_err(|e| fail("staging buffer", e))?;
    let mut sink = storage::NvmeSink {
        nvme: &mut nvme,
        buffer,
        block_size: ns.block_size,
    };
    let bounce_at = frames
        .alloc(u64::from(config.chunk_bytes), 4096)
        .map_err(|e| fail("bounce", e))?;
    // SAFETY: the frame allocator handed out these bytes from this kernel's own
    // RAM (the reserved region); nothing else refers to them.
    let bounce = unsafe {
        core::slice::from_raw_parts_mut(bounce_at as *mut u8, config.chunk_bytes as usize)
    };
    let mut header = Header::new(policy, config.chunk_bytes);
    header.crash_ns = note.crash_ns;
    header.crash_point = note.point;
    header.crash_reason = note.reason;
    header.pattern_seed = note.pattern_seed;
    header.pattern = note.pattern;
    let job = DumpJob {
        header,
        ranges: note.ranges(),
        extent_lba: config.dump_lba,
        extent_blocks: config.dump_blocks,
    };
    let memory = memory::CrashedMemory::new(note.ranges());
    let mut schedule = Schedule::new(clock, config.heartbeat_period);
    let mut service_error = None;
    let mut on_chunk = |c: &paranoid_dump::ChunkHeader, _: &[u8]| {
        // Drain fault records as the dump goes: a storm must not wait for the end.
        if c.index % 16 == 0 {
            if let Some((unit, faults)) = translation.as_mut() {
                if let Err(e) = iommu::service(unit, faults, report) {
                    service_error.get_or_insert(e);
                }
            }
        }
    };
    let stats = write_dump(
        job,
        &mut sink,
        &memory,
        clock,
        bounce,
        &mut [],
        &mut schedule,
        &mut on_chunk,
    )
    .map_err(|e| fail("dump", e))?;
    if let Some(e) = service_error {
        return Err(e);
    }
    report.step(
        "dump",
        t,
        clock.now_ns(),
        format_args!(
            "{} MiB in {} chunks to lba {}..",
            stats.bytes >> 20,
            stats.chunks,
            config.dump_lba
        ),
    );
    Ok(stats)
}

/// The NVMe controller's state as found, before anything touches it.
fn describe_nvme(regs: &mut impl RegisterIo) -> Line {
    let cc = regs.read32(0x14);
    let csts = regs.read32(0x1c);
    let mut line = Line {
        buf: [0; 768],
        len: 0,
    };
    if csts.is_all_ones() {
        let _ = write!(line, "gone (CSTS reads all-ones)");
    } else {
        let _ = write!(
            line,
            "CC.EN={} CSTS.RDY={} CSTS.CFS={} (left {} by the crashed kernel)",
            u8::from(cc.bit(0)),
            u8::from(csts.bit(0)),
            u8::from(csts.bit(1)),
            if cc.bit(0) { "enabled" } else { "disabled" }
        );
    }
    line
}

/// How long after the crash an armed DMA (edu: 100 ms) has surely landed.
const ARMED_DMA_SETTLE_MS: u64 = 300;

/// Whether the DMA the crashed kernel armed landed in its memory (adopt: it
/// should; fence: it must not). Waits, bounded, until it must have happened.
fn armed_dma(note: &CrashNote, clock: &TscClock) -> &'static str {
    let target = note.armed_dma;
    if target.len < 8 {
        return "none";
    }
    let since_ms = ms_since_crash(note, clock);
    clock.delay(core::time::Duration::from_millis(
        ARMED_DMA_SETTLE_MS.saturating_sub(since_ms),
    ));
    if !note
        .ranges()
        .iter()
        .any(|r| target.start >= r.start && target.start + 8 <= r.start + r.len)
    {
        return "outside-ram";
    }
    // SAFETY: the target lies in the crashed kernel's RAM (checked), which the
    // boot page tables identity-map; a volatile read of one word.
    let word = unsafe { core::ptr::read_volatile(target.start as *const u64) };
    if word == note.armed_word {
        "landed"
    } else {
        "blocked"
    }
}

/// Milliseconds since the crashed kernel panicked (both read the same TSC).
fn ms_since_crash(note: &CrashNote, clock: &TscClock) -> u64 {
    // SAFETY: `rdtsc` has no side effects.
    let now = unsafe { core::arch::x86_64::_rdtsc() };
    now.saturating_sub(note.crash_tsc) / clock.khz().max(1)
}
