//! A simulated clock that advances as code polls it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use crate::time::{duration_ns, Clock};

/// Simulated time, shared by clones: drivers and models see the same clock.
///
/// Each [`relax`](Clock::relax) (one polling iteration) advances time by the
/// poll step (1 µs by default); [`delay`](Clock::delay) jumps.
#[derive(Debug, Clone)]
pub struct SimClock {
    now: Rc<Cell<u64>>,
    step: Rc<Cell<u64>>,
}

impl Default for SimClock {
    fn default() -> Self {
        Self::new()
    }
}

impl SimClock {
    /// A clock at time 0 with a 1 µs poll step.
    pub fn new() -> Self {
        Self {
            now: Rc::new(Cell::new(0)),
            step: Rc::new(Cell::new(1_000)),
        }
    }

    /// Sets how far each polling iteration advances time.
    pub fn set_poll_step(&self, step: Duration) {
        self.step.set(duration_ns(step).max(1));
    }

    /// Advances time by `by`.
    pub fn advance(&self, by: Duration) {
        self.advance_ns(duration_ns(by));
    }

    /// Advances time by `ns` nanoseconds.
    pub fn advance_ns(&self, ns: u64) {
        self.now.set(self.now.get().saturating_add(ns));
    }
}

impl Clock for SimClock {
    fn now_ns(&self) -> u64 {
        self.now.get()
    }
    fn relax(&self) {
        self.advance_ns(self.step.get());
    }
    fn delay(&self, duration: Duration) {
        self.advance(duration);
    }
}
