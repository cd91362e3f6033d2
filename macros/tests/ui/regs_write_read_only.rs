use paranoid::register_block;
use paranoid::sim::{RegisterFile, SimClock, SimMmio};

register_block! {
    pub struct Regs, size = 0x1000;
    /// Controller Status.
    CSTS @ 0x1c: u32, ro { RDY: 0 }
}

fn main() {
    let clock = SimClock::new();
    let mut regs = Regs::new(SimMmio::new(RegisterFile::new(0x1000), clock));
    let _ready = regs.csts().read().rdy();
    // CSTS is read-only: its handle has no `write`.
    regs.csts().write(1);
}
