use paranoid::dma_windows;

dma_windows! {
    address_width = 39;
    pub Normal = 0x4000_0000 .. 0x4000_0000;
}

fn main() {}
