//! The dump's storage: the paranoid NVMe driver, brought up from whatever state
//! the crashed kernel left it in, writing through a DMA buffer in the recovery
//! window into the declared extent.

use core::fmt::Write as _;

use paranoid::dma::{DmaArena, Window};
use paranoid::pci::PciAddress;
use paranoid::time::Clock;
use paranoid_boot::platform;
use paranoid_boot::println;
use paranoid_dump::{codec, fixed, ExcludedKind, Header, Range};
use paranoid_nvme::{InheritedState, Nvme, WritePipeline};
use paranoid_recovery::config::HandoffOrder;
use paranoid_recovery::descriptor::{self, Descriptor, DescriptorError, DESCRIPTOR_LEN};
use paranoid_recovery::dump::{
    write_dump, write_transfer, Buffers, DumpJob, DumpStats, WRITE_DEPTH,
};
use paranoid_recovery::dump_settings::DumpSettings;
use paranoid_recovery::heartbeat::Heartbeat;
use paranoid_recovery::nvme_sink::{pipeline_buffers, NvmeSink};
use paranoid_recovery::plan::Plan;
use paranoid_recovery::result::Target;
use paranoid_vtd::policy::FaultPolicy;

use paranoid_recovery::target;

use crate::{fail, iommu, memory, refuse, Failed, Line, Recovery};

/// Staging buffer of the chunk stream (the writer packs records into it and
/// hands it to the sink in pieces of at most one pipeline buffer).
const STAGING: usize = 256 * 1024;
/// Dump writes kept in flight at once.
pub const DEPTH: usize = WRITE_DEPTH;

/// The NVMe driver as the recovery kernel instantiates it.
type RecoveryNvme<W> =
    Nvme<paranoid::mmio::Mmio, platform::PlatformConfig, crate::heartbeat::RecoveryClock, W>;

/// Which bring-up of the dump controller a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BringUp {
    /// The first: from whatever the crashed kernel left.
    Dump,
    /// After a planned handoff, from the state the dump left it in (enabled,
    /// I/O queues live): the any-state path a crash forces.
    AnyState,
    /// After an orderly shutdown: the fast path a clean handoff gives.
    AfterShutdown,
    /// Not measured: a driver to shut the controller down with, so the fast
    /// path can be measured first (`handoff_order=fast-first`).
    ForShutdown,
}

impl BringUp {
    /// The step's name in the report and on a failure line.
    pub const fn step(self) -> &'static str {
        match self {
            Self::Dump => "nvme init",
            Self::AnyState => "nvme any-state init",
            Self::AfterShutdown => "nvme init after shutdown",
            Self::ForShutdown => "nvme init to shut down",
        }
    }

    /// Whether the controller is shut down in order afterwards, so the next
    /// bring-up (the fast path) starts from quiet.
    fn shuts_down_after(self, order: HandoffOrder) -> bool {
        match self {
            Self::AnyState => order == HandoffOrder::AnyStateFirst,
            Self::Dump | Self::AfterShutdown => false,
            Self::ForShutdown => true,
        }
    }
}

