//! The machine as paranoid kernels see it: configuration access chosen from the
//! ACPI MCFG (every ECAM allocation; CF8/CFC when there is none), devices found
//! through the whole PCI topology, their BARs.
//!
//! Find devices with [`config`] and [`find_all`] / [`topology`] (or [`find`]
//! for the first match); attach them to an IOMMU with
//! [`Node::requester_id`](paranoid::pci::topology::Node::requester_id), the id
//! the IOMMU sees (a bridge may take the device's requests over), never with
//! the address's own id.

use core::fmt;
use core::ptr::NonNull;

use crate::acpi::{self, AcpiError, EcamRegion, Mcfg};
use crate::BootInfo;
use paranoid::mmio::Mmio;
use paranoid::pci::bar::Bar;
use paranoid::pci::command::{self, Command};
use paranoid::pci::topology::{Node, RootBus, Topology};
use paranoid::pci::{bar, Cf8, ConfigAccess, Ecam, PciAddress, PciError};
use paranoid::Untrusted;

/// QEMU's e1000 (82540EM).
pub const E1000: (u16, u16) = (0x8086, 0x100e);
/// QEMU's NVMe controller.
pub const NVME: (u16, u16) = (0x1b36, 0x0010);
/// Where q35 puts ECAM (`MCH_HOST_BRIDGE_PCIEXBAR_DEFAULT`); MCFG must agree.
pub const Q35_ECAM_BASE: u64 = 0xb000_0000;

/// Why the platform could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformError {
    /// The loader gave no RSDP.
    NoRsdp,
    /// ACPI tables are broken.
    Acpi(AcpiError),
    /// No MCFG table, or no allocation for segment 0.
    NoEcam,
    /// No DMAR table: the machine has no VT-d unit.
    NoDmar,
    /// ECAM or a BAR (or another register block) outside the uncached part
    /// of the identity map above low RAM, or on memory the memory map lists.
    Unmapped {
        /// Its base.
        base: u64,
        /// Its size.
        size: u64,
        /// Where device memory may start: the end of low RAM (0 when the boot
        /// information was not made yet).
        mmio_from: u64,
    },
    /// No function with these ids anywhere in the topology.
    DeviceMissing {
        /// Vendor id looked for.
        vendor: u16,
        /// Device id looked for.
        device: u16,
    },
    /// BAR 0 is not memory.
    NotMemoryBar(Bar),
    /// Configuration access failed.
    Pci(PciError),
}

impl From<PciError> for PlatformError {
    fn from(e: PciError) -> Self {
        Self::Pci(e)
    }
}

impl From<AcpiError> for PlatformError {
    fn from(e: AcpiError) -> Self {
        Self::Acpi(e)
    }
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoRsdp => write!(f, "the loader gave no RSDP"),
            Self::Acpi(e) => write!(f, "ACPI: {e}"),
            Self::NoEcam => write!(f, "no MCFG table, or none for segment 0"),
            Self::NoDmar => write!(f, "no DMAR table: the machine has no VT-d unit"),
            Self::Unmapped {
                base,
                size,
                mmio_from,
            } => write!(
                f,
                "{base:#x}+{size:#x} is not device memory: outside the uncached identity map \
                 ({mmio_from:#x}..4 GiB, the memory map's RAM and write-back pages excluded)"
            ),
            Self::DeviceMissing { vendor, device } => {
                write!(f, "no PCI function {vendor:04x}:{device:04x} on any bus")
            }
            Self::NotMemoryBar(bar) => write!(f, "BAR 0 is not a memory BAR ({bar:?})"),
            Self::Pci(e) => write!(f, "PCI: {e}"),
        }
    }
}

/// The legacy configuration mechanism.
pub fn cf8() -> Cf8 {
    // SAFETY: the test kernel is single-threaded and only this module hands out
    // configuration access; each scenario uses one at a time.
    unsafe { Cf8::new() }
}

/// The most MCFG allocations the kernels map.
pub const MAX_ECAM: usize = 8;
/// The most functions a kernel's topology holds.
pub const MAX_FUNCTIONS: usize = 64;
/// The most topology errors kept.
pub const MAX_TOPOLOGY_ERRORS: usize = 16;
/// The topology of this machine as the kernels hold it.
pub type MachineTopology = Topology<MAX_FUNCTIONS, MAX_TOPOLOGY_ERRORS>;
/// The most matches [`find_all`] returns.
pub const MAX_MATCHES: usize = 8;

/// The MCFG table of the machine, copied.
fn mcfg_table(boot: &BootInfo) -> Result<acpi::OwnedTable<1024>, PlatformError> {
    let rsdp = boot.rsdp().ok_or(PlatformError::NoRsdp)?;
    let root = acpi::root(boot, rsdp)?;
    match root.copy_owned::<1024>(*b"MCFG") {
        Ok(t) => Ok(t),
        Err(AcpiError::TableNotFound { .. }) => Err(PlatformError::NoEcam),
        Err(e) => Err(e.into()),
    }
}

