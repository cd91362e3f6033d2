#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    let r: Result<u32, u32> = Err(1);
    let _ = r.unwrap_err();
    let _ = r.expect_err("failed first");
    let _ = Result::unwrap_err(r);
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