/// Finds the controller, records the state it was left in, gives it the
/// recovery domain (when an IOMMU translates) and brings it up in window `W`.
/// Returns the ready driver, the state it was found in, its init time and
/// escalations. A failed init is reported (the device is fenced) and returned.
fn bring_up<W: Window>(
    r: &mut Recovery<'_>,
    arena: &mut DmaArena<W>,
    unit: Option<&mut iommu::Unit>,
    which: BringUp,
) -> Result<(RecoveryNvme<W>, InheritedState, core::time::Duration, usize), Failed> {
    let mut cfg = platform::config(r.boot);
    let nvmes = platform::find_nvme(&mut cfg);
    let zero = PciAddress::new(0, 0, 0, 0).map_err(|e| fail("pci", e))?;
    let mut found_at = [zero; 16];
    let mut n = 0;
    for (slot, node) in found_at.iter_mut().zip(nvmes.iter()) {
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
    let found = InheritedState::read(&mut regs);
    if let Some(unit) = unit {
        iommu::attach(unit, node.requester_id())?;
    }
    let config = paranoid_nvme::Config {
        nsid: r.config.target.nsid,
        max_in_flight: DEPTH as u16,
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
                    format_args!("{found}"),
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
                format_args!("{found}"),
                format_args!("fenced: {}", f.cause),
            );
            Err(fail(which.step(), f.cause))
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
    let (mut nvme, found, took, escalations) = bring_up(r, arena, unit, BringUp::Dump)?;
    r.report.device(
        format_args!("nvme {}", nvme.address()),
        format_args!("{found}"),
        format_args!("ready in {took:?}, {escalations} escalation(s)"),
    );
    r.report.step(
        BringUp::Dump.step(),
        t,
        clock.now_ns(),
        format_args!("ready"),
    );
    r.found.nvme_init = Some((took, escalations));
    crate::heartbeat::tick(&clock);
    let ns = nvme
        .namespace_info()
        .ok_or(refuse(target::TargetError::NamespaceAbsent {
            nsid: r.config.target.nsid,
        }))?;
    let extent = target::resolve_extent(r.config.extent, ns.block_size.bytes(), ns.blocks)
        .map_err(refuse)?;
    r.found.target = Some(Target {
        address: nvme.address(),
        block_size: ns.block_size.bytes(),
        offset: extent.offset_bytes(),
    });
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
    let transfer = write_transfer(ns.max_transfer_bytes(), ns.block_size.bytes());
    let buffers = pipeline_buffers(arena, transfer).map_err(|e| fail("write buffers", e))?;
    println!(
        "recovery: dump writes: {DEPTH} in flight of {} KiB (MDTS {} KiB, driver depth {})",
        transfer >> 10,
        ns.max_transfer_bytes() >> 10,
        nvme.pipeline_depth()
    );
    let mut sink = NvmeSink {
        nvme: &mut nvme,
        pipeline: WritePipeline::new(buffers),
        block_size: ns.block_size.bytes(),
    };
    let chunk = r.config.chunk_bytes;
    let settings =
        DumpSettings::parse(r.boot.cmdline().as_str()).map_err(|e| fail("dump settings", e))?;
    let mut take = |bytes: usize| -> Result<&'static mut [u8], Failed> {
        r.frames
            .alloc_bytes(bytes, 4096)
            .map_err(|e| fail("dump buffers", e))
    };
    let buffers = Buffers {
        bounce: take(chunk as usize)?,
        plain: take(chunk as usize)?,
        encoded: take(codec::encode_bound(chunk as usize).next_multiple_of(4096))?,
        stage: take(STAGING)?,
    };
    let note = &r.note;
    let crashed: [Range; 16] = crashed_ram(r.boot);
    let (plan, descriptor) = plan(note, &crashed, r.boot.ram(), settings.exclude_free);
    let mut header = Header::new(r.config.policy, chunk);
    header.crash_ns = note.crash_ns;
    header.crash_point = note.point;
    header.crash_reason = note.reason;
    header.pattern_seed = note.pattern_seed;
    header.pattern = note.pattern;
    header.cpu = note.cpu;
    let mut status = Line::new();
    match &descriptor {
        Ok(d) => {
            header.build_id = d.build_id;
            let _ = write!(status, "used: {} regions", d.regions().count());
        }
        Err(e) => {
            let _ = write!(status, "ignored: {e}");
        }
    }
    header.descriptor = fixed(status.as_str());
    r.report.step(
        "descriptor",
        clock.now_ns(),
        clock.now_ns(),
        format_args!(
            "{}; {} ranges planned, {} free excluded",
            status.as_str(),
            plan.ranges().len(),
            plan.free().len()
        ),
    );
    if note.reserved.len > 0 {
        header.exclude(note.reserved, ExcludedKind::Recovery);
    }
    if note.armed_dma.len > 0 {
        // The armed DMA may land after its page was dumped.
        let page = Range {
            start: note.armed_dma.start & !4095,
            len: (note.armed_dma.end() - (note.armed_dma.start & !4095)).next_multiple_of(4096),
        };
        header.exclude(page, ExcludedKind::DmaTarget);
    }
    for f in plan.free() {
        header.exclude(*f, ExcludedKind::Free);
    }
    let job = DumpJob {
        header,
        plan: plan.ranges(),
        codec: settings.codec,
        extent_lba: extent.lba,
        extent_blocks: extent.blocks,
        raw_crc: stream.is_some(),
    };
    let memory = memory::CrashedMemory::new(note.ranges(), r.boot.ram());
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
    let stats = crate::heartbeat::with(extra, |hb, schedule| {
        write_dump(
            job,
            &mut sink,
            &memory,
            &clock,
            buffers,
            hb,
            schedule,
            &mut on_chunk,
        )
    })
    .ok_or(fail("dump", "the heartbeats are in use further up"))
    .and_then(|written| written.map_err(|e| fail("dump", e)));
    // Every write was drained by the writer's last flush (or the controller
    // was reset, which hands the buffers back too): the window's buffers go
    // back to the arena for a later bring-up.
    for b in sink.pipeline.into_buffers().into_iter().flatten() {
        let _ = arena.free(b);
    }
    let stats = stats?;
    if let Some(e) = service_error {
        return Err(e);
    }
    r.report.step(
        "dump",
        t,
        clock.now_ns(),
        format_args!(
            "{} MiB in {} chunks ({} zero pages, {} MiB stored, {} MiB missing) to lba {}.. ({}-byte blocks)",
            stats.bytes >> 20,
            stats.chunks,
            stats.zero_pages,
            stats.stored >> 20,
            stats.missing >> 20,
            extent.lba,
            extent.block_size
        ),
    );
    Ok(stats)
}