/// Every ECAM allocation of the ACPI MCFG table (checked: no inverted, wrapping
/// or overlapping allocation), in table order.
///
/// # Errors
///
/// [`PlatformError`] when ACPI or MCFG is missing or broken.
pub fn ecam_regions(boot: &BootInfo) -> Result<[Option<EcamRegion>; MAX_ECAM], PlatformError> {
    let table = mcfg_table(boot)?;
    let mcfg = Mcfg::parse(table.bytes())?;
    let mut out = [None; MAX_ECAM];
    for (slot, r) in out.iter_mut().zip(mcfg.allocations()) {
        *slot = Some(r);
    }
    Ok(out)
}

/// Segment 0's first ECAM allocation from the ACPI MCFG table.
///
/// # Errors
///
/// [`PlatformError`] when ACPI or MCFG is missing or broken.
pub fn ecam_region(boot: &BootInfo) -> Result<EcamRegion, PlatformError> {
    ecam_regions(boot)?
        .into_iter()
        .flatten()
        .find(|r| r.segment == 0)
        .ok_or(PlatformError::NoEcam)
}

/// Checks that `base..base + size` is in the uncached identity-mapped device
/// memory: above the end of low RAM, below 4 GiB, in no page the boot code
/// made write-back and on no range the memory map calls memory
/// ([`BootInfo::is_device_memory`]). A BAR or ECAM window a firmware (or a
/// bad device) placed on RAM is refused.
///
/// # Errors
///
/// [`PlatformError::Unmapped`] otherwise (and before the boot code made its
/// [`BootInfo`], which it does before any kernel code runs).
pub fn check_mmio(base: u64, size: u64) -> Result<NonNull<u8>, PlatformError> {
    match crate::boot_info() {
        Some(b) if b.is_device_memory(base, size) => {
            NonNull::new(base as *mut u8).ok_or_else(|| unmapped(base, size))
        }
        _ => Err(unmapped(base, size)),
    }
}

/// [`PlatformError::Unmapped`] for `base..base + size`.
fn unmapped(base: u64, size: u64) -> PlatformError {
    PlatformError::Unmapped {
        base,
        size,
        mmio_from: crate::boot_info().map_or(0, |b| b.layout().low_end()),
    }
}

/// Maps one MCFG allocation.
fn map_ecam(r: &EcamRegion) -> Result<Ecam, PlatformError> {
    let base = check_mmio(r.start_bus_address(), r.len())?;
    // SAFETY:
    // - the region lies in the uncached part of the identity map (checked);
    // - the kernels are single-threaded and use one configuration access at a
    //   time.
    Ok(unsafe { Ecam::new(base, r.segment, r.start_bus, r.end_bus) })
}

/// ECAM access for segment 0, from MCFG.
///
/// # Errors
///
/// As [`ecam_region`], or [`PlatformError::Unmapped`].
pub fn ecam(boot: &BootInfo) -> Result<Ecam, PlatformError> {
    map_ecam(&ecam_region(boot)?)
}

/// Configuration access chosen from the machine: ECAM for every MCFG
/// allocation the identity map reaches, or CF8/CFC when there is no usable MCFG.
#[derive(Debug)]
pub enum PlatformConfig {
    /// Memory-mapped configuration space, one window per MCFG allocation.
    Ecam {
        /// The windows, in MCFG order.
        windows: [Option<Ecam>; MAX_ECAM],
        /// MCFG allocations that could not be mapped (outside the identity map).
        unmapped: usize,
    },
    /// The legacy ports (segment 0, 256 bytes per function).
    Cf8 {
        /// The ports.
        cf8: Cf8,
        /// Why ECAM is not used.
        reason: PlatformError,
    },
}

/// Configuration access for this machine: every ECAM allocation of the MCFG,
/// or CF8/CFC (with the reason) when there is no MCFG, it is broken, or none of
/// its allocations can be mapped.
pub fn config(boot: &BootInfo) -> PlatformConfig {
    let regions = match ecam_regions(boot) {
        Ok(r) => r,
        Err(reason) => return PlatformConfig::Cf8 { cf8: cf8(), reason },
    };
    let mut windows = [const { None }; MAX_ECAM];
    let mut unmapped = 0;
    let mut first_error = PlatformError::NoEcam;
    for (slot, r) in windows.iter_mut().zip(regions.iter().flatten()) {
        match map_ecam(r) {
            Ok(e) => *slot = Some(e),
            Err(e) => {
                unmapped += 1;
                first_error = e;
            }
        }
    }
    if windows.iter().all(Option::is_none) {
        return PlatformConfig::Cf8 {
            cf8: cf8(),
            reason: first_error,
        };
    }
    PlatformConfig::Ecam { windows, unmapped }
}

