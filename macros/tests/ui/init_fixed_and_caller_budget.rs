#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

// A fixed budget and a caller budget at once: one of them, please.
#[paranoid_init(budget_ms = 500, max_budget_ms = 2000)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
