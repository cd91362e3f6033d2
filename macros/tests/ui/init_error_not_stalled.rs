#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, ()> {
    dev.quiesce(ctx).map_err(|_| ())?.reset(ctx).map_err(|_| ())?.verify(ctx).map_err(|_| ())?.enable(ctx).map_err(|_| ())
}

fn main() {}
