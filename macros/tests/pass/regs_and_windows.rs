//! `register_block!` and `dma_windows!` in every legal form.

mod hw {
    paranoid::register_block! {
        /// A device's registers.
        pub struct Regs, size = 4 KiB;

        /// Capabilities.
        CAP @ 0x00: u64, ro, reset = 0xff { TO: 24..=31, MQES: 0..=15, CQR: 16 }
        /// Version.
        VS @ 0x08: u32, ro;
        /// Interrupt mask set.
        INTMS @ 0x0c: u32, wo;
        /// Configuration.
        CC @ 0x14: u32, rw { EN: 0, CSS: 4..=6, };
        /// Interrupt cause (read to clear).
        ICR @ 0x18: u8, rc;
        /// Error status (write 1 to clear).
        ERR @ 0x1a: u16, w1c { LINK: 0, PARITY: 1 }
        /// A register whose field names are Rust keywords.
        MISC @ 0x20: u32, rw { TYPE: 0..=3, LOOP: 4 }
        LAST @ 0xff8: u64, rw, reset = 0xffff_ffff_ffff_ffff;
    }
}

mod iommu {
    paranoid::dma_windows! {
        address_width = 48;
        page_size = 4 KiB;
        /// The crashed kernel's window.
        pub Normal = 0 .. 0x1_0000_0000;
        /// Large pages.
        pub Big = 0x1_0000_0000, size = 1 GiB, page_size = 1 GiB;
        /// Default size.
        pub(crate) Recovery = 0xffff_fff0_0000;
    }
}

use paranoid::dma::Window;
use paranoid::regs::Access;
use paranoid::sim::{RegisterFile, SimClock, SimMmio};

fn main() {
    let clock = SimClock::new();
    let mut regs = hw::Regs::new(SimMmio::new(RegisterFile::new(0x1000), clock));
    let cap = regs.cap().read();
    let _timeout = cap.to().in_range(1..=255);
    let _cqr: bool = cap.cqr();
    regs.intms().write(u32::MAX);
    regs.cc().write(hw::regs::cc::EN.bits(1) | hw::regs::cc::CSS.bits(0));
    let _cause = regs.icr().read_and_clear().untrusted();
    let err = regs.err().read();
    if err.link() || err.parity() {
        regs.err().clear(hw::regs::err::LINK.mask() | hw::regs::err::PARITY.mask());
    }
    let misc = regs.misc().read();
    let _ = (misc.r#type(), misc.r#loop());
    regs.last().write(0);
    const _: () = assert!(hw::regs::cap::ACCESS as u8 == Access::ReadOnly as u8);
    const _: () = assert!(hw::regs::last::RESET == u64::MAX);
    assert_eq!(hw::Regs::<SimMmio<RegisterFile>>::REGISTERS.len(), 8);
    assert_eq!(iommu::Recovery::SIZE, 1 << 20);
    assert_eq!(iommu::Big::PAGE_SIZE, 1 << 30);
    assert_eq!(iommu::WINDOWS.len(), 3);
    assert_eq!(iommu::IOMMU_ADDRESS_WIDTH, 48);
    let _ = (iommu::Normal, iommu::Big);
}
