//! TSC calibration against the PIT, robust to a preempted virtual CPU.
//!
//! Timing a fixed PIT countdown from the moment it is programmed (as
//! `TscClock::calibrate_with_pit` does) is exact on hardware, but under QEMU
//! on a loaded host the vCPU can be descheduled between programming the PIT
//! and reading the TSC, or between the PIT expiring and the loop noticing: both
//! clocks run in host time meanwhile, and the measurement is off by the gap
//! (28% seen here with two VMs on two busy cores).
//!
//! So each end of the interval is a *bracketed* sample: read the TSC, latch and
//! read the PIT counter, read the TSC again; keep the sample with the narrowest
//! bracket of a few tries. A preemption inside a bracket widens it and the
//! sample is dropped. Three intervals are measured and the median taken. This is
//! the approach of Linux's `pit_calibrate_tsc` / `tsc_read_refs` (arch/x86/kernel/tsc.c).

use paranoid::port::{inb, outb};

use crate::{TscClock, TscError};

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

fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` exists on every x86_64 CPU and has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// One bracketed reading: (TSC at the middle of the bracket, PIT counter, bracket width).
///
/// # Safety
///
/// The caller owns PIT channel 2 and its mode port.
unsafe fn sample() -> (u64, u16, u64) {
    let mut best = (0, 0, u64::MAX);
    for _ in 0..SAMPLE_TRIES {
        let before = rdtsc();
        // SAFETY: the caller owns PIT channel 2 (latch, then low and high byte).
        let count = unsafe {
            outb(PIT_MODE, CH2_LATCH);
            let lo = inb(PIT_CH2);
            let hi = inb(PIT_CH2);
            u16::from_le_bytes([lo, hi])
        };
        let after = rdtsc();
        let width = after.wrapping_sub(before);
        if width < best.2 {
            best = (before + width / 2, count, width);
        }
    }
    best
}

/// Measures one interval; returns TSC kHz.
///
/// # Safety
///
/// The caller owns PIT channel 2, the mode port and port 0x61.
unsafe fn interval() -> Result<u64, TscError> {
    // SAFETY: forwarded ownership of the PIT ports and port 0x61.
    unsafe {
        // Gate channel 2 on, speaker off; count down from 0xffff (55 ms).
        let gate = inb(PORT_B);
        outb(PORT_B, (gate & !0x02) | 0x01);
        outb(PIT_MODE, CH2_MODE0);
        outb(PIT_CH2, 0xff);
        outb(PIT_CH2, 0xff);
        let (t0, c0, _) = sample();
        let mut end = None;
        for _ in 0..MAX_WAIT_READS {
            let (t1, c1, _) = sample();
            // Mode 0 counts down; stop once the interval has passed (well before
            // the counter wraps at 0).
            if c0.saturating_sub(c1) >= INTERVAL_PIT_TICKS {
                end = Some((t1, c0 - c1));
                break;
            }
        }
        outb(PORT_B, gate);
        let (t1, pit_ticks) = end.ok_or(TscError::PitSilent)?;
        let tsc_ticks = t1.wrapping_sub(t0);
        Ok(u64::try_from(
            u128::from(tsc_ticks) * u128::from(PIT_HZ) / (u128::from(pit_ticks) * 1000),
        )
        .unwrap_or(u64::MAX))
    }
}

/// Calibrates the TSC against the PIT: the median of three bracketed 10 ms
/// intervals.
///
/// # Safety
///
/// The caller owns the PIT (ports 0x42, 0x43) and port 0x61, and nothing else
/// uses PIT channel 2 meanwhile.
///
/// # Errors
///
/// [`TscError::PitSilent`] when the PIT counter does not move,
/// [`TscError::Implausible`] for a frequency outside 100 MHz..=20 GHz.
pub unsafe fn calibrate() -> Result<TscClock, TscError> {
    let mut khz = [0u64; INTERVALS];
    for slot in &mut khz {
        // SAFETY: forwarded contract.
        *slot = unsafe { interval()? };
    }
    khz.sort_unstable();
    TscClock::from_khz(khz[INTERVALS / 2])
}
