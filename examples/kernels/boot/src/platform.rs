//! The q35 machine as paranoid kernels see it: configuration access, the devices
//! the harness attaches, their BARs.

use core::fmt;
use core::ptr::NonNull;

use crate::acpi::{self, AcpiError, EcamRegion};
use crate::start_info::ADDRESSABLE_LIMIT;
use crate::BootInfo;
use paranoid::mmio::Mmio;
use paranoid::pci::bar::Bar;
use paranoid::pci::command::{self, Command};
use paranoid::pci::discover::{self, FunctionInfo};
use paranoid::pci::{bar, Cf8, ConfigAccess, Ecam, PciAddress, PciError};

/// QEMU's e1000 (82540EM).
pub const E1000: (u16, u16) = (0x8086, 0x100e);
/// QEMU's NVMe controller.
pub const NVME: (u16, u16) = (0x1b36, 0x0010);
/// Where q35 puts ECAM (`MCH_HOST_BRIDGE_PCIEXBAR_DEFAULT`); MCFG must agree.
pub const Q35_ECAM_BASE: u64 = 0xb000_0000;
/// The boot page tables map 2..4 GiB uncached: MMIO must live there.
pub const UNCACHED_FROM: u64 = 0x8000_0000;

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
    /// ECAM or a BAR outside the uncached part of the identity map.
    Unmapped {
        /// Its base.
        base: u64,
        /// Its size.
        size: u64,
    },
    /// The device is not on bus 0.
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
        fmt::Debug::fmt(self, f)
    }
}

/// The legacy configuration mechanism.
pub fn cf8() -> Cf8 {
    // SAFETY: the test kernel is single-threaded and only this module hands out
    // configuration access; each scenario uses one at a time.
    unsafe { Cf8::new() }
}

/// Segment 0's ECAM allocation from the ACPI MCFG table.
///
/// # Errors
///
/// [`PlatformError`] when ACPI or MCFG is missing or broken.
pub fn ecam_region(boot: &BootInfo) -> Result<EcamRegion, PlatformError> {
    let rsdp = boot.rsdp().ok_or(PlatformError::NoRsdp)?;
    let root = acpi::Root::from_rsdp(rsdp)?;
    let mcfg = root.find(*b"MCFG")?.ok_or(PlatformError::NoEcam)?;
    acpi::mcfg_regions(&mcfg)
        .find(|r| r.segment == 0)
        .ok_or(PlatformError::NoEcam)
}

/// Checks that `base..base + size` is in the uncached identity-mapped MMIO range.
///
/// # Errors
///
/// [`PlatformError::Unmapped`] otherwise.
pub fn check_mmio(base: u64, size: u64) -> Result<NonNull<u8>, PlatformError> {
    let bad = PlatformError::Unmapped { base, size };
    let end = base.checked_add(size).ok_or(bad)?;
    if base < UNCACHED_FROM || end > ADDRESSABLE_LIMIT {
        return Err(bad);
    }
    NonNull::new(base as *mut u8).ok_or(bad)
}

/// ECAM access for segment 0, from MCFG.
///
/// # Errors
///
/// As [`ecam_region`], or [`PlatformError::Unmapped`].
pub fn ecam(boot: &BootInfo) -> Result<Ecam, PlatformError> {
    let r = ecam_region(boot)?;
    let base = check_mmio(r.start_bus_address(), r.len())?;
    // SAFETY:
    // - the region lies in the uncached part of the identity map (checked);
    // - the test kernel is single-threaded and scenarios use one configuration
    //   access at a time.
    Ok(unsafe { Ecam::new(base, r.segment, r.start_bus, r.end_bus) })
}

/// Finds the first function on bus 0 with these ids.
///
/// # Errors
///
/// [`PlatformError::DeviceMissing`].
pub fn find<C: ConfigAccess>(
    cfg: &mut C,
    (vendor, device): (u16, u16),
) -> Result<FunctionInfo, PlatformError> {
    discover::scan(cfg, 0, 0, 0)
        .find(|f| f.vendor == vendor && f.device == device)
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
    let len = usize::try_from(size).map_err(|_| PlatformError::Unmapped { base, size })?;
    // SAFETY:
    // - the BAR lies in the uncached identity-mapped MMIO range (checked) and
    //   decoding is on;
    // - scenarios map a BAR once and own it for their duration.
    Ok((unsafe { Mmio::new(ptr, len) }, b))
}

/// The ACPI DMAR table (VT-d), as bytes, for a parser such as `paranoid-vtd`'s.
///
/// # Errors
///
/// [`PlatformError::NoRsdp`], ACPI errors, or [`PlatformError::NoDmar`] when the
/// machine has no DMAR (no `-device intel-iommu`).
pub fn dmar(boot: &BootInfo) -> Result<&'static [u8], PlatformError> {
    let rsdp = boot.rsdp().ok_or(PlatformError::NoRsdp)?;
    let root = acpi::Root::from_rsdp(rsdp)?;
    let table = root.find(*b"DMAR")?.ok_or(PlatformError::NoDmar)?;
    Ok(table.bytes())
}

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
    let len = usize::try_from(size).map_err(|_| PlatformError::Unmapped { base, size })?;
    // SAFETY: uncached identity-mapped MMIO (checked); exclusive use is the
    // caller's contract.
    Ok(unsafe { Mmio::new(ptr, len) })
}
