//! Making DMA live before the crash: the NVMe controller with I/O in flight to
//! kernel A's scratch blocks, and QEMU's `edu` device armed to write into kernel
//! A's memory 100 ms after the crash.

use core::fmt;

use core::time::Duration;
use paranoid::dma::{Bidirectional, FromDevice};
use paranoid::dma::{DmaArena, ToDevice, Window, WindowMapping};
use paranoid::mmio::RegisterIo;
use paranoid::pci::command::{self, Command};
use paranoid::pci::topology::Node;
use paranoid::pci::{ConfigAccess, Function};
use paranoid::phys::RamRegion;
use paranoid::poll::try_poll;
use paranoid::time::Deadline;
use paranoid_boot::frames::FrameAllocator;
use paranoid_boot::platform;
use paranoid_boot::{println, BootInfo};
use paranoid_nvme::{Config, Nvme};
use paranoid_vtd::VtdError;

use crate::disks::Found;
use crate::error::{Check, InitFailed, KernelAError};
use crate::layout::{ARENA_BASE, ARENA_LEN, SCRATCH_OFFSET};

paranoid::dma_windows! {
    address_width = 39;
    /// Kernel A's DMA window: an identity window over its arena (`layout.rs`:
    /// 4 MiB at 0x0c00_0000), in the normal IOVA space, never the recovery window.
    pub KernelAWindow = 0x0c00_0000 .. 0x0c40_0000;
}

const _: () = assert!(KernelAWindow::BASE == ARENA_BASE && KernelAWindow::SIZE == ARENA_LEN);

/// The NVMe driver as kernel A instantiates it.
pub type KernelANvme = Nvme<
    paranoid::mmio::Mmio,
    paranoid_boot::platform::PlatformConfig,
    paranoid_boot::TscClock,
    KernelAWindow,
>;
/// The NIC driver as kernel A instantiates it.
pub type KernelANic = paranoid_e1000::E1000<
    paranoid::mmio::Mmio,
    paranoid::pci::Cf8,
    paranoid_boot::TscClock,
    KernelAWindow,
>;

/// What kernel A left running.
pub struct Live {
    /// NVMe commands submitted and not reaped.
    pub outstanding: u32,
    /// Bytes written to the scratch area.
    pub written_bytes: u64,
    /// Where the armed `edu` DMA will land.
    pub armed: Option<u64>,
    /// The NIC: frames posted for transmit (not reaped), RX ring live.
    pub nic: Option<u32>,
    /// The controllers, their rings and buffers: kept alive (and live) until the
    /// crash, or shut down in order for a planned handoff.
    pub devices: Devices,
}

/// Kernel A's drivers.
pub struct Devices {
    /// The NVMe controller (`None`: no disk of its own named or found).
    pub nvme: Option<KernelANvme>,
    /// The NIC.
    pub nic: Option<KernelANic>,
    /// The IOMMU (`None`: the machine has none, DMA is untranslated).
    pub iommu: Option<crate::iommu::Unit>,
    /// DMA buffers in flight (never freed before the crash).
    #[expect(
        dead_code,
        reason = "held, not read: the device may still read these buffers after the crash"
    )]
    pub buffers: [Option<paranoid::dma::DmaBuffer<KernelAWindow, ToDevice>>; 2],
}

impl fmt::Display for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.devices.nvme.is_some() {
            write!(
                f,
                "nvme: {} KiB of scratch written, {} commands outstanding",
                self.written_bytes >> 10,
                self.outstanding
            )?;
        } else {
            write!(f, "no disk of its own")?;
        }
        if self.devices.iommu.is_none() {
            write!(f, "; no IOMMU")?;
        }
        if let Some(tx) = self.nic {
            write!(f, "; e1000 receiving, {tx} frames posted for transmit")?;
        }
        match self.armed {
            Some(at) => write!(f, "; edu DMA armed to {at:#x}"),
            None => Ok(()),
        }
    }
}

/// What a seed varies between chaos runs: how much is in flight, and when.
#[derive(Debug, Clone, Copy)]
pub struct Chaos {
    /// NVMe writes submitted and never reaped (1..=8).
    pub in_flight: u64,
    /// Frames posted for transmit (8..=48).
    pub tx_burst: u32,
    /// Milliseconds between arming the edu DMA (it lands 100 ms later) and the
    /// crash (0..=40): where in the recovery the stale transfer arrives. The
    /// recovery kernel takes the IOMMU over 10–25 ms after the crash, so the
    /// transfer always arrives after the takeover.
    pub settle_ms: u64,
}

