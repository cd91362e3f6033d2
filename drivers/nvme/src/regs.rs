//! Controller registers (NVMe 1.4, 3.1), declared apart from the logic.
//!
//! [`Registers`] wraps a [`RegisterIo`] with one small typed accessor per
//! register; every read comes back [`Untrusted`]. Fields are [`paranoid::regs::Field`]s named as
//! in the spec (`cap::TO` is CAP.TO). 64-bit registers are written low dword
//! first, then high, as the spec allows and as Linux does (`lo_hi_writeq`).

use paranoid::mmio::RegisterIo;
use paranoid::Untrusted;

/// Registers of the controller, for error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    /// Controller Capabilities (0x00, 64 bits).
    Cap,
    /// Version (0x08).
    Vs,
    /// Interrupt Mask Set (0x0c).
    Intms,
    /// Controller Configuration (0x14).
    Cc,
    /// Controller Status (0x1c).
    Csts,
    /// Admin Queue Attributes (0x24).
    Aqa,
    /// Admin Submission Queue Base Address (0x28, 64 bits).
    Asq,
    /// Admin Completion Queue Base Address (0x30, 64 bits).
    Acq,
    /// A submission or completion queue doorbell (0x1000 + stride).
    Doorbell,
}

impl Register {
    /// Spec name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Cap => "CAP",
            Self::Vs => "VS",
            Self::Intms => "INTMS",
            Self::Cc => "CC",
            Self::Csts => "CSTS",
            Self::Aqa => "AQA",
            Self::Asq => "ASQ",
            Self::Acq => "ACQ",
            Self::Doorbell => "doorbell",
        }
    }
}

/// Register offsets (NVMe 1.4, Figure 78).
pub mod offset {
    /// CAP, 64 bits.
    pub const CAP: usize = 0x00;
    /// VS.
    pub const VS: usize = 0x08;
    /// INTMS.
    pub const INTMS: usize = 0x0c;
    /// INTMC.
    pub const INTMC: usize = 0x10;
    /// CC.
    pub const CC: usize = 0x14;
    /// CSTS.
    pub const CSTS: usize = 0x1c;
    /// NSSR.
    pub const NSSR: usize = 0x20;
    /// AQA.
    pub const AQA: usize = 0x24;
    /// ASQ, 64 bits.
    pub const ASQ: usize = 0x28;
    /// ACQ, 64 bits.
    pub const ACQ: usize = 0x30;
    /// First doorbell (SQ 0 tail).
    pub const DOORBELLS: usize = 0x1000;
}

paranoid::register_block! {
    /// NVMe controller properties (NVMe 1.4, 3.1, Figure 78); the doorbells
    /// follow at 0x1000 with a stride of `4 << CAP.DSTRD`.
    pub struct ControllerRegs, size = 0x1000;

    /// Controller Capabilities.
    CAP @ 0x00: u64, ro {
        /// Maximum Queue Entries Supported (0's based).
        MQES: 0..=15,
        /// Contiguous Queues Required.
        CQR: 16,
        /// Timeout: worst-case CSTS.RDY transition time, in 500 ms units.
        TO: 24..=31,
        /// Doorbell Stride: doorbells are `4 << DSTRD` bytes apart.
        DSTRD: 32..=35,
        /// NVM Subsystem Reset Supported.
        NSSRS: 36,
        /// Command Sets Supported (bit 0: NVM command set).
        CSS: 37..=44,
        /// Memory Page Size Minimum (`2 ^ (12 + MPSMIN)`).
        MPSMIN: 48..=51,
        /// Memory Page Size Maximum.
        MPSMAX: 52..=55,
    }
    /// Version.
    VS @ 0x08: u32, ro {
        /// Tertiary version.
        TER: 0..=7,
        /// Minor version.
        MNR: 8..=15,
        /// Major version.
        MJR: 16..=31,
    }
    /// Interrupt Mask Set.
    INTMS @ 0x0c: u32, wo;
    /// Interrupt Mask Clear.
    INTMC @ 0x10: u32, wo;
    /// Controller Configuration.
    CC @ 0x14: u32, rw, reset = 0 {
        /// Enable.
        EN: 0,
        /// I/O Command Set Selected (0: NVM).
        CSS: 4..=6,
        /// Memory Page Size (`2 ^ (12 + MPS)`).
        MPS: 7..=10,
        /// Arbitration Mechanism Selected.
        AMS: 11..=13,
        /// Shutdown Notification (1: normal, 2: abrupt).
        SHN: 14..=15,
        /// I/O Submission Queue Entry Size (log2 bytes).
        IOSQES: 16..=19,
        /// I/O Completion Queue Entry Size (log2 bytes).
        IOCQES: 20..=23,
    }
    /// Controller Status.
    CSTS @ 0x1c: u32, ro {
        /// Ready.
        RDY: 0,
        /// Controller Fatal Status.
        CFS: 1,
        /// Shutdown Status (0 normal, 1 in progress, 2 complete).
        SHST: 2..=3,
        /// NVM Subsystem Reset Occurred.
        NSSRO: 4,
        /// Processing Paused.
        PP: 5,
    }
    /// Admin Queue Attributes (both sizes 0's based).
    AQA @ 0x24: u32, rw, reset = 0 {
        /// Admin Submission Queue Size.
        ASQS: 0..=11,
        /// Admin Completion Queue Size.
        ACQS: 16..=27,
    }
    /// Admin Submission Queue Base Address, low dword (written first, as
    /// Linux's `lo_hi_writeq` does: some controllers take no 64-bit writes).
    ASQ @ 0x28: u32, rw, reset = 0;
    /// Admin Submission Queue Base Address, high dword.
    ASQ_HI @ 0x2c: u32, rw, reset = 0;
    /// Admin Completion Queue Base Address, low dword.
    ACQ @ 0x30: u32, rw, reset = 0;
    /// Admin Completion Queue Base Address, high dword.
    ACQ_HI @ 0x34: u32, rw, reset = 0;
}

