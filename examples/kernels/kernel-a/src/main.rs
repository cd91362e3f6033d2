//! Kernel A: the kernel that crashes.
//!
//! It boots, preloads the recovery kernel it was given (`-initrd`) into the
//! reserved region, fills memory with a checksummable pattern, turns DMA on and
//! leaves it live (NVMe commands outstanding), then panics at the point its
//! command line names (`crash=early|during-io|critical|index-oob`), or hands
//! over in order without crashing (`crash=handoff`). Its panic
//! path does no device I/O: it writes a crash note and jumps to the recovery
//! kernel (see `crash.rs`).
#![no_std]
#![no_main]

mod crash;
mod describe;
mod disks;
mod error;
mod iommu;
mod layout;
mod live;

use core::fmt::Write as _;

use paranoid::phys::RamRegion;
use paranoid::time::Clock;
use paranoid_boot::frames::FRAME_SIZE;
use paranoid_boot::handoff::{self, KernelImage};
use paranoid_boot::result::{self, Fields, Verdict};
use paranoid_boot::{println, BootInfo, ExitCode, MemoryKind, MemoryRegion};
use paranoid_dump::{pattern_word, Range, MAX_RANGES};
use paranoid_recovery::config::Config as RecoveryConfig;
use paranoid_recovery::note::{CrashNote, CrashPoint, CRASHED_RAM_KIND};

use layout::*;

paranoid_boot::entry!(main);

/// The debugger check's marker is this XOR the seed (`KERNEL_A_MARKER`).
const MARKER_BASE: u64 = 0x6b65_726e_656c_4100;

/// Command-line words kernel A keeps for itself; all others go to the recovery kernel.
const OWN_KEYS: [&str; 5] = ["crash", "seed", "dump", "watchdog_ms", "dump_seen_at"];

fn main(boot: &'static BootInfo) -> ExitCode {
    let cmd = boot.cmdline();
    let name = cmd.get("crash").unwrap_or(CrashPoint::DuringIo.name());
    let Some(point) = CrashPoint::from_name(name) else {
        let mut fields = Fields::new();
        fields
            .add("reason", "unknown-crash-point")
            .add("point", name);
        return result::finish("kernel-a", Verdict::Fail, &fields);
    };
    let seed = cmd
        .get("seed")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1);
    let clock = boot.clock();
    // The map as the firmware gave it: the host checks the dump against it
    // and against the machine it configured.
    for r in boot.memory_map() {
        let kind = if r.kind == MemoryKind::Ram {
            "ram"
        } else {
            "other"
        };
        println!("kernel-a: memory map {:#x}+{:#x} {kind}", r.start, r.size);
    }
    println!(
        "kernel-a: up, crash point `{}`, pattern seed {seed}, tsc {} kHz",
        point.name(),
        clock.khz()
    );
    match run(boot, point, seed) {
        Ok(never) => match never {},
        Err(error) => {
            // `reason=` names the step; `error=` keeps what the step got.
            let mut fields = Fields::new();
            fields.quoted("reason", error.step());
            if let Some(cause) = error.cause() {
                fields.quoted("error", cause);
            }
            result::finish("kernel-a", Verdict::Fail, &fields)
        }
    }
}

use error::{Check, KernelAError};