impl Chaos {
    /// The variation for `seed` (splitmix64 steps).
    pub fn from_seed(seed: u64) -> Self {
        let mut x = seed;
        let mut next = |m: u64| {
            x = paranoid_dump::pattern_word(0x6368_616f_7321, x);
            x % m
        };
        Self {
            in_flight: 1 + next(8),
            tx_burst: 8 + next(41) as u32,
            settle_ms: next(41),
        }
    }
}

/// Brings the devices up with kernel A's window and leaves DMA live as `chaos`
/// says (`None`: nothing left in flight, for a planned handoff).
pub fn start(
    boot: &'static BootInfo,
    frames: &mut FrameAllocator,
    arena_ram: RamRegion,
    chaos: Option<Chaos>,
    disk: Found,
    nsid: u32,
) -> Result<Live, KernelAError> {
    let arm_dma = chaos.is_some();
    let mut cfg = platform::config(boot);
    let nvme_fn = match disk {
        Found::At(node) => Some(node),
        Found::NotNamed | Found::Nowhere => None,
    };
    let edu_fn = platform::find(&mut cfg, EDU).ok();
    let nic_fn = first_supported_nic(&mut cfg);
    let mut sources = [0u16; 3];
    let mut n = 0;
    // Context entries under the id the IOMMU sees (a bridge's alias, say).
    for node in [nvme_fn, edu_fn, nic_fn].into_iter().flatten() {
        if let Some(slot) = sources.get_mut(n) {
            *slot = node.requester_id();
            n += 1;
        }
    }
    let untranslated = || {
        WindowMapping::<KernelAWindow>::identity(ARENA_BASE, ARENA_LEN)
            .map_err(KernelAError::ArenaMapping)
    };
    let (iommu, mapping) = match platform::dmar(boot) {
        Ok(_) => match crate::iommu::enable(boot, frames, sources.get(..n).unwrap_or(&[])) {
            Ok((unit, mapping)) => {
                crate::crash::update(|n| n.iommu_enabled = true);
                println!(
                    "kernel-a: DMA translation on (arena {ARENA_BASE:#x}+{ARENA_LEN:#x} identity-mapped)"
                );
                (Some(unit), mapping)
            }
            // A unit that remaps interrupts only: nothing was written to it.
            Err(KernelAError::TranslationOn(e @ VtdError::CannotTranslate { .. })) => {
                println!("kernel-a: {e}: DMA untranslated");
                (None, untranslated()?)
            }
            Err(e) => return Err(e),
        },
        Err(platform::PlatformError::NoDmar) => {
            println!("kernel-a: no IOMMU on this machine (no DMAR table): DMA untranslated");
            (None, untranslated()?)
        }
        Err(e) => return Err(KernelAError::DmarUnreadable(e)),
    };
    let mut arena = DmaArena::new(mapping, arena_ram).map_err(KernelAError::Arena)?;
    let mut buffers = [None, None];
    let (nvme, written, outstanding) = match nvme_fn {
        Some(node) => {
            let (nvme, written, outstanding) =
                start_nvme(boot, cfg, node, nsid, &mut arena, chaos, &mut buffers)?;
            (Some(nvme), written, outstanding)
        }
        None => {
            println!("kernel-a: no disk of its own ({disk:?}): no NVMe I/O live");
            (None, 0, 0)
        }
    };
    let nic = match nic_fn {
        Some(node) => Some(start_nic(
            boot,
            node,
            &mut arena,
            chaos.map_or(0, |c| c.tx_burst),
        )?),
        None => None,
    };
    let armed = match edu_fn {
        // The NVMe driver owns ECAM now; edu is configured through CF8.
        Some(e) if arm_dma => Some(arm_edu(boot, &mut platform::cf8(), e, &mut arena)?),
        _ => None,
    };
    Ok(Live {
        outstanding,
        written_bytes: written,
        armed,
        nic: nic.as_ref().map(|(_, posted)| *posted),
        devices: Devices {
            nvme,
            nic: nic.map(|(n, _)| n),
            iommu,
            buffers,
        },
    })
}

