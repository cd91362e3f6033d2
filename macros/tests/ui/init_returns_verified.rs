#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;
use paranoid::lifecycle::Verified;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Verified>, Stalled<Dev>> {
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)
}

fn main() {}
