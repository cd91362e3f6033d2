//! Clocks and deadlines.
//!
//! Every wait in paranoid ends at a [`Deadline`] read from a [`Clock`]. On bare
//! metal the clock is the calibrated TSC ([`crate::arch::x86_64::TscClock`]); in
//! host tests it is [`crate::sim::SimClock`], which advances as code polls it, so a
//! test of a multi-second timeout takes microseconds.

use core::time::Duration;

/// A monotonic time source.
pub trait Clock {
    /// Nanoseconds since an arbitrary, fixed origin; never decreases.
    fn now_ns(&self) -> u64;

    /// Called once per iteration of a polling loop.
    ///
    /// Real clocks hint the CPU that it spins; the simulated clock advances time
    /// and lets device models make progress.
    #[inline]
    fn relax(&self) {
        core::hint::spin_loop();
    }

    /// Waits for `duration`, bounded by construction.
    fn delay(&self, duration: Duration) {
        let deadline = Deadline::after(self, duration);
        while !deadline.expired(self) {
            self.relax();
        }
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
    #[inline]
    fn relax(&self) {
        (**self).relax()
    }
    fn delay(&self, duration: Duration) {
        (**self).delay(duration)
    }
}

/// Converts a duration to nanoseconds, saturating at `u64::MAX` (584 years).
#[inline]
pub fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A point in time after which a wait gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at_ns: u64,
}

impl Deadline {
    /// The deadline `duration` from now on `clock`.
    #[inline]
    pub fn after<C: Clock + ?Sized>(clock: &C, duration: Duration) -> Self {
        Self {
            at_ns: clock.now_ns().saturating_add(duration_ns(duration)),
        }
    }

    /// A deadline at an absolute clock reading.
    #[inline]
    pub const fn at_ns(at_ns: u64) -> Self {
        Self { at_ns }
    }

    /// The absolute clock reading of this deadline.
    #[inline]
    pub const fn as_ns(&self) -> u64 {
        self.at_ns
    }

    /// True once `clock` has reached the deadline.
    #[inline]
    pub fn expired<C: Clock + ?Sized>(&self, clock: &C) -> bool {
        clock.now_ns() >= self.at_ns
    }

    /// Time left before the deadline (zero once expired).
    #[inline]
    pub fn remaining<C: Clock + ?Sized>(&self, clock: &C) -> Duration {
        Duration::from_nanos(self.at_ns.saturating_sub(clock.now_ns()))
    }

    /// The earlier of two deadlines: a step's own deadline capped by a total budget.
    #[inline]
    pub fn min(self, other: Deadline) -> Deadline {
        if self.at_ns <= other.at_ns {
            self
        } else {
            other
        }
    }

    /// A wait of `timeout` from now, but never past `self`: a step's own
    /// timeout (CAP.TO, a reset time from the spec) capped by the deadline the
    /// step was handed, so the step cannot outlive the init budget.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use core::time::Duration;
    /// use paranoid::{sim::SimClock, time::Deadline};
    ///
    /// let clock = SimClock::new();
    /// let budget = Deadline::after(&clock, Duration::from_millis(100));
    /// assert_eq!(budget.within(&clock, Duration::from_secs(10)), budget);
    /// assert!(budget.within(&clock, Duration::from_millis(5)) < budget);
    /// # }
    /// ```
    #[inline]
    pub fn within<C: Clock + ?Sized>(self, clock: &C, timeout: Duration) -> Deadline {
        Deadline::after(clock, timeout).min(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    struct Manual(Cell<u64>);
    impl Clock for Manual {
        fn now_ns(&self) -> u64 {
            self.0.get()
        }
        fn relax(&self) {
            self.0.set(self.0.get() + 1_000);
        }
    }

    #[test]
    fn deadline_expires_and_saturates() {
        let c = Manual(Cell::new(u64::MAX - 10));
        let d = Deadline::after(&c, Duration::from_secs(1));
        assert_eq!(d.as_ns(), u64::MAX);
        let c = Manual(Cell::new(0));
        let d = Deadline::after(&c, Duration::from_micros(5));
        assert!(!d.expired(&c));
        c.delay(Duration::from_micros(5));
        assert!(d.expired(&c));
        assert_eq!(d.remaining(&c), Duration::ZERO);
        assert_eq!(d.min(Deadline::at_ns(1)), Deadline::at_ns(1));
    }

    #[test]
    fn within_caps_the_step_timeout_at_the_deadline() {
        let c = Manual(Cell::new(1_000));
        let budget = Deadline::at_ns(101_000);
        assert_eq!(budget.within(&c, Duration::from_secs(10)), budget);
        assert_eq!(
            budget.within(&c, Duration::from_nanos(5)),
            Deadline::at_ns(1_005)
        );
        // An expired budget stays expired, whatever the step asks for.
        assert_eq!(
            Deadline::at_ns(0).within(&c, Duration::from_secs(1)),
            Deadline::at_ns(0)
        );
    }
}
