//! The dump's storage: the paranoid NVMe driver, brought up from whatever state
//! the crashed kernel left it in, writing through a DMA buffer in the recovery
//! window into the declared extent.

use core::fmt::Write as _;

use paranoid::dma::{DmaArena, DmaBuffer, ToDevice, Window};
use paranoid::mmio::RegisterIo;
use paranoid::pci::ConfigAccess;
use paranoid::pci::PciAddress;
use paranoid::time::Clock;
use paranoid_boot::platform;
use paranoid_boot::println;
use paranoid_dump::Header;
use paranoid_nvme::{Nvme, NvmeError};
use paranoid_recovery::dump::{write_dump, BlockSink, DumpJob, DumpStats};
use paranoid_recovery::heartbeat::Heartbeat;
use paranoid_vtd::policy::FaultPolicy;

use paranoid_recovery::target;

use crate::{fail, iommu, memory, refuse, Failed, Line, Recovery};

/// PCI class of an NVMe controller: mass storage, non-volatile memory, NVMe.
const NVME_CLASS: [u8; 3] = [0x01, 0x08, 0x02];

/// Every NVMe controller in the hierarchy, in walk order: identified by
/// class, not by one vendor/device id.
fn controllers<C: paranoid::pci::ConfigAccess>(cfg: &mut C) -> platform::Matches {
    platform::find_class(cfg, NVME_CLASS[0], NVME_CLASS[1])
}

/// Staging buffer for dump writes.
const STAGING: usize = 256 * 1024;

/// Writes dump blocks through `nvme`, staging them in `buffer`.
pub struct NvmeSink<'a, R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> {
    /// The ready controller.
    pub nvme: &'a mut Nvme<R, P, C, W>,
    /// A staging buffer in the recovery window.
    pub buffer: DmaBuffer<W, ToDevice>,
    /// The namespace block size.
    pub block_size: u32,
}

impl<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> BlockSink for NvmeSink<'_, R, P, C, W> {
    type Error = NvmeError;

    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn max_transfer(&self) -> usize {
        self.buffer.len()
    }

    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), NvmeError> {
        self.buffer.write_bytes(0, data)?;
        let blocks = data.len() as u64 / u64::from(self.block_size);
        self.nvme.write_blocks(lba, blocks, &self.buffer, 0)
    }

    fn flush(&mut self) -> Result<(), NvmeError> {
        self.nvme.flush()
    }
}

/// The NVMe driver as the recovery kernel instantiates it.
type RecoveryNvme<W> =
    Nvme<paranoid::mmio::Mmio, platform::PlatformConfig, paranoid_boot::TscClock, W>;

