#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    let x = u32::from(ctx.attempt());
    let y: Option<u32> = Some(0);
    let _ = matches!(x, n if n == y.unwrap());
    debug_assert!(y.expect("set") < 10);
    let _ = format_args!("{}", y.unwrap());
    let _ = vec![y.unwrap(); 4];
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