/// Brings kernel A's own NVMe controller up, writes its scratch area in the
/// namespace's own block size, and (`chaos`) leaves writes in flight that it
/// never reaps. Returns the driver, the bytes written and the writes left in
/// flight; the buffers stay in `buffers` (the device may still read them).
fn start_nvme(
    boot: &'static BootInfo,
    mut cfg: platform::PlatformConfig,
    node: paranoid::pci::topology::Node,
    nsid: u32,
    arena: &mut DmaArena<KernelAWindow>,
    chaos: Option<Chaos>,
    buffers: &mut [Option<paranoid::dma::DmaBuffer<KernelAWindow, ToDevice>>; 2],
) -> Result<(KernelANvme, u64, u32), KernelAError> {
    let address = node.address();
    let (regs, _) = platform::map_bar0(&mut cfg, address).map_err(KernelAError::NvmeBar)?;
    let config = Config {
        nsid,
        ..Config::default()
    };
    let nvme = Nvme::new(regs, cfg, address, boot.clock(), arena, config)
        .map_err(KernelAError::NvmeNew)?;
    let ready = nvme
        .init(paranoid_nvme::DEFAULT_INIT_BUDGET)
        .map_err(|f| KernelAError::NvmeInit(InitFailed::logged(f)))?;
    println!("kernel-a: nvme ready in {:?}", ready.trace.total());
    let mut nvme = ready.device.into_inner();
    let ns = nvme.namespace_info().ok_or(Check::NoNamespace { nsid })?;
    let block = u64::from(ns.block_size);
    crate::crash::update(|n| {
        if let Some(slot) = n.live_sources.get_mut(n.live_count as usize) {
            *slot = node.requester_id();
            n.live_count += 1;
        }
    });
    const CHUNK: u64 = 64 * 1024;
    let mut buf = arena
        .alloc::<ToDevice>(CHUNK as usize, 4096)
        .map_err(KernelAError::DmaBuffer)?;
    buf.write_bytes(0, &[0x4b; CHUNK as usize])
        .map_err(KernelAError::Fill)?;
    let mut written = 0;
    for i in 0..8u64 {
        nvme.write_blocks((SCRATCH_OFFSET + i * CHUNK) / block, CHUNK / block, &buf, 0)
            .map_err(KernelAError::ScratchWrite)?;
        written += CHUNK;
    }
    // Last: writes submitted and never reaped, in flight across the crash.
    // Each owns its buffer (moved into the driver) until the crash.
    let mut outstanding = 0;
    if let Some(c) = chaos {
        for i in 0..c.in_flight {
            let mut one = arena
                .alloc::<ToDevice>(4096, 4096)
                .map_err(KernelAError::DmaBuffer)?;
            one.write_bytes(0, &[0x4b; 4096])
                .map_err(KernelAError::Fill)?;
            let at = SCRATCH_OFFSET + 8 * CHUNK + i * 4096;
            let (lba, blocks) = ns
                .byte_extent_to_blocks(at, 4096)
                .map_err(KernelAError::Extent)?;
            if nvme.submit_write(lba, blocks, one, 0).is_ok() {
                outstanding += 1;
            }
        }
    }
    *buffers = [Some(buf), None];
    Ok((nvme, written, outstanding))
}

/// The first NIC of the 8254x family the e1000 driver supports, on any bus;
/// other NICs (an 82574L, say) are left alone.
fn first_supported_nic<C: ConfigAccess>(cfg: &mut C) -> Option<paranoid::pci::topology::Node> {
    platform::find_class(cfg, 0x02, 0x00)
        .iter()
        .find(|f| paranoid_e1000::Part::is_supported(f.info.vendor, f.info.device))
        .copied()
}

impl Devices {
    /// The orderly path of a planned handoff: each driver shuts its device down
    /// (NVMe: CC.SHN and a bounded wait for CSTS.SHST, then disable; e1000: stop
    /// RX/TX, mask interrupts, reset), bus mastering goes off, then the IOMMU is
    /// left in the documented state (translation and queued invalidation off,
    /// fault log drained).
    pub fn shut_down(&mut self, clock: &paranoid_boot::TscClock) -> Result<(), KernelAError> {
        if let Some(nvme) = self.nvme.as_mut() {
            nvme.shutdown().map_err(KernelAError::NvmeShutdown)?;
        }
        if let Some(nic) = self.nic.as_mut() {
            nic.shutdown(Deadline::after(clock, Duration::from_millis(100)))
                .map_err(KernelAError::E1000Shutdown)?;
        }
        match self.iommu.take() {
            Some(unit) => crate::iommu::leave(unit, clock),
            None => Ok(()),
        }
    }
}

