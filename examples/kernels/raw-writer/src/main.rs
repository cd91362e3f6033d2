//! The dump's throughput baseline: a minimal writer kernel.
//!
//! Kernel A loads it in the recovery kernel's place (`-initrd raw-writer`) and
//! its panic path jumps to it the same way. It copies the same RAM the
//! recovery kernel dumps (the ranges of the crash note) to the same namespace
//! and extent, with the same writes: [`WRITE_DEPTH`] in flight through the NVMe
//! driver's [`WritePipeline`] (the recovery kernel's sink's own
//! `paranoid_recovery::nvme_sink::write`), each [`write_transfer`] bytes (the controller's
//! MDTS, at most the window's share). And nothing else: no IOMMU takeover, no
//! fencing, no heartbeats, no dump format, no CRC, no zero-page scan, no
//! compression. Where RAM is larger than the extent it wraps around and
//! overwrites the extent from its start, so every byte of RAM is written once.
//! What it leaves on the disk is not a dump.
//!
//! What it keeps: the target is singled out by serial number as the recovery
//! kernel does, and every write lies inside the extent (cluster safety is not
//! a feature to benchmark away). Without an IOMMU takeover it cannot reach the
//! disk through kernel A's translation, so it refuses a machine with one (run
//! it on the `no-iommu` profile, as `cargo xtask dump-bench` does).
//!
//! Its result line: `PARANOID-RESULT test=recovery verdict=pass dump_bytes=N
//! dump_ms=N mib_s=N writes=N depth=N transfer=N`.
#![no_std]
#![no_main]

use core::fmt;

use paranoid::dma::{DmaArena, Window, WindowMapping};
use paranoid::time::Clock;
use paranoid_boot::result::{self, Fields, Verdict};
use paranoid_boot::start_info::IDENTITY_LIMIT;
use paranoid_boot::{platform, println, BootInfo, ExitCode};
use paranoid_nvme::{Nvme, WritePipeline};
use paranoid_recovery::config::Config;
use paranoid_recovery::dump::{write_transfer, WRITE_DEPTH};
use paranoid_recovery::note::{CrashNote, NOTE_LEN};
use paranoid_recovery::nvme_sink::{pipeline_buffers, write};
use paranoid_recovery::target;

paranoid_boot::entry!(main);

/// Physical memory behind the window: the recovery kernel's arena.
const ARENA_PHYS: u64 = 0x0700_0000;

paranoid::dma_windows! {
    address_width = 39;
    /// IOVA = the physical address of the arena (no IOMMU translates).
    pub DirectWindow = 0x0700_0000, size = 1 MiB;
}

const _: () = assert!(DirectWindow::BASE == ARENA_PHYS);

fn main(boot: &'static BootInfo) -> ExitCode {
    println!("raw-writer: entered at {:#x}", boot.kernel_image().start);
    let mut fields = Fields::new();
    let verdict = match run(boot) {
        Ok(done) => {
            done.write(&mut fields);
            Verdict::Pass
        }
        Err(why) => {
            fields.quoted("reason", why);
            Verdict::Fail
        }
    };
    result::finish("recovery", verdict, &fields)
}

/// What the copy took.
struct Done {
    bytes: u64,
    ns: u64,
    writes: u64,
    transfer: usize,
}

impl Done {
    /// The result line's pairs.
    fn write(&self, f: &mut Fields) {
        let ms = self.ns / 1_000_000;
        let mib_s = ((self.bytes >> 20) * 1000).checked_div(ms).unwrap_or(0);
        f.add("dump_bytes", self.bytes)
            .add("dump_ms", ms)
            .add("mib_s", mib_s)
            .add("writes", self.writes)
            .add("depth", WRITE_DEPTH)
            .add("transfer", self.transfer);
    }
}

/// A failure, as text for the result line.
struct Why(paranoid::init::Note);