/// The crashed kernel's RAM from the memory map it handed over (at most 16
/// ranges; empty slots have length 0).
fn crashed_ram(boot: &paranoid_boot::BootInfo) -> [Range; 16] {
    let mut out = [Range::default(); 16];
    for (slot, (start, end)) in out.iter_mut().zip(crate::crashed_ram(boot)) {
        *slot = Range {
            start,
            len: end - start,
        };
    }
    out
}

/// The dump plan: guided by the crashed kernel's descriptor when it checks
/// out, plain RAM order otherwise (with the reason).
fn plan(
    note: &paranoid_recovery::note::CrashNote,
    crashed: &[Range],
    ram: &paranoid::phys::IdentityMap,
    exclude_free: bool,
) -> (Plan, Result<Descriptor, DescriptorError>) {
    let descriptor = read_descriptor(note, crashed, ram);
    let plain = || Plan::plain(note.ranges()).unwrap_or_else(|_| Plan::plain(&[]).unwrap_or(EMPTY));
    match descriptor {
        Ok(d) => match Plan::guided(note.ranges(), &d, exclude_free) {
            Ok(p) => (p, Ok(d)),
            Err(_) => (
                plain(),
                Err(DescriptorError::TooManyRegions(d.regions().count() as u32)),
            ),
        },
        Err(e) => (plain(), Err(e)),
    }
}

/// A plan of nothing (only if the note's own ranges do not fit, which its
/// decoder rules out).
const EMPTY: Plan = Plan {
    ranges: [Range { start: 0, len: 0 }; paranoid_dump::MAX_RANGES],
    count: 0,
    free: [Range { start: 0, len: 0 }; paranoid_dump::MAX_EXCLUDED],
    free_count: 0,
};

/// Copies the descriptor out of the crashed kernel's memory, after checking
/// where the note says it is, and validates it against the memory to dump.
fn read_descriptor(
    note: &paranoid_recovery::note::CrashNote,
    crashed: &[Range],
    ram: &paranoid::phys::IdentityMap,
) -> Result<Descriptor, DescriptorError> {
    let at = descriptor::locate(note.descriptor, crashed)?;
    let mut bytes = [0u8; DESCRIPTOR_LEN];
    memory::CrashedMemory::new(crashed, ram)
        .read_into(at.start, &mut bytes)
        .map_err(|_| DescriptorError::OutOfBounds {
            start: at.start,
            len: at.len,
        })?;
    Descriptor::decode(&bytes, note.ranges())
}

/// After a planned handoff, compares the two bring-up paths on the same
/// controller, both with warm caches, in the order the settings name
/// (`handoff_order=`): the any-state path from the state the last bring-up
/// left the controller in (enabled, I/O queues live: what a crash forces),
/// and the fast path from quiet, after an orderly shutdown (what a clean
/// handoff gives). Fast first needs a driver to shut the controller down
/// with, so it starts with one bring-up that is not measured.
/// Returns (any-state, fast) init times.
pub fn compare_paths<W: Window>(
    r: &mut Recovery<'_>,
    arena: &mut DmaArena<W>,
) -> Result<(core::time::Duration, core::time::Duration), Failed> {
    match r.config.handoff_order {
        HandoffOrder::AnyStateFirst => {
            let any = bring_up_again(r, arena, BringUp::AnyState)?;
            let fast = bring_up_again(r, arena, BringUp::AfterShutdown)?;
            Ok((any, fast))
        }
        HandoffOrder::FastFirst => {
            bring_up_again(r, arena, BringUp::ForShutdown)?;
            let fast = bring_up_again(r, arena, BringUp::AfterShutdown)?;
            let any = bring_up_again(r, arena, BringUp::AnyState)?;
            Ok((any, fast))
        }
    }
}

/// One more bring-up of the controller, timed; shuts it down in order
/// afterwards when the fast path is measured next.
fn bring_up_again<W: Window>(
    r: &mut Recovery<'_>,
    arena: &mut DmaArena<W>,
    which: BringUp,
) -> Result<core::time::Duration, Failed> {
    let t = r.clock.now_ns();
    let (mut nvme, found, took, escalations) = bring_up(r, arena, None, which)?;
    r.report.step(
        which.step(),
        t,
        r.clock.now_ns(),
        format_args!("{took:?}, {escalations} escalations; found {}", found),
    );
    if which.shuts_down_after(r.config.handoff_order) {
        nvme.shutdown().map_err(|e| fail("nvme shutdown", e))?;
    }
    Ok(took)
}
