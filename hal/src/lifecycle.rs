//! The device lifecycle as a typestate: `Unknown → Quiesced → Reset → Verified →
//! Ready`.
//!
//! A driver implements [`Lifecycle`] (one method per step, in spec order); the
//! transitions on [`Device`] consume the device in one state and return it in the
//! next, recording each step in the [`InitContext`]'s trace and holding it to
//! the total budget. Skipping a step does not compile:
//!
//! ```compile_fail
//! # use paranoid::lifecycle::*;
//! # fn f<D: Lifecycle, C: paranoid::time::Clock>(dev: Device<D, Unknown>, ctx: &mut paranoid::init::InitContext<'_, C>) {
//! // DMA before reset: `enable` does not exist on an `Unknown` device.
//! let _ = dev.enable(ctx);
//! # }
//! ```

use core::fmt;
use core::marker::PhantomData;

use crate::init::InitContext;
use crate::time::{Clock, Deadline};

/// Lifecycle states (zero-sized markers).
pub trait State: sealed::Sealed {
    /// Name used in traces.
    const NAME: &'static str;
}
mod sealed {
    pub trait Sealed {}
}
macro_rules! states {
    ($($(#[$doc:meta])* $name:ident),*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}
        impl sealed::Sealed for $name {}
        impl State for $name { const NAME: &'static str = stringify!($name); }
    )*};
}
states!(
    /// As inherited: anything may be going on, DMA included.
    Unknown,
    /// Bus mastering and interrupts off: the device can no longer write memory.
    Quiesced,
    /// Reset, and the reset is complete.
    Reset,
    /// Identity and capabilities read back and found sane.
    Verified,
    /// Configured, DMA enabled inside the recovery window.
    Ready
);

/// Kinds of reset, from the lightest to the deepest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResetKind {
    /// The device's own reset (e1000 CTRL.RST, NVMe CC.EN = 0).
    Controller,
    /// PCIe function-level reset.
    FunctionLevel,
    /// Secondary bus reset of the bridge above the device.
    SecondaryBus,
}

impl ResetKind {
    /// Short name for traces.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Controller => "controller reset",
            Self::FunctionLevel => "function-level reset",
            Self::SecondaryBus => "secondary bus reset",
        }
    }
}

bitflags::bitflags! {
    /// The deeper resets a device supports (controller reset is always assumed).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ResetKinds: u8 {
        /// PCIe function-level reset is allowed (and advertised).
        const FUNCTION_LEVEL = 1 << 0;
        /// Secondary bus reset of the parent bridge is allowed (the device is
        /// alone below it).
        const SECONDARY_BUS = 1 << 1;
    }
}

impl ResetKinds {
    /// The escalation ladder: controller reset, then each supported deeper reset.
    pub fn ladder(self) -> impl Iterator<Item = ResetKind> {
        [
            Some(ResetKind::Controller),
            self.contains(Self::FUNCTION_LEVEL)
                .then_some(ResetKind::FunctionLevel),
            self.contains(Self::SECONDARY_BUS)
                .then_some(ResetKind::SecondaryBus),
        ]
        .into_iter()
        .flatten()
    }
}

/// What a driver implements to be brought up from any state.
///
/// Each method is one step and must return within `deadline`, the end of the
/// init budget: derive your own spec deadline capped by it with
/// [`Deadline::within`] (or poll with [`crate::poll::poll_within`]), never with
/// a bare `Deadline::after`, which a step could outlive the budget with. Values
/// read from the device are untrusted; nothing here may panic.
pub trait Lifecycle {
    /// The driver's error type.
    type Error: fmt::Debug;

    /// Name used in traces and reports.
    fn name(&self) -> &'static str;

    /// Deeper resets this device supports.
    fn supported_resets(&self) -> ResetKinds;

    /// Stops the device mastering the bus and raising interrupts.
    ///
    /// # Errors
    ///
    /// The device did not respond (gone, wedged).
    fn quiesce(&mut self, deadline: Deadline) -> Result<(), Self::Error>;

    /// Resets the device with `kind` and waits until the reset is complete.
    ///
    /// # Errors
    ///
    /// The reset did not complete by `deadline`, or the device is gone.
    fn reset(&mut self, kind: ResetKind, deadline: Deadline) -> Result<(), Self::Error>;

    /// Reads identity and capabilities back and checks they are sane.
    ///
    /// # Errors
    ///
    /// Nonsense values (all-ones, out of spec).
    fn verify(&mut self, deadline: Deadline) -> Result<(), Self::Error>;

    /// Configures the device and enables DMA in the recovery window.
    ///
    /// # Errors
    ///
    /// The device did not become ready by `deadline`.
    fn enable(&mut self, deadline: Deadline) -> Result<(), Self::Error>;

    /// Turns bus mastering off for good. Best effort; must not fail or wait long.
    fn fence(&mut self);
}

/// Why a step stalled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause<E> {
    /// The driver reported an error.
    Device(E),
    /// The total init budget ran out before or during this step.
    Budget {
        /// The step that was running or about to run.
        step: &'static str,
    },
}

