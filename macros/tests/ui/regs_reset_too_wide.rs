use paranoid::register_block;

register_block! {
    pub struct Regs, size = 0x100;
    VS @ 0x08: u16, ro, reset = 0x1_0300;
}

fn main() {}
