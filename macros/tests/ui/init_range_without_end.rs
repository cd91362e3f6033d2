#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    // A range with no end never stops; neither does an adapter of it.
    for _ in 0.. {}
    for _ in (1u32..).map(|x| x.wrapping_mul(2)) {}
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
