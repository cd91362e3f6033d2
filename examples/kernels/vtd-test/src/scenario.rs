//! The dead kernel, the takeover, and the checks of each scenario.
// A failure carries its result line in a fixed buffer (no allocator).
#![expect(
    clippy::result_large_err,
    reason = "InitFailure carries the fixed-size init trace and the driver back (paranoid::init has no heap)"
)]

use core::time::Duration;

use paranoid::dma::WindowSpec;
use paranoid::mmio::Mmio;
use paranoid::pci::command::{self, Command};
use paranoid::pci::topology::Node;
use paranoid::pci::ConfigAccess;
use paranoid::phys::{IdentityMap, MemoryMap, OwnedRam, PhysRead, PhysWrite, RamRegion};
use paranoid::time::{Clock, Deadline};
use paranoid_boot::frames::FrameAllocator;
use paranoid_boot::platform::{self, E1000, NVME};
use paranoid_boot::{println, BootInfo, MemoryKind, TscClock};
use paranoid_test_kernel::report::{fail, Fields, Outcome};
use paranoid_test_kernel::{check, ensure};
use paranoid_vtd::acpi::{find_rsdp, find_table, Dmar};
use paranoid_vtd::invalidate::{ContextScope, Invalidator, IotlbScope, Mode, Request};
use paranoid_vtd::mem::FramePool;
use paranoid_vtd::policy::{Action, FaultClass, FaultPolicy, LogLine, PolicyConfig};
use paranoid_vtd::tables::{write_entry, ContextEntry, PageTable, RootEntry};
use paranoid_vtd::takeover::{Outcome as Takeover, Policy, TakeoverConfig};
use paranoid_vtd::unit::{Command as Gcmd, Unit};
use paranoid_vtd::{Vtd, VtdError};

use crate::devices::{self, Edu, TxStorm, EDU};

/// Which scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Adopt; stale DMA lands.
    Adopt,
    /// Fence; stale DMA faults.
    Fence,
    /// Corrupt old tables; adopt falls back.
    Fallback,
    /// Fault storm.
    Storm,
}

/// Where the dead kernel mapped edu's buffer.
const OLD_IOVA: u64 = 0x0800_0000;
/// Where edu's stale DMA writes (inside the old buffer's first page).
const STALE_OFFSET: u64 = 0x800;
/// What it writes.
const PATTERN: u64 = 0x414d_4445_4c41_5453; // "STALEDMA"
/// The dead kernel's domain ids.
const OLD_DID_EDU: u16 = 5;
const OLD_DID_NIC: u16 = 6;
/// An IOVA nothing maps (the e1000 TX ring of the storm).
const UNMAPPED_IOVA: u64 = 0x0c00_0000;
/// The recovery window: below edu's 28-bit DMA mask, away from the old IOVAs.
const WINDOW: WindowSpec = WindowSpec {
    name: "recovery",
    base: 0x0f00_0000,
    size: 1 << 20,
    page_size: 4096,
};
/// The VT-d register block.
const REGISTER_BLOCK: u64 = 0x1000;

/// What the dead kernel left.
struct Dead {
    /// Edu's DMA buffer (16 pages mapped at [`OLD_IOVA`]).
    buffer: RamRegion,
    /// The context table of edu's bus (the first source).
    context_table: u64,
    /// The pages its tables live in, still writable (the fallback scenario
    /// corrupts them).
    memory: OwnedRam<'static>,
}

/// The VT-d unit's registers at `base`.
fn unit_registers(base: u64) -> Result<Mmio, platform::PlatformError> {
    // SAFETY: one `Mmio` over the VT-d unit exists at a time: the dead
    // kernel's is dropped before the recovery side maps it again.
    unsafe { platform::map_registers(base, REGISTER_BLOCK) }
}

