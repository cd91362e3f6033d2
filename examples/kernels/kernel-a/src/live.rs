//! Making DMA live before the crash: the NVMe controller with I/O in flight to
//! kernel A's scratch blocks.

use core::fmt;
use core::ptr::NonNull;

use paranoid::dma::{DmaArena, ToDevice, Window};
use paranoid_boot::frames::FrameAllocator;
use paranoid_boot::platform::{self, NVME};
use paranoid_boot::{println, BootInfo};
use paranoid_nvme::{Config, Nvme};

use crate::layout::{ARENA_BASE, ARENA_LEN, SCRATCH_LBA};
use crate::Why;

/// Kernel A's DMA window: an identity window over its arena, in the normal IOVA
/// space (never the recovery window).
pub enum KernelAWindow {}

impl Window for KernelAWindow {
    const NAME: &'static str = "kernel-a";
    const BASE: u64 = ARENA_BASE;
    const SIZE: u64 = ARENA_LEN;
}

/// What kernel A left running.
pub struct Live {
    /// NVMe commands submitted and not reaped.
    pub outstanding: u32,
    /// Blocks written to the scratch area.
    pub written_blocks: u64,
}

impl fmt::Display for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nvme: {} scratch blocks written, {} commands outstanding", self.written_blocks, self.outstanding)
    }
}

/// Brings the NVMe controller up with kernel A's window and starts I/O.
pub fn start(boot: &'static BootInfo, _frames: &mut FrameAllocator) -> Result<Live, Why> {
    let mut cfg = platform::ecam(boot).map_err(|_| "ecam")?;
    let nvme_fn = platform::find(&mut cfg, NVME).map_err(|_| "no nvme")?;
    let (regs, _) = platform::map_bar0(&mut cfg, nvme_fn.address).map_err(|_| "nvme bar")?;
    let cpu = NonNull::new(ARENA_BASE as *mut u8).ok_or("arena")?;
    // SAFETY: the arena is RAM reserved from the frame allocator (main.rs),
    // identity-mapped, and only used through this arena; kernel A's IOMMU domain
    // (when on) maps it 1:1, which is what the window declares.
    let mut arena = unsafe { DmaArena::<KernelAWindow>::new(cpu, ARENA_BASE, ARENA_LEN) };
    let nvme = Nvme::new(regs, cfg, nvme_fn.address, boot.clock(), &mut arena, Config::default()).map_err(|_| "nvme new")?;
    let ready = nvme.init(paranoid_nvme::DEFAULT_INIT_BUDGET).map_err(|_| "nvme init")?;
    println!("kernel-a: nvme ready in {:?}", ready.trace.total());
    let mut nvme = ready.device.into_inner();
    crate::crash::update(|n| {
        if let Some(slot) = n.live_sources.get_mut(n.live_count as usize) {
            *slot = nvme_fn.address.source_id();
            n.live_count += 1;
        }
    });
    let mut buf = arena.alloc::<ToDevice>(64 * 1024, 4096).map_err(|_| "dma buffer")?;
    buf.write_bytes(0, &[0x4b; 64 * 1024]).map_err(|_| "fill")?;
    let mut written = 0;
    for i in 0..8u64 {
        nvme.write_blocks(SCRATCH_LBA + i * 128, 128, &buf, 0).map_err(|_| "scratch write")?;
        written += 128;
    }
    // Keep the controller, its queues and buffers alive past the crash.
    core::mem::forget(nvme);
    core::mem::forget(buf);
    Ok(Live { outstanding: 0, written_blocks: written })
}
