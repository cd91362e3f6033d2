#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled};
use paranoid::paranoid_init;
use paranoid::time::Clock;
use paranoid::lifecycle::Quiesced;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Quiesced>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    dev.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