/// The dying kernel: its own tables (edu and the e1000 in separate domains,
/// sharing one page table that maps 16 pages at [`OLD_IOVA`]), queued
/// invalidation, translation on.
fn dead_kernel(
    ram: &'static IdentityMap,
    unit_base: u64,
    clock: TscClock,
    frames: &mut FrameAllocator,
    edu: u16,
    nic: u16,
) -> Result<Dead, VtdError> {
    let area = frames
        .alloc_ram(1 << 20, 4096)
        .map_err(|_| VtdError::OutOfFrames)?;
    let mut pool = FramePool::new(area.start(), 256);
    let mut mem = OwnedRam::new(ram, area);
    let buffer = frames
        .alloc_ram(16 * 4096, 4096)
        .map_err(|_| VtdError::OutOfFrames)?;
    let regs = unit_registers(unit_base).map_err(|_| VtdError::RegisterGone {
        register: "DRHD base",
    })?;
    let mut unit = Unit::probe(regs, clock)?;
    let caps = *unit.caps();
    let levels = caps.levels_for(1 << 32).ok_or(VtdError::Unsupported {
        what: "3- or 4-level tables",
    })?;
    let root = pool.alloc(&mut mem).ok_or(VtdError::OutOfFrames)?;
    let pt = PageTable::new(&mut mem, &mut pool, levels, caps.coherent)?;
    for i in 0..16 {
        pt.map(
            &mut mem,
            &mut pool,
            OLD_IOVA + i * 4096,
            buffer.start() + i * 4096,
            true,
        )?;
    }
    // One context table per bus the two sources sit on (a device behind a
    // bridge is on its own bus): the root entry of that bus points at it.
    let mut tables: [Option<(u16, u64)>; 2] = [None; 2];
    for (k, (sid, did)) in [(edu, OLD_DID_EDU), (nic, OLD_DID_NIC)]
        .into_iter()
        .enumerate()
    {
        let bus = sid >> 8;
        let ctx = match tables.iter().flatten().find(|(b, _)| *b == bus) {
            Some(&(_, ctx)) => ctx,
            None => {
                let ctx = pool.alloc(&mut mem).ok_or(VtdError::OutOfFrames)?;
                let re = RootEntry::new(ctx);
                write_entry(
                    &mut mem,
                    root + u64::from(bus) * 16,
                    re.lo,
                    re.hi,
                    caps.coherent,
                )?;
                tables[k] = Some((bus, ctx));
                ctx
            }
        };
        let ce = ContextEntry::translated(pt.root, levels, did);
        write_entry(
            &mut mem,
            ctx + u64::from(sid & 0xff) * 16,
            ce.lo,
            ce.hi,
            caps.coherent,
        )?;
    }
    let deadline = Deadline::after(&clock, Duration::from_secs(1));
    unit.set_root_table(root, deadline)?;
    let (mut inval, _) = Invalidator::setup(&mut unit, &mut mem, &mut pool, Mode::Auto, deadline)?;
    inval.run(
        &mut unit,
        &mut mem,
        &[
            Request::Context(ContextScope::Global),
            Request::Iotlb(IotlbScope::Global),
        ],
        deadline,
    )?;
    unit.command(Gcmd::EnableTranslation, deadline)?;
    Ok(Dead {
        buffer,
        context_table: tables[0].map_or(0, |(_, ctx)| ctx),
        memory: mem,
    })
}

/// RAM the dead kernel owned: every RAM region minus the recovery reservation.
fn old_memory_map(boot: &BootInfo, reserved: (u64, u64)) -> MemoryMap {
    let mut map = MemoryMap::new();
    for r in boot
        .memory_map()
        .iter()
        .filter(|r| r.kind == MemoryKind::Ram)
    {
        let (s, e) = (r.start, r.start.saturating_add(r.size));
        let parts = if s < reserved.1 && reserved.0 < e {
            [(s, reserved.0.max(s)), (reserved.1.min(e), e)]
        } else {
            [(s, e), (0, 0)]
        };
        for (a, b) in parts {
            if b > a {
                // A full map only loses ranges, which makes adopt stricter.
                let _ = map.add(a, b - a);
            }
        }
    }
    map
}

fn find<C: ConfigAccess>(cfg: &mut C, ids: (u16, u16)) -> Result<Node, platform::PlatformError> {
    let found = platform::find(cfg, ids)?;
    let a = found.address();
    let _ = command::update(
        cfg,
        a,
        Command::MEMORY_SPACE | Command::BUS_MASTER,
        Command::empty(),
    );
    Ok(found)
}

