use paranoid::dma_windows;

dma_windows! {
    address_width = 39;
    pub Normal = 0 .. 0x4000_0000;
    pub Recovery = 0x80_0000_0000;
}

fn main() {}
