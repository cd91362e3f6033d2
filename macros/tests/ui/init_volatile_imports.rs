#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;
use paranoid::time::Clock;

#[paranoid_init(budget_ms = 500)]
fn init<C: Clock>(dev: Device<Dev, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    use core::ptr::read_volatile as r;
    use core::ptr::{self, write_volatile};
    let mut csts = 0u32;
    let p = &mut csts as *mut u32;
    // SAFETY: `p` points to a local.
    let _ = unsafe { r(p) };
    // SAFETY: as above.
    unsafe { ptr::write_volatile(p, 1) };
    // SAFETY: as above.
    unsafe { write_volatile(p, 2) };
    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
}

fn main() {}