fn outcome_name(o: Takeover) -> &'static str {
    match o {
        Takeover::Adopted => "adopted",
        Takeover::Fenced => "fenced",
        Takeover::Fresh => "fresh",
        Takeover::FencedAfterAdoptFailed(_) => "fenced-after-adopt-failed",
    }
}

/// Runs one scenario.
pub fn run(boot: &'static BootInfo, kind: Kind) -> Outcome {
    let mut f = Fields::new();
    let clock = boot.clock();
    let mut frames = match boot.take_frames() {
        Some(Ok(fr)) => fr,
        _ => return Err(fail(f, "no frame allocator")),
    };
    // ACPI: the DMAR through paranoid-vtd's own parser.
    let phys = boot.tables();
    let rsdp = check!(f, find_rsdp(phys, boot.rsdp()), "rsdp");
    let mut buf = [0u8; 4096];
    let table = check!(f, find_table(phys, &rsdp, *b"DMAR", &mut buf), "dmar");
    let dmar = check!(f, Dmar::parse(table), "dmar parse");
    let Some(drhd) = dmar.drhds().next() else {
        return Err(fail(f, "no DRHD"));
    };
    let unit_base = drhd.register_base;
    let mut rmrrs = [(0u64, 0u64); 8];
    let mut n_rmrr = 0;
    for (slot, r) in rmrrs.iter_mut().zip(dmar.rmrrs()) {
        *slot = (r.base, r.limit);
        n_rmrr += 1;
    }
    f.add("drhd", format_args!("{unit_base:#x}"))
        .add("haw", dmar.host_address_width)
        .add("drhd_flags", drhd.flags)
        .add("scopes", drhd.device_scopes().count());
    // PCI: the devices and their source-ids.
    let mut cfg = check!(f, platform::ecam(boot), "ecam");
    let edu_n = check!(f, find(&mut cfg, EDU), "edu");
    let nic_n = check!(f, find(&mut cfg, E1000), "e1000");
    let nvme_n = check!(f, find(&mut cfg, NVME), "nvme");
    let (edu_a, nvme_a) = (edu_n.address(), nvme_n.address());
    // The ids the IOMMU sees (a bridge may alias a device behind it).
    let (edu_sid, nic_sid, nvme_sid) = (
        edu_n.requester_id(),
        nic_n.requester_id(),
        nvme_n.requester_id(),
    );
    f.add("edu_sid", format_args!("{edu_sid:#06x}"));
    let (edu_regs, _) = check!(f, platform::map_bar0(&mut cfg, edu_a), "edu bar");
    let mut edu = Edu::new(edu_regs);
    let (mut nvme_regs, _) = check!(f, platform::map_bar0(&mut cfg, nvme_a), "nvme bar");

    // The recovery kernel's reservation, set aside before the crash.
    let reserved = check!(f, frames.alloc_ram(5 << 20, 1 << 21), "reservation");
    let reservation = reserved.start();
    let pool = FramePool::new(reservation, 1024);
    // The last MiB backs the window; the pool's 4 MiB are where the IOMMU
    // tables are written (through `OwnedRam`).
    let Ok((pool_ram, mut window_ram)) = reserved.split_at(4 << 20) else {
        return Err(fail(f, "reservation shorter than 4 MiB"));
    };
    let window_phys = window_ram.start();
    let map = old_memory_map(boot, (reservation, reservation + (5 << 20)));

    // ---- The dying kernel ----
    let mut dead = check!(
        f,
        dead_kernel(boot.ram(), unit_base, clock, &mut frames, edu_sid, nic_sid),
        "dead kernel"
    );
    // Prime edu's buffer with the pattern through the old mapping, and check
    // the old translation works at all.
    let _ = dead.buffer.write_u64_aligned(0, PATTERN);
    edu.arm(OLD_IOVA, 8, false);
    check!(f, edu.wait(&clock), "edu prime");
    // The DMA in flight across the "crash": lands 100 ms from now.
    edu.arm(OLD_IOVA + STALE_OFFSET, 8, true);
    let armed_at = clock.now_ns();
    if kind == Kind::Fallback {
        // Memory corruption in the dead kernel's context table: reserved bits
        // in edu's entry.
        let at = dead.context_table + u64::from(edu_sid & 0xff) * 16 + 8;
        let m = &mut dead.memory;
        let hi = m.read_u64(at).unwrap_or(0);
        let _ = m.write_u64(at, hi | 1 << 40);
    }

    // ---- The recovery kernel ----
    let policy = if kind == Kind::Adopt || kind == Kind::Fallback {
        Policy::Adopt
    } else {
        Policy::Fence
    };
    let config = TakeoverConfig {
        rmrrs: rmrrs.get(..n_rmrr).unwrap_or(&[]),
        host_address_width: Some(dmar.host_address_width),
        ..TakeoverConfig::new(policy, WINDOW)
    };
    let regs = check!(f, unit_registers(unit_base), "vtd mmio");
    let deadline = Deadline::after(&clock, Duration::from_secs(1));
    let start = clock.now_ns();
    let (mut vtd, report) = check!(
        f,
        Vtd::take_over(
            regs,
            clock,
            OwnedRam::new(boot.ram(), pool_ram),
            pool,
            map,
            &config,
            deadline
        ),
        "takeover"
    );
    let takeover_us = (clock.now_ns() - start) / 1000;
    println!("{report}");
    f.add("outcome", outcome_name(report.outcome))
        .add("takeover_us", takeover_us)
        .add("old_contexts", report.old_contexts)
        .add("adopted", report.contexts_adopted)
        .add("recovery_did", report.recovery_domain)
        .add("old_qi", report.invalidation.old_queue_was_enabled);
    ensure!(f, report.translation_was_enabled, "TES was not seen set");
    let armed_ms = (clock.now_ns() - armed_at) / 1_000_000;
    ensure!(
        f,
        armed_ms < 90,
        "takeover too slow for the in-flight DMA ({armed_ms} ms)"
    );
    let expected = match kind {
        Kind::Adopt => matches!(report.outcome, Takeover::Adopted),
        Kind::Fence | Kind::Storm => matches!(report.outcome, Takeover::Fenced),
        Kind::Fallback => matches!(report.outcome, Takeover::FencedAfterAdoptFailed(_)),
    };
    ensure!(f, expected, "unexpected takeover outcome");

    // Recovery DMA: NVMe Identify through the window.
    let d = Deadline::after(&clock, Duration::from_secs(1));
    check!(f, vtd.attach(nvme_sid, d), "attach nvme");
    check!(
        f,
        vtd.map_range(WINDOW.base, window_phys, WINDOW.size, d),
        "map window"
    );
    let id = check!(
        f,
        devices::identify(&mut nvme_regs, &clock, WINDOW.base, &mut window_ram),
        "nvme identify"
    );
    f.add("nvme_vid", format_args!("{:#06x}", id.vid));
    ensure!(
        f,
        id.vid == 0x1b36,
        "identify data did not come through the window"
    );
    let _ = id.serial;

    // The stale DMA arrives.
    check!(f, edu.wait(&clock), "edu stale");
    let landed = dead.buffer.read_u64(STALE_OFFSET).unwrap_or(u64::MAX);
    let mut policy = FaultPolicy::new(PolicyConfig::default());
    let mut first: Option<(u16, u64, FaultClass, u8, bool)> = None;
    let mut log =
        |l: &LogLine| match l {
            LogLine::Fault(e) => {
                println!(
                "vtd fault: source={:#06x} addr={:#x} reason={:#x} write={} class={:?} action={:?}",
                e.fault.source_id, e.fault.address, e.fault.reason, e.fault.write, e.class, e.action
            );
                first.get_or_insert((
                    e.fault.source_id,
                    e.fault.address,
                    e.class,
                    e.fault.reason,
                    e.fault.write,
                ));
            }
            other => println!("vtd log: {other:?}"),
        };
    let s = check!(f, policy.service(&mut vtd, &mut log, d), "service");
    f.add("stale_landed", landed == PATTERN)
        .add("faults", s.records);
    match kind {
        Kind::Adopt => {
            ensure!(
                f,
                landed == PATTERN,
                "stale DMA did not land in the old buffer ({landed:#x})"
            );
            ensure!(f, s.records == 0, "adopt recorded faults");
        }
        Kind::Fence | Kind::Fallback => {
            ensure!(f, landed == 0, "stale DMA landed under fence ({landed:#x})");
            let Some((sid, addr, class, reason, write)) = first else {
                return Err(fail(f, "no fault recorded for the stale DMA"));
            };
            f.add("fault_sid", format_args!("{sid:#06x}"))
                .add("fault_addr", format_args!("{addr:#x}"))
                .add("fault_reason", reason);
            ensure!(f, sid == edu_sid, "fault from the wrong source");
            ensure!(f, addr == OLD_IOVA, "fault at the wrong address");
            ensure!(
                f,
                class == FaultClass::Stale && write,
                "fault misclassified"
            );
        }
        Kind::Storm => {
            return storm(
                f,
                &mut vtd,
                &mut policy,
                &mut edu,
                &mut cfg,
                nic_n,
                clock,
                &mut nvme_regs,
                &mut window_ram,
            )
        }
    }
    Ok(f)
}