/// Finds the controller, records the state it was left in, gives it the
/// recovery domain (when an IOMMU translates) and brings it up in window `W`.
/// Returns the ready driver, the state it was found in, its init time and
/// escalations. A failed init is reported (the device is fenced) and returned.
fn bring_up<W: Window>(
    r: &mut Recovery<'_>,
    arena: &mut DmaArena<W>,
    unit: Option<&mut iommu::Unit>,
    step: &'static str,
) -> Result<(RecoveryNvme<W>, Line, core::time::Duration, usize), Failed> {
    let mut cfg = platform::config(r.boot);
    let nvmes = controllers(&mut cfg);
    let zero = PciAddress::new(0, 0, 0, 0).map_err(|e| fail("pci", e))?;
    let mut found_at = [zero; 16];
    let mut n = 0;
    for (slot, node) in found_at
        .iter_mut()
        .zip(nvmes.iter().filter(|f| f.info.class == NVME_CLASS))
    {
        *slot = node.address();
        n += 1;
    }
    // Nothing is touched unless one controller is singled out.
    let address =
        target::choose(&r.config.target, found_at.get(..n).unwrap_or(&[])).map_err(refuse)?;
    let node = nvmes
        .iter()
        .find(|f| f.address() == address)
        .copied()
        .ok_or(fail("nvme", "chosen controller not in the topology"))?;
    let (mut regs, _) = platform::map_bar0(&mut cfg, address).map_err(|e| fail("nvme bar", e))?;
    let found = describe(&mut regs);
    if let Some(unit) = unit {
        iommu::attach(unit, node.requester_id())?;
    }
    let config = paranoid_nvme::Config {
        nsid: r.config.target.nsid,
        ..paranoid_nvme::Config::default()
    };
    let nvme =
        Nvme::new(regs, cfg, address, r.clock, arena, config).map_err(|e| fail("nvme", e))?;
    match nvme.init(r.config.init_budget) {
        Ok(ready) => {
            println!("{}", ready.trace);
            let (took, escalations) = (ready.trace.total(), ready.trace.escalations());
            let mut nvme = ready.device.into_inner();
            // The serial number, checked before anything is written.
            let sn = nvme.controller_info().map_or([0; 20], |i| i.serial);
            if let Err(e) = target::check_serial(&r.config.target, address, &sn) {
                let _ = nvme.shutdown();
                let mut cf8 = platform::cf8();
                paranoid::pci::command::fence(&mut cf8, address);
                r.report.device(
                    format_args!("nvme {address}"),
                    format_args!("{}", found.as_str()),
                    format_args!(
                        "not the target ({e}): shut down, bus mastering off, nothing written"
                    ),
                );
                return Err(refuse(e));
            }
            Ok((nvme, found, took, escalations))
        }
        Err(f) => {
            println!("{}", f.trace);
            r.report.device(
                format_args!("nvme {address}"),
                format_args!("{}", found.as_str()),
                format_args!("fenced: {}", f.cause),
            );
            Err(fail(step, f.cause))
        }
    }
}

/// Brings the NVMe controller up in window `W` and writes the dump, with
/// `extra` heartbeats (the NIC's) besides the watchdog.
pub fn dump<W: Window>(
    r: &mut Recovery<'_>,
    arena: &mut DmaArena<W>,
    mut translation: Option<(&mut iommu::Unit, &mut FaultPolicy)>,
    extra: Option<&mut dyn Heartbeat>,
    mut stream: Option<&mut crate::nic::Streamer<'_, W>>,
) -> Result<DumpStats, Failed> {
    let clock = r.clock;
    let t = clock.now_ns();
    let unit = translation.as_mut().map(|(u, _)| &mut **u);
    let (mut nvme, found, took, escalations) = bring_up(r, arena, unit, "nvme init")?;
    r.report.device(
        format_args!("nvme {}", nvme.address()),
        format_args!("{}", found.as_str()),
        format_args!("ready in {took:?}, {escalations} escalation(s)"),
    );
    r.report
        .step("nvme init", t, clock.now_ns(), format_args!("ready"));
    r.nvme_init = Some((took, escalations));
    r.beats.tick(&clock);
    let ns = nvme
        .namespace_info()
        .ok_or(refuse(target::TargetError::NamespaceAbsent {
            nsid: r.config.target.nsid,
        }))?;
    let extent = target::resolve_extent(r.config.extent, ns.block_size.bytes(), ns.blocks)
        .map_err(refuse)?;
    r.target = Some((nvme.address(), ns.block_size.bytes(), extent.offset_bytes()));
    println!(
        "recovery: dump target {} serial {} namespace {}: {} blocks of {} bytes, extent bytes {}..{}",
        nvme.address(),
        r.config.target.serial.as_ref().map_or("?", |s| s.as_str()),
        ns.nsid,
        ns.blocks,
        ns.block_size.bytes(),
        extent.offset_bytes(),
        extent.offset_bytes() + extent.len_bytes()
    );

    let t = clock.now_ns();
    let buffer = arena
        .alloc::<ToDevice>(STAGING, 4096)
        .map_err(|e| fail("staging buffer", e))?;
    let mut sink = NvmeSink {
        nvme: &mut nvme,
        buffer,
        block_size: ns.block_size.bytes(),
    };
    let chunk = r.config.chunk_bytes;
    let bounce_at = r
        .frames
        .alloc(u64::from(chunk), 4096)
        .map_err(|e| fail("bounce", e))?;
    // SAFETY: the frame allocator handed out these bytes from this kernel's own
    // RAM (the reserved region); nothing else refers to them.
    let bounce = unsafe { core::slice::from_raw_parts_mut(bounce_at as *mut u8, chunk as usize) };
    let note = &r.note;
    let mut header = Header::new(r.config.policy, chunk);
    header.crash_ns = note.crash_ns;
    header.crash_point = note.point;
    header.crash_reason = note.reason;
    header.pattern_seed = note.pattern_seed;
    header.pattern = note.pattern;
    let job = DumpJob {
        header,
        ranges: note.ranges(),
        extent_lba: extent.lba,
        extent_blocks: extent.blocks,
    };
    let memory = memory::CrashedMemory::new(note.ranges());
    let report = &mut *r.report;
    let mut service_error = None;
    let mut on_chunk = |c: &paranoid_dump::ChunkHeader, data: &[u8]| {
        if let Some(s) = stream.as_mut() {
            s.chunk(c, data);
        }
        // Drain fault records as the dump goes: a storm must not wait for the end.
        if c.index % 16 == 0 {
            if let Some((unit, faults)) = translation.as_mut() {
                if let Err(e) = iommu::service(unit, faults, report) {
                    service_error.get_or_insert(e);
                }
            }
        }
    };
    let stats = r
        .beats
        .with(extra, |hb, schedule| {
            write_dump(
                job,
                &mut sink,
                &memory,
                &clock,
                bounce,
                hb,
                schedule,
                &mut on_chunk,
            )
        })
        .map_err(|e| fail("dump", e))?;
    if let Some(e) = service_error {
        return Err(e);
    }
    r.report.step(
        "dump",
        t,
        clock.now_ns(),
        format_args!(
            "{} MiB in {} chunks to lba {}.. ({}-byte blocks)",
            stats.bytes >> 20,
            stats.chunks,
            extent.lba,
            extent.block_size
        ),
    );
    Ok(stats)
}