fn run(
    boot: &'static BootInfo,
    point: CrashPoint,
    seed: u64,
) -> Result<core::convert::Infallible, KernelAError> {
    // The fixed layout's highest part is the DMA arena: a machine whose RAM
    // stops short of it is told so in words (QEMU's default is 128 MiB).
    let needed = ARENA_BASE + ARENA_LEN;
    let covered = boot
        .memory_map()
        .iter()
        .filter(|r| r.kind == MemoryKind::Ram && r.start <= ARENA_BASE)
        .map(|r| r.start.saturating_add(r.size).min(needed))
        .max()
        .unwrap_or(0);
    if covered < needed {
        return Err(Check::TooLittleRam {
            needed,
            ram_end: covered,
        }
        .into());
    }
    let mut frames = boot
        .take_frames()
        .ok_or(KernelAError::FramesTaken)?
        .map_err(KernelAError::FrameAllocator)?;
    // The DMA arena's RAM, claimed once: no frame is handed out inside it.
    let arena_ram = frames
        .claim_ram(ARENA_BASE, ARENA_LEN)
        .map_err(KernelAError::ArenaRam)?;
    // The pattern region and the recovery region, claimed the same way.
    let mut pattern_ram = frames
        .claim_ram(PATTERN_BASE, PATTERN_LEN)
        .map_err(KernelAError::Reserve)?;
    let recovery_ram = frames
        .claim_ram(RECOVERY_BASE, RECOVERY_LEN)
        .map_err(KernelAError::Reserve)?;
    let recovery = RecoveryParts::split(recovery_ram).ok_or(Check::RecoveryLayout {
        start: RECOVERY_BASE,
        len: RECOVERY_LEN,
    })?;
    // Its own disk, named like the recovery kernel's dump target (the same
    // settings: kernel A passes them through).
    let settings =
        RecoveryConfig::parse(boot.cmdline().as_str()).map_err(KernelAError::RecoverySettings)?;
    let nsid = settings.target.nsid;
    // The arena's RAM is lent to the disk probes and comes back for `live`.
    let (disk, arena_ram) = disks::find(boot, settings.target.serial, nsid, arena_ram)?;
    let (entry, start_info) = preload_recovery(boot, disk, recovery.image, recovery.start_info)?;
    let mut note = CrashNote::new();
    note.pattern_seed = seed;
    note.pattern = Range {
        start: PATTERN_BASE,
        len: PATTERN_LEN,
    };
    note.scratch = Range {
        start: SCRATCH_OFFSET,
        len: SCRATCH_LEN,
    };
    note.range_count = if boot.cmdline().get("dump") == Some("pattern") {
        // A small dump (for a streamed run): the pattern region only.
        note.ranges[0] = note.pattern;
        1
    } else {
        dump_ranges(boot.memory_map(), &mut note.ranges)
    };
    note.reserved = Range {
        start: RECOVERY_BASE,
        len: RECOVERY_LEN,
    };
    crash::arm(entry, start_info, boot.clock(), note, recovery.note);
    crash::publish(&describe::describe(
        boot,
        &frames,
        crash::descriptor_range(),
    ));
    let marker = MARKER_BASE ^ seed;
    crash::KERNEL_A_MARKER.store(marker, core::sync::atomic::Ordering::Release);
    println!(
        "kernel-a: recovery kernel preloaded (entry {entry:#x}), panic path armed, descriptor at {:#x}, KERNEL_A_MARKER={marker:#x}",
        crash::descriptor_range().start
    );

    let t = boot.clock().now_ns();
    fill_pattern(&mut pattern_ram, seed);
    println!(
        "kernel-a: {} MiB at {PATTERN_BASE:#x} patterned in {} ms",
        PATTERN_LEN >> 20,
        (boot.clock().now_ns() - t) / 1_000_000
    );
    if point == CrashPoint::Early {
        crash::at(point.name());
        panic!("crash point `early`: memory patterned, no DMA live yet");
    }

    let chaos = (point != CrashPoint::Handoff).then(|| live::Chaos::from_seed(seed));
    let mut live = live::start(boot, &mut frames, arena_ram, chaos, disk, nsid)?;
    // What kernel A allocated for its devices is no longer free.
    crash::publish(&describe::describe(
        boot,
        &frames,
        crash::descriptor_range(),
    ));
    // Armed last: from here the recovery kernel must keep it fed.
    if let Some(ms) = boot
        .cmdline()
        .get("watchdog_ms")
        .and_then(|v| v.parse::<u64>().ok())
    {
        live::arm_watchdog(ms)?;
        println!("kernel-a: i6300esb watchdog armed: reset {ms} ms after the last pet");
    }
    println!("kernel-a: DMA live: {live}");
    if let Some(c) = chaos {
        println!("kernel-a: chaos for seed {seed}: {c:?}");
        boot.clock()
            .delay(core::time::Duration::from_millis(c.settle_ms));
    }
    match point {
        CrashPoint::Handoff => {
            // The orderly path: no crash, devices shut down in order, then the
            // same jump. The next kernel must find everything quiet.
            live.devices.shut_down(&boot.clock())?;
            println!("kernel-a: devices shut down, IOMMU translation off; handing over");
            crash::at(point.name());
            crash::hand_over(format_args!(
                "planned handoff: devices shut down in order, IOMMU left off"
            ))
        }
        CrashPoint::DuringIo => {
            crash::at(point.name());
            panic!("crash point `during-io`: {live}");
        }
        CrashPoint::Critical => {
            // Kernel A never unmasks them again (the crash follows).
            paranoid::arch::x86_64::disable_interrupts();
            crash::at(point.name());
            panic!("crash point `critical`: inside an interrupt-free critical section");
        }
        // Early panicked above, before any DMA was live.
        CrashPoint::IndexOob | CrashPoint::Early => {
            crash::at(CrashPoint::IndexOob.name());
            let table = [0u8; 4];
            let i = core::hint::black_box(table.len() + live.outstanding as usize);
            // The bug being simulated: an index past the end (a panicking index).
            let v = table[i];
            panic!("index-oob did not panic (read {v})");
        }
    }
}

