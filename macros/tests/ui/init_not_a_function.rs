#[path = "support/dev.rs"]
mod dev;

use dev::Dev;
use paranoid::paranoid_init;

#[paranoid_init(budget_ms = 500)]
struct Init;

fn main() {
    let _ = (Dev, Init);
}
