//! The memory of a device scenario without IOMMU translation: the driver's DMA
//! window as identity-mapped RAM (IOVA = physical), reserved from the frame
//! allocator, and a separate block of "dead kernel" memory for the state a
//! crashed kernel leaves behind.
//!
//! Also the BAR 0 mapping every such scenario needs, failing the scenario the
//! same way everywhere.

use paranoid::dma::{DmaArena, Window, WindowMapping};
use paranoid::mmio::Mmio;
use paranoid::pci::PciAddress;
use paranoid::phys::RamRegion;
use paranoid_boot::frames::PhysRange;
use paranoid_boot::start_info::MemoryKind;
use paranoid_boot::BootInfo;

use crate::platform;
use crate::report::{fail, Failure, Fields};
use crate::{check, ensure};

/// The window `W` as an arena, and the dead kernel's memory.
pub struct IdentityDma<W: Window> {
    /// Allocations in window `W`, backed by the RAM at `W::BASE`.
    pub arena: DmaArena<W>,
    /// The dead kernel's memory (identity-mapped RAM), zeroed, page-aligned,
    /// outside the window.
    pub old: RamRegion,
}

/// Takes the frame allocator, reserves window `W` (which must be RAM at its own
/// IOVA) and allocates `old_size` bytes of zeroed "dead kernel" memory.
///
/// # Errors
///
/// A [`Failure`] (the pairs of `f` so far, then the reason) when the frame
/// allocator is gone or broken, the window is not RAM or cannot be reserved,
/// or the old memory cannot be allocated outside it.
pub fn reserve<W: Window>(
    boot: &'static BootInfo,
    old_size: u64,
    f: &mut Fields,
) -> Result<IdentityDma<W>, Failure> {
    let frames = match boot.take_frames() {
        Some(r) => r,
        None => return Err(fail(core::mem::take(f), "frames already taken")),
    };
    let mut frames = check!(core::mem::take(f), frames, "frame allocator");
    let window = PhysRange {
        start: W::BASE,
        end: W::BASE + W::SIZE,
    };
    let in_ram = boot.memory_map().iter().any(|r| {
        r.start <= window.start && r.end() >= window.end && matches!(r.kind, MemoryKind::Ram)
    });
    ensure!(core::mem::take(f), in_ram, "window {window:x?} is not RAM");
    let ram = check!(
        core::mem::take(f),
        frames.claim_ram(W::BASE, W::SIZE),
        "reserve window"
    );
    let old = check!(
        core::mem::take(f),
        frames.alloc_ram(old_size, 4096),
        "old memory"
    );
    let old_range = PhysRange {
        start: old.start(),
        end: old.start() + old_size,
    };
    ensure!(
        core::mem::take(f),
        !old_range.overlaps(&window),
        "old memory inside the window"
    );
    // Without IOMMU translation the window sits on the memory: IOVA = physical.
    let mapping = check!(
        core::mem::take(f),
        WindowMapping::<W>::identity(W::BASE, W::SIZE),
        "window mapping"
    );
    let arena = check!(core::mem::take(f), DmaArena::new(mapping, ram), "arena");
    Ok(IdentityDma { arena, old })
}

/// Maps BAR 0 of `a` through the legacy configuration mechanism.
///
/// # Errors
///
/// A [`Failure`] with `reason=BAR0: ...` when it is not a memory BAR inside the
/// uncached identity map.
pub fn map_bar0(a: PciAddress, f: &mut Fields) -> Result<Mmio, Failure> {
    let (mmio, _) = check!(
        core::mem::take(f),
        platform::map_bar0(&mut platform::cf8(), a),
        "BAR0"
    );
    Ok(mmio)
}
