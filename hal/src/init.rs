//! Init traces, the total time budget, and the escalation ladder.
//!
//! [`run`] is what a `#[paranoid_init]` wrapper calls: it runs the init body with
//! a fresh [`InitContext`]; when the body stalls it retries with the next deeper
//! reset the device supports (controller → function-level → secondary bus), and
//! when the ladder or the budget runs out it fences the device and returns an
//! [`InitFailure`] that carries the trace. No heap: the trace is a fixed array.

use core::fmt::{self, Write as _};
use core::time::Duration;

use crate::lifecycle::{Cause, Device, Lifecycle, Ready, ResetKind, Stalled, Unknown};
use crate::time::{duration_ns, Clock, Deadline};

/// Entries a trace keeps; later entries are counted but dropped.
pub const TRACE_CAPACITY: usize = 48;
/// Bytes of an error message a trace entry keeps.
pub const NOTE_CAPACITY: usize = 72;

/// A short, fixed-capacity text (truncated on overflow).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Note {
    buf: [u8; NOTE_CAPACITY],
    len: u8,
}

impl Note {
    /// An empty note.
    pub const fn empty() -> Self {
        Self {
            buf: [0; NOTE_CAPACITY],
            len: 0,
        }
    }

    /// Formats `args` into a note, truncating at a character boundary.
    pub fn format(args: fmt::Arguments<'_>) -> Self {
        let mut n = Self::empty();
        let _ = n.write_fmt(args);
        n
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("")
    }
}

impl fmt::Write for Note {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut tmp = [0u8; 4];
            let enc = c.encode_utf8(&mut tmp).as_bytes();
            let at = usize::from(self.len);
            let Some(dst) = self.buf.get_mut(at..at + enc.len()) else {
                return Ok(());
            };
            dst.copy_from_slice(enc);
            self.len += enc.len() as u8;
        }
        Ok(())
    }
}

impl fmt::Debug for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// How a traced step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// The driver returned an error (its `Debug`, truncated).
    Failed(Note),
    /// The total budget ran out.
    BudgetExceeded,
    /// Init restarts with a deeper reset.
    Escalated(ResetKind),
    /// Bus mastering was turned off for good.
    Fenced,
}

/// One line of an init trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEntry {
    /// Step name.
    pub step: &'static str,
    /// Attempt number (0: first try, 1: after the first escalation...).
    pub attempt: u8,
    /// When it started, relative to the start of init.
    pub start: Duration,
    /// How long it took.
    pub duration: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// Each step of an init, its duration and its outcome.
#[derive(Clone)]
pub struct InitTrace {
    device: &'static str,
    entries: [Option<TraceEntry>; TRACE_CAPACITY],
    len: usize,
    dropped: usize,
    total: Duration,
}

impl InitTrace {
    /// An empty trace for `device`.
    pub const fn new(device: &'static str) -> Self {
        Self {
            device,
            entries: [None; TRACE_CAPACITY],
            len: 0,
            dropped: 0,
            total: Duration::ZERO,
        }
    }

    /// Appends an entry (counted as dropped when full).
    pub fn push(&mut self, entry: TraceEntry) {
        match self.entries.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(entry);
                self.len += 1;
            }
            None => self.dropped += 1,
        }
    }

    /// The recorded entries.
    pub fn entries(&self) -> impl Iterator<Item = &TraceEntry> {
        self.entries.iter().flatten()
    }

    /// Entries that did not fit.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Total time of the init.
    pub fn total(&self) -> Duration {
        self.total
    }

    /// The device name.
    pub fn device(&self) -> &'static str {
        self.device
    }

    /// True if any entry has this outcome kind (for tests and reports).
    pub fn any(&self, f: impl Fn(&Outcome) -> bool) -> bool {
        self.entries().any(|e| f(&e.outcome))
    }

    /// The number of escalations recorded.
    pub fn escalations(&self) -> usize {
        self.entries()
            .filter(|e| matches!(e.outcome, Outcome::Escalated(_)))
            .count()
    }
}

