//! A clock from the time-stamp counter, calibrated against the legacy PIT.

use core::arch::x86_64::_rdtsc;

use crate::port::{inb, outb};
use crate::time::Clock;

/// Why TSC calibration failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TscError {
    /// The PIT never signalled the end of its count: no PIT, or it is broken.
    PitSilent,
    /// The measured frequency is outside 100 MHz..=20 GHz.
    Implausible {
        /// The measured frequency in kHz.
        khz: u64,
    },
}

/// The TSC as a [`Clock`].
#[derive(Debug, Clone, Copy)]
pub struct TscClock {
    origin: u64,
    /// Nanoseconds per tick, as a 32.32 fixed-point factor.
    ns_per_tick_q32: u64,
    khz: u64,
}

/// PIT input clock, Hz.
const PIT_HZ: u64 = 1_193_182;
/// Calibration interval: 10 ms of PIT ticks.
const CALIBRATION_PIT_TICKS: u16 = 11_932;
/// Upper bound on the calibration busy-wait, in TSC ticks (2 s at 20 GHz).
const CALIBRATION_MAX_TICKS: u64 = 40_000_000_000;

impl TscClock {
    /// A clock for a TSC of known frequency.
    pub fn from_khz(khz: u64) -> Result<Self, TscError> {
        if !(100_000..=20_000_000).contains(&khz) {
            return Err(TscError::Implausible { khz });
        }
        Ok(Self {
            origin: rdtsc(),
            ns_per_tick_q32: (1_000_000u64 << 32) / khz,
            khz,
        })
    }

    /// Measures the TSC frequency over 10 ms of PIT channel 2.
    ///
    /// # Safety
    ///
    /// The caller owns the PIT (ports 0x42, 0x43) and port 0x61, and nothing else
    /// uses PIT channel 2 meanwhile.
    ///
    /// # Errors
    ///
    /// [`TscError::PitSilent`] when the PIT never finishes its count (bounded by
    /// TSC ticks), [`TscError::Implausible`] for a nonsense measurement.
    pub unsafe fn calibrate_with_pit() -> Result<Self, TscError> {
        // SAFETY: the caller owns ports 0x42, 0x43 and 0x61 (see `# Safety`).
        let (start, end) = unsafe {
            // Gate channel 2 on, speaker off.
            let gate = inb(0x61);
            outb(0x61, (gate & !0x02) | 0x01);
            // Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count), binary.
            outb(0x43, 0b1011_0000);
            outb(0x42, (CALIBRATION_PIT_TICKS & 0xff) as u8);
            outb(0x42, (CALIBRATION_PIT_TICKS >> 8) as u8);
            let start = rdtsc();
            let mut end = start;
            // OUT2 (port 0x61 bit 5) rises at terminal count.
            while inb(0x61) & 0x20 == 0 {
                end = rdtsc();
                if end.wrapping_sub(start) > CALIBRATION_MAX_TICKS {
                    outb(0x61, gate);
                    return Err(TscError::PitSilent);
                }
            }
            outb(0x61, gate);
            (start, end)
        };
        let ticks = end.wrapping_sub(start);
        let khz = ticks.saturating_mul(PIT_HZ) / (u64::from(CALIBRATION_PIT_TICKS) * 1000);
        Self::from_khz(khz)
    }

    /// The calibrated frequency in kHz.
    pub fn khz(&self) -> u64 {
        self.khz
    }
}

#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` is available on every x86_64 CPU and has no side effects.
    unsafe { _rdtsc() }
}

impl Clock for TscClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        let ticks = rdtsc().wrapping_sub(self.origin);
        ((u128::from(ticks) * u128::from(self.ns_per_tick_q32)) >> 32) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_khz_rejects_nonsense_and_counts_forward() {
        assert_eq!(
            TscClock::from_khz(5).unwrap_err(),
            TscError::Implausible { khz: 5 }
        );
        let c = TscClock::from_khz(2_000_000).unwrap();
        let a = c.now_ns();
        let b = c.now_ns();
        assert!(b >= a);
    }
}
