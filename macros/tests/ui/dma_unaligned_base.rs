use paranoid::dma_windows;

dma_windows! {
    address_width = 39;
    pub Recovery = 0x7f_ffe0_0800, size = 1 MiB;
}

fn main() {}
