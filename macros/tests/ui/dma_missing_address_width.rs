use paranoid::dma_windows;

dma_windows! {
    pub Recovery = 0x7f_fff0_0000;
}

fn main() {}