/// Rounds of (255 e1000 descriptor fetches + one edu fault), a drain after each.
#[expect(clippy::too_many_arguments, reason = "a scenario's devices")]
fn storm<V: paranoid_vtd::iommu::RecoveryIommu<Error = VtdError>, C: ConfigAccess>(
    mut f: Fields,
    vtd: &mut V,
    policy: &mut FaultPolicy,
    edu: &mut Edu,
    cfg: &mut C,
    nic: Node,
    clock: TscClock,
    nvme: &mut Mmio,
    window_ram: &mut RamRegion,
) -> Outcome {
    let (nic_regs, _) = check!(f, platform::map_bar0(cfg, nic.address()), "e1000 bar");
    let mut tx = TxStorm::new(nic_regs, UNMAPPED_IOVA);
    let rounds = 3u32;
    let mut attempts = 0u64;
    let mut overflows = 0u32;
    let mut records = 0u32;
    for _ in 0..rounds {
        attempts += u64::from(tx.burst());
        edu.arm(UNMAPPED_IOVA, 8, true);
        attempts += 1;
        check!(f, edu.wait(&clock), "edu storm");
        let d = Deadline::after(&clock, Duration::from_secs(1));
        let s = check!(f, policy.service(vtd, &mut |_| {}, d), "service");
        records += s.records;
        overflows += u32::from(s.overflow);
    }
    let t = policy.totals();
    f.add("attempts", attempts)
        .add("records", records)
        .add("overflows", overflows)
        .add("lost", attempts - u64::from(records))
        .add("suppressed", t.suppressed);
    println!(
        "vtd storm: {attempts} faulting DMAs, {records} recorded, {overflows} overflows, nic={:?}",
        policy.source(nic.requester_id())
    );
    ensure!(
        f,
        records >= 1 && u64::from(records) < attempts,
        "no storm seen"
    );
    ensure!(f, overflows >= 1, "the unit never overflowed");
    let nic_stats = policy.source(nic.requester_id());
    ensure!(
        f,
        nic_stats.is_some_and(|s| s.stale >= 1),
        "e1000 faults not counted"
    );
    // The core keeps going: a fresh fault is recorded normally...
    edu.arm(UNMAPPED_IOVA + 0x1000, 8, true);
    check!(f, edu.wait(&clock), "edu after storm");
    let d = Deadline::after(&clock, Duration::from_secs(1));
    let mut last = None;
    let s = check!(
        f,
        policy.service(
            vtd,
            &mut |l| if let LogLine::Fault(e) = l {
                last = Some((e.fault.address, e.action));
            },
            d
        ),
        "service after storm"
    );
    f.add("after_records", s.records)
        .add("after_overflow", s.overflow);
    ensure!(
        f,
        s.records == 1 && !s.overflow,
        "fault after the storm not recorded cleanly"
    );
    ensure!(
        f,
        matches!(last, Some((a, Action::Counted | Action::AlreadyBlocked | Action::Quarantined)) if a == UNMAPPED_IOVA + 0x1000),
        "fault after the storm misread"
    );
    // ...and recovery DMA still works.
    let id = check!(
        f,
        devices::identify(nvme, &clock, WINDOW.base, window_ram),
        "nvme identify after storm"
    );
    ensure!(f, id.vid == 0x1b36, "identify after the storm failed");
    Ok(f)
}
