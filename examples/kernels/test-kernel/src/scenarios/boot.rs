//! `boot`: the kernel came up and reports what the loader told it; the start
//! info parser and the frame allocator reject bad input with typed errors;
//! the memory layout (where low RAM ends, which pages of 2..4 GiB are
//! write-back RAM, where device memory may be mapped) follows the memory map,
//! on this machine and on made-up maps.

use paranoid::phys::{PhysRead, SliceMemory};
use paranoid_boot::frames::{FrameError, PhysRange, FRAME_SIZE};
use paranoid_boot::paging::{self, MemoryLayout, PAGE_SIZE, UNCACHED_FROM, UNCACHED_TO};
use paranoid_boot::platform;
use paranoid_boot::start_info::IDENTITY_LIMIT;
use paranoid_boot::start_info::{HvmStartInfo, StartInfoError, START_INFO_MAGIC};
use paranoid_boot::MemoryRegion;
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
    if let Err(reason) = check_live_layout(boot, &mut f) {
        return Err(crate::report::fail(f, reason));
    }
    if let Err(reason) = check_made_up_layouts() {
        return Err(crate::report::fail(f, reason));
    }
    f.add("made_up_layouts", MADE_UP_LAYOUTS);
    Ok(f)
}

/// This machine's layout: the end of low RAM is readable through `tables`
/// and the next byte is not; no page of 2..4 GiB the memory map calls
/// memory from end to end stays uncached, no other page is write-back; device
/// memory is refused below the end of low RAM and on the map's RAM, and ECAM
/// is device memory.
fn check_live_layout(boot: &'static BootInfo, f: &mut Fields) -> Result<(), &'static str> {
    let layout = boot.layout();
    let low_end = layout.low_end();
    f.add("low_ram_end", format_args!("{low_end:#x}"));
    f.add(
        "write_back_mib",
        (layout.write_back_pages().count() as u64 * PAGE_SIZE) >> 20,
    );
    if boot.tables().ranges() != [(1, low_end)] {
        return Err("tables do not reach exactly to the end of low RAM");
    }
    let mut b = [0u8; 1];
    if boot.tables().read(low_end - 1, &mut b).is_err() {
        return Err("the last byte of low RAM is unreadable");
    }
    if boot.tables().read(low_end, &mut b).is_ok() {
        return Err("tables read past the end of low RAM");
    }
    let map = boot.memory_map();
    let all_memory = |page: u64| {
        // A page is all memory when its 4 KiB frames each are (most pages of
        // the window meet no memory at all: decided at once).
        let end = page + PAGE_SIZE;
        map.iter()
            .any(|r| paging::is_memory(r.kind) && r.start < end && page < r.end())
            && (0..PAGE_SIZE / FRAME_SIZE).all(|i| {
                let a = page + i * FRAME_SIZE;
                map.iter()
                    .any(|r| paging::is_memory(r.kind) && r.start <= a && a + FRAME_SIZE <= r.end())
            })
    };
    if paging::page_uncached(0) != Some(false)
        || paging::page_uncached(UNCACHED_FROM - PAGE_SIZE) != Some(false)
        || paging::page_uncached(UNCACHED_TO) != Some(false)
        || paging::page_uncached(IDENTITY_LIMIT).is_some()
    {
        return Err("the page tables are not write-back below 2 GiB and above 4 GiB");
    }
    let mut page = UNCACHED_FROM;
    while page < UNCACHED_TO {
        if layout.is_write_back(page) != all_memory(page) {
            return Err(
                "a page of 2..4 GiB is write-back but not all RAM, or all RAM but uncached",
            );
        }
        if paging::page_uncached(page) != Some(!layout.is_write_back(page)) {
            return Err("the page tables disagree with the layout in 2..4 GiB");
        }
        page += PAGE_SIZE;
    }
    if boot.is_device_memory(low_end - FRAME_SIZE, FRAME_SIZE)
        || platform::check_mmio(UNCACHED_FROM - FRAME_SIZE, 2 * FRAME_SIZE).is_ok()
        || platform::check_mmio(UNCACHED_TO - FRAME_SIZE, 2 * FRAME_SIZE).is_ok()
    {
        return Err("device memory accepted below the end of low RAM or past 4 GiB");
    }
    for r in map.iter().filter(|r| r.kind == MemoryKind::Ram) {
        let (s, e) = (r.start.max(UNCACHED_FROM), r.end().min(UNCACHED_TO));
        if s < e && platform::check_mmio(s, FRAME_SIZE).is_ok() {
            return Err("device memory accepted on RAM of 2..4 GiB");
        }
    }
    if platform::check_mmio(platform::Q35_ECAM_BASE, 256 << 20).is_err() {
        return Err("q35's ECAM window refused as device memory");
    }
    Ok(())
}

/// How many made-up maps [`check_made_up_layouts`] tries.
const MADE_UP_LAYOUTS: usize = 7;

const fn region(start: u64, end: u64, kind: MemoryKind) -> MemoryRegion {
    MemoryRegion {
        start,
        size: end - start,
        kind,
    }
}

/// The layouts of made-up memory maps: q35 with 2.5 GiB (all below 4 GiB),
/// with 2 GiB and with 3 GiB (2 GiB low, the rest above 4 GiB), the
/// recovery kernel's view of the 2.5 GiB machine (the crashed kernel's RAM
/// typed as its own kind), two reserved ranges in a row, firmware data across
/// 2 GiB, and RAM beyond a gap.
fn check_made_up_layouts() -> Result<(), &'static str> {
    const G: u64 = 1 << 30;
    use MemoryKind::{Other, Ram, Reserved};
    let firmware = |kind_low: MemoryKind, ram_end: u64, reserved_end: u64| {
        [
            region(0, 0x9_fc00, Ram),
            region(0x9_fc00, 0xa_0000, Reserved),
            region(0xf_0000, 0x10_0000, Reserved),
            region(0x10_0000, ram_end, kind_low),
            region(ram_end, reserved_end, Reserved),
            region(0xb000_0000, 0xc000_0000, Reserved),
            region(0xfed1_c000, 0xfed2_0000, Reserved),
        ]
    };
    let pages = |l: &MemoryLayout| l.write_back_pages().count() as u64;
    // 2.5 GiB: RAM to 0x9ffd_7000, SeaBIOS's tables above it to 0xa000_0000.
    for kind in [Ram, Other(0x5041_5241)] {
        let l = MemoryLayout::new(&firmware(kind, 0x9ffd_7000, 0xa000_0000));
        if l.low_end() != 0xa000_0000 {
            return Err("2.5 GiB: low RAM does not end at 0xa0000000");
        }
        // Every page up to the one the firmware's range shares.
        if pages(&l) != (0x9fe0_0000 - UNCACHED_FROM) / PAGE_SIZE
            || !l.is_write_back(0x9fc0_0000)
            || l.is_write_back(0x9fe0_0000)
        {
            return Err("2.5 GiB: wrong write-back pages");
        }
        if l.uncached(0x9fff_f000, 0xa000_0000)
            || !l.uncached(0xa000_0000, 0xa000_1000)
            || !l.uncached(0xb000_0000, 0xc000_0000)
        {
            return Err("2.5 GiB: wrong device-memory window");
        }
    }
    // 2 GiB, and 3 GiB (2 GiB low): nothing changes in the window.
    for ram_end in [2 * G - 0x2_9000, 2 * G] {
        let mut map = [region(0, 0, Reserved); 8];
        map[..7].copy_from_slice(&firmware(Ram, ram_end, 2 * G));
        map[7] = region(4 * G, 5 * G, Ram);
        let l = MemoryLayout::new(&map);
        if l.low_end() != UNCACHED_FROM || pages(&l) != 0 || !l.uncached(UNCACHED_FROM, 4 * G) {
            return Err("2 GiB low: the window is not all uncached device memory");
        }
    }
    // A reserved range after a reserved range is not low RAM.
    let l = MemoryLayout::new(&[
        region(0x10_0000, 0x9000_0000, Ram),
        region(0x9000_0000, 0x9010_0000, Reserved),
        region(0x9010_0000, 0xa000_0000, Reserved),
    ]);
    if l.low_end() != 0x9010_0000 || pages(&l) != (0x9000_0000 - UNCACHED_FROM) / PAGE_SIZE {
        return Err("two reserved ranges in a row counted as low RAM");
    }
    // The firmware's range at the top of RAM straddles 2 GiB (RAM ends below).
    let l = MemoryLayout::new(&[
        region(0x10_0000, 0x7ff0_0000, Ram),
        region(0x7ff0_0000, 0x8010_0000, Reserved),
    ]);
    if l.low_end() != 0x8010_0000 || pages(&l) != 0 {
        return Err("firmware data across 2 GiB is not low RAM");
    }
    // RAM beyond a gap, a page and a half: one write-back page, never device
    // memory (the half in the uncached page neither), not low RAM.
    let map = [
        region(0x10_0000, 2 * G, Ram),
        region(0xc000_0000, 0xc030_0000, Ram),
    ];
    let l = MemoryLayout::new(&map);
    if l.low_end() != UNCACHED_FROM
        || pages(&l) != 1
        || !l.is_write_back(0xc000_0000)
        || l.is_device_memory(&map, 0xc000_0000, 0x1000)
        || l.is_device_memory(&map, 0xc02f_f000, 0x1000)
        || l.is_device_memory(&map, 0xbfff_f000, 0x2000)
        || !l.is_device_memory(&map, 0xc030_0000, 0x1000)
        || !l.is_device_memory(&map, 0xbfff_f000, 0x1000)
    {
        return Err("RAM beyond a gap in 2..4 GiB");
    }
    Ok(())
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
