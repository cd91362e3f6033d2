#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    let _ = (dev, ctx);
    todo!()
}

fn main() {}
