use paranoid::register_block;

register_block! {
    pub struct Regs, size = 0;
    CC @ 0x14: u32, rw;
}

fn main() {}