impl<E: fmt::Debug> fmt::Display for Cause<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Device(e) => write!(f, "{e:?}"),
            Cause::Budget { step } => write!(f, "init budget exhausted at step `{step}`"),
        }
    }
}

/// A step failed; the device comes back so it can be reset deeper or fenced.
pub struct Stalled<D: Lifecycle> {
    /// The device, in an unknown state.
    pub device: D,
    /// Why.
    pub cause: Cause<D::Error>,
    /// Which step.
    pub step: &'static str,
}

impl<D: Lifecycle> fmt::Debug for Stalled<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} stalled at `{}`: {}",
            self.device.name(),
            self.step,
            self.cause
        )
    }
}

/// A device in lifecycle state `S`.
pub struct Device<D, S: State> {
    inner: D,
    _state: PhantomData<S>,
}

impl<D: Lifecycle> Device<D, Unknown> {
    /// Takes a device as inherited.
    pub fn new(inner: D) -> Self {
        Self {
            inner,
            _state: PhantomData,
        }
    }

    /// Quiesces the device (step `quiesce`).
    ///
    /// # Errors
    ///
    /// [`Stalled`] with the device back.
    pub fn quiesce<C: Clock>(
        self,
        ctx: &mut InitContext<'_, C>,
    ) -> Result<Device<D, Quiesced>, Stalled<D>> {
        self.transition(ctx, "quiesce", |d, dl| d.quiesce(dl))
    }
}

impl<D: Lifecycle> Device<D, Quiesced> {
    /// Resets the device with the reset the context's escalation level asks for.
    ///
    /// # Errors
    ///
    /// [`Stalled`] with the device back.
    pub fn reset<C: Clock>(
        self,
        ctx: &mut InitContext<'_, C>,
    ) -> Result<Device<D, Reset>, Stalled<D>> {
        let kind = ctx.reset_kind();
        self.transition(ctx, kind.name(), |d, dl| d.reset(kind, dl))
    }
}

impl<D: Lifecycle> Device<D, Reset> {
    /// Verifies the device after reset.
    ///
    /// # Errors
    ///
    /// [`Stalled`] with the device back.
    pub fn verify<C: Clock>(
        self,
        ctx: &mut InitContext<'_, C>,
    ) -> Result<Device<D, Verified>, Stalled<D>> {
        self.transition(ctx, "verify", |d, dl| d.verify(dl))
    }
}

impl<D: Lifecycle> Device<D, Verified> {
    /// Configures the device and enables DMA.
    ///
    /// # Errors
    ///
    /// [`Stalled`] with the device back.
    pub fn enable<C: Clock>(
        self,
        ctx: &mut InitContext<'_, C>,
    ) -> Result<Device<D, Ready>, Stalled<D>> {
        self.transition(ctx, "enable", |d, dl| d.enable(dl))
    }
}

impl<D: Lifecycle> Device<D, Ready> {
    /// The ready driver.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D: Lifecycle, S: State> Device<D, S> {
    /// The driver, read-only, in any state.
    pub fn get(&self) -> &D {
        &self.inner
    }

    /// The driver, in any state, for driver-specific reads between steps.
    pub fn get_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Runs a driver-specific step (Identify, link up...) that keeps the state,
    /// recorded in the trace and held to the budget like the built-in steps.
    ///
    /// # Errors
    ///
    /// [`Stalled`] with the device back.
    pub fn step<C: Clock>(
        self,
        ctx: &mut InitContext<'_, C>,
        name: &'static str,
        f: impl FnOnce(&mut D, Deadline) -> Result<(), D::Error>,
    ) -> Result<Self, Stalled<D>> {
        self.transition(ctx, name, f)
    }

    /// Like [`step`](Self::step) for a step whose own wait is `timeout` (a
    /// spec value): `f` gets the earlier of `timeout` from now and the end of
    /// the init budget, so polling with it stops at the budget.
    ///
    /// # Errors
    ///
    /// [`Stalled`] with the device back ([`Cause::Budget`] when the budget
    /// ran out during the step).
    pub fn step_within<C: Clock>(
        mut self,
        ctx: &mut InitContext<'_, C>,
        name: &'static str,
        timeout: core::time::Duration,
        f: impl FnOnce(&mut D, Deadline) -> Result<(), D::Error>,
    ) -> Result<Self, Stalled<D>> {
        match ctx.run_step_within(name, timeout, |dl| f(&mut self.inner, dl)) {
            Ok(()) => Ok(self),
            Err(cause) => Err(Stalled {
                device: self.inner,
                cause,
                step: name,
            }),
        }
    }

    fn transition<C: Clock, T: State>(
        mut self,
        ctx: &mut InitContext<'_, C>,
        name: &'static str,
        f: impl FnOnce(&mut D, Deadline) -> Result<(), D::Error>,
    ) -> Result<Device<D, T>, Stalled<D>> {
        match ctx.run_step(name, |dl| f(&mut self.inner, dl)) {
            Ok(()) => Ok(Device {
                inner: self.inner,
                _state: PhantomData,
            }),
            Err(cause) => Err(Stalled {
                device: self.inner,
                cause,
                step: name,
            }),
        }
    }
}
