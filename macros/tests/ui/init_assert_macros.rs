#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    assert!(ctx.attempt() < 3);
    assert_eq!(ctx.attempt(), 0);
    assert_ne!(ctx.attempt(), 9);
    // Checks of the driver's own logic stay allowed.
    debug_assert!(ctx.attempt() < 3);
    debug_assert_eq!(ctx.attempt(), ctx.attempt());
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
