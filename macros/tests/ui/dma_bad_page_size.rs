use paranoid::dma_windows;

dma_windows! {
    address_width = 48;
    page_size = 3 KiB;
    pub Recovery = 0x7f_fff0_0000;
}

fn main() {}
