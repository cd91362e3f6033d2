//! `mmio-selfcheck`: the MMIO and port backends on real device registers.
//!
//! - NVMe BAR0: a 64-bit read of CAP equals its two 32-bit halves; VS reads
//!   1.4.0; an access past the block or misaligned reads all-ones (no access).
//! - e1000 BAR0 (when the machine has an e1000): a read/write register (RDBAL)
//!   takes a value and gives it back; its I/O BAR sizes to 64 ports.
//! - Port I/O: the configuration headers read through CF8/CFC equal those read
//!   through ECAM; the UART scratch register takes a value and gives it back.

use paranoid::mmio::RegisterIo;
use paranoid::pci::bar::Bar;
use paranoid::pci::{bar, ConfigAccess, Ecam, PciAddress};
use paranoid::port::Port;
use paranoid_boot::BootInfo;

use crate::platform;
use crate::report::{fail, Failure, Fields, Outcome};
use crate::scenarios::pci_discovery::{first_e1000, first_nvme};
use crate::{check, ensure};

/// NVMe CAP (64 bits) and VS.
const NVME_CAP: usize = 0x00;
const NVME_VS: usize = 0x08;
/// e1000 RDBAL (receive descriptor base low).
const E1000_RDBAL: usize = 0x2800;

/// Runs the checks.
pub fn run(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let mut ecam = check!(f, platform::ecam(boot), "ECAM");

    let nvme = check!(f, first_nvme(&mut ecam), "NVMe");
    let (mut regs, _) = check!(
        f,
        platform::map_bar0(&mut ecam, nvme.address()),
        "NVMe BAR0"
    );
    let cap = regs.read64(NVME_CAP).into_raw_for_report();
    let lo = regs.read32(NVME_CAP).into_raw_for_report();
    let hi = regs.read32(NVME_CAP + 4).into_raw_for_report();
    f.add("nvme_cap", format_args!("{cap:#x}"));
    ensure!(
        f,
        cap == (u64::from(hi) << 32 | u64::from(lo)),
        "CAP {cap:#x} != {hi:#x}:{lo:#x}"
    );
    ensure!(f, regs.read32(NVME_VS).is(0x0001_0400), "VS is not 1.4.0");
    let size = regs.size();
    ensure!(
        f,
        regs.read32(size).is_all_ones(),
        "read past the BAR returned data"
    );
    ensure!(
        f,
        regs.read32(NVME_VS + 2).is_all_ones(),
        "misaligned read returned data"
    );
    ensure!(
        f,
        regs.read64(size - 4).is_all_ones(),
        "straddling read returned data"
    );

    let nic = first_e1000(&mut ecam);
    match &nic {
        Some(nic) => check_e1000(&mut ecam, nic.address(), &mut f)?,
        None => {
            f.add("e1000", "absent");
        }
    }

    // Port I/O: configuration space through CF8/CFC equals ECAM's, dword by
    // dword, for the whole type-0 header of both devices.
    let mut cf8 = platform::cf8();
    for a in nic.iter().map(|n| n.address()).chain([nvme.address()]) {
        for off in (0..0x40u16).step_by(4) {
            let by_port = cf8.read32(a, off).into_raw_for_report();
            let by_mmio = ecam.read32(a, off).into_raw_for_report();
            ensure!(
                f,
                by_port == by_mmio,
                "{a} config {off:#x}: CF8 {by_port:#x}, ECAM {by_mmio:#x}"
            );
        }
    }
    // A read/write port: the 16550 scratch register of COM1.
    // The scratch register (COM1 + 7) holds no state the UART uses; the HAL
    // hands UART ports out as inert (a UART cannot reach memory).
    let Some(mut scratch) = Port::<u8>::inert(paranoid_boot::serial::COM1 + 7) else {
        return Err(fail(f, "COM1 scratch register not an inert port"));
    };
    scratch.write(0x5a);
    let back = scratch.read().into_raw_for_report();
    ensure!(f, back == 0x5a, "COM1 scratch read back {back:#x}");
    f.add(
        "config_dwords_compared",
        16 * (1 + usize::from(nic.is_some())),
    );
    Ok(f)
}

/// The e1000 at `a`: a read/write register takes a value and gives it back;
/// its I/O BAR sizes to 64 ports.
fn check_e1000(ecam: &mut Ecam, a: PciAddress, f: &mut Fields) -> Result<(), Failure> {
    let mut g = core::mem::take(f);
    let (mut nic_regs, _) = check!(g, platform::map_bar0(ecam, a), "e1000 BAR0");
    let saved = nic_regs.read32(E1000_RDBAL).into_raw_for_report();
    // paranoid:allow(dma_outside_window): a write/read-back pattern with the receiver disabled, restored right after; never used for DMA
    nic_regs.write32(E1000_RDBAL, 0x1234_5670);
    let back = nic_regs.read32(E1000_RDBAL).into_raw_for_report();
    nic_regs.write32(E1000_RDBAL, saved);
    g.add("rdbal_readback", format_args!("{back:#x}"));
    ensure!(g, back & !0xf == 0x1234_5670, "RDBAL read back {back:#x}");

    // The e1000's I/O BAR is sized (QEMU implements its IOADDR/IODATA window
    // as a stub, so registers are not compared through it).
    let io = check!(g, bar::size(ecam, a, 1), "e1000 BAR1");
    ensure!(
        g,
        matches!(io, Bar::Io { size: 0x40, .. }),
        "e1000 BAR1 is {io:?}"
    );

    *f = g;
    Ok(())
}
