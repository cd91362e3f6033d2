use paranoid::register_block;
use paranoid::sim::{RegisterFile, SimClock, SimMmio};

register_block! {
    pub struct Regs, size = 0x1000;
    /// Interrupt status: write 1 to clear.
    ISR @ 0x20: u32, w1c;
}

fn main() {
    let clock = SimClock::new();
    let mut regs = Regs::new(SimMmio::new(RegisterFile::new(0x1000), clock));
    regs.isr().clear(0b1);
    // A W1C register is cleared with `clear(bits)`, never written whole.
    regs.isr().write(0);
}
