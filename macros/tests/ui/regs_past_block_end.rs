use paranoid::register_block;

register_block! {
    pub struct Regs, size = 0x40;
    CAP @ 0x00: u64, ro;
    DBL @ 0x40: u32, wo;
}

fn main() {}
