//! Heartbeats the recovery kernel sends while it works: petting the node's
//! hardware watchdog (armed by the crashed kernel).

use core::time::Duration;

use paranoid::mmio::Mmio;
use paranoid::pci::Function;
use paranoid::sync::TryLock;
use paranoid::time::Clock;
use paranoid_boot::{platform, TscClock};
use paranoid_i6300esb::Watchdog;
use paranoid_recovery::heartbeat::{Heartbeat, Schedule};

use crate::{fail, Failed};

/// The i6300esb watchdog as a heartbeat.
pub struct WatchdogBeat {
    wdt: Watchdog<Mmio>,
}

impl WatchdogBeat {
    /// Finds the watchdog; it must have been enabled by the crashed kernel.
    pub fn find() -> Result<Self, Failed> {
        let mut cf8 = platform::cf8();
        let esb = platform::find(&mut cf8, paranoid_i6300esb::IDS)
            .map_err(|e| fail("heartbeat=watchdog: no i6300esb", e))?;
        let enabled = paranoid_i6300esb::is_enabled(&mut Function::new(&mut cf8, esb.address()))
            .map_err(|e| fail("i6300esb", e))?;
        if !enabled {
            return Err(fail("heartbeat=watchdog", "the i6300esb is not armed"));
        }
        let (regs, _) =
            platform::map_bar0(&mut cf8, esb.address()).map_err(|e| fail("i6300esb bar", e))?;
        Ok(Self {
            wdt: Watchdog::new(regs),
        })
    }
}

impl Heartbeat for WatchdogBeat {
    fn name(&self) -> &'static str {
        "i6300esb watchdog"
    }

    fn beat(&mut self) -> Result<(), &'static str> {
        self.wdt.pet();
        Ok(())
    }
}

/// The heartbeats and their schedule, where every wait can reach them: the
/// steps tick them in between, and every poll of every bounded wait does too
/// (through [`RecoveryClock`]), so a device that takes its time inside a
/// deadline (a flush the host turns into an `fsync`, a slow reset, a drain
/// window) does not starve the watchdog.
static BEATS: TryLock<Option<Beats>> = TryLock::new(None);

struct Beats {
    watchdog: Option<WatchdogBeat>,
    schedule: Schedule,
}

/// Starts the heartbeats (`watchdog`, when the node has one armed) with
/// `period`, and beats once now: the crashed kernel's last one may be most of
/// a period old. Returns the time-stamp counter of that first beat.
pub fn start(watchdog: Option<WatchdogBeat>, clock: &TscClock, period: Duration) -> u64 {
    let beats = Beats {
        watchdog,
        schedule: Schedule::new(clock, period),
    };
    BEATS.with(|b| *b = Some(beats));
    with(None, |hb, s| s.beat_now(clock, hb));
    paranoid::arch::x86_64::rdtsc()
}

/// Whether a watchdog is being fed.
pub fn keeps_watchdog() -> bool {
    BEATS
        .with(|b| b.as_ref().is_some_and(|b| b.watchdog.is_some()))
        .unwrap_or(false)
}

/// Runs `f` with the configured heartbeats (the watchdog, and `extra`: the
/// NIC's) and the schedule; `None` when they are in use further up the stack
/// (then the caller up there beats) or not started.
pub fn with<R>(
    extra: Option<&mut dyn Heartbeat>,
    f: impl FnOnce(&mut [&mut dyn Heartbeat], &mut Schedule) -> R,
) -> Option<R> {
    BEATS
        .with(|b| {
            let b = b.as_mut()?;
            Some(match (b.watchdog.as_mut(), extra) {
                (Some(w), Some(e)) => f(&mut [w, e], &mut b.schedule),
                (Some(w), None) => f(&mut [w], &mut b.schedule),
                (None, Some(e)) => f(&mut [e], &mut b.schedule),
                (None, None) => f(&mut [], &mut b.schedule),
            })
        })
        .flatten()
}

/// Beats if one is due (between steps, and from every poll).
pub fn tick<C: Clock + ?Sized>(clock: &C) {
    let _ = with(None, |hb, s| s.tick(clock, hb));
}

/// The schedule as it stands, after recording the gap up to now (call at
/// the end); `None` before [`start`].
pub fn finish<C: Clock + ?Sized>(clock: &C) -> Option<Schedule> {
    with(None, |_, s| {
        s.finish(clock);
        *s
    })
}

/// The recovery kernel's clock: the TSC, and every poll of every bounded
/// wait (the drivers', the drain's) also beats when a beat is due. A tick is
/// one time-stamp read and a compare when none is due.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryClock(TscClock);

impl RecoveryClock {
    /// The clock over `tsc`.
    pub const fn new(tsc: TscClock) -> Self {
        Self(tsc)
    }

    /// The TSC clock underneath (raw counter arithmetic: `ms_between`).
    pub const fn tsc(&self) -> &TscClock {
        &self.0
    }
}

impl Clock for RecoveryClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.0.now_ns()
    }

    fn relax(&self) {
        self.0.relax();
        tick(&self.0);
    }
}
