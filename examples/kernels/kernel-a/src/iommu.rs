//! Kernel A turns DMA translation on with its own tables: one domain that maps
//! its DMA arena 1:1 (the normal IOVA space), every other device blocked.

use core::time::Duration;

use paranoid::dma::{WindowMapping, WindowSpec};
use paranoid::phys::{MemoryMap, OwnedRam};
use paranoid::time::Deadline;
use paranoid_boot::frames::{FrameAllocator, FRAME_SIZE};
use paranoid_boot::{platform, BootInfo, MemoryKind};
use paranoid_vtd::acpi::Dmar;
use paranoid_vtd::mem::FramePool;
use paranoid_vtd::takeover::{Policy, TakeoverConfig};
use paranoid_vtd::Vtd;

use crate::error::{Check, KernelAError};
use crate::layout::{ARENA_BASE, ARENA_LEN};
use crate::live::KernelAWindow;

/// Pages for kernel A's translation tables.
const TABLE_PAGES: usize = 64;

/// The VT-d unit as kernel A drives it.
pub type Unit = Vtd<paranoid::mmio::Mmio, paranoid_boot::TscClock, OwnedRam<'static>>;

/// Enables translation; `sources` may DMA into the arena, whose mapping
/// comes back beside the unit.
pub fn enable(
    boot: &'static BootInfo,
    frames: &mut FrameAllocator,
    sources: &[u16],
) -> Result<(Unit, WindowMapping<KernelAWindow>), KernelAError> {
    let clock = boot.clock();
    let deadline = Deadline::after(&clock, Duration::from_secs(2));
    let table = platform::dmar(boot).map_err(KernelAError::NoDmar)?;
    let dmar = Dmar::parse(table.bytes()).map_err(KernelAError::BadDmar)?;
    let drhd = dmar.drhds().next().ok_or(Check::NoDrhd)?;
    // SAFETY: the DRHD's register block; kernel A maps it once, here.
    let regs = unsafe { platform::map_registers(drhd.register_base, drhd.register_size()) }
        .map_err(KernelAError::DrhdRegisters)?;
    let pool = frames
        .alloc_ram(TABLE_PAGES as u64 * FRAME_SIZE, FRAME_SIZE)
        .map_err(KernelAError::TableFrames)?;
    let pool_base = pool.start();
    let mut map = MemoryMap::new();
    for r in boot
        .memory_map()
        .iter()
        .filter(|r| r.kind == MemoryKind::Ram)
    {
        map.add(r.start, r.size).map_err(KernelAError::MemoryMap)?;
    }
    // The tables are written only in the frames allocated for them above.
    let memory = OwnedRam::new(boot.ram(), pool);
    let window = WindowSpec {
        name: "kernel-a",
        base: ARENA_BASE,
        size: ARENA_LEN,
        page_size: 4096,
    };
    let config = TakeoverConfig::new(Policy::Fence, window);
    let (mut vtd, _report) = Vtd::take_over(
        regs,
        clock,
        memory,
        FramePool::new(pool_base, TABLE_PAGES),
        map,
        &config,
        deadline,
    )
    .map_err(KernelAError::TranslationOn)?;
    for &source in sources {
        vtd.attach(source, deadline)
            .map_err(|error| KernelAError::Attach { source, error })?;
    }
    let mapping = vtd
        .map_window::<KernelAWindow>(ARENA_BASE, deadline)
        .map_err(KernelAError::MapArena)?;
    // Translation stays on with these tables until the crash and after it.
    Ok((vtd, mapping))
}

/// The state a planned handoff leaves the IOMMU in (documented in the README):
/// translation off, queued invalidation off, fault log drained. Call it after
/// every device is quiesced: from then on DMA is untranslated.
pub fn leave(mut vtd: Unit, clock: &paranoid_boot::TscClock) -> Result<(), KernelAError> {
    let deadline = Deadline::after(clock, Duration::from_millis(100));
    let mut faults =
        paranoid_vtd::policy::FaultPolicy::new(paranoid_vtd::policy::PolicyConfig::default());
    faults
        .service(&mut vtd, &mut |_| {}, deadline)
        .map_err(KernelAError::FaultLog)?;
    vtd.turn_off(deadline).map_err(KernelAError::TranslationOff)
}