fn why(step: &str, e: impl fmt::Debug) -> Why {
    Why(paranoid::init::Note::format(format_args!("{step}: {e:?}")))
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

fn run(boot: &'static BootInfo) -> Result<Done, Why> {
    let clock = boot.clock();
    let config = Config::parse(boot.cmdline().as_str()).map_err(|e| why("config", e))?;
    let note = read_note(boot)?;
    if platform::dmar(boot).is_ok() {
        return Err(why(
            "iommu",
            "an IOMMU is present: the raw writer does no takeover (use a machine without one)",
        ));
    }
    let mut cfg = platform::config(boot);
    let nvmes = platform::find_nvme(&mut cfg);
    let zero = paranoid::pci::PciAddress::new(0, 0, 0, 0).map_err(|e| why("pci", e))?;
    let mut found = [zero; 16];
    let mut n = 0;
    for (slot, node) in found.iter_mut().zip(nvmes.iter()) {
        *slot = node.address();
        n += 1;
    }
    let address = target::choose(&config.target, found.get(..n).unwrap_or(&[]))
        .map_err(|e| why("target", e))?;
    let (regs, _) = platform::map_bar0(&mut cfg, address).map_err(|e| why("bar0", e))?;
    // No IOMMU translates (checked above: no DMAR table), so the window sits
    // on the memory itself: RAM of the region kernel A reserved for the
    // kernel it hands over to (this one), claimed before anything else.
    let mut frames = boot
        .take_frames()
        .ok_or(why("frames", "taken"))?
        .map_err(|e| why("frames", e))?;
    let ram = frames
        .claim_ram(ARENA_PHYS, 1 << 20)
        .map_err(|e| why("arena", e))?;
    let mapping = WindowMapping::<DirectWindow>::identity(ARENA_PHYS, 1 << 20)
        .map_err(|e| why("arena", e))?;
    let mut arena: DmaArena<DirectWindow> =
        DmaArena::new(mapping, ram).map_err(|e| why("arena", e))?;
    let nvme_config = paranoid_nvme::Config {
        nsid: config.target.nsid,
        max_in_flight: WRITE_DEPTH as u16,
        ..paranoid_nvme::Config::default()
    };
    let nvme = Nvme::new(regs, cfg, address, clock, &mut arena, nvme_config)
        .map_err(|e| why("nvme", e))?;
    let mut nvme = match nvme.init(config.init_budget) {
        Ok(ready) => ready.device.into_inner(),
        Err(f) => return Err(why("nvme init", f.cause)),
    };
    let sn = nvme.controller_info().map_or([0; 20], |i| i.serial);
    target::check_serial(&config.target, address, &sn).map_err(|e| why("target", e))?;
    let ns = nvme
        .namespace_info()
        .ok_or(why("namespace", "none selected"))?;
    let extent = target::resolve_extent(config.extent, ns.block_size.bytes(), ns.blocks)
        .map_err(|e| why("extent", e))?;
    let block = u64::from(ns.block_size.bytes());
    let transfer = write_transfer(ns.max_transfer_bytes(), ns.block_size.bytes());
    let buffers = pipeline_buffers(&mut arena, transfer).map_err(|e| why("buffers", e))?;
    let mut pipeline = WritePipeline::new(buffers);
    // Slots of `transfer` bytes in the extent; the copy goes round them.
    let slots = extent.len_bytes() / transfer as u64;
    if slots == 0 {
        return Err(why("extent", "smaller than one write"));
    }
    println!(
        "raw-writer: {} MiB of RAM to lba {}.. ({} slots of {} KiB, {WRITE_DEPTH} in flight)",
        note.ranges().iter().map(|r| r.len).sum::<u64>() >> 20,
        extent.lba,
        slots,
        transfer >> 10
    );
    let start = clock.now_ns();
    let mut done = Done {
        bytes: 0,
        ns: 0,
        writes: 0,
        transfer,
    };
    for r in note.ranges() {
        let end = r.start.saturating_add(r.len).min(IDENTITY_LIMIT);
        let mut at = r.start;
        while at < end {
            let len = (end - at).min(transfer as u64) / block * block;
            if len == 0 {
                break;
            }
            // SAFETY: `at..at + len` lies in a range of the crash note (kernel
            // A's RAM) below IDENTITY_LIMIT, which the boot page tables
            // identity-map; it is not this kernel's memory and no reference of
            // ours points there; the pipeline only copies out of it.
            let data = unsafe { core::slice::from_raw_parts(at as *const u8, len as usize) };
            let slot = done.writes % slots;
            let lba = extent.lba + slot * (transfer as u64 / block);
            write(&mut pipeline, &mut nvme, lba, data, &mut || {}).map_err(|e| why("write", e))?;
            done.writes += 1;
            done.bytes += len;
            at += len;
        }
    }
    pipeline.drain(&mut nvme).map_err(|e| why("drain", e))?;
    nvme.flush().map_err(|e| why("flush", e))?;
    done.ns = clock.now_ns().saturating_sub(start);
    Ok(done)
}

fn read_note(boot: &'static BootInfo) -> Result<CrashNote, Why> {
    let at = boot
        .cmdline()
        .get("crash_note")
        .ok_or(why("crash note", "no crash_note= on the command line"))?;
    let addr = u64::from_str_radix(at.trim_start_matches("0x"), 16)
        .map_err(|_| why("crash note", "not hex"))?;
    if addr % 4096 != 0 || addr >= 1 << 32 {
        return Err(why("crash note", "not a page below 4 GiB"));
    }
    let mut page = [0u8; NOTE_LEN];
    paranoid::phys::PhysRead::read(boot.ram(), addr, &mut page)
        .map_err(|e| why("crash note", e))?;
    CrashNote::decode(&page).map_err(|e| why("crash note", e))
}
