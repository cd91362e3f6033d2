//! A test bench: simulated memory, IOMMU, configuration space and the model,
//! wired together the way a recovery kernel sees QEMU's NVMe function.

use std::cell::RefCell;
use std::ptr::NonNull;
use std::rc::Rc;

use core::time::Duration;
use paranoid::dma::{DmaArena, Window, WindowMapping};
use paranoid::pci::PciAddress;
use paranoid::sim::{ConfigSpace, SimClock, SimDma, SimIommu, SimMemory, SimMmio, SimPci};
use paranoid::time::Deadline;

use super::NvmeModel;

/// The recovery window of the bench: 1 MiB of IOVA space at 0x8000_0000, the
/// only range the simulated IOMMU maps.
#[derive(Debug)]
pub enum SimWindow {}

impl Window for SimWindow {
    const NAME: &'static str = "recovery";
    const BASE: u64 = 0x8000_0000;
    const SIZE: u64 = 1 << 20;
}

/// Physical address of the memory backing the window.
pub const WINDOW_PHYS: u64 = 0x0010_0000;
/// Bytes of window backed by memory in the bench.
pub const WINDOW_BACKED: u64 = 1 << 20;
/// Physical (and, unmapped, IOVA) address of the dead kernel's memory: its
/// queues and buffers live here, outside the window.
pub const OLD_KERNEL_BASE: u64 = WINDOW_PHYS + WINDOW_BACKED;
/// Bytes of dead-kernel memory.
pub const OLD_KERNEL_LEN: u64 = 64 << 10;
/// Bytes of simulated memory a bench needs.
pub const MEMORY_LEN: u64 = WINDOW_BACKED + OLD_KERNEL_LEN;

/// The driver on the bench's backends.
pub type SimNvme = crate::Nvme<SimMmio<NvmeModel>, SimPci, SimClock, SimWindow>;

/// Everything a driver test needs, sharing one simulated clock.
pub struct Bench {
    /// Simulated time.
    pub clock: SimClock,
    /// Simulated physical memory (window backing, then the dead kernel's).
    pub memory: SimMemory,
    /// The IOMMU: only the window is mapped; every other access is refused and
    /// recorded.
    pub iommu: Rc<RefCell<SimIommu>>,
    /// The DMA engine of the model.
    pub dma: SimDma,
    /// The PCI segment with the controller at 00:04.0.
    pub pci: SimPci,
    /// The controller's configuration space.
    pub config: Rc<RefCell<ConfigSpace>>,
    /// The controller model.
    pub model: Rc<RefCell<NvmeModel>>,
    /// BAR0 as the driver sees it.
    pub mmio: SimMmio<NvmeModel>,
    /// The window's allocator.
    pub arena: DmaArena<SimWindow>,
    /// The controller's PCI address.
    pub address: PciAddress,
}

impl Bench {
    /// A controller as QEMU 7.2 presents it before firmware touched it:
    /// 1b36:0010, class 01:08:02, 16 KiB 64-bit BAR0, PCIe with FLR, MSI-X
    /// capability; disabled.
    ///
    /// # Panics
    ///
    /// Never: the constants are valid (test setup only).
    pub fn qemu_like() -> Self {
        Self::with_memory(SimMemory::new(
            WINDOW_PHYS,
            (WINDOW_BACKED + OLD_KERNEL_LEN) as usize,
        ))
    }

