//! The recovery kernel: entered from a crashed kernel's panic path, it takes the
//! devices over from whatever state they are in, writes a verified dump of the
//! crashed kernel's memory into the declared extent of the NVMe namespace, and
//! reports.
//!
//! Settings come from its command line (see `paranoid_recovery::config`); the
//! crashed kernel passes its own recovery keys through, plus `crash_note=`.
#![no_std]
#![no_main]

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
    Failed { step, why: paranoid::init::Note::format(format_args!("{why:?}")) }
}

fn main(boot: &'static BootInfo) -> ExitCode {
    let clock = boot.clock();
    println!("recovery: entered at {:#x}, tsc {} kHz", boot.kernel_image().start, clock.khz());
    let mut report = Report::new();
    let outcome = run(boot, &clock, &mut report);
    let mut text = Out;
    let _ = report.render(&mut text);
    match outcome {
        Ok(line) => {
            println!("PARANOID-RESULT test=recovery verdict=pass {}", line.as_str());
            ExitCode::Success
        }
        Err(f) => {
            println!("PARANOID-RESULT test=recovery verdict=fail step=\"{}\" reason=\"{}\"", f.step, f.why.as_str());
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
        self.buf.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn run(boot: &'static BootInfo, clock: &TscClock, report: &mut Report) -> Result<Line, Failed> {
    let t = clock.now_ns();
    let config = Config::parse(boot.cmdline().as_str()).map_err(|e| fail("config", e))?;
    let note = read_note(boot).map_err(|e| fail("crash note", e))?;
    report.step("crash note", t, clock.now_ns(), format_args!("`{}`: {}", note.point(), note.reason()));
    println!("recovery: crashed kernel died at `{}`: {}", note.point(), note.reason());

    let t = clock.now_ns();
    // SAFETY: the canary region is inside the reserved region this kernel owns
    // (RAM in its memory map, past its image), identity-mapped, unused otherwise.
    unsafe { canary::fill(CANARY_BASE as *mut u64, CANARY_BASE, (CANARY_LEN / 8) as usize) };
    report.step("canary fill", t, clock.now_ns(), format_args!("{} MiB at {CANARY_BASE:#x}", CANARY_LEN >> 20));

    let policy = Policy::None;
    let stats = storage_and_dump::<DirectWindow>(boot, clock, &config, &note, policy, report)?;

    let t = clock.now_ns();
    // SAFETY: as for the fill: our own canary region.
    let canary = unsafe { canary::check(CANARY_BASE as *const u64, CANARY_BASE, (CANARY_LEN / 8) as usize) };
    report.step("canary check", t, clock.now_ns(), format_args!("{} words changed", canary.changed));
    if canary.changed != 0 {
        return Err(fail("canary check", canary));
    }

    // SAFETY: `rdtsc` has no side effects.
    let now_tsc = unsafe { core::arch::x86_64::_rdtsc() };
    let crash_to_dump_ms = now_tsc.saturating_sub(note.crash_tsc) / clock.khz().max(1);
    let dump_ms = (stats.end_ns - stats.start_ns) / 1_000_000;
    let mib_s = if dump_ms == 0 { 0 } else { (stats.bytes >> 20) * 1000 / dump_ms };
    println!("recovery: crash to dump complete {crash_to_dump_ms} ms, dump {} MiB in {dump_ms} ms ({mib_s} MiB/s)", stats.bytes >> 20);
    let mut line = Line { buf: [0; 768], len: 0 };
    let _ = write!(
        line,
        "point={} policy={} dump_lba={} dump_bytes={} chunks={} crash_to_dump_ms={crash_to_dump_ms} dump_ms={dump_ms} mib_s={mib_s} canary_changed={} stale_faults={} own_faults={} lost_faults={} quarantined={}",
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
    let at = boot.cmdline().get("crash_note").ok_or("no crash_note= on the command line")?;
    let addr = u64::from_str_radix(at.trim_start_matches("0x"), 16).map_err(|_| "crash_note= is not hex")?;
    if addr % 4096 != 0 || addr >= 1 << 32 {
        return Err("crash_note= is not a page below 4 GiB");
    }
    let mut page = [0u8; NOTE_LEN];
    // SAFETY: a page below 4 GiB (checked), identity-mapped; the crashed kernel
    // wrote it; we only copy it out.
    unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, page.as_mut_ptr(), NOTE_LEN) };
    CrashNote::decode(&page).map_err(|_| "crash note damaged or missing")
}

fn storage_and_dump<W: Window>(
    boot: &'static BootInfo,
    clock: &TscClock,
    config: &Config,
    note: &CrashNote,
    policy: Policy,
    report: &mut Report,
) -> Result<DumpStats, Failed> {
    let t = clock.now_ns();
    let mut cfg = platform::ecam(boot).map_err(|e| fail("ecam", e))?;
    let nvme_fn = platform::find(&mut cfg, NVME).map_err(|e| fail("find nvme", e))?;
    let (mut regs, _) = platform::map_bar0(&mut cfg, nvme_fn.address).map_err(|e| fail("nvme bar", e))?;
    let found = describe_nvme(&mut regs);
    let cpu = NonNull::new(ARENA_PHYS as *mut u8).ok_or(fail("arena", "null"))?;
    // SAFETY: the arena is RAM of the reserved region, owned by this kernel and
    // used only through this arena; W maps its IOVAs to it (1:1 or via the IOMMU).
    let mut arena = unsafe { DmaArena::<W>::new(cpu, ARENA_PHYS, WINDOW_LEN) };
    let nvme = paranoid_nvme::Nvme::new(regs, cfg, nvme_fn.address, *clock, &mut arena, paranoid_nvme::Config::default())
        .map_err(|e| fail("nvme", e))?;
    let ready = match nvme.init(config.init_budget) {
        Ok(r) => r,
        Err(f) => {
            println!("{}", f.trace);
            report.device(format_args!("nvme {}", nvme_fn.address), format_args!("{}", found.as_str()), format_args!("fenced: {}", f.cause));
            return Err(fail("nvme init", f.cause));
        }
    };
    println!("{}", ready.trace);
    report.device(
        format_args!("nvme {}", nvme_fn.address),
        format_args!("{}", found.as_str()),
        format_args!("ready in {:?}, {} escalation(s)", ready.trace.total(), ready.trace.escalations()),
    );
    report.step("nvme init", t, clock.now_ns(), format_args!("ready"));
    let mut nvme = ready.device.into_inner();
    let ns = nvme.namespace_info().ok_or(fail("namespace", "none"))?;

    let t = clock.now_ns();
    let buffer = arena.alloc::<ToDevice>(STAGING, 4096).map_err(|e| fail("staging buffer", e))?;
    let mut sink = storage::NvmeSink { nvme: &mut nvme, buffer, block_size: ns.block_size };
    let mut frames = boot.take_frames().ok_or(fail("frames", "taken"))?.map_err(|e| fail("frames", e))?;
    let bounce_at = frames.alloc(u64::from(config.chunk_bytes), 4096).map_err(|e| fail("bounce", e))?;
    // SAFETY: the frame allocator handed out these bytes from this kernel's own
    // RAM (the reserved region); nothing else refers to them.
    let bounce = unsafe { core::slice::from_raw_parts_mut(bounce_at as *mut u8, config.chunk_bytes as usize) };
    let mut header = Header::new(policy, config.chunk_bytes);
    header.crash_ns = note.crash_ns;
    header.crash_point = note.point;
    header.crash_reason = note.reason;
    header.pattern_seed = note.pattern_seed;
    header.pattern = note.pattern;
    let job = DumpJob { header, ranges: note.ranges(), extent_lba: config.dump_lba, extent_blocks: config.dump_blocks };
    let memory = memory::CrashedMemory::new(note.ranges());
    let mut schedule = Schedule::new(clock, config.heartbeat_period);
    let stats = write_dump(job, &mut sink, &memory, clock, bounce, &mut [], &mut schedule, &mut |_, _| {})
        .map_err(|e| fail("dump", e))?;
    report.step(
        "dump",
        t,
        clock.now_ns(),
        format_args!("{} MiB in {} chunks to lba {}..", stats.bytes >> 20, stats.chunks, config.dump_lba),
    );
    Ok(stats)
}

/// The NVMe controller's state as found, before anything touches it.
fn describe_nvme(regs: &mut impl RegisterIo) -> Line {
    let cc = regs.read32(0x14);
    let csts = regs.read32(0x1c);
    let mut line = Line { buf: [0; 768], len: 0 };
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
