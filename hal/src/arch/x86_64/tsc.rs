//! A clock from the time-stamp counter, calibrated against the legacy PIT.

use super::cpu::rdtsc;
use crate::port::Port;
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
/// PIT ticks per measured interval (10 ms).
const INTERVAL_PIT_TICKS: u16 = 11_932;
/// Samples tried per interval end.
const SAMPLE_TRIES: usize = 5;
/// Counter reads allowed while waiting for an interval to pass (each is three
/// port accesses, well over a microsecond): bounds the wait if the PIT is dead.
const MAX_WAIT_READS: u32 = 2_000_000;
/// Intervals measured; the median is used.
const INTERVALS: usize = 3;

const PIT_CH2: u16 = 0x42;
const PIT_MODE: u16 = 0x43;
const PORT_B: u16 = 0x61;
/// Channel 2, lobyte/hibyte, mode 0, binary.
const CH2_MODE0: u8 = 0b1011_0000;
/// Counter latch command for channel 2.
const CH2_LATCH: u8 = 0b1000_0000;

/// The PIT ports calibration uses, claimed as [`Port::inert`] (the PIT and
/// port B cannot reach memory, so no contract is needed).
struct Pit {
    ch2: Port<u8>,
    mode: Port<u8>,
    port_b: Port<u8>,
}

impl Pit {
    /// The three ports, or [`TscError::PitSilent`] if one were not inert
    /// (never: all are in [`crate::port::INERT`]).
    fn claim() -> Result<Self, TscError> {
        Ok(Self {
            ch2: Port::inert(PIT_CH2).ok_or(TscError::PitSilent)?,
            mode: Port::inert(PIT_MODE).ok_or(TscError::PitSilent)?,
            port_b: Port::inert(PORT_B).ok_or(TscError::PitSilent)?,
        })
    }

    /// One bracketed reading: (TSC at the middle of the bracket, PIT counter,
    /// bracket width).
    fn sample(&mut self) -> (u64, u16, u64) {
        let mut best = (0, 0, u64::MAX);
        for _ in 0..SAMPLE_TRIES {
            let before = rdtsc();
            // Latch, then low and high byte. The counter is only timed, never
            // used to index or size anything.
            self.mode.write(CH2_LATCH);
            let lo = self.ch2.read().into_raw_for_report();
            let hi = self.ch2.read().into_raw_for_report();
            let count = u16::from_le_bytes([lo, hi]);
            let after = rdtsc();
            let width = after.wrapping_sub(before);
            if width < best.2 {
                best = (before + width / 2, count, width);
            }
        }
        best
    }

    /// Measures one interval; returns TSC kHz.
    fn interval(&mut self) -> Result<u64, TscError> {
        // Gate channel 2 on, speaker off; count down from 0xffff (55 ms).
        let gate = self.port_b.read().into_raw_for_report();
        self.port_b.write((gate & !0x02) | 0x01);
        self.mode.write(CH2_MODE0);
        self.ch2.write(0xff);
        self.ch2.write(0xff);
        let (t0, c0, _) = self.sample();
        let mut end = None;
        for _ in 0..MAX_WAIT_READS {
            let (t1, c1, _) = self.sample();
            // Mode 0 counts down; stop once the interval has passed (well before
            // the counter wraps at 0).
            if c0.saturating_sub(c1) >= INTERVAL_PIT_TICKS {
                end = Some((t1, c0 - c1));
                break;
            }
        }
        self.port_b.write(gate);
        let (t1, pit_ticks) = end.ok_or(TscError::PitSilent)?;
        let tsc_ticks = t1.wrapping_sub(t0);
        Ok(u64::try_from(
            u128::from(tsc_ticks) * u128::from(PIT_HZ) / (u128::from(pit_ticks) * 1000),
        )
        .unwrap_or(u64::MAX))
    }
}

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

    /// Measures the TSC frequency against PIT channel 2: the median of three
    /// 10 ms intervals, each end a *bracketed* sample (TSC, latch and read the
    /// PIT counter, TSC again; the narrowest of a few tries), so a virtual CPU
    /// preempted mid-measurement does not skew it (timing one PIT countdown from
    /// when it is programmed was 28% off with two VMs on two busy cores). The
    /// approach of Linux's `pit_calibrate_tsc` / `tsc_read_refs`
    /// (arch/x86/kernel/tsc.c).
    ///
    /// Nothing else may use PIT channel 2 (ports 0x42, 0x43) or port 0x61
    /// meanwhile, or the measurement is wrong (and likely refused as
    /// implausible); memory safety does not depend on it, since the PIT cannot
    /// reach memory.
    ///
    /// # Errors
    ///
    /// [`TscError::PitSilent`] when the PIT counter does not move (bounded by a
    /// read count), [`TscError::Implausible`] for a nonsense measurement.
    pub fn calibrate_with_pit() -> Result<Self, TscError> {
        let mut pit = Pit::claim()?;
        let mut khz = [0u64; INTERVALS];
        for slot in &mut khz {
            *slot = pit.interval()?;
        }
        khz.sort_unstable();
        Self::from_khz(khz[INTERVALS / 2])
    }

    /// The calibrated frequency in kHz.
    pub fn khz(&self) -> u64 {
        self.khz
    }

    /// Whole milliseconds from one raw counter reading ([`rdtsc`]) to a later
    /// one, such as a reading another kernel took on this machine before
    /// handing over; 0 when `to` is not after `from`.
    pub fn ms_between(&self, from: u64, to: u64) -> u64 {
        to.saturating_sub(from) / self.khz.max(1)
    }
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

    #[test]
    fn ms_between_counts_whole_milliseconds_forward_only() {
        let c = TscClock::from_khz(2_000_000).unwrap();
        assert_eq!(c.ms_between(1_000, 1_000 + 5 * 2_000_000), 5);
        assert_eq!(c.ms_between(0, 2_000_000 - 1), 0);
        assert_eq!(
            c.ms_between(10, 5),
            0,
            "a reading before `from` is not negative time"
        );
    }
}
