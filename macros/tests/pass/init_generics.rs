//! `#[paranoid_init]` on functions with various legal signatures.

use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Lifecycle, Ready, ResetKind, ResetKinds, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::sim::SimClock;
use paranoid::time::{Clock, Deadline};

struct Dev(u32);

impl Lifecycle for Dev {
    type Error = u32;
    fn name(&self) -> &'static str {
        "dev"
    }
    fn supported_resets(&self) -> ResetKinds {
        ResetKinds::FUNCTION_LEVEL
    }
    fn quiesce(&mut self, _: Deadline) -> Result<(), u32> {
        Ok(())
    }
    fn reset(&mut self, _: ResetKind, _: Deadline) -> Result<(), u32> {
        Ok(())
    }
    fn verify(&mut self, _: Deadline) -> Result<(), u32> {
        Ok(())
    }
    fn enable(&mut self, _: Deadline) -> Result<(), u32> {
        Ok(())
    }
    fn fence(&mut self) {}
}

/// Generic over the clock, with full paths and a driver-specific step.
#[paranoid_init(budget_ms = 100)]
pub fn generic<C: Clock>(
    dev: paranoid::lifecycle::Device<Dev, paranoid::lifecycle::Unknown>,
    ctx: &mut paranoid::init::InitContext<'_, C>,
) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    let dev = dev.quiesce(ctx)?.reset(ctx)?;
    let dev = dev.step(ctx, "identify", |d, _deadline| {
        // Bounded by construction: a `for` over a range, constant indexes.
        const TABLE: [u32; 4] = [1, 2, 3, 4];
        for i in 0..4u32 {
            d.0 = d.0.wrapping_add(i);
        }
        d.0 = d.0.wrapping_add(TABLE[0] + TABLE[TABLE.len() - 1]);
        debug_assert!(d.0 > 0);
        Ok(())
    })?;
    dev.verify(ctx)?.enable(ctx)
}

/// A concrete clock and `impl Trait`-free where clause.
#[paranoid_init(budget_ms = 1)]
fn concrete(
    dev: Device<Dev, Unknown>,
    ctx: &mut InitContext<'_, SimClock>,
) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

/// `impl Clock` in argument position, and an associated function.
struct Driver;

impl Driver {
    #[paranoid_init(budget_ms = 300000)]
    fn init(
        dev: Device<Dev, Unknown>,
        ctx: &mut InitContext<'_, impl Clock>,
    ) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
        dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
    }
}

fn main() {
    let clock = SimClock::new();
    let a = generic(Dev(0), &clock).map(|ok| ok.device.into_inner().0);
    let b = concrete(Dev(1), &clock).map(|ok| ok.trace.escalations());
    let c = Driver::init(Dev(2), &clock).map(|ok| ok.trace.total());
    let _ = with_lints(Dev(3), &clock).is_ok();
    if !(a.is_ok() && b.is_ok() && c.is_ok()) {
        std::process::exit(1);
    }
}

/// The user's own lint attributes apply to the body (where the code is).
#[paranoid_init(budget_ms = 10)]
#[expect(clippy::result_large_err, reason = "checked: the expectation lands on the body")]
#[allow(unused_variables, reason = "`unused` is never read")]
fn with_lints<C: Clock>(
    dev: Device<Dev, Unknown>,
    ctx: &mut InitContext<'_, C>,
) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    let unused = 1;
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}
