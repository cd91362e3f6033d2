use paranoid::register_block;

register_block! {
    pub struct Regs, size = 0x100;
    CC @ 0x14: u32, rw {
        EN: 0,
        CSS: 4..=6,
        MPS: 6..=10,
    }
}

fn main() {}