impl fmt::Debug for InitTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for InitTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "init trace of {} ({:.3} ms total)",
            self.device,
            ms(self.total)
        )?;
        for e in self.entries() {
            write!(
                f,
                "  +{:>9.3} ms  #{} {:<24} {:>9.3} ms  ",
                ms(e.start),
                e.attempt,
                e.step,
                ms(e.duration)
            )?;
            match e.outcome {
                Outcome::Ok => writeln!(f, "ok")?,
                Outcome::Failed(n) => writeln!(f, "failed: {}", n.as_str())?,
                Outcome::BudgetExceeded => writeln!(f, "budget exceeded")?,
                Outcome::Escalated(k) => writeln!(f, "escalate to {}", k.name())?,
                Outcome::Fenced => writeln!(f, "fenced (bus master off)")?,
            }
        }
        if self.dropped > 0 {
            writeln!(f, "  ({} more entries dropped)", self.dropped)?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The state of one init attempt, handed to the init body.
pub struct InitContext<'t, C: Clock> {
    clock: &'t C,
    origin_ns: u64,
    budget: Deadline,
    reset: ResetKind,
    attempt: u8,
    trace: &'t mut InitTrace,
}

impl<'t, C: Clock> InitContext<'t, C> {
    /// A context for a body run outside [`run`] (tests, hand-written init).
    pub fn new(clock: &'t C, budget: Duration, trace: &'t mut InitTrace) -> Self {
        Self {
            clock,
            origin_ns: clock.now_ns(),
            budget: Deadline::after(clock, budget),
            reset: ResetKind::Controller,
            attempt: 0,
            trace,
        }
    }

    /// The reset this attempt uses.
    pub fn reset_kind(&self) -> ResetKind {
        self.reset
    }

    /// The attempt number (0 first).
    pub fn attempt(&self) -> u8 {
        self.attempt
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        self.clock
    }

    /// The deadline of the whole init.
    pub fn budget(&self) -> Deadline {
        self.budget
    }

    /// The deadline for a step that may take `timeout` by itself: the earlier
    /// of `timeout` from now and the end of the total budget.
    pub fn step_deadline(&self, timeout: Duration) -> Deadline {
        self.budget.within(self.clock, timeout)
    }

    /// Runs one step with the budget deadline, recording it.
    ///
    /// `f` gets the end of the total budget: every wait inside it must end by
    /// then (derive the step's own wait with [`Deadline::within`] or poll with
    /// [`crate::poll::poll_within`], which cap it there).
    ///
    /// # Errors
    ///
    /// [`Cause::Budget`] when the budget is already spent (the step is not run) or
    /// ran out during the step; [`Cause::Device`] with the step's error otherwise.
    pub fn run_step<E: fmt::Debug>(
        &mut self,
        step: &'static str,
        f: impl FnOnce(Deadline) -> Result<(), E>,
    ) -> Result<(), Cause<E>> {
        let budget = self.budget;
        self.run_step_until(step, budget, f)
    }

    /// Runs one step whose own deadline is `timeout` from now, recording it:
    /// `f` gets [`step_deadline(timeout)`](Self::step_deadline), the earlier of
    /// that and the end of the total budget, so a step that polls with it
    /// stops at the budget however long its own timeout is.
    ///
    /// # Errors
    ///
    /// As [`run_step`](Self::run_step): [`Cause::Budget`] when the budget was
    /// spent before or during the step, [`Cause::Device`] otherwise.
    pub fn run_step_within<E: fmt::Debug>(
        &mut self,
        step: &'static str,
        timeout: Duration,
        f: impl FnOnce(Deadline) -> Result<(), E>,
    ) -> Result<(), Cause<E>> {
        let deadline = self.step_deadline(timeout);
        self.run_step_until(step, deadline, f)
    }

