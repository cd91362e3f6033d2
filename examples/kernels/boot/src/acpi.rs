//! ACPI for the kernels: the HAL's one table walker ([`paranoid::acpi`]) over
//! the boot identity map, and the FADT's PM timer.
//!
//! Table pointers are followed only below [`TABLE_LIMIT`] (RAM and firmware
//! tables; the uncached MMIO part of the identity map above it is never read
//! through a table pointer, so a corrupted XSDT cannot make us read device
//! registers). Every signature, length, checksum and pointer is checked by
//! `paranoid::acpi`.

use paranoid::acpi::le;
pub use paranoid::acpi::{
    find_rsdp, AcpiError, EcamRegion, Mcfg, OwnedTable, Root, Rsdp, SdtHeader, TableRef,
};
use paranoid::phys::Identity;

use crate::platform::UNCACHED_FROM;

/// Table pointers are followed below this address only (the cacheable RAM part
/// of the boot identity map).
pub const TABLE_LIMIT: u64 = UNCACHED_FROM;

/// The tables as the kernels read them: through the identity map, below
/// [`TABLE_LIMIT`].
pub fn memory() -> Identity {
    // SAFETY:
    // - the boot page tables identity-map the first 4 GiB (entry.S), so every
    //   address below TABLE_LIMIT (2 GiB) is mapped 1:1 for the kernel's life;
    // - below 2 GiB the map is cacheable RAM and firmware tables (MMIO lives in
    //   the uncached 2..4 GiB part), so reading it has no side effect.
    unsafe { Identity::new(TABLE_LIMIT) }
}

/// The root table (XSDT, or RSDT on ACPI 1.0 firmware) behind the RSDP at
/// `rsdp`, checked.
///
/// # Errors
///
/// The [`AcpiError`] of the RSDP or the root table.
pub fn root(rsdp: u64) -> Result<Root<Identity>, AcpiError> {
    let mem = memory();
    let rsdp = find_rsdp(&mem, Some(rsdp))?;
    Root::new(mem, &rsdp)
}

/// The longest FADT copied (ACPI 6.5's is 276 bytes).
const FADT_MAX: usize = 1024;

/// The ACPI power-management timer: a free-running 3.579545 MHz counter in an
/// I/O port (ACPI 6.5, 4.8.3.3), a clock independent of the TSC and the PIT.
///
/// Only [`PmTimer::from_root`] makes one, from the checksummed FADT: the port
/// is the one firmware names as the timer, which is what makes [`read`](Self::read) safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmTimer {
    port: u16,
    extended: bool,
}

/// PM timer frequency, Hz.
pub const PM_TIMER_HZ: u64 = 3_579_545;

impl PmTimer {
    /// Finds the timer in the FADT (`FACP`); `Ok(None)` when the FADT has none.
    ///
    /// # Errors
    ///
    /// The FADT's [`AcpiError`].
    pub fn from_root(root: &Root<Identity>) -> Result<Option<Self>, AcpiError> {
        let fadt = match root.copy_owned::<FADT_MAX>(*b"FACP") {
            Ok(t) => t,
            Err(AcpiError::TableNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let b = fadt.bytes();
        // PM_TMR_BLK at 76 (4 bytes), PM_TMR_LEN at 91, Flags at 112 (ACPI 6.5, Table 5.9).
        let port = le::u32_at(b, 76).unwrap_or(0);
        let len = b.get(91).copied().unwrap_or(0);
        let flags = le::u32_at(b, 112).unwrap_or(0);
        let Ok(port) = u16::try_from(port) else {
            return Ok(None);
        };
        if port == 0 || len != 4 {
            return Ok(None);
        }
        Ok(Some(PmTimer {
            port,
            extended: flags & (1 << 8) != 0,
        }))
    }

    /// The I/O port (FADT PM_TMR_BLK).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the counter is 32 bits wide (FADT flag TMR_VAL_EXT), else 24.
    pub fn extended(&self) -> bool {
        self.extended
    }

    /// Reads the counter.
    pub fn read(&self) -> u32 {
        // SAFETY:
        // - the port comes from the FADT (fields are private; `from_root` is the
        //   only constructor), whose checksum `paranoid::acpi` verified: it is
        //   the port firmware names as the PM timer;
        // - reading the PM timer has no side effect (ACPI 6.5, 4.8.3.3) and
        //   touches no memory.
        let v = unsafe { paranoid::port::inl(self.port) };
        if self.extended {
            v
        } else {
            v & 0x00ff_ffff
        }
    }

    /// Ticks from `earlier` to `later`, across one wrap of the counter.
    pub fn elapsed(&self, earlier: u32, later: u32) -> u64 {
        let mask: u32 = if self.extended { u32::MAX } else { 0x00ff_ffff };
        u64::from(later.wrapping_sub(earlier) & mask)
    }
}
