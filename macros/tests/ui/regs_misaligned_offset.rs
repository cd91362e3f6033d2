use paranoid::register_block;

register_block! {
    pub struct Regs, size = 0x100;
    CAP @ 0x00: u64, ro;
    CC @ 0x0a: u32, rw;
}

fn main() {}