    fn run_step_until<E: fmt::Debug>(
        &mut self,
        step: &'static str,
        deadline: Deadline,
        f: impl FnOnce(Deadline) -> Result<(), E>,
    ) -> Result<(), Cause<E>> {
        let start = self.clock.now_ns();
        if self.budget.expired(self.clock) {
            self.record(step, start, Outcome::BudgetExceeded);
            return Err(Cause::Budget { step });
        }
        let result = f(deadline.min(self.budget));
        match result {
            Ok(()) => {
                self.record(step, start, Outcome::Ok);
                Ok(())
            }
            Err(e) => {
                self.record(
                    step,
                    start,
                    Outcome::Failed(Note::format(format_args!("{e:?}"))),
                );
                if self.budget.expired(self.clock) {
                    Err(Cause::Budget { step })
                } else {
                    Err(Cause::Device(e))
                }
            }
        }
    }

    fn record(&mut self, step: &'static str, start_ns: u64, outcome: Outcome) {
        let now = self.clock.now_ns();
        self.trace.push(TraceEntry {
            step,
            attempt: self.attempt,
            start: Duration::from_nanos(start_ns.saturating_sub(self.origin_ns)),
            duration: Duration::from_nanos(now.saturating_sub(start_ns)),
            outcome,
        });
    }
}

/// A device that reached `Ready`, with its init trace.
pub struct Initialized<D: Lifecycle> {
    /// The ready device.
    pub device: Device<D, Ready>,
    /// How it got there.
    pub trace: InitTrace,
}

/// An init that gave up: the device is fenced, the trace says what happened.
pub struct InitFailure<D: Lifecycle> {
    /// The fenced device (bus mastering off).
    pub device: D,
    /// The last cause.
    pub cause: Cause<D::Error>,
    /// The step that failed last.
    pub step: &'static str,
    /// Every step of every attempt.
    pub trace: InitTrace,
}

impl<D: Lifecycle> fmt::Debug for InitFailure<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} fenced after `{}`: {}\n{}",
            self.device.name(),
            self.step,
            self.cause,
            self.trace
        )
    }
}

