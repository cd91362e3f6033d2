//! Bounded polling: wait for a condition, or give up at a deadline with what was
//! last seen.
//!
//! There is no other way to wait in paranoid. `poll` always reads at least once,
//! and always reads once more after the deadline has passed before giving up, so a
//! condition that became true just as time ran out is not reported as a timeout.

use core::fmt;
use core::time::Duration;

use crate::time::{Clock, Deadline};

/// A wait that reached its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout<T> {
    /// The last value read before giving up.
    pub last: T,
    /// How long the wait lasted.
    pub waited: Duration,
    /// How many times the value was read.
    pub reads: u64,
}

impl<T: fmt::Debug> fmt::Display for Timeout<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} ({} reads), last seen {:?}",
            self.waited, self.reads, self.last
        )
    }
}

/// A bounded wait that failed: either the deadline passed or a read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollError<T, E> {
    /// The deadline passed with the condition still false.
    Timeout(Timeout<T>),
    /// A read returned an error (for example the device read all-ones).
    Failed(E),
}

impl<T: fmt::Debug, E: fmt::Display> fmt::Display for PollError<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(t) => write!(f, "{t}"),
            Self::Failed(e) => write!(f, "a read failed: {e}"),
        }
    }
}

/// Reads with `read` until `done` holds or `deadline` passes.
///
/// # Errors
///
/// [`Timeout`] with the last value, the time waited and the number of reads.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "std")] {
/// use core::time::Duration;
/// use paranoid::{poll::poll, sim::SimClock, time::{Clock, Deadline}};
///
/// let clock = SimClock::new();
/// let start = clock.now_ns();
/// let deadline = Deadline::after(&clock, Duration::from_secs(30));
/// let r = poll(&clock, deadline, || clock.now_ns() - start, |&t| t > 1_000_000);
/// assert!(r.is_ok());
/// # }
/// ```
#[inline]
pub fn poll<C, T, R, P>(
    clock: &C,
    deadline: Deadline,
    mut read: R,
    mut done: P,
) -> Result<T, Timeout<T>>
where
    C: Clock + ?Sized,
    R: FnMut() -> T,
    P: FnMut(&T) -> bool,
{
    match try_poll(
        clock,
        deadline,
        || Ok::<T, core::convert::Infallible>(read()),
        &mut done,
    ) {
        Ok(v) => Ok(v),
        Err(PollError::Timeout(t)) => Err(t),
        Err(PollError::Failed(never)) => match never {},
    }
}

/// [`poll`] for at most `timeout`, and never past `deadline`: the form to use
/// inside an init step, where `deadline` is the one the step was handed (the
/// init budget, or the step's deadline already capped by it) and `timeout` the
/// step's own wait from the spec. However long `timeout` is, the wait ends at
/// the budget.
///
/// # Errors
///
/// [`Timeout`] when the earlier of the two passed with `done` still false.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "std")] {
/// use core::time::Duration;
/// use paranoid::{poll::poll_within, sim::SimClock, time::{Clock, Deadline}};
///
/// let clock = SimClock::new();
/// let budget = Deadline::after(&clock, Duration::from_millis(100));
/// // A 10 s wait from the spec, for a bit that never sets: over at the budget.
/// let t = poll_within(&clock, budget, Duration::from_secs(10), || 0u32, |&v| v & 1 == 1)
///     .unwrap_err();
/// assert!(t.waited < Duration::from_millis(101));
/// # }
/// ```
#[inline]
pub fn poll_within<C, T, R, P>(
    clock: &C,
    deadline: Deadline,
    timeout: Duration,
    read: R,
    done: P,
) -> Result<T, Timeout<T>>
where
    C: Clock + ?Sized,
    R: FnMut() -> T,
    P: FnMut(&T) -> bool,
{
    poll(clock, deadline.within(clock, timeout), read, done)
}

/// [`try_poll`] for at most `timeout`, and never past `deadline` (see
/// [`poll_within`]).
///
/// # Errors
///
/// [`PollError::Failed`] with the read's error, or [`PollError::Timeout`] when
/// the earlier of the two deadlines passed.
pub fn try_poll_within<C, T, E, R, P>(
    clock: &C,
    deadline: Deadline,
    timeout: Duration,
    read: R,
    done: P,
) -> Result<T, PollError<T, E>>
where
    C: Clock + ?Sized,
    R: FnMut() -> Result<T, E>,
    P: FnMut(&T) -> bool,
{
    try_poll(clock, deadline.within(clock, timeout), read, done)
}

