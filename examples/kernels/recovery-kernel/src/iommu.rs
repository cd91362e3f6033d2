//! Taking the IOMMU over from the crashed kernel, and servicing its faults.

use core::time::Duration;

use paranoid::dma::{Window, WindowMapping};
use paranoid::mmio::Mmio;
use paranoid::phys::{MemoryMap, OwnedRam};
use paranoid::time::Deadline;
use paranoid_boot::frames::{FrameAllocator, FRAME_SIZE};
use paranoid_boot::{platform, println, BootInfo};
use paranoid_recovery::report::{FaultCounts, Report};
use paranoid_vtd::acpi::Dmar;
use paranoid_vtd::mem::FramePool;
use paranoid_vtd::policy::{FaultPolicy, LogLine, PolicyConfig};
use paranoid_vtd::takeover::{Policy, TakeoverConfig, TakeoverReport};
use paranoid_vtd::{Vtd, VtdError};

use crate::heartbeat::RecoveryClock;
use crate::{fail, Failed};

/// The VT-d unit as the recovery kernel drives it.
pub type Unit = Vtd<Mmio, RecoveryClock, OwnedRam<'static>>;

/// Pages for the recovery kernel's tables (root, copied context tables, the
/// recovery domain's page tables).
const TABLE_PAGES: usize = 300;

/// Takes the unit over with `policy`.
///
/// # Errors
///
/// [`NotTaken::CannotTranslate`] for a unit that translates no DMA (the
/// caller fences at the devices instead); [`NotTaken::Failed`] otherwise.
pub fn take_over(
    boot: &'static BootInfo,
    policy: Policy,
    frames: &mut FrameAllocator,
    rmrrs: &mut [(u64, u64); 8],
) -> Result<(Unit, TakeoverReport), NotTaken> {
    // The unit's waits (invalidations, the drain's windows) beat too.
    let clock = RecoveryClock::new(boot.clock());
    let deadline = Deadline::after(&clock, Duration::from_secs(2));
    let table = platform::dmar(boot).map_err(|e| fail("dmar", e))?;
    let dmar = Dmar::parse(table.bytes()).map_err(|e| fail("dmar", e))?;
    let drhd = dmar.drhds().next().ok_or(fail("dmar", "no DRHD"))?;
    let mut n_rmrr = 0;
    for r in dmar.rmrrs() {
        if let Some(slot) = rmrrs.get_mut(n_rmrr) {
            *slot = (r.base, r.limit);
            n_rmrr += 1;
        }
    }
    // SAFETY: the DRHD's register block, mapped once, here.
    let regs = unsafe { platform::map_registers(drhd.register_base, drhd.register_size()) }
        .map_err(|e| fail("drhd", e))?;
    // Old table pointers must point into the crashed kernel's RAM (the memory
    // map it handed over), never into ours: an adopted entry reaching recovery
    // memory would let stale DMA land there.
    let mut map = MemoryMap::new();
    for (start, end) in crate::crashed_ram(boot) {
        map.add(start, end - start)
            .map_err(|e| fail("memory map", e))?;
    }
    let pool = frames
        .alloc_ram(TABLE_PAGES as u64 * FRAME_SIZE, FRAME_SIZE)
        .map_err(|e| fail("table frames", e))?;
    let pool_base = pool.start();
    // New tables are written only in the frames allocated above; old tables
    // are read through the boot identity map, validated first.
    let memory = OwnedRam::new(boot.ram(), pool);
    let mut config = TakeoverConfig::new(policy, crate::RecoveryWindow::spec());
    config.rmrrs = rmrrs.get(..n_rmrr).unwrap_or(&[]);
    match Vtd::take_over(
        regs,
        clock,
        memory,
        FramePool::new(pool_base, TABLE_PAGES),
        map,
        &config,
        deadline,
    ) {
        Ok(taken) => Ok(taken),
        Err(e @ VtdError::CannotTranslate { .. }) => Err(NotTaken::CannotTranslate(e)),
        Err(e) => Err(NotTaken::Failed(fail("iommu takeover", e))),
    }
}

/// Why [`take_over`] took no unit over.
pub enum NotTaken {
    /// A unit that translates no DMA ([`VtdError::CannotTranslate`]), found
    /// before anything was written to it: DMA can only be fenced at the
    /// devices.
    CannotTranslate(VtdError),
    /// A step failed.
    Failed(Failed),
}

impl From<Failed> for NotTaken {
    fn from(f: Failed) -> Self {
        Self::Failed(f)
    }
}

/// Maps the whole recovery window to `phys` in the recovery domain (one batch,
/// one invalidation); the mapping the window's arena is built from.
pub fn map_window(
    unit: &mut Unit,
    phys: u64,
) -> Result<WindowMapping<crate::RecoveryWindow>, Failed> {
    let clock = *unit.clock();
    let deadline = Deadline::after(&clock, Duration::from_secs(1));
    unit.map_window(phys, deadline)
        .map_err(|e| fail("map window", e))
}

/// Gives `source_id` the recovery domain: from here on its stale DMA to the
/// crashed kernel's IOVAs faults instead of landing, and its new DMA can reach
/// the window.
pub fn attach(unit: &mut Unit, source_id: u16) -> Result<(), Failed> {
    let clock = *unit.clock();
    let deadline = Deadline::after(&clock, Duration::from_secs(1));
    unit.attach(source_id, deadline)
        .map_err(|e| fail("iommu attach", e))
}

/// Drains fault records into the policy and the report.
pub fn service(
    unit: &mut Unit,
    policy: &mut FaultPolicy,
    report: &mut Report,
) -> Result<(), Failed> {
    let clock = *unit.clock();
    let deadline = Deadline::after(&clock, Duration::from_millis(200));
    let mut log = |line: &LogLine| println!("recovery: iommu {line:?}");
    let summary = policy
        .service(unit, &mut log, deadline)
        .map_err(|e| fail("fault service", e))?;
    if let Some(f) = summary.halt {
        return Err(fail(
            "fault inside the recovery window (halt_on_own_fault)",
            f,
        ));
    }
    let t = policy.totals();
    report.faults = FaultCounts {
        stale: t.stale,
        own: t.own,
        unknown: t.unknown,
        lost: u64::from(t.overflows),
        quarantined: u64::from(t.quarantines),
    };
    Ok(())
}

/// The policy settings from the recovery configuration.
pub fn policy_config(quarantine_after: u32, halt_on_own_fault: bool) -> PolicyConfig {
    PolicyConfig {
        quarantine_after,
        halt_on_window_fault: halt_on_own_fault,
        ..PolicyConfig::default()
    }
}