impl PlatformConfig {
    /// The root buses to walk: the start bus of every ECAM window (with its bus
    /// range), or bus 0 for CF8.
    pub fn roots(&self) -> [Option<RootBus>; MAX_ECAM] {
        let mut out = [None; MAX_ECAM];
        match self {
            Self::Ecam { windows, .. } => {
                for (slot, w) in out.iter_mut().zip(windows.iter().flatten()) {
                    *slot = Some(RootBus {
                        segment: w.segment(),
                        bus: w.start_bus(),
                        first_bus: w.start_bus(),
                        last_bus: w.end_bus(),
                    });
                }
            }
            Self::Cf8 { .. } => out[0] = Some(RootBus::LEGACY),
        }
        out
    }

    /// Short name of the mechanism ("ecam" or "cf8").
    pub fn mechanism(&self) -> &'static str {
        match self {
            Self::Ecam { .. } => "ecam",
            Self::Cf8 { .. } => "cf8",
        }
    }

    /// The whole PCI hierarchy reached through this access.
    pub fn topology(&mut self) -> MachineTopology {
        let roots = self.roots();
        let mut list = [RootBus::LEGACY; MAX_ECAM];
        let mut n = 0;
        for (slot, r) in list.iter_mut().zip(roots.iter().flatten()) {
            *slot = *r;
            n += 1;
        }
        MachineTopology::walk(self, list.get(..n).unwrap_or(&[]))
    }

    fn window(&mut self, a: PciAddress) -> Option<&mut Ecam> {
        match self {
            Self::Ecam { windows, .. } => windows
                .iter_mut()
                .flatten()
                .find(|w| w.decodes(a.segment(), a.bus())),
            Self::Cf8 { .. } => None,
        }
    }
}

macro_rules! platform_access {
    ($read:ident, $write:ident, $t:ty) => {
        fn $read(&mut self, a: PciAddress, o: u16) -> Untrusted<$t> {
            if let Self::Cf8 { cf8, .. } = self {
                return cf8.$read(a, o);
            }
            match self.window(a) {
                Some(w) => w.$read(a, o),
                None => Untrusted::new(<$t>::MAX),
            }
        }
        fn $write(&mut self, a: PciAddress, o: u16, v: $t) {
            if let Self::Cf8 { cf8, .. } = self {
                return cf8.$write(a, o, v);
            }
            if let Some(w) = self.window(a) {
                w.$write(a, o, v)
            }
        }
    };
}

impl ConfigAccess for PlatformConfig {
    platform_access!(read8, write8, u8);
    platform_access!(read16, write16, u16);
    platform_access!(read32, write32, u32);
    fn space_size(&self) -> u16 {
        match self {
            Self::Ecam { .. } => 4096,
            Self::Cf8 { cf8, .. } => cf8.space_size(),
        }
    }
}

/// The whole PCI hierarchy of segment 0 reached through `cfg` (all 256 buses
/// may be reached; a bus `cfg` does not decode reads all-ones). For every
/// segment of the machine use [`PlatformConfig::topology`].
pub fn topology<C: ConfigAccess>(cfg: &mut C) -> MachineTopology {
    MachineTopology::walk(cfg, &[RootBus::LEGACY])
}

/// Functions matching a search, in topology walk order.
#[derive(Debug, Clone, Copy)]
pub struct Matches {
    nodes: [Option<Node>; MAX_MATCHES],
    len: usize,
    more: usize,
}

impl Matches {
    fn collect<'a>(found: impl Iterator<Item = &'a Node>) -> Self {
        let mut m = Self {
            nodes: [None; MAX_MATCHES],
            len: 0,
            more: 0,
        };
        for n in found {
            match m.nodes.get_mut(m.len) {
                Some(slot) => {
                    *slot = Some(*n);
                    m.len += 1;
                }
                None => m.more += 1,
            }
        }
        m
    }

    /// The matches kept (at most [`MAX_MATCHES`]).
    pub fn iter(&self) -> impl Iterator<Item = &Node> + '_ {
        self.nodes.iter().take(self.len).flatten()
    }

    /// How many matches were kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing matched.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Matches beyond [`MAX_MATCHES`], counted and not kept.
    pub fn more(&self) -> usize {
        self.more
    }
}

/// Every function with these ids anywhere in the hierarchy `cfg` reaches
/// (segment 0), in walk order, so the caller can choose (by serial number,
/// namespace, a given address...).
pub fn find_all<C: ConfigAccess>(cfg: &mut C, (vendor, device): (u16, u16)) -> Matches {
    Matches::collect(topology(cfg).by_ids(vendor, device))
}

