#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    let ready = dev.quiesce(ctx).unwrap();
    let ready = ready.reset(ctx).expect("reset");
    // Inside closures too, and in path form.
    let retry = |r: Option<u8>| r.unwrap();
    let _ = retry(Some(1)) + Option::unwrap(Some(2));
    Ok(ready.verify(ctx)?.enable(ctx)?)
}

fn main() {}
