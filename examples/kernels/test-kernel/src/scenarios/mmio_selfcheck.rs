//! `mmio-selfcheck`: the MMIO and port backends on real device registers.
//!
//! - NVMe BAR0: a 64-bit read of CAP equals its two 32-bit halves; VS reads
//!   1.4.0; an access past the block or misaligned reads all-ones (no access).
//! - e1000 BAR0: a read/write register (RDBAL) takes a value and gives it back;
//!   STATUS read through MMIO equals STATUS read through the I/O BAR's
//!   IOADDR/IODATA window (port I/O, 82540EM manual 13.2.2).

use paranoid::mmio::RegisterIo;
use paranoid::pci::bar::Bar;
use paranoid::pci::command::{self, Command};
use paranoid::pci::{bar, ConfigAccess};
use paranoid::port::Port;
use paranoid_boot::BootInfo;

use crate::platform::{self, E1000, NVME};
use crate::report::{fail, Fields, Outcome};
use crate::{check, ensure};

/// NVMe CAP (64 bits) and VS.
const NVME_CAP: usize = 0x00;
const NVME_VS: usize = 0x08;
/// e1000 STATUS and RDBAL (receive descriptor base low).
const E1000_STATUS: usize = 0x0008;
const E1000_RDBAL: usize = 0x2800;

/// Runs the checks.
pub fn run(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let mut ecam = check!(f, platform::ecam(boot), "ECAM");

    let nvme = check!(f, platform::find(&mut ecam, NVME), "NVMe");
    let (mut regs, _) = check!(f, platform::map_bar0(&mut ecam, nvme.address), "NVMe BAR0");
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

    let nic = check!(f, platform::find(&mut ecam, E1000), "e1000");
    let (mut nic_regs, _) = check!(f, platform::map_bar0(&mut ecam, nic.address), "e1000 BAR0");
    let saved = nic_regs.read32(E1000_RDBAL).into_raw_for_report();
    nic_regs.write32(E1000_RDBAL, 0x1234_5670);
    let back = nic_regs.read32(E1000_RDBAL).into_raw_for_report();
    nic_regs.write32(E1000_RDBAL, saved);
    f.add("rdbal_readback", format_args!("{back:#x}"));
    ensure!(f, back & !0xf == 0x1234_5670, "RDBAL read back {back:#x}");

    // Port I/O through the I/O BAR.
    let io = check!(f, bar::size(&mut ecam, nic.address, 1), "e1000 BAR1");
    let Bar::Io {
        base,
        size: io_size,
    } = io
    else {
        return Err(fail(f, format_args!("e1000 BAR1 is {io:?}")));
    };
    ensure!(
        f,
        io_size >= 8 && base != 0 && base + 8 <= 0x1_0000,
        "e1000 I/O BAR {base:#x}+{io_size:#x}"
    );
    check!(
        f,
        command::update(&mut ecam, nic.address, Command::IO_SPACE, Command::empty()),
        "I/O decode"
    );
    let port = base as u16;
    // SAFETY: the e1000's I/O BAR (sized above) belongs to this scenario; IOADDR
    // and IODATA only select and access the device's own registers.
    let (mut ioaddr, mut iodata) = unsafe { (Port::<u32>::new(port), Port::<u32>::new(port + 4)) };
    ioaddr.write(E1000_STATUS as u32);
    let via_port = iodata.read().into_raw_for_report();
    let via_mmio = nic_regs.read32(E1000_STATUS).into_raw_for_report();
    f.add("status", format_args!("{via_mmio:#x}"));
    ensure!(
        f,
        via_port == via_mmio,
        "STATUS via port {via_port:#x}, via MMIO {via_mmio:#x}"
    );
    let _ = ecam.read16(nic.address, 0);
    Ok(f)
}
