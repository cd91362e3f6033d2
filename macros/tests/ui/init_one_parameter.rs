#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::lifecycle::{Device, Ready, Stalled, Unknown};
use paranoid::paranoid_init;

#[paranoid_init(budget_ms = 500)]
fn init(dev: Device<Dev, Unknown>) -> Result<Device<Dev, Ready>, Stalled<Dev>> {
    let _ = dev;
    todo!()
}

fn main() {}