/// Like [`poll`], but a read may fail, which ends the wait at once.
///
/// # Errors
///
/// [`PollError::Failed`] with the read's error, or [`PollError::Timeout`].
pub fn try_poll<C, T, E, R, P>(
    clock: &C,
    deadline: Deadline,
    mut read: R,
    mut done: P,
) -> Result<T, PollError<T, E>>
where
    C: Clock + ?Sized,
    R: FnMut() -> Result<T, E>,
    P: FnMut(&T) -> bool,
{
    let start = clock.now_ns();
    let mut reads = 0u64;
    loop {
        // Sample the clock before reading: a read that happens after the deadline
        // was seen is the final one.
        let expired = deadline.expired(clock);
        let value = read().map_err(PollError::Failed)?;
        reads += 1;
        if done(&value) {
            return Ok(value);
        }
        if expired {
            let waited = Duration::from_nanos(clock.now_ns().saturating_sub(start));
            return Err(PollError::Timeout(Timeout {
                last: value,
                waited,
                reads,
            }));
        }
        clock.relax();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use proptest::prelude::*;

    struct Stepper {
        now: Cell<u64>,
        step: u64,
    }
    impl Clock for Stepper {
        fn now_ns(&self) -> u64 {
            self.now.get()
        }
        fn relax(&self) {
            self.now.set(self.now.get() + self.step);
        }
    }

    #[test]
    fn poll_errors_read_as_words() {
        extern crate std;
        use std::string::ToString;
        let timeout: PollError<u32, crate::untrusted::UntrustedError> =
            PollError::Timeout(Timeout {
                last: 7,
                waited: Duration::from_millis(3),
                reads: 2,
            });
        assert_eq!(
            timeout.to_string(),
            "timed out after 3ms (2 reads), last seen 7"
        );
        let failed: PollError<u32, _> =
            PollError::Failed(crate::untrusted::UntrustedError::AllOnes { bits: 32 });
        assert_eq!(
            failed.to_string(),
            "a read failed: device value reads all-ones (32 bits): device gone"
        );
    }

    #[test]
    fn never_true_times_out_with_last_value() {
        let c = Stepper {
            now: Cell::new(0),
            step: 1_000_000,
        };
        let d = Deadline::after(&c, Duration::from_secs(2));
        let mut n = 0u32;
        let t = poll(
            &c,
            d,
            || {
                n += 1;
                n
            },
            |_| false,
        )
        .unwrap_err();
        assert_eq!(t.last, n);
        assert_eq!(t.reads, u64::from(n));
        assert!(t.waited >= Duration::from_secs(2));
        assert!(t.waited < Duration::from_secs(2) + Duration::from_millis(2));
    }

    #[test]
    fn expired_deadline_still_reads_once() {
        let c = Stepper {
            now: Cell::new(10),
            step: 1,
        };
        let r = poll(&c, Deadline::at_ns(0), || 7, |&v| v == 7);
        assert_eq!(r, Ok(7));
    }

    #[test]
    fn failed_read_stops_at_once() {
        let c = Stepper {
            now: Cell::new(0),
            step: 1,
        };
        let r: Result<u32, PollError<u32, &str>> =
            try_poll(&c, Deadline::at_ns(1_000_000), || Err("gone"), |_| true);
        assert_eq!(r, Err(PollError::Failed("gone")));
    }

    #[test]
    fn within_ends_at_the_earlier_deadline() {
        let c = Stepper {
            now: Cell::new(0),
            step: 1_000_000,
        };
        let budget = Deadline::at_ns(100_000_000);
        let t = poll_within(&c, budget, Duration::from_secs(10), || 0u8, |_| false).unwrap_err();
        assert!(t.waited >= Duration::from_millis(100));
        assert!(t.waited <= Duration::from_millis(101), "{t:?}");
        // A step timeout shorter than the budget still holds.
        let start = c.now_ns();
        let r: Result<u8, PollError<u8, ()>> = try_poll_within(
            &c,
            Deadline::at_ns(u64::MAX),
            Duration::from_millis(3),
            || Ok(0),
            |_| false,
        );
        assert!(matches!(r, Err(PollError::Timeout(_))));
        assert!(c.now_ns() - start <= 4_000_000);
    }

    proptest! {
        #[test]
        fn poll_terminates_and_respects_deadline(step in 1u64..5_000_000, budget_us in 0u64..10_000_000, flip in proptest::option::of(0u64..20_000_000_000)) {
            let c = Stepper { now: Cell::new(0), step };
            let d = Deadline::after(&c, Duration::from_micros(budget_us));
            let r = poll(&c, d, || c.now_ns(), |&t| flip.is_some_and(|f| t >= f));
            match r {
                Ok(t) => prop_assert!(flip.is_some_and(|f| t >= f)),
                Err(t) => {
                    prop_assert!(c.now_ns() >= d.as_ns());
                    // Overshoot is at most one clock step.
                    prop_assert!(t.waited.as_nanos() as u64 <= budget_us * 1000 + step);
                }
            }
        }
    }
}
