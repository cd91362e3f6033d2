use paranoid::dma_windows;

dma_windows! {
    address_width = 39;
    page_size = 2 MiB;
    pub Normal = 0 .. 0x4000_0000;
    pub Recovery = 0x7f_ffd0_0000, size = 2 MiB;
}

fn main() {}
