//! `pvh-handoff`: this kernel loads a second kernel (`-initrd`, linked at
//! 64 MiB), writes it a PVH start info and jumps to its 32-bit entry, as a
//! crashing kernel starts its recovery kernel. The second kernel checks where
//! it runs and what it was told, and reports.
//!
//! Stage 1 (`test=pvh-handoff`) prints `PARANOID-HANDOFF ...` and never
//! returns; stage 2 (`test=pvh-handoff stage=2 ...`) prints the result line.

use paranoid_boot::frames::FRAME_SIZE;
use paranoid_boot::handoff::{self, KernelImage};
use paranoid_boot::{println, BootInfo};

use crate::report::{fail, Fields, Outcome};
use crate::{check, ensure};

/// Where `test-kernel-high` is linked (its `build.rs`).
pub const HIGH_BASE: u64 = 0x0400_0000;

/// Runs stage 1 or stage 2.
pub fn run(boot: &'static BootInfo) -> Outcome {
    match boot.cmdline().get("stage") {
        Some("2") => stage2(boot),
        _ => stage1(boot),
    }
}

fn stage1(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let Some(module) = boot.modules().first().copied() else {
        return Err(fail(
            f,
            "no module: start QEMU with -initrd test-kernel-high",
        ));
    };
    f.add(
        "module",
        format_args!("{:#x}+{:#x}", module.start, module.size),
    );
    let Some(bytes) = boot.module_bytes(0) else {
        return Err(fail(f, "module outside RAM"));
    };
    let image = check!(f, KernelImage::parse(bytes), "module ELF");
    let target = image.footprint();
    f.add(
        "target",
        format_args!("{:#x}..{:#x}", target.start, target.end),
    );
    f.add("entry", format_args!("{:#x}", image.pvh_entry()));
    ensure!(
        f,
        target.start == HIGH_BASE,
        "module is linked at {:#x}, expected {HIGH_BASE:#x}",
        target.start
    );

    let mut frames = match boot.take_frames() {
        Some(Ok(a)) => a,
        _ => return Err(fail(f, "frame allocator unavailable")),
    };
    // The target's image, claimed (never handed out as frames meanwhile, and
    // nothing this kernel uses: its image, its frames, the module).
    let target_len = (target.end - target.start).next_multiple_of(FRAME_SIZE);
    let mut target_ram = check!(
        f,
        frames.claim_ram(target.start, target_len),
        "claim target"
    );
    let mut block = check!(
        f,
        frames.alloc_ram(FRAME_SIZE, FRAME_SIZE),
        "start info frame"
    );
    let loaded = image.load(&mut target_ram, boot.memory_map());
    check!(f, loaded, "load");

    let mut cmdline = crate::report::Fields::new();
    cmdline
        .add("test", "pvh-handoff")
        .add("stage", 2)
        .add("from", format_args!("{:#x}", boot.kernel_image().start));
    let written = handoff::write_start_info(
        &mut block,
        cmdline.as_str(),
        boot.memory_map(),
        boot.rsdp(),
        &[],
    );
    let ebx = check!(f, written, "start info");
    f.add("start_info", format_args!("{ebx:#x}"));
    println!("PARANOID-HANDOFF {f}");
    // SAFETY: the target was loaded and checked above, the start info written,
    // and this kernel needs nothing afterwards.
    unsafe { handoff::jump(image.pvh_entry(), ebx) }
}

fn stage2(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let here = boot.kernel_image();
    f.add("kernel", format_args!("{:#x}..{:#x}", here.start, here.end));
    f.add("from", boot.cmdline().get("from").unwrap_or("?"));
    f.add("regions", boot.memory_map().len());
    f.add("tsc_khz", boot.clock().khz());
    ensure!(
        f,
        here.start == HIGH_BASE,
        "running at {:#x}, expected {HIGH_BASE:#x}",
        here.start
    );
    ensure!(
        f,
        boot.cmdline().get("from") == Some("0x100000"),
        "not handed over by the 1 MiB kernel"
    );
    ensure!(
        f,
        boot.start_info().ram_bytes() >= 64 << 20,
        "memory map lost in hand-over"
    );
    ensure!(f, boot.rsdp().is_some(), "RSDP lost in hand-over");
    Ok(f)
}
