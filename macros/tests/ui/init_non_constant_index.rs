#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    const SLOTS: [u8; 4] = [1, 2, 3, 4];
    let i = usize::from(ctx.attempt());
    // Constant indexes are fine: a mistake there is caught by rustc or review.
    let _first = SLOTS[0] + SLOTS[SLOTS.len() - 1];
    let _slot = SLOTS[i];
    let _tail = &SLOTS[i..];
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
