//! The ACPI power-management timer: a free-running 3.579545 MHz counter in an
//! I/O port (ACPI 6.5, 4.8.3.3), a clock independent of the TSC and the PIT.
//!
//! Only [`PmTimer::from_root`] makes one, from the checksummed FADT: the port
//! is the one firmware names as the timer, which is what makes
//! [`PmTimer::read`] safe.

use super::{le, AcpiError, Root};
use crate::phys::PhysRead;
use crate::port::Port;

/// The longest FADT copied (ACPI 6.5's is 276 bytes).
const FADT_MAX: usize = 1024;

/// PM timer frequency, Hz.
pub const PM_TIMER_HZ: u64 = 3_579_545;

/// The PM timer the FADT names (see the [module](self) docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmTimer {
    port: u16,
    extended: bool,
}

impl PmTimer {
    /// Finds the timer in the FADT (`FACP`); `Ok(None)` when the FADT has
    /// none (no FADT, PM_TMR_BLK 0 or above the port space, PM_TMR_LEN not 4).
    ///
    /// # Errors
    ///
    /// The FADT's [`AcpiError`] (other than its absence).
    pub fn from_root<M: PhysRead>(root: &Root<M>) -> Result<Option<Self>, AcpiError> {
        let fadt = match root.copy_owned::<FADT_MAX>(*b"FACP") {
            Ok(t) => t,
            Err(AcpiError::TableNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Self::from_fadt(fadt.bytes()))
    }

    /// The timer of a checksummed FADT's bytes (header included).
    fn from_fadt(b: &[u8]) -> Option<Self> {
        // PM_TMR_BLK at 76 (4 bytes), PM_TMR_LEN at 91, Flags at 112 (ACPI 6.5, Table 5.9).
        let port = le::u32_at(b, 76).unwrap_or(0);
        let len = b.get(91).copied().unwrap_or(0);
        let flags = le::u32_at(b, 112).unwrap_or(0);
        let port = u16::try_from(port).ok()?;
        if port == 0 || len != 4 {
            return None;
        }
        Some(PmTimer {
            port,
            extended: flags & (1 << 8) != 0,
        })
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
        // - the port comes from the FADT (fields are private; `from_root` is
        //   the only constructor), whose checksum `Root::copy` verified: it is
        //   the port firmware names as the PM timer;
        // - reading the PM timer has no side effect (ACPI 6.5, 4.8.3.3) and
        //   touches no memory; nothing is ever written to it.
        let mut port = unsafe { Port::<u32>::new(self.port) };
        let v = port.read().into_raw_for_report();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::build::{build_table, image};
    use crate::acpi::find_rsdp;
    use crate::phys::SliceMemory;

    fn fadt(port: u32, len: u8, flags: u32) -> Vec<u8> {
        let mut body = vec![0u8; 276 - 36];
        body[76 - 36..80 - 36].copy_from_slice(&port.to_le_bytes());
        body[91 - 36] = len;
        body[112 - 36..116 - 36].copy_from_slice(&flags.to_le_bytes());
        build_table(*b"FACP", 6, &body)
    }

    fn timer(tables: &[&[u8]]) -> Result<Option<PmTimer>, AcpiError> {
        let m = image(tables);
        let mem = SliceMemory { base: 0, bytes: &m };
        let rsdp = find_rsdp(&mem, Some(0))?;
        PmTimer::from_root(&Root::new(mem, &rsdp)?)
    }

    #[test]
    fn finds_the_timer_the_fadt_names() {
        let t = timer(&[&fadt(0x608, 4, 1 << 8)]).unwrap().unwrap();
        assert_eq!((t.port(), t.extended()), (0x608, true));
        let t = timer(&[&fadt(0x608, 4, 0)]).unwrap().unwrap();
        assert!(!t.extended());
    }

    #[test]
    fn no_timer_without_a_usable_block() {
        assert_eq!(timer(&[]), Ok(None), "no FADT");
        assert_eq!(timer(&[&fadt(0, 4, 0)]), Ok(None), "PM_TMR_BLK 0");
        assert_eq!(timer(&[&fadt(0x608, 2, 0)]), Ok(None), "PM_TMR_LEN 2");
        assert_eq!(
            timer(&[&fadt(0x1_0000, 4, 0)]),
            Ok(None),
            "past the port space"
        );
    }

    #[test]
    fn a_bad_fadt_checksum_is_an_error() {
        let mut f = fadt(0x608, 4, 0);
        f[9] ^= 1;
        assert!(timer(&[&f]).is_err());
    }

    #[test]
    fn elapsed_masks_to_the_counter_width() {
        let t24 = PmTimer {
            port: 0x608,
            extended: false,
        };
        assert_eq!(t24.elapsed(0x00ff_fff0, 0x10), 0x20);
        let t32 = PmTimer {
            port: 0x608,
            extended: true,
        };
        assert_eq!(t32.elapsed(u32::MAX - 1, 2), 4);
    }
}
