//! ACPI for the kernels: the HAL's one table walker ([`paranoid::acpi`]) over
//! the boot identity map, and the FADT's PM timer (the HAL's [`PmTimer`]).
//!
//! Table pointers are followed only below [`TABLE_LIMIT`] (RAM and firmware
//! tables; the uncached MMIO part of the identity map above it is never read
//! through a table pointer, so a corrupted XSDT cannot make us read device
//! registers). Every signature, length, checksum and pointer is checked by
//! `paranoid::acpi`.

pub use paranoid::acpi::{
    find_rsdp, AcpiError, EcamRegion, Mcfg, OwnedTable, PmTimer, Root, Rsdp, SdtHeader, TableRef,
    PM_TIMER_HZ,
};
use paranoid::phys::IdentityMap;

use crate::BootInfo;

use crate::platform::UNCACHED_FROM;

/// Table pointers are followed below this address only (the cacheable RAM part
/// of the boot identity map).
pub const TABLE_LIMIT: u64 = UNCACHED_FROM;

/// The tables as the kernels read them: through the identity map, below
/// [`TABLE_LIMIT`] ([`BootInfo::tables`]).
pub fn memory(boot: &BootInfo) -> &IdentityMap {
    boot.tables()
}

/// The root table (XSDT, or RSDT on ACPI 1.0 firmware) behind the RSDP at
/// `rsdp`, checked.
///
/// # Errors
///
/// The [`AcpiError`] of the RSDP or the root table.
pub fn root(boot: &BootInfo, rsdp: u64) -> Result<Root<&IdentityMap>, AcpiError> {
    let mem = memory(boot);
    let rsdp = find_rsdp(mem, Some(rsdp))?;
    Root::new(mem, &rsdp)
}
