//! A simulated machine around one model NIC: clock, memory, IOMMU with the
//! recovery window mapped, PCI function, register block and wire.

use std::cell::RefCell;
use std::ptr::NonNull;
use std::rc::Rc;

use core::time::Duration;

use paranoid::dma::{DmaArena, Window, WindowMapping};
use paranoid::pci::command::{self, Command};
use paranoid::pci::{ConfigAccess, PciAddress};
use paranoid::sim::{
    ConfigSpace, SimClock, SimDma, SimIommu, SimMemory, SimMmio, SimPci, Translate,
};
use paranoid::time::Deadline;

use super::{Behaviour, E1000Model, Wire};
use crate::device::{Config, E1000};
use crate::error::E1000Error;
use crate::part::Part;
use crate::regs::id;

paranoid::dma_windows! {
    address_width = 39;
    /// The recovery kernel's DMA window (IOVA), 1 MiB above 4 GiB (so the
    /// high halves of ring bases are not zero): the only range the
    /// simulated IOMMU maps for the NIC.
    pub RecoveryWindow = 0x7f_ff00_0000;
}

/// IO-virtual base of the dead kernel's DMA memory for the NIC on port 0
/// (port 1's is 16 MiB higher): unmapped in the IOMMU, so every access there is
/// refused and recorded. The recovery window's physical backing starts 1 MiB on.
pub const OLD_KERNEL_BASE: u64 = 0x1000_0000;
const REGION: u64 = 1 << 20;
/// Physical memory backing the window: room for two drivers' rings and
/// buffers (each takes 136 KiB), kept small because campaigns build a harness
/// per case.
const BACKING: u64 = 320 << 10;

/// The driver type a harness builds.
pub type SimE1000 = E1000<SimMmio<E1000Model>, SimPci, SimClock, RecoveryWindow>;

/// One simulated NIC and everything around it.
pub struct Harness {
    /// The shared clock.
    pub clock: SimClock,
    /// Physical memory backing the recovery window.
    pub memory: SimMemory,
    /// The IOMMU: only the recovery window is mapped, for this NIC.
    pub iommu: Rc<RefCell<SimIommu>>,
    /// The PCI segment (one function).
    pub pci: SimPci,
    /// The NIC's configuration space.
    pub config: Rc<RefCell<ConfigSpace>>,
    /// The NIC's PCI address.
    pub address: PciAddress,
    /// The model.
    pub model: Rc<RefCell<E1000Model>>,
    /// Its register block.
    pub mmio: SimMmio<E1000Model>,
    /// The wire.
    pub wire: Wire,
    /// The wire port.
    pub port: usize,
    /// The station address in the EEPROM.
    pub mac: [u8; 6],
    arena: DmaArena<RecoveryWindow>,
}

impl Harness {
    /// A well-behaved NIC (SDM timing) with a loopback plug.
    pub fn loopback() -> Self {
        Self::build(
            SimClock::new(),
            Wire::loopback(),
            0,
            Behaviour::spec(),
            false,
        )
    }

    /// A well-behaved `part` with a loopback plug.
    pub fn loopback_part(part: Part) -> Self {
        Self::build_part(
            SimClock::new(),
            Wire::loopback(),
            0,
            Behaviour::spec(),
            false,
            part,
        )
    }

    /// Two NICs on one wire, sharing a clock.
    pub fn pair(behaviour: Behaviour) -> (Self, Self) {
        let clock = SimClock::new();
        let wire = Wire::new(super::WireMode::Pair);
        (
            Self::build(clock.clone(), wire.clone(), 0, behaviour, false),
            Self::build(clock, wire, 1, behaviour, false),
        )
    }

    /// A NIC on `port` of `wire`; with `flr` it is a PCIe function advertising
    /// function-level reset. Firmware left memory decoding and bus mastering on.
    pub fn build(
        clock: SimClock,
        wire: Wire,
        port: usize,
        behaviour: Behaviour,
        flr: bool,
    ) -> Self {
        Self::build_part(clock, wire, port, behaviour, flr, Part::I82540Em)
    }

