//! The DMA sources the scenarios drive: QEMU's `edu`, an e1000 TX ring and a
//! hand-rolled NVMe admin Identify (the real NVMe driver lives in
//! `drivers/nvme`; a VT-d test must not depend on it).

use core::time::Duration;

use paranoid::mmio::{Mmio, RegisterIo};
use paranoid::phys::RamRegion;
use paranoid::poll::poll;
use paranoid::time::{Clock, Deadline};
use paranoid::Untrusted;

/// edu's PCI ids.
pub const EDU: (u16, u16) = (0x1234, 0x11e8);

/// edu's DMA registers (QEMU docs/specs/edu.txt).
mod edu_regs {
    pub const SRC: usize = 0x80;
    pub const DST: usize = 0x88;
    pub const COUNT: usize = 0x90;
    pub const CMD: usize = 0x98;
    pub const RUN: u64 = 1 << 0;
    pub const TO_RAM: u64 = 1 << 1;
}

/// The device-side buffer address of edu.
pub const EDU_BUFFER: u64 = 0x40000;

/// A DMA of edu that did not finish.
#[derive(Debug)]
#[expect(dead_code, reason = "read through Debug in the failure line")]
pub struct EduStuck {
    /// The last command register value.
    pub cmd: u64,
}

/// QEMU's edu device.
pub struct Edu {
    regs: Mmio,
}

impl Edu {
    /// Wraps edu's BAR 0.
    pub fn new(regs: Mmio) -> Self {
        Self { regs }
    }

    /// Arms a DMA of `count` bytes; `to_ram` copies the device buffer to
    /// `iova`, else `iova` to the device buffer. It happens 100 ms later.
    pub fn arm(&mut self, iova: u64, count: u64, to_ram: bool) {
        let (src, dst) = if to_ram {
            (EDU_BUFFER, iova)
        } else {
            (iova, EDU_BUFFER)
        };
        self.regs.write64(edu_regs::SRC, src);
        self.regs.write64(edu_regs::DST, dst);
        self.regs.write64(edu_regs::COUNT, count);
        let dir = if to_ram { edu_regs::TO_RAM } else { 0 };
        self.regs.write64(edu_regs::CMD, edu_regs::RUN | dir);
    }

    /// Waits for the armed DMA to complete (RUN clears).
    ///
    /// # Errors
    ///
    /// [`EduStuck`] after 2 s.
    pub fn wait(&mut self, clock: &impl Clock) -> Result<(), EduStuck> {
        let deadline = Deadline::after(clock, Duration::from_secs(2));
        let regs = &mut self.regs;
        poll(
            clock,
            deadline,
            || regs.read64(edu_regs::CMD),
            |c| !c.bit(0),
        )
        .map(|_| ())
        .map_err(|t| EduStuck {
            cmd: t.last.into_raw_for_report(),
        })
    }
}

/// e1000 registers for a TX storm.
mod e1000_regs {
    pub const TCTL: usize = 0x400;
    pub const TCTL_EN: u32 = 1 << 1;
    pub const TDBAL: usize = 0x3800;
    pub const TDBAH: usize = 0x3804;
    pub const TDLEN: usize = 0x3808;
    pub const TDH: usize = 0x3810;
    pub const TDT: usize = 0x3818;
}

/// An e1000 made to fetch TX descriptors from an IOVA nothing maps: one DMA
/// read, and one fault, per descriptor.
pub struct TxStorm {
    regs: Mmio,
    tail: u32,
}

impl TxStorm {
    /// Points the TX ring (256 descriptors) at `iova` and enables TX.
    pub fn new(mut regs: Mmio, iova: u64) -> Self {
        regs.write32(e1000_regs::TCTL, 0);
        regs.write32(e1000_regs::TDBAL, iova as u32);
        regs.write32(e1000_regs::TDBAH, (iova >> 32) as u32);
        regs.write32(e1000_regs::TDLEN, 256 * 16);
        regs.write32(e1000_regs::TDH, 0);
        regs.write32(e1000_regs::TDT, 0);
        regs.write32(e1000_regs::TCTL, e1000_regs::TCTL_EN);
        Self { regs, tail: 0 }
    }

    /// Queues 255 descriptors: the device fetches them at once.
    pub fn burst(&mut self) -> u32 {
        self.tail = (self.tail + 255) % 256;
        self.regs.write32(e1000_regs::TDT, self.tail);
        255
    }
}

