//! Windows that end exactly at the top of the IOMMU address space, 2^39 and
//! 2^64: `dma_windows!` accepts them, and so does the run-time
//! `check_windows` (which once overflowed computing the end at 2^64).

use paranoid::dma::{check_windows, Iova, Window};

mod vtd39 {
    paranoid::dma_windows! {
        address_width = 39;
        pub Normal = 0 .. 0x4000_0000;
        pub Recovery = 0x7f_fff0_0000 .. 0x80_0000_0000;
    }
}

mod full64 {
    paranoid::dma_windows! {
        address_width = 64;
        pub Top = 0xffff_ffff_fff0_0000 .. 0x1_0000_0000_0000_0000;
    }
}

fn main() {
    let ok39 = check_windows(&vtd39::WINDOWS, vtd39::IOMMU_ADDRESS_WIDTH);
    let ok64 = check_windows(&full64::WINDOWS, full64::IOMMU_ADDRESS_WIDTH);
    let top = <full64::Top as Window>::spec();
    let last = Iova::<full64::Top>::new(u64::MAX).map(|i| i.get());
    let last39 = Iova::<vtd39::Recovery>::new((1 << 39) - 1).is_some();
    if ok39.is_err()
        || ok64.is_err()
        || top.end_exclusive() != 1u128 << 64
        || !top.contains(u64::MAX - 0xfff, 0x1000)
        || last != Some(u64::MAX)
        || !last39
    {
        std::process::exit(1);
    }
}
