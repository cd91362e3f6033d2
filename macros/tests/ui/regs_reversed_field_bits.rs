use paranoid::register_block;

register_block! {
    pub struct Regs, size = 0x100;
    CAP @ 0x00: u64, ro {
        TO: 31..=24,
    }
}

fn main() {}
