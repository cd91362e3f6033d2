use paranoid::register_block;

register_block! {
    pub struct Regs, size = 0x100;
    CSTS @ 0x1c: u32, ro {
        RDY: 0,
        CFS: 1,
        RDY: 2,
    }
}

fn main() {}
