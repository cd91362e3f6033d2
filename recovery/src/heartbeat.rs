//! Heartbeats during a long recovery.
//!
//! A cluster fences a node that stops answering its watchdog. While the dump is
//! written, the recovery kernel keeps answering: between I/Os it asks the
//! [`Schedule`] whether a beat is due and, if so, runs every configured
//! [`Heartbeat`] (a watchdog reload, a UDP frame). A beat is due once half a
//! period has passed, so as long as one I/O takes less than half a period, no
//! gap between beats exceeds the period.

use core::time::Duration;

use paranoid::time::{duration_ns, Clock};

/// One way of saying "still alive". Must be bounded: a register write, one frame.
pub trait Heartbeat {
    /// Name in the report.
    fn name(&self) -> &'static str;
    /// Sends one beat.
    ///
    /// # Errors
    ///
    /// A short reason; the schedule counts failures and goes on.
    fn beat(&mut self) -> Result<(), &'static str>;
}

/// When beats are due, and what happened so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    period_ns: u64,
    last_ns: u64,
    /// Beats sent (per heartbeat call round).
    pub beats: u64,
    /// Beats that failed.
    pub failures: u64,
    /// The longest gap seen between two rounds (or since the start).
    pub max_gap_ns: u64,
    /// When (the clock's nanoseconds) the longest gap ended: which step it
    /// was in, for the report.
    pub max_gap_end_ns: u64,
}

impl Schedule {
    /// A schedule with `period`, counting from now.
    pub fn new<C: Clock + ?Sized>(clock: &C, period: Duration) -> Self {
        Self {
            period_ns: duration_ns(period).max(2),
            last_ns: clock.now_ns(),
            beats: 0,
            failures: 0,
            max_gap_ns: 0,
            max_gap_end_ns: 0,
        }
    }

    /// Runs every heartbeat if half a period has passed since the last round;
    /// returns whether it did.
    pub fn tick<C: Clock + ?Sized>(
        &mut self,
        clock: &C,
        heartbeats: &mut [&mut dyn Heartbeat],
    ) -> bool {
        let gap = clock.now_ns().saturating_sub(self.last_ns);
        if heartbeats.is_empty() || gap < self.period_ns / 2 {
            return false;
        }
        self.beat_now(clock, heartbeats);
        true
    }

    /// Runs every heartbeat now, due or not (at start-up: the previous kernel's
    /// last beat may be most of a period old).
    pub fn beat_now<C: Clock + ?Sized>(
        &mut self,
        clock: &C,
        heartbeats: &mut [&mut dyn Heartbeat],
    ) {
        let now = clock.now_ns();
        let gap = now.saturating_sub(self.last_ns);
        for h in heartbeats.iter_mut() {
            match h.beat() {
                Ok(()) => self.beats += 1,
                Err(_) => self.failures += 1,
            }
        }
        self.note_gap(gap, now);
        self.last_ns = now;
    }

    /// Records the gap up to now without beating (call at the end).
    pub fn finish<C: Clock + ?Sized>(&mut self, clock: &C) {
        let now = clock.now_ns();
        self.note_gap(now.saturating_sub(self.last_ns), now);
    }

    fn note_gap(&mut self, gap: u64, end_ns: u64) {
        if gap > self.max_gap_ns {
            self.max_gap_ns = gap;
            self.max_gap_end_ns = end_ns;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paranoid::sim::SimClock;

    struct Count(u32);

    impl Heartbeat for Count {
        fn name(&self) -> &'static str {
            "count"
        }
        fn beat(&mut self) -> Result<(), &'static str> {
            self.0 += 1;
            Ok(())
        }
    }

    #[test]
    fn beats_at_half_a_period_and_remembers_where_the_longest_gap_ended() {
        let clock = SimClock::new();
        let mut schedule = Schedule::new(&clock, Duration::from_millis(100));
        let mut beat = Count(0);
        clock.advance(Duration::from_millis(40));
        assert!(
            !schedule.tick(&clock, &mut [&mut beat]),
            "not yet half a period"
        );
        clock.advance(Duration::from_millis(10));
        assert!(schedule.tick(&clock, &mut [&mut beat]));
        // A long step without a tick: the gap and where it ended are kept.
        clock.advance(Duration::from_millis(300));
        assert!(schedule.tick(&clock, &mut [&mut beat]));
        let long_end = clock.now_ns();
        clock.advance(Duration::from_millis(60));
        assert!(schedule.tick(&clock, &mut [&mut beat]));
        clock.advance(Duration::from_millis(20));
        schedule.finish(&clock);
        assert_eq!((beat.0, schedule.beats), (3, 3));
        assert_eq!(schedule.max_gap_ns, 300_000_000);
        assert_eq!(schedule.max_gap_end_ns, long_end);
    }
}