/// Loads the recovery kernel from the first module into the reserved region and
/// writes its start info; returns its entry and the start info address. The
/// recovery kernel's command line is kernel A's recovery settings, plus where
/// kernel A saw its disk (`dump_seen_at=`).
fn preload_recovery(
    boot: &'static BootInfo,
    disk: disks::Found,
    mut image_ram: RamRegion,
    mut start_info_page: RamRegion,
) -> Result<(u32, u32), KernelAError> {
    let module = boot.modules().first().ok_or(Check::NoRecoveryKernel)?;
    let bytes = boot.module_bytes(0).ok_or(Check::ModuleOutsideRam {
        start: module.start,
        size: module.size,
    })?;
    let image = KernelImage::parse(bytes).map_err(KernelAError::RecoveryElf)?;
    let at = image.footprint();
    if at.start < RECOVERY_BASE || at.end > CANARY_START {
        return Err(Check::RecoveryNotInReserved {
            start: at.start,
            end: at.end,
            base: RECOVERY_BASE,
            limit: CANARY_START,
        }
        .into());
    }
    // The segments land in the image part of the reserved region (checked by
    // `load`), claimed from the frame allocator: nothing kernel A uses.
    image
        .load(&mut image_ram, boot.memory_map())
        .map_err(KernelAError::RecoveryLoad)?;

    let mut cmdline = Line::new();
    let _ = write!(
        cmdline,
        "crash_note={CRASH_NOTE:#x} tsc_khz={}",
        boot.clock().khz()
    );
    for (k, v) in boot.cmdline().pairs() {
        if !OWN_KEYS.contains(&k) {
            let _ = write!(cmdline, " {k}={v}");
        }
    }
    match disk {
        disks::Found::NotNamed => {}
        disks::Found::Nowhere => {
            let _ = write!(cmdline, " dump_seen_at=none");
        }
        disks::Found::At(node) => {
            let _ = write!(cmdline, " dump_seen_at={}", node.address());
        }
    }
    let mut map = [MemoryRegion {
        start: 0,
        size: 0,
        kind: MemoryKind::Reserved,
    }; 64];
    let n = recovery_memory_map(boot.memory_map(), &mut map);
    // RECOVERY_START_INFO is the page of the reserved region set aside for
    // it (layout.rs), below 4 GiB.
    let ebx = handoff::write_start_info(
        &mut start_info_page,
        cmdline.as_str(),
        map.get(..n).unwrap_or(&[]),
        boot.rsdp(),
        &[],
    )
    .map_err(KernelAError::RecoveryStartInfo)?;
    Ok((image.pvh_entry(), ebx))
}

/// End of the recovery kernel's image area (its canary region follows).
const CANARY_START: u64 = 0x0600_0000;