pub use controller_regs::{aqa, cap, cc, csts, vs};

/// CC.SHN value for a normal shutdown.
pub const SHN_NORMAL: u32 = 1;
/// CSTS.SHST value: shutdown processing complete.
pub const SHST_COMPLETE: u32 = 2;

/// Typed access to the controller's registers.
pub struct Registers<R: RegisterIo> {
    block: ControllerRegs<R>,
    /// Bytes between doorbells (`4 << CAP.DSTRD`), once validated.
    stride: usize,
}

impl<R: RegisterIo> Registers<R> {
    /// Wraps a register block (BAR0); doorbell stride 4 until
    /// [`set_doorbell_stride`](Self::set_doorbell_stride) is called.
    pub fn new(io: R) -> Self {
        Self {
            block: ControllerRegs::new(io),
            stride: 4,
        }
    }

    /// The underlying block.
    pub fn io(&mut self) -> &mut R {
        self.block.io()
    }

    /// Size of the whole BAR in bytes (registers and doorbells).
    pub fn size(&mut self) -> usize {
        self.block.io().size()
    }

    /// CAP.
    pub fn cap(&mut self) -> Untrusted<u64> {
        self.block.cap().read().untrusted()
    }

    /// VS.
    pub fn vs(&mut self) -> Untrusted<u32> {
        self.block.vs().read().untrusted()
    }

    /// CC.
    pub fn cc(&mut self) -> Untrusted<u32> {
        self.block.cc().read().untrusted()
    }

    /// Writes CC.
    pub fn set_cc(&mut self, value: u32) {
        self.block.cc().write(value)
    }

    /// CSTS.
    pub fn csts(&mut self) -> Untrusted<u32> {
        self.block.csts().read().untrusted()
    }

    /// Writes INTMS (masks the interrupt vectors whose bits are set).
    pub fn set_intms(&mut self, value: u32) {
        self.block.intms().write(value)
    }

    /// Writes AQA.
    pub fn set_aqa(&mut self, value: u32) {
        self.block.aqa().write(value)
    }

    /// Writes ASQ (low dword, then high).
    pub fn set_asq<W: paranoid::dma::Window>(&mut self, iova: paranoid::dma::Iova<W>) {
        let iova = iova.get();
        self.block.asq().write(iova as u32);
        self.block.asq_hi().write((iova >> 32) as u32);
    }

    /// Writes ACQ (low dword, then high).
    pub fn set_acq<W: paranoid::dma::Window>(&mut self, iova: paranoid::dma::Iova<W>) {
        let iova = iova.get();
        self.block.acq().write(iova as u32);
        self.block.acq_hi().write((iova >> 32) as u32);
    }

    /// Sets the doorbell stride from a validated CAP.DSTRD.
    pub fn set_doorbell_stride(&mut self, dstrd: u32) {
        self.stride = 4usize << dstrd.min(15);
    }

    /// Offset of the doorbell of queue `qid` (`cq`: the completion queue head
    /// doorbell, else the submission queue tail doorbell), NVMe 1.4, 3.1.10.
    pub fn doorbell_offset(&self, qid: u16, cq: bool) -> usize {
        offset::DOORBELLS + (2 * usize::from(qid) + usize::from(cq)) * self.stride
    }

    /// Rings the SQ tail doorbell of `qid`.
    pub fn ring_sq_tail(&mut self, qid: u16, tail: u16) {
        let at = self.doorbell_offset(qid, false);
        self.block.io().write32(at, u32::from(tail))
    }

    /// Rings the CQ head doorbell of `qid`.
    pub fn ring_cq_head(&mut self, qid: u16, head: u16) {
        let at = self.doorbell_offset(qid, true);
        self.block.io().write32(at, u32::from(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_extract_and_encode() {
        let cap_value = Untrusted::new(0x0000_0030_0f01_07ffu64);
        assert_eq!(cap::MQES.get(cap_value).in_range(0..=u64::MAX), Ok(0x7ff));
        assert_eq!(cap::TO.get(cap_value).in_range(0..=255), Ok(0x0f));
        assert_eq!(cap::CSS.get(cap_value).in_range(0..=255), Ok(0x01));
        assert_eq!(cc::IOSQES.bits(6) | cc::IOCQES.bits(4), 0x46_0000);
        assert_eq!(cc::SHN.bits(SHN_NORMAL), 0x4000);
        assert_eq!(aqa::ACQS.bits(0x1fff), 0x0fff_0000, "truncated to 12 bits");
        assert_eq!(controller_regs::asq_hi::OFFSET, 0x2c);
    }
}