/// QEMU's `edu` device.
pub const EDU: (u16, u16) = (0x1234, 0x11e8);
/// edu registers (QEMU `hw/misc/edu.c`): DMA source, destination, count, command.
const EDU_DMA_SRC: usize = 0x80;
const EDU_DMA_DST: usize = 0x88;
const EDU_DMA_COUNT: usize = 0x90;
const EDU_DMA_CMD: usize = 0x98;
/// Command bits: run, direction (1: device buffer to RAM).
const EDU_CMD_RUN: u64 = 1;
const EDU_CMD_TO_RAM: u64 = 2;
/// The device-side buffer; QEMU 7.2 aborts the VM for any range outside it.
const EDU_BUFFER: u64 = 0x40000;
/// Bytes per transfer. The buffer is 4 KiB, but QEMU 7.2's range check treats
/// a transfer ending exactly at its end as out of bounds (and aborts the VM),
/// so stay below it.
const EDU_LEN: usize = 2048;

/// The command-line key of the negative controls (passed on to the recovery
/// kernel too), and its value that aims the armed DMA at recovery memory.
pub const NEGATIVE_CONTROL: &str = "negative_control";
/// See [`NEGATIVE_CONTROL`].
pub const STALE_DMA: &str = "stale-dma";
/// Where the negative control's transfer lands: the first words of the
/// recovery kernel's canary region (`layout.rs`), which its fill writes first,
/// well before the transfer arrives (60-100 ms after the crash), so the
/// transfer is not covered by the fill.
const STALE_DMA_TARGET: u64 = crate::CANARY_START;

/// The first word of the data the armed DMA carries.
pub const EDU_WORD0: u64 = 0xed0d_a7a0_0000_0000;

/// Fills edu's buffer from memory (waiting for it: 100 ms), then arms a
/// buffer-to-memory DMA that lands 100 ms later, after the crash.
fn arm_edu<P: ConfigAccess>(
    boot: &'static BootInfo,
    cfg: &mut P,
    found: Node,
    arena: &mut DmaArena<KernelAWindow>,
) -> Result<u64, KernelAError> {
    let address = found.address();
    let (mut regs, _) = platform::map_bar0(cfg, address).map_err(KernelAError::EduBar)?;
    command::update(
        cfg,
        address,
        Command::BUS_MASTER | Command::MEMORY_SPACE,
        Command::empty(),
    )
    .map_err(KernelAError::EduBusMaster)?;
    let mut source = arena
        .alloc::<Bidirectional>(EDU_LEN, 4096)
        .map_err(KernelAError::EduSource)?;
    for i in 0..EDU_LEN / 8 {
        source
            .write(8 * i, EDU_WORD0 | i as u64)
            .map_err(KernelAError::EduFill)?;
    }
    let landing = arena
        .alloc::<FromDevice>(EDU_LEN, 4096)
        .map_err(KernelAError::EduLanding)?;
    regs.write64(EDU_DMA_SRC, source.iova().get());
    regs.write64(EDU_DMA_DST, EDU_BUFFER);
    regs.write64(EDU_DMA_COUNT, EDU_LEN as u64);
    regs.write64(EDU_DMA_CMD, EDU_CMD_RUN);
    let clock = boot.clock();
    // The run bit clears when the transfer is done; all-ones means edu is gone.
    let done = try_poll(
        &clock,
        Deadline::after(&clock, Duration::from_secs(1)),
        || regs.read64(EDU_DMA_CMD).not_all_ones(),
        |c| !c.bit(0),
    );
    done.map(|_| ()).map_err(KernelAError::EduPriming)?;
    // The canaries' negative control (`negative_control=stale-dma`, a machine
    // without an IOMMU, so an IOVA is a physical address): the transfer is
    // aimed at the recovery kernel's canary region instead of kernel A's own
    // buffer, and the recovery kernel leaves the edu able to master the bus.
    // Its canary check must then fail.
    let at = if boot.cmdline().get(NEGATIVE_CONTROL) == Some(STALE_DMA) {
        STALE_DMA_TARGET
    } else {
        landing.iova().get()
    };
    regs.write64(EDU_DMA_SRC, EDU_BUFFER);
    regs.write64(EDU_DMA_DST, at);
    regs.write64(EDU_DMA_COUNT, EDU_LEN as u64);
    regs.write64(EDU_DMA_CMD, EDU_CMD_RUN | EDU_CMD_TO_RAM);
    let armed_tsc = paranoid::arch::x86_64::rdtsc();
    crate::crash::update(|n| {
        n.armed_tsc = armed_tsc;
        n.armed_dma = paranoid_dump::Range {
            start: at,
            len: EDU_LEN as u64,
        };
        n.armed_word = EDU_WORD0;
        if let Some(slot) = n.live_sources.get_mut(n.live_count as usize) {
            *slot = found.requester_id();
            n.live_count += 1;
        }
    });
    // `source` and `landing` go out of scope without being freed (only
    // `DmaArena::free` frees): the landing buffer stays reserved for the
    // transfer that arrives after the crash.
    Ok(at)
}