    /// As [`qemu_like`](Self::qemu_like), reusing `memory` (at
    /// [`WINDOW_PHYS`], at least [`MEMORY_LEN`] bytes): campaigns run millions
    /// of benches and need not allocate a megabyte each. Buffers the driver
    /// allocates are zeroed; the rest keeps what earlier runs left, like the
    /// memory of a crashed kernel.
    ///
    /// # Panics
    ///
    /// When `memory` is too small or elsewhere (test setup).
    pub fn with_memory(memory: SimMemory) -> Self {
        assert!(
            memory.base() == WINDOW_PHYS && memory.len() as u64 >= MEMORY_LEN,
            "bench memory must cover {WINDOW_PHYS:#x}+{MEMORY_LEN:#x}"
        );
        let clock = SimClock::new();
        let iommu = Rc::new(RefCell::new(SimIommu::new()));
        let mapping = WindowMapping::<SimWindow>::map(
            &mut *iommu.borrow_mut(),
            WINDOW_PHYS,
            WINDOW_BACKED,
            Deadline::after(&clock, Duration::from_secs(1)),
        )
        .expect("an empty simulated IOMMU maps the window");
        let dma = SimDma::with_iommu(memory.clone(), iommu.clone());
        let address = PciAddress::new(0, 0, 4, 0).expect("00:04.0 is a valid address");
        let mut pci = SimPci::new();
        let space = ConfigSpace::endpoint(clock.clone(), 0x1b36, 0x0010, [0x01, 0x08, 0x02])
            .with_bar64(0, 0x4000, 0xfebf_0000, false)
            .with_capability(0x11, 10)
            .with_pcie(true);
        let config = pci.insert(address, space);
        let model = Rc::new(RefCell::new(NvmeModel::new(
            clock.clone(),
            config.clone(),
            dma.clone(),
            address.source_id(),
        )));
        let mmio = SimMmio::shared(model.clone(), clock.clone());
        let host = memory
            .host_ptr(WINDOW_PHYS, WINDOW_BACKED as usize)
            .unwrap_or(NonNull::dangling());
        // SAFETY:
        // - `host..host + WINDOW_BACKED` is the CPU's view of simulated
        //   physical `WINDOW_PHYS..`, page-aligned, alive as long as `memory`
        //   (the bench holds a clone);
        // - only the arena's buffers (raw pointers) and the model's DMA
        //   (copies through `SimMemory`) touch it, never a Rust reference.
        let arena = unsafe { DmaArena::from_raw(host, mapping) };
        Self {
            clock,
            memory,
            iommu,
            dma,
            pci,
            config,
            model,
            mmio,
            arena,
            address,
        }
    }

    /// A bench whose controller reports `params` (namespaces, MDTS, MQES,
    /// granted queues, ...) instead of QEMU's defaults.
    pub fn with_params(params: super::Params) -> Self {
        let b = Self::qemu_like();
        b.set_params(params);
        b
    }

    /// A bench whose controller has exactly `namespaces` (each with its own
    /// LBA format; the default namespace 1 is replaced when the list holds
    /// nsid 1, and absent otherwise) and NN covering them.
    pub fn with_namespaces(namespaces: &[super::NamespaceParams]) -> Self {
        let b = Self::qemu_like();
        b.set_namespaces(namespaces);
        b
    }

    /// Replaces what the controller reports (before the driver runs).
    pub fn set_params(&self, params: super::Params) {
        let mut m = self.model.borrow_mut();
        let queues = usize::from(params.max_ioqpairs) + 1;
        m.sqs = vec![None; queues];
        m.cqs = vec![None; queues];
        m.params = params;
    }

    /// Replaces the controller's namespaces (before the driver runs); an
    /// absent namespace 1 is made a detached one so that every id in
    /// `1..=NN` not listed is inactive.
    pub fn set_namespaces(&self, namespaces: &[super::NamespaceParams]) {
        let mut m = self.model.borrow_mut();
        let mut list = namespaces.to_vec();
        if !list.iter().any(|n| n.nsid == 1) {
            list.push(super::NamespaceParams::lba512(1, 0).detached());
        }
        m.params.nn = m
            .params
            .nn
            .max(list.iter().map(|n| n.nsid).max().unwrap_or(1));
        m.params.namespaces = list;
    }

    /// The driver's handles: BAR0, configuration access, address, clock.
    pub fn parts(&self) -> (SimMmio<NvmeModel>, SimPci, PciAddress, SimClock) {
        (
            self.mmio.clone(),
            self.pci.clone(),
            self.address,
            self.clock.clone(),
        )
    }

    /// A driver for the bench's controller, its queues carved from the arena.
    ///
    /// # Errors
    ///
    /// As [`crate::Nvme::new`].
    pub fn driver(&mut self, config: crate::Config) -> Result<SimNvme, crate::NvmeError> {
        let (regs, pci, address, clock) = self.parts();
        crate::Nvme::new(regs, pci, address, clock, &mut self.arena, config)
    }

    /// Sets the command register as firmware (or the dead kernel) left it.
    pub fn set_command(&self, value: u16) {
        use paranoid::pci::ConfigAccess;
        let mut pci = self.pci.clone();
        pci.write16(self.address, 0x04, value);
    }

    /// True when bus mastering is on (the fence check).
    pub fn bus_master(&self) -> bool {
        self.config.borrow().bus_master()
    }

    /// DMA accesses the IOMMU refused so far (escapes from the window).
    pub fn escapes(&self) -> usize {
        self.dma.refused().len()
    }
}
