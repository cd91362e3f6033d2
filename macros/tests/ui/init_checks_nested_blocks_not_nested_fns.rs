#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    fn helper() -> u32 {
        // Not part of the init sequence: not checked here (the lints are).
        Some(1).unwrap()
    }
    let _ = helper();
    {
        let nested = if ctx.attempt() == 0 { Some(1) } else { None };
        let _ = nested.expect("first attempt");
    }
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