/// The recovery kernel's memory map: the reserved region (minus the start-info
/// and note pages) is RAM; kernel A's RAM is typed [`CRASHED_RAM_KIND`].
fn recovery_memory_map(original: &[MemoryRegion], out: &mut [MemoryRegion]) -> usize {
    let mut n = 0;
    let mut push = |r: MemoryRegion| {
        if r.size > 0 {
            if let Some(slot) = out.get_mut(n) {
                *slot = r;
                n += 1;
            }
        }
    };
    let usable_end = RECOVERY_START_INFO;
    for r in original {
        if r.kind != MemoryKind::Ram {
            push(*r);
            continue;
        }
        let crashed = MemoryKind::Other(CRASHED_RAM_KIND);
        let (s, e) = (r.start, r.end());
        // Below the reserved region, the reserved region, above it.
        push(MemoryRegion {
            start: s,
            size: e.min(RECOVERY_BASE).saturating_sub(s),
            kind: crashed,
        });
        let (rs, re) = (s.max(RECOVERY_BASE), e.min(usable_end));
        if rs < re {
            push(MemoryRegion {
                start: rs,
                size: re - rs,
                kind: MemoryKind::Ram,
            });
        }
        let (ps, pe) = (s.max(usable_end), e.min(RECOVERY_BASE + RECOVERY_LEN));
        if ps < pe {
            push(MemoryRegion {
                start: ps,
                size: pe - ps,
                kind: MemoryKind::Reserved,
            });
        }
        let hs = s.max(RECOVERY_BASE + RECOVERY_LEN);
        if hs < e {
            push(MemoryRegion {
                start: hs,
                size: e - hs,
                kind: crashed,
            });
        }
    }
    n
}

/// Kernel A's RAM minus the reserved region: what the recovery kernel dumps.
fn dump_ranges(map: &[MemoryRegion], out: &mut [Range; MAX_RANGES]) -> u32 {
    let mut n = 0usize;
    let reserved = (RECOVERY_BASE, RECOVERY_BASE + RECOVERY_LEN);
    for r in map.iter().filter(|r| r.kind == MemoryKind::Ram) {
        for (s, e) in [
            (r.start, r.end().min(reserved.0)),
            (r.start.max(reserved.1), r.end()),
        ] {
            if s < e {
                if let Some(slot) = out.get_mut(n) {
                    *slot = Range {
                        start: s,
                        len: e - s,
                    };
                    n += 1;
                }
            }
        }
    }
    n as u32
}

fn fill_pattern(ram: &mut RamRegion, seed: u64) {
    let words = ram.len() / 8;
    for i in 0..words {
        let addr = ram.start() + 8 * i;
        // Inside the region and 8-aligned: always written.
        ram.write_u64_aligned(8 * i, pattern_word(seed, addr));
    }
}

/// The reserved recovery region, split by use (layout.rs).
struct RecoveryParts {
    /// Where the recovery kernel's image is loaded, up to its canary region.
    image: RamRegion,
    /// [`RECOVERY_START_INFO`]'s page.
    start_info: RamRegion,
    /// [`CRASH_NOTE`]'s page.
    note: RamRegion,
}

impl RecoveryParts {
    /// The parts of the claimed region `RECOVERY_BASE..+RECOVERY_LEN`;
    /// `None` when the layout constants do not fit inside it.
    fn split(region: RamRegion) -> Option<Self> {
        let (image, rest) = region.split_at(CANARY_START - RECOVERY_BASE).ok()?;
        let (_, rest) = rest.split_at(RECOVERY_START_INFO - CANARY_START).ok()?;
        let (start_info, rest) = rest.split_at(FRAME_SIZE).ok()?;
        let (_, rest) = rest
            .split_at(CRASH_NOTE - RECOVERY_START_INFO - FRAME_SIZE)
            .ok()?;
        let (note, _) = rest.split_at(FRAME_SIZE).ok()?;
        Some(Self {
            image,
            start_info,
            note,
        })
    }
}

/// A command line being built (fixed capacity).
type Line = paranoid_recovery::text::Line<512>;
