//! ACPI for the kernels: the HAL's one table walker ([`paranoid::acpi`]) over
//! the boot identity map, and the FADT's PM timer (the HAL's [`PmTimer`]).
//!
//! Table pointers are followed only through [`BootInfo::tables`]: below the
//! end of low RAM ([`crate::paging::MemoryLayout::low_end`]; 2 GiB, or the
//! top of the RAM the memory map lists from there, where q35's firmware puts
//! its tables on a machine with 2.5 GiB), RAM and firmware data only. The
//! device memory above it is never read through a table pointer, so a
//! corrupted XSDT cannot make us read device registers. Every signature,
//! length, checksum and pointer is checked by `paranoid::acpi`.

pub use paranoid::acpi::{
    find_rsdp, AcpiError, EcamRegion, Mcfg, OwnedTable, PmTimer, Root, Rsdp, SdtHeader, TableRef,
    PM_TIMER_HZ,
};
use paranoid::phys::IdentityMap;

use crate::BootInfo;

/// The tables as the kernels read them: through the identity map, below the
/// end of low RAM ([`BootInfo::tables`]).
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