impl<D: Lifecycle> fmt::Display for InitFailure<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Runs `body` from `Unknown` to `Ready` within `budget`, escalating resets on
/// failure and fencing the device when everything failed.
///
/// `clock` must be the clock the driver itself waits on.
///
/// # Errors
///
/// [`InitFailure`] with the fenced device, the last cause and the trace.
///
/// # Examples
///
/// See `tests` of this module and the `#[paranoid_init]` attribute.
#[expect(
    clippy::result_large_err,
    reason = "no heap in a recovery kernel: the fixed-size trace travels with the result by design"
)]
pub fn run<D, C, F>(
    device: D,
    clock: &C,
    budget: Duration,
    mut body: F,
) -> Result<Initialized<D>, InitFailure<D>>
where
    D: Lifecycle,
    C: Clock,
    F: FnMut(Device<D, Unknown>, &mut InitContext<'_, C>) -> Result<Device<D, Ready>, Stalled<D>>,
{
    let mut trace = InitTrace::new(device.name());
    let origin_ns = clock.now_ns();
    let budget_deadline = Deadline::at_ns(origin_ns.saturating_add(duration_ns(budget)));
    let mut ladder = device.supported_resets().ladder().peekable();
    let mut device = device;
    let mut attempt = 0u8;
    let (cause, step) = loop {
        let reset = ladder.next().unwrap_or(ResetKind::Controller);
        let mut ctx = InitContext {
            clock,
            origin_ns,
            budget: budget_deadline,
            reset,
            attempt,
            trace: &mut trace,
        };
        let stalled = match body(Device::new(device), &mut ctx) {
            Ok(ready) => {
                trace.total = Duration::from_nanos(clock.now_ns().saturating_sub(origin_ns));
                return Ok(Initialized {
                    device: ready,
                    trace,
                });
            }
            Err(stalled) => stalled,
        };
        device = stalled.device;
        let next = ladder.peek().copied();
        match (next, &stalled.cause) {
            (Some(next), Cause::Device(_)) if !budget_deadline.expired(clock) => {
                ctx.record("escalate", clock.now_ns(), Outcome::Escalated(next));
                attempt = attempt.saturating_add(1);
            }
            _ => break (stalled.cause, stalled.step),
        }
    };
    let fence_start = clock.now_ns();
    device.fence();
    let mut ctx = InitContext {
        clock,
        origin_ns,
        budget: budget_deadline,
        reset: ResetKind::Controller,
        attempt,
        trace: &mut trace,
    };
    ctx.record("fence", fence_start, Outcome::Fenced);
    trace.total = Duration::from_nanos(clock.now_ns().saturating_sub(origin_ns));
    Err(InitFailure {
        device,
        cause,
        step,
        trace,
    })
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::lifecycle::ResetKinds;
    use crate::sim::SimClock;

    /// A toy device whose reset completes after `reset_ms`, or never.
    struct Toy {
        clock: SimClock,
        reset_ms: Option<u64>,
        works_after: ResetKind,
        resets: Vec<ResetKind>,
        fenced: bool,
    }

    #[derive(Debug, PartialEq)]
    enum ToyError {
        ResetTimeout,
    }

    impl Lifecycle for Toy {
        type Error = ToyError;
        fn name(&self) -> &'static str {
            "toy"
        }
        fn supported_resets(&self) -> ResetKinds {
            ResetKinds::FUNCTION_LEVEL
        }
        fn quiesce(&mut self, _: Deadline) -> Result<(), ToyError> {
            Ok(())
        }
        fn reset(&mut self, kind: ResetKind, deadline: Deadline) -> Result<(), ToyError> {
            self.resets.push(kind);
            let own = Deadline::after(&self.clock, Duration::from_millis(100)).min(deadline);
            let start = self.clock.now_ns();
            let done = crate::poll::poll(
                &self.clock,
                own,
                || self.clock.now_ns() - start,
                |&t| {
                    kind >= self.works_after && self.reset_ms.is_some_and(|ms| t >= ms * 1_000_000)
                },
            );
            done.map(|_| ()).map_err(|_| ToyError::ResetTimeout)
        }
        fn verify(&mut self, _: Deadline) -> Result<(), ToyError> {
            Ok(())
        }
        fn enable(&mut self, _: Deadline) -> Result<(), ToyError> {
            Ok(())
        }
        fn fence(&mut self) {
            self.fenced = true;
        }
    }

    fn body(
        dev: Device<Toy, Unknown>,
        ctx: &mut InitContext<'_, SimClock>,
    ) -> Result<Device<Toy, Ready>, Stalled<Toy>> {
        dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
    }

    fn toy(clock: &SimClock, reset_ms: Option<u64>, works_after: ResetKind) -> Toy {
        Toy {
            clock: clock.clone(),
            reset_ms,
            works_after,
            resets: vec![],
            fenced: false,
        }
    }

    #[test]
    fn succeeds_first_time_without_escalation() {
        let clock = SimClock::new();
        let ok = run(
            toy(&clock, Some(5), ResetKind::Controller),
            &clock,
            Duration::from_secs(1),
            body,
        )
        .unwrap();
        assert_eq!(ok.trace.escalations(), 0);
        assert_eq!(ok.trace.entries().count(), 4);
        assert!(format!("{}", ok.trace).contains("controller reset"));
    }

    #[test]
    fn escalates_to_flr_then_succeeds() {
        let clock = SimClock::new();
        let ok = run(
            toy(&clock, Some(5), ResetKind::FunctionLevel),
            &clock,
            Duration::from_secs(1),
            body,
        )
        .unwrap();
        assert_eq!(ok.trace.escalations(), 1);
        assert_eq!(
            ok.device.into_inner().resets,
            vec![ResetKind::Controller, ResetKind::FunctionLevel]
        );
    }

    #[test]
    fn never_leaving_reset_ends_fenced_with_escalations_in_trace() {
        let clock = SimClock::new();
        let err = run(
            toy(&clock, None, ResetKind::Controller),
            &clock,
            Duration::from_secs(5),
            body,
        )
        .err()
        .unwrap();
        assert!(err.device.fenced);
        assert_eq!(err.cause, Cause::Device(ToyError::ResetTimeout));
        assert_eq!(err.trace.escalations(), 1);
        assert!(err.trace.any(|o| *o == Outcome::Fenced));
        let text = format!("{err}");
        assert!(text.contains("escalate to function-level reset"), "{text}");
    }

    #[test]
    fn budget_exhaustion_returns_with_trace_instead_of_hanging() {
        let clock = SimClock::new();
        let start = clock.now_ns();
        let err = run(
            toy(&clock, None, ResetKind::Controller),
            &clock,
            Duration::from_millis(30),
            body,
        )
        .err()
        .unwrap();
        assert!(matches!(err.cause, Cause::Budget { .. }));
        assert!(err.device.fenced);
        assert_eq!(
            err.trace.escalations(),
            0,
            "no escalation once the budget is spent"
        );
        let spent = clock.now_ns() - start;
        assert!(
            spent < 40_000_000,
            "stopped near the 30 ms budget, took {spent} ns"
        );
    }

    /// A device whose ready bit (bit 0 of register 0x1c) never sets, waited on
    /// with a 10 s step timeout from the "spec".
    struct NeverReady {
        clock: SimClock,
        regs: crate::sim::SimMmio<crate::sim::RegisterFile>,
        /// Mutant for the negative control: ignore the deadline handed in.
        ignore_deadline: bool,
    }

    const READY_TIMEOUT: Duration = Duration::from_secs(10);

    impl NeverReady {
        fn new(clock: &SimClock, ignore_deadline: bool) -> Self {
            clock.set_poll_step(Duration::from_micros(100));
            Self {
                clock: clock.clone(),
                regs: crate::sim::SimMmio::new(crate::sim::RegisterFile::new(0x100), clock.clone()),
                ignore_deadline,
            }
        }

        fn wait_ready(&mut self, deadline: Deadline) -> Result<(), ToyError> {
            use crate::mmio::RegisterIo as _;
            let regs = &mut self.regs;
            let read = || regs.read32(0x1c).bit(0);
            let seen = if self.ignore_deadline {
                crate::poll::poll(
                    &self.clock,
                    Deadline::after(&self.clock, READY_TIMEOUT),
                    read,
                    |&r| r,
                )
            } else {
                crate::poll::poll_within(&self.clock, deadline, READY_TIMEOUT, read, |&r| r)
            };
            seen.map(|_| ()).map_err(|_| ToyError::ResetTimeout)
        }
    }

    impl Lifecycle for NeverReady {
        type Error = ToyError;
        fn name(&self) -> &'static str {
            "never-ready"
        }
        fn supported_resets(&self) -> ResetKinds {
            ResetKinds::FUNCTION_LEVEL
        }
        fn quiesce(&mut self, _: Deadline) -> Result<(), ToyError> {
            Ok(())
        }
        fn reset(&mut self, _: ResetKind, deadline: Deadline) -> Result<(), ToyError> {
            self.wait_ready(deadline)
        }
        fn verify(&mut self, _: Deadline) -> Result<(), ToyError> {
            Ok(())
        }
        fn enable(&mut self, _: Deadline) -> Result<(), ToyError> {
            Ok(())
        }
        fn fence(&mut self) {}
    }

    fn never_ready_body(
        dev: Device<NeverReady, Unknown>,
        ctx: &mut InitContext<'_, SimClock>,
    ) -> Result<Device<NeverReady, Ready>, Stalled<NeverReady>> {
        dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
    }

    #[test]
    fn a_step_polling_past_the_budget_stops_at_the_budget() {
        let clock = SimClock::new();
        let start = clock.now_ns();
        let err = run(
            NeverReady::new(&clock, false),
            &clock,
            Duration::from_millis(100),
            never_ready_body,
        )
        .err()
        .unwrap();
        let spent = Duration::from_nanos(clock.now_ns() - start);
        assert_eq!(
            err.cause,
            Cause::Budget {
                step: "controller reset"
            }
        );
        assert_eq!(err.trace.escalations(), 0, "{}", err.trace);
        assert!(
            spent >= Duration::from_millis(100) && spent < Duration::from_millis(101),
            "a 10 s wait under a 100 ms budget took {spent:?} (simulated)"
        );
    }

    #[test]
    fn a_driver_step_within_its_timeout_stops_at_the_budget() {
        let clock = SimClock::new();
        let start = clock.now_ns();
        let err = run(
            NeverReady::new(&clock, false),
            &clock,
            Duration::from_millis(100),
            |dev, ctx| {
                let dev = dev.quiesce(ctx)?;
                // The step's own 10 s is cut to the 100 ms budget.
                let dev = dev.step_within(ctx, "wait ready", READY_TIMEOUT, |d, dl| {
                    let regs = &mut d.regs;
                    crate::poll::poll(
                        &d.clock,
                        dl,
                        || crate::mmio::RegisterIo::read32(regs, 0x1c).bit(0),
                        |&r| r,
                    )
                    .map(|_| ())
                    .map_err(|_| ToyError::ResetTimeout)
                })?;
                dev.reset(ctx)?.verify(ctx)?.enable(ctx)
            },
        )
        .err()
        .unwrap();
        let spent = Duration::from_nanos(clock.now_ns() - start);
        assert_eq!(err.cause, Cause::Budget { step: "wait ready" });
        assert!(spent < Duration::from_millis(101), "{spent:?}");
    }

    #[test]
    fn negative_control_a_step_ignoring_its_deadline_outlives_the_budget() {
        // The mutant polls with its own 10 s deadline: nothing can preempt it,
        // which is why waits inside steps take the deadline they are handed.
        let clock = SimClock::new();
        let start = clock.now_ns();
        let err = run(
            NeverReady::new(&clock, true),
            &clock,
            Duration::from_millis(100),
            never_ready_body,
        )
        .err()
        .unwrap();
        let spent = Duration::from_nanos(clock.now_ns() - start);
        assert!(matches!(err.cause, Cause::Budget { .. }));
        assert!(spent >= READY_TIMEOUT, "{spent:?}");
    }

    #[test]
    fn run_step_within_hands_the_earlier_of_step_timeout_and_budget() {
        let clock = SimClock::new();
        clock.set_poll_step(Duration::from_micros(100));
        let mut trace = InitTrace::new("ctx");
        let mut ctx = InitContext::new(&clock, Duration::from_millis(100), &mut trace);
        let budget = ctx.budget();
        assert_eq!(ctx.step_deadline(Duration::from_secs(10)), budget);
        // A short step timeout is kept.
        let short = ctx.run_step_within("short", Duration::from_millis(5), |dl| {
            crate::poll::poll(&clock, dl, || 0u32, |&v| v == 1).map(|_| ())
        });
        assert!(matches!(short, Err(Cause::Device(_))), "{short:?}");
        // A long one is cut at the budget and reported as the budget.
        let start = clock.now_ns();
        let long = ctx.run_step_within("wait ready", Duration::from_secs(10), |dl| {
            crate::poll::poll(&clock, dl, || 0u32, |&v| v == 1).map(|_| ())
        });
        let spent = clock.now_ns() - start;
        assert!(
            matches!(long, Err(Cause::Budget { step: "wait ready" })),
            "{long:?}"
        );
        assert!(spent < 100_000_000, "{spent}");
        assert!(budget.expired(&clock));
        // Once spent, a step is not run at all.
        let mut ran = false;
        let after = ctx.run_step_within("after", Duration::from_secs(1), |_| {
            ran = true;
            Ok::<(), ()>(())
        });
        assert!(matches!(after, Err(Cause::Budget { step: "after" })) && !ran);
        assert!(trace.any(|o| *o == Outcome::BudgetExceeded));
    }

    #[test]
    fn note_truncates_on_char_boundary() {
        let long = "é".repeat(100);
        let n = Note::format(format_args!("{long}"));
        assert!(n.as_str().len() <= NOTE_CAPACITY);
        assert!(n.as_str().chars().all(|c| c == 'é'));
    }
}
