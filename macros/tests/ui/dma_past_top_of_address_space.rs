// One page past 2^64 and one page past 2^48: rejected here, as `check_windows`
// rejects them at run time (the exact top, 2^width, is accepted by both; see
// `tests/pass/windows_at_the_top.rs`).

mod full64 {
    paranoid::dma_windows! {
        address_width = 64;
        pub Top = 0xffff_ffff_fff0_0000 .. 0x1_0000_0000_0000_1000;
    }
}

mod four_level {
    paranoid::dma_windows! {
        address_width = 48;
        pub Top = 0xffff_fff0_0000, size = 0x10_1000;
    }
}

mod whole {
    paranoid::dma_windows! {
        address_width = 64;
        pub All = 0 .. 0x1_0000_0000_0000_0000;
    }
}

fn main() {}
