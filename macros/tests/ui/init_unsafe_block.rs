#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    let csts = 0u32;
    let p = &csts as *const u32;
    // A raw read under any name (here a plain deref) is still raw access.
    // SAFETY: `p` points to a local.
    let _ = unsafe { *p };
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
