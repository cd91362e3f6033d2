use paranoid::dma_windows;

dma_windows! {
    address_width = 39;
    pub Recovery = 0x7f_fff0_0000;
    pub Recovery = 0x7f_ffe0_0000;
}

fn main() {}