/// Arms the i6300esb watchdog (a cluster's node watchdog): the machine resets
/// `period_ms` after the last pet unless the recovery kernel keeps petting it.
pub fn arm_watchdog(period_ms: u64) -> Result<(), KernelAError> {
    let mut cf8 = platform::cf8();
    let esb = platform::find(&mut cf8, paranoid_i6300esb::IDS).map_err(KernelAError::NoWatchdog)?;
    let (regs, _) =
        platform::map_bar0(&mut cf8, esb.address()).map_err(KernelAError::WatchdogBar)?;
    let mut wdt = paranoid_i6300esb::Watchdog::new(regs);
    wdt.set_period(Duration::from_millis(period_ms))
        .map_err(KernelAError::WatchdogPeriod)?;
    paranoid_i6300esb::enable(&mut Function::new(&mut cf8, esb.address()))
        .map_err(KernelAError::WatchdogEnable)?;
    wdt.pet();
    let pet_tsc = paranoid::arch::x86_64::rdtsc();
    crate::crash::update(|n| n.watchdog_tsc = pet_tsc);
    Ok(())
}

/// Brings the NIC up in kernel A's window, leaves its RX ring receiving and
/// posts a TX burst of `burst` frames it never reaps.
fn start_nic(
    boot: &'static BootInfo,
    found: Node,
    arena: &mut DmaArena<KernelAWindow>,
    burst: u32,
) -> Result<(KernelANic, u32), KernelAError> {
    let address = found.address();
    let mut cf8 = platform::cf8();
    let (regs, _) = platform::map_bar0(&mut cf8, address).map_err(KernelAError::E1000Bar)?;
    let clock = boot.clock();
    let nic = paranoid_e1000::E1000::new(
        regs,
        cf8,
        address,
        clock,
        arena,
        paranoid_e1000::Config::default(),
    )
    .map_err(KernelAError::E1000New)?;
    let ready = paranoid_e1000::init::init(nic, &clock)
        .map_err(|f| KernelAError::E1000Init(InitFailed::logged(f)))?;
    let mut nic = ready.device.into_inner();
    // Wait (bounded) until the outside network's frames arrive: from here on the
    // NIC keeps writing them into kernel A's ring, crash or not.
    let mut first = [0u8; 2048];
    let heard = nic
        .receive_wait(&mut first, Deadline::after(&clock, Duration::from_secs(2)))
        .is_ok();
    println!(
        "kernel-a: e1000 link up, {} from the outside network",
        if heard {
            "receiving"
        } else {
            "nothing received"
        }
    );
    let mac = nic.mac().0;
    let mut frame = [0u8; 128];
    frame[..6].copy_from_slice(&[0xff; 6]);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&[0x88, 0xb5]);
    let mut posted = 0;
    for i in 0..burst {
        frame[14..18].copy_from_slice(&i.to_be_bytes());
        if nic.transmit(&frame).is_ok() {
            posted += 1;
        }
    }
    crate::crash::update(|n| {
        if let Some(slot) = n.live_sources.get_mut(n.live_count as usize) {
            *slot = found.requester_id();
            n.live_count += 1;
        }
    });
    Ok((nic, posted))
}
