use paranoid::register_block;

register_block! {
    pub struct Regs, size = 0x100;
    CC @ 0x14: i32, rw;
}

fn main() {}