/// Every function of this class and subclass in the hierarchy `cfg` reaches.
pub fn find_class<C: ConfigAccess>(cfg: &mut C, class: u8, subclass: u8) -> Matches {
    Matches::collect(topology(cfg).by_class(class, subclass))
}

/// The first function, in walk order, whose ids are any of `ids` (a driver's
/// list of supported parts, e.g. `paranoid_e1000::SUPPORTED_IDS`).
///
/// # Errors
///
/// [`PlatformError::DeviceMissing`] naming the first ids of the list.
pub fn find_any<C: ConfigAccess>(cfg: &mut C, ids: &[(u16, u16)]) -> Result<Node, PlatformError> {
    let (vendor, device) = ids.first().copied().unwrap_or((0xffff, 0xffff));
    topology(cfg)
        .nodes()
        .find(|n| ids.contains(&(n.info.vendor, n.info.device)))
        .copied()
        .ok_or(PlatformError::DeviceMissing { vendor, device })
}

/// PCI class of an NVMe controller: mass storage, non-volatile memory, NVMe.
pub const NVME_CLASS: [u8; 3] = [0x01, 0x08, 0x02];

/// Every NVMe controller in the hierarchy, in walk order: found by class and
/// programming interface, not by one vendor/device id.
pub fn find_nvme<C: ConfigAccess>(cfg: &mut C) -> Matches {
    Matches::collect(topology(cfg).nodes().filter(|n| n.info.class == NVME_CLASS))
}

/// The first function with these ids in walk order, anywhere in the hierarchy.
///
/// # Errors
///
/// [`PlatformError::DeviceMissing`].
pub fn find<C: ConfigAccess>(cfg: &mut C, ids: (u16, u16)) -> Result<Node, PlatformError> {
    let (vendor, device) = ids;
    find_all(cfg, ids)
        .iter()
        .next()
        .copied()
        .ok_or(PlatformError::DeviceMissing { vendor, device })
}

/// Sizes BAR 0 of `a`, turns on memory decoding and maps it.
///
/// # Errors
///
/// [`PlatformError`] for a missing device, a non-memory BAR or one outside the
/// uncached identity map.
pub fn map_bar0<C: ConfigAccess>(cfg: &mut C, a: PciAddress) -> Result<(Mmio, Bar), PlatformError> {
    let b = bar::size(cfg, a, 0)?;
    let Bar::Memory { base, size, .. } = b else {
        return Err(PlatformError::NotMemoryBar(b));
    };
    let ptr = check_mmio(base, size)?;
    command::update(cfg, a, Command::MEMORY_SPACE, Command::empty())?;
    let len = usize::try_from(size).map_err(|_| unmapped(base, size))?;
    // SAFETY:
    // - the BAR lies in the uncached identity-mapped MMIO range (checked) and
    //   decoding is on;
    // - scenarios map a BAR once and own it for their duration.
    Ok((unsafe { Mmio::new(ptr, len) }, b))
}

/// The ACPI DMAR table (VT-d), copied, for a parser such as `paranoid-vtd`'s
/// (`Dmar::parse(table.bytes())`).
///
/// # Errors
///
/// [`PlatformError::NoRsdp`], ACPI errors, or [`PlatformError::NoDmar`] when the
/// machine has no DMAR (no `-device intel-iommu`).
pub fn dmar(boot: &BootInfo) -> Result<acpi::OwnedTable<DMAR_MAX>, PlatformError> {
    let rsdp = boot.rsdp().ok_or(PlatformError::NoRsdp)?;
    let root = acpi::root(boot, rsdp)?;
    match root.copy_owned::<DMAR_MAX>(*b"DMAR") {
        Ok(t) => Ok(t),
        Err(AcpiError::TableNotFound { .. }) => Err(PlatformError::NoDmar),
        Err(e) => Err(e.into()),
    }
}

/// The longest DMAR copied.
pub const DMAR_MAX: usize = 4096;

/// Maps a register block of `size` bytes at `base` (a VT-d unit, say).
///
/// # Errors
///
/// [`PlatformError::Unmapped`] outside the uncached identity-mapped MMIO range.
///
/// # Safety
///
/// `base..base + size` must be a device's register block that nothing else in
/// the kernel accesses while the returned value lives.
pub unsafe fn map_registers(base: u64, size: u64) -> Result<Mmio, PlatformError> {
    let ptr = check_mmio(base, size)?;
    let len = usize::try_from(size).map_err(|_| unmapped(base, size))?;
    // SAFETY: uncached identity-mapped MMIO (checked); exclusive use is the
    // caller's contract.
    Ok(unsafe { Mmio::new(ptr, len) })
}