/// The NVMe controller's state as found, before anything touches it.
fn describe(regs: &mut impl RegisterIo) -> Line {
    let cc = regs.read32(0x14);
    let csts = regs.read32(0x1c);
    let mut line = Line::new();
    if csts.is_all_ones() {
        let _ = write!(line, "gone (CSTS reads all-ones)");
    } else {
        let _ = write!(
            line,
            "CC.EN={} CSTS.RDY={} CSTS.CFS={} (left {})",
            u8::from(cc.bit(0)),
            u8::from(csts.bit(0)),
            u8::from(csts.bit(1)),
            if cc.bit(0) { "enabled" } else { "disabled" }
        );
    }
    line
}

/// After a planned handoff, compares the two bring-up paths on the same
/// controller, both with warm caches: first from the state the dump left it in
/// (enabled, I/O queues live: the any-state path a crash forces), then, after
/// an orderly shutdown, from quiet (the fast path a clean handoff gives).
/// Returns (any-state, fast) init times.
pub fn compare_paths<W: Window>(
    r: &mut Recovery<'_>,
    arena: &mut DmaArena<W>,
) -> Result<(core::time::Duration, core::time::Duration), Failed> {
    let any = bring_up_again(r, arena, "nvme any-state init")?;
    let fast = bring_up_again(r, arena, "nvme init after shutdown")?;
    Ok((any, fast))
}

/// One more bring-up of the controller; shuts it down in order afterwards
/// when the fast-path measurement follows.
fn bring_up_again<W: Window>(
    r: &mut Recovery<'_>,
    arena: &mut DmaArena<W>,
    step: &'static str,
) -> Result<core::time::Duration, Failed> {
    let t = r.clock.now_ns();
    let (mut nvme, found, took, escalations) = bring_up(r, arena, None, step)?;
    r.report.step(
        step,
        t,
        r.clock.now_ns(),
        format_args!(
            "{took:?}, {escalations} escalations; found {}",
            found.as_str()
        ),
    );
    if step == "nvme any-state init" {
        // Leave it quiet for the fast-path measurement that follows.
        nvme.shutdown().map_err(|e| fail("nvme shutdown", e))?;
    }
    Ok(took)
}
