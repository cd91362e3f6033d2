use paranoid::register_block;

register_block! {
    pub struct Regs, size = 0x100;
    CAP @ 0x00: u64, ro {
        TO: 24..32,
    }
}

fn main() {}
