//! `boot`: the kernel came up and reports what the loader told it; the start
//! info parser and the frame allocator reject bad input with typed errors.

use paranoid::phys::SliceMemory;
use paranoid_boot::frames::{FrameError, PhysRange, FRAME_SIZE};
use paranoid_boot::start_info::{HvmStartInfo, StartInfoError, START_INFO_MAGIC};
use paranoid_boot::{acpi, println, BootInfo, MemoryKind, StartInfo};

use crate::report::{Fields, Outcome};
use crate::{check, ensure};

/// Prints the memory map and boot facts, then checks them.
pub fn run(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let info = boot.start_info();
    for r in boot.memory_map() {
        println!("  memmap {:#012x}..{:#012x} {}", r.start, r.end(), r.kind);
    }
    f.add("start_info", format_args!("{:#x}", info.address()));
    f.add("version", info.version());
    f.add("cmdline", boot.cmdline().as_str());
    f.add("regions", boot.memory_map().len());
    f.add("ram_mib", info.ram_bytes() >> 20);
    f.add("modules", boot.modules().len());
    f.add("tsc_khz", boot.clock().khz());
    ensure!(
        f,
        info.version() >= 1,
        "start info version {} has no memory map",
        info.version()
    );
    ensure!(
        f,
        info.ram_bytes() >= 64 << 20,
        "only {} bytes of RAM",
        info.ram_bytes()
    );
    let rsdp = match boot.rsdp() {
        Some(r) => r,
        None => return Err(crate::report::fail(f, "no RSDP")),
    };
    f.add("rsdp", format_args!("{rsdp:#x}"));
    let root = check!(f, acpi::root(boot, rsdp), "ACPI root");
    f.add("acpi_tables", root.entries().count());
    let mcfg = check!(f, root.find(*b"MCFG"), "MCFG");
    ensure!(f, mcfg.is_some(), "no MCFG table");

    if let Err(reason) = check_frames(boot, &mut f) {
        return Err(crate::report::fail(f, reason));
    }
    if let Err(reason) = check_bad_start_infos() {
        return Err(crate::report::fail(f, reason));
    }
    f.add("bad_start_info_rejected", 4);
    Ok(f)
}

/// Allocations land in RAM, outside the kernel, never twice; bad requests and
/// exhaustion are typed errors.
fn check_frames(boot: &'static BootInfo, f: &mut Fields) -> Result<(), &'static str> {
    let mut frames = match boot.take_frames() {
        Some(Ok(a)) => a,
        _ => return Err("frame allocator unavailable"),
    };
    if boot.take_frames().is_some() {
        return Err("frame allocator handed out twice");
    }
    let a = frames
        .alloc_zeroed(3 * FRAME_SIZE, FRAME_SIZE)
        .map_err(|_| "3-frame allocation failed")?;
    let b = frames
        .alloc(1, 2 << 20)
        .map_err(|_| "2 MiB-aligned allocation failed")?;
    let first = PhysRange {
        start: a,
        end: a + 3 * FRAME_SIZE,
    };
    let second = PhysRange {
        start: b,
        end: b + FRAME_SIZE,
    };
    if first.overlaps(&second)
        || first.overlaps(&boot.kernel_image())
        || second.overlaps(&boot.kernel_image())
    {
        return Err("allocations overlap each other or the kernel");
    }
    if b % (2 << 20) != 0 {
        return Err("alignment not honoured");
    }
    let in_ram = |r: PhysRange| {
        boot.memory_map()
            .iter()
            .any(|m| m.kind == MemoryKind::Ram && m.start <= r.start && r.end <= m.end())
    };
    if !in_ram(first) || !in_ram(second) {
        return Err("allocation outside RAM");
    }
    if !matches!(
        frames.alloc(0, FRAME_SIZE),
        Err(FrameError::BadRequest { .. })
    ) || !matches!(
        frames.alloc(FRAME_SIZE, 3000),
        Err(FrameError::BadRequest { .. })
    ) || !matches!(
        frames.alloc(1 << 40, FRAME_SIZE),
        Err(FrameError::Exhausted { .. })
    ) {
        return Err("bad frame requests were not rejected");
    }
    f.add("frames", format_args!("{a:#x},{b:#x}"));
    f.add("managed_mib", frames.managed() >> 20);
    Ok(())
}

/// Where the scratch start info the parser is fed with bad values pretends
/// to lie (it is a byte buffer served as physical memory).
const SCRATCH_BASE: u64 = 0x0010_0000;
/// Bytes of scratch memory: the header and the longest tail below (2 KiB).
const SCRATCH_LEN: usize = 4096;

fn parse_scratch(info: HvmStartInfo, tail: &[u8]) -> Result<StartInfo, StartInfoError> {
    let mut scratch = [0u8; SCRATCH_LEN];
    let (header, rest) = scratch.split_at_mut(HvmStartInfo::LEN);
    header.copy_from_slice(&info.to_le_bytes());
    let n = tail.len().min(rest.len());
    rest[..n].copy_from_slice(&tail[..n]);
    let mem = SliceMemory {
        base: SCRATCH_BASE,
        bytes: &scratch,
    };
    StartInfo::parse(&mem, SCRATCH_BASE)
}

/// Bad magic, too many modules, a command line without end and a memory map
/// past 4 GiB are each refused with their own error.
fn check_bad_start_infos() -> Result<(), &'static str> {
    let base = SCRATCH_BASE;
    let header = HvmStartInfo::LEN as u64;
    let good = HvmStartInfo {
        magic: START_INFO_MAGIC,
        version: 1,
        ..HvmStartInfo::default()
    };
    if !matches!(
        parse_scratch(
            HvmStartInfo {
                magic: 0x1234,
                ..good
            },
            &[]
        ),
        Err(StartInfoError::BadMagic { found: 0x1234 })
    ) {
        return Err("bad magic accepted");
    }
    if !matches!(
        parse_scratch(
            HvmStartInfo {
                nr_modules: 1000,
                modlist_paddr: base + header,
                ..good
            },
            &[]
        ),
        Err(StartInfoError::TooManyModules { count: 1000 })
    ) {
        return Err("1000 modules accepted");
    }
    if !matches!(
        parse_scratch(
            HvmStartInfo {
                cmdline_paddr: base + header,
                ..good
            },
            &[b'a'; 2048]
        ),
        Err(StartInfoError::CmdlineTooLong)
    ) {
        return Err("unterminated command line accepted");
    }
    if !matches!(
        parse_scratch(
            HvmStartInfo {
                memmap_paddr: 0xffff_fff0,
                memmap_entries: 4,
                ..good
            },
            &[]
        ),
        Err(StartInfoError::OutOfRange {
            what: "memory map",
            ..
        })
    ) {
        return Err("memory map above 4 GiB accepted");
    }
    match parse_scratch(
        HvmStartInfo {
            cmdline_paddr: base + header,
            ..good
        },
        b"test=x a=b\0",
    ) {
        Ok(s) if s.cmdline().get("a") == Some("b") && s.cmdline().get("test") == Some("x") => {
            Ok(())
        }
        _ => Err("a good start info was rejected"),
    }
}
