#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    let y = u32::from(ctx.attempt());
    // A search over an endless source never stops when nothing matches.
    let _ = (0u32..).find(|&n| n == y);
    let _ = core::iter::repeat(1u32).position(|n| n == y);
    let _ = core::iter::repeat_with(|| 1u32).any(|n| n == y);
    let _ = core::iter::successors(Some(1u32), |n| n.checked_add(1)).last();
    for _ in core::iter::from_fn(|| Some(1u32)) {}
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
