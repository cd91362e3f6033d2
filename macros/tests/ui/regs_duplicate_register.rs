use paranoid::register_block;

register_block! {
    pub struct Regs, size = 0x100;
    CSTS @ 0x1c: u32, ro;
    CSTS @ 0x20: u32, ro;
}

fn main() {}