    /// As [`build`](Self::build), the NIC being `part`: its device id in
    /// configuration space and in the EEPROM, its PHY id and its EEPROM
    /// interface (the any-state campaign samples the part this way).
    pub fn build_part(
        clock: SimClock,
        wire: Wire,
        port: usize,
        behaviour: Behaviour,
        flr: bool,
        part: Part,
    ) -> Self {
        let n = port.min(1) as u8;
        let base = OLD_KERNEL_BASE + u64::from(n) * (16 << 20);
        let memory = SimMemory::new(base + REGION, BACKING as usize);
        let address = PciAddress::new(0, 0, 3 + n, 0).expect("device 3 or 4 is a valid PCI device");
        let source = address.source_id();
        let iommu = Rc::new(RefCell::new(SimIommu::new()));
        let mapping = WindowMapping::<RecoveryWindow>::map(
            &mut iommu.borrow_mut().for_source(source),
            base + REGION,
            BACKING,
            Deadline::after(&clock, Duration::from_secs(1)),
        )
        .expect("an empty simulated IOMMU maps the window");
        let translate: Rc<RefCell<dyn Translate>> = iommu.clone();
        let dma = SimDma::with_iommu(memory.clone(), translate);
        let mut space = ConfigSpace::endpoint(
            clock.clone(),
            id::VENDOR_INTEL,
            part.device_id(),
            [0x02, 0x00, 0x00],
        )
        .with_bar32(
            0,
            id::BAR0_SIZE as u32,
            0xfebc_0000 + u32::from(n) * 0x2_0000,
        );
        if flr {
            space = space.with_pcie(true);
        }
        let mut pci = SimPci::legacy();
        let config = pci.insert(address, space);
        let _ = command::update(
            &mut pci,
            address,
            Command::MEMORY_SPACE | Command::BUS_MASTER,
            Command::empty(),
        );
        let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56 + n];
        let mut model = E1000Model::new(
            clock.clone(),
            dma,
            config.clone(),
            source,
            wire.clone(),
            port,
            mac,
            behaviour,
        );
        model.set_part(part);
        model.set_window(RecoveryWindow::BASE, RecoveryWindow::SIZE);
        let model = Rc::new(RefCell::new(model));
        let mmio = SimMmio::shared(model.clone(), clock.clone());
        let cpu = memory
            .host_ptr(base + REGION, BACKING as usize)
            .unwrap_or_else(NonNull::dangling);
        // SAFETY:
        // - `cpu..cpu + BACKING` is the CPU's view of all of `memory`
        //   (simulated physical `base + REGION..`), page-aligned (the
        //   allocation is 4 KiB-aligned), kept alive by the model's `SimDma`
        //   clone for as long as any buffer (whose driver holds the model)
        //   lives, and only reached through raw pointers.
        let arena = unsafe { DmaArena::from_raw(cpu, mapping) };
        Self {
            clock,
            memory,
            iommu,
            pci,
            config,
            address,
            model,
            mmio,
            wire,
            port,
            mac,
            arena,
        }
    }

    /// A driver for this NIC, rings allocated from the harness's window.
    ///
    /// # Errors
    ///
    /// [`E1000Error::Dma`] when the window is full (after many drivers).
    pub fn driver(&mut self, config: Config) -> Result<SimE1000, E1000Error> {
        E1000::new(
            self.mmio.clone(),
            self.pci.clone(),
            self.address,
            self.clock.clone(),
            &mut self.arena,
            config,
        )
    }

    /// A driver for this NIC reaching configuration space through `pci` (a
    /// watched access, say) instead of the harness's own, rings allocated from
    /// the harness's window.
    ///
    /// # Errors
    ///
    /// [`E1000Error::Dma`] when the window is full (after many drivers).
    pub fn driver_on<P: ConfigAccess>(
        &mut self,
        pci: P,
        config: Config,
    ) -> Result<E1000<SimMmio<E1000Model>, P, SimClock, RecoveryWindow>, E1000Error> {
        E1000::new(
            self.mmio.clone(),
            pci,
            self.address,
            self.clock.clone(),
            &mut self.arena,
            config,
        )
    }

    /// True when configuration space says bus mastering is off.
    pub fn fenced(&self) -> bool {
        !self.config.borrow().bus_master()
    }
}