/// Why the NVMe Identify failed.
#[derive(Debug)]
#[expect(dead_code, reason = "read through Debug in the failure line")]
pub enum NvmeError {
    /// CAP read all-ones or nonsense.
    BadCap(u64),
    /// CSTS.RDY did not reach the wanted value.
    Ready {
        /// Wanted RDY.
        want: bool,
        /// Last CSTS.
        csts: u32,
    },
    /// No completion by the deadline.
    NoCompletion {
        /// Last completion dword 3.
        dw3: u32,
    },
    /// The command completed with an error status.
    Status(u32),
    /// The window's backing RAM is shorter than the three pages needed.
    WindowTooSmall {
        /// Its length in bytes.
        len: u64,
    },
}

/// What Identify Controller returned.
pub struct Identity {
    /// PCI vendor id from the data (0x1b36 for QEMU).
    pub vid: u16,
    /// First bytes of the serial number.
    pub serial: [u8; 8],
}

/// Reads the `u32` at `offset` of the window's backing RAM (what the device
/// wrote); all-ones outside it. The value stays untrusted.
fn peek32(ram: &RamRegion, offset: u64) -> Untrusted<u32> {
    Untrusted::new(ram.read_u32(offset).unwrap_or(u32::MAX))
}

/// Resets the controller and sends Identify Controller with its queues and
/// data buffer in the recovery window: `iova` (window) ↔ `ram` (its backing,
/// owned by the scenario), the three pages from there.
///
/// # Errors
///
/// [`NvmeError`].
pub fn identify(
    regs: &mut Mmio,
    clock: &impl Clock,
    iova: u64,
    ram: &mut RamRegion,
) -> Result<Identity, NvmeError> {
    let cap = regs.read64(0x00);
    let cap_raw = cap.into_raw_for_report();
    let cap = cap.not_all_ones().map_err(|_| NvmeError::BadCap(cap_raw))?;
    // CAP.TO in 500 ms units, floor 1 s, cap 10 s; CAP.DSTRD doorbell stride.
    let to = cap.field(24, 8).clamp_max(20).max(2) * 500;
    let stride = 4u64 << cap.field(32, 4).clamp_max(15);
    let ready = |regs: &mut Mmio, want: bool| {
        let deadline = Deadline::after(clock, Duration::from_millis(to));
        poll(clock, deadline, || regs.read32(0x1c), |c| c.bit(0) == want)
            .map(|_| ())
            .map_err(|t| NvmeError::Ready {
                want,
                csts: t.last.into_raw_for_report(),
            })
    };
    regs.write32(0x14, 0);
    ready(regs, false)?;
    let (sq, cq, data) = (0, 0x1000, 0x2000);
    if !ram.zero(0, 0x3000) {
        return Err(NvmeError::WindowTooSmall { len: ram.len() });
    }
    regs.write32(0x24, 3 << 16 | 3); // AQA: 4-entry admin queues
    regs.write64(0x28, iova); // ASQ
    regs.write64(0x30, iova + 0x1000); // ACQ
    regs.write32(0x14, 1 | 6 << 16 | 4 << 20); // CC: EN, IOSQES 64 B, IOCQES 16 B
    ready(regs, true)?;
    // Identify (opcode 0x06), CID 1, PRP1 = data page, CDW10.CNS = 1.
    // Inside the three pages checked above, and aligned: always written.
    ram.write_u32(sq, 0x06 | 1 << 16);
    ram.write_u64_aligned(sq + 24, iova + 0x2000);
    ram.write_u32(sq + 40, 1);
    regs.write32(0x1000, 1); // SQ0 tail doorbell
    let deadline = Deadline::after(clock, Duration::from_secs(1));
    let dw3 = poll(clock, deadline, || peek32(ram, cq + 12), |d| d.bit(16)).map_err(|t| {
        NvmeError::NoCompletion {
            dw3: t.last.into_raw_for_report(),
        }
    })?;
    regs.write32(0x1000 + stride as usize, 1); // CQ0 head doorbell
    let status = dw3.field(17, 15);
    if !status.is(0) {
        return Err(NvmeError::Status(status.into_raw_for_report()));
    }
    let vid = peek32(ram, data).into_raw_for_report() as u16;
    let mut serial = [0u8; 8];
    let lo = peek32(ram, data + 4).into_raw_for_report().to_le_bytes();
    let hi = peek32(ram, data + 8).into_raw_for_report().to_le_bytes();
    serial[..4].copy_from_slice(&lo);
    serial[4..].copy_from_slice(&hi);
    // Leave it disabled: nothing of ours stays in flight.
    regs.write32(0x14, 0);
    let _ = ready(regs, false);
    Ok(Identity { vid, serial })
}
