use paranoid::register_block;
use paranoid::sim::{RegisterFile, SimClock, SimMmio};

register_block! {
    pub struct Regs, size = 0x1000;
    /// Interrupt Mask Set.
    INTMS @ 0x0c: u32, wo;
}

fn main() {
    let clock = SimClock::new();
    let mut regs = Regs::new(SimMmio::new(RegisterFile::new(0x1000), clock));
    regs.intms().write(u32::MAX);
    // INTMS is write-only: its handle has no `read`.
    let _mask = regs.intms().read();
}
