//! Controller registers (NVMe 1.4, 3.1), declared apart from the logic.
//!
//! [`Registers`] wraps a [`RegisterIo`] with one small typed accessor per
//! register; every read comes back [`Untrusted`]. Fields are [`Field`]s named as
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

/// A bit field of a register: `width` bits at `shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Spec name (`CAP.TO`).
    pub name: &'static str,
    /// Lowest bit.
    pub shift: u32,
    /// Width in bits.
    pub width: u32,
}

impl Field {
    const fn new(name: &'static str, shift: u32, width: u32) -> Self {
        Self { name, shift, width }
    }

    /// Extracts the field from an untrusted register value; it stays untrusted.
    #[inline(always)]
    pub fn get<T: paranoid::untrusted::DeviceInt>(self, reg: Untrusted<T>) -> Untrusted<T> {
        reg.field(self.shift, self.width)
    }

    /// The field set to `value` (truncated to the width), other bits zero.
    #[inline(always)]
    pub const fn set(self, value: u64) -> u64 {
        let mask = if self.width >= 64 {
            u64::MAX
        } else {
            (1u64 << self.width) - 1
        };
        (value & mask) << self.shift
    }
}

/// CAP fields (NVMe 1.4, 3.1.1).
pub mod cap {
    use super::Field;
    /// Maximum Queue Entries Supported (0's based).
    pub const MQES: Field = Field::new("CAP.MQES", 0, 16);
    /// Contiguous Queues Required.
    pub const CQR: Field = Field::new("CAP.CQR", 16, 1);
    /// Timeout, in 500 ms units: worst case time for CSTS.RDY to change.
    pub const TO: Field = Field::new("CAP.TO", 24, 8);
    /// Doorbell Stride: doorbells are `4 << DSTRD` bytes apart.
    pub const DSTRD: Field = Field::new("CAP.DSTRD", 32, 4);
    /// NVM Subsystem Reset Supported.
    pub const NSSRS: Field = Field::new("CAP.NSSRS", 36, 1);
    /// Command Sets Supported (bit 0: NVM command set).
    pub const CSS: Field = Field::new("CAP.CSS", 37, 8);
    /// Memory Page Size Minimum (`2 ^ (12 + MPSMIN)`).
    pub const MPSMIN: Field = Field::new("CAP.MPSMIN", 48, 4);
    /// Memory Page Size Maximum.
    pub const MPSMAX: Field = Field::new("CAP.MPSMAX", 52, 4);
}

/// CC fields (NVMe 1.4, 3.1.5).
pub mod cc {
    use super::Field;
    /// Enable.
    pub const EN: Field = Field::new("CC.EN", 0, 1);
    /// I/O Command Set Selected (0: NVM).
    pub const CSS: Field = Field::new("CC.CSS", 4, 3);
    /// Memory Page Size (`2 ^ (12 + MPS)`).
    pub const MPS: Field = Field::new("CC.MPS", 7, 4);
    /// Arbitration Mechanism Selected.
    pub const AMS: Field = Field::new("CC.AMS", 11, 3);
    /// Shutdown Notification (1: normal, 2: abrupt).
    pub const SHN: Field = Field::new("CC.SHN", 14, 2);
    /// I/O Submission Queue Entry Size (log2 bytes).
    pub const IOSQES: Field = Field::new("CC.IOSQES", 16, 4);
    /// I/O Completion Queue Entry Size (log2 bytes).
    pub const IOCQES: Field = Field::new("CC.IOCQES", 20, 4);
    /// CC.SHN value for a normal shutdown.
    pub const SHN_NORMAL: u64 = 1;
}

/// CSTS fields (NVMe 1.4, 3.1.6).
pub mod csts {
    use super::Field;
    /// Ready.
    pub const RDY: Field = Field::new("CSTS.RDY", 0, 1);
    /// Controller Fatal Status.
    pub const CFS: Field = Field::new("CSTS.CFS", 1, 1);
    /// Shutdown Status (0 normal, 1 in progress, 2 complete).
    pub const SHST: Field = Field::new("CSTS.SHST", 2, 2);
    /// CSTS.SHST value: shutdown processing complete.
    pub const SHST_COMPLETE: u32 = 2;
}

/// AQA fields (NVMe 1.4, 3.1.8); both sizes are 0's based.
pub mod aqa {
    use super::Field;
    /// Admin Submission Queue Size.
    pub const ASQS: Field = Field::new("AQA.ASQS", 0, 12);
    /// Admin Completion Queue Size.
    pub const ACQS: Field = Field::new("AQA.ACQS", 16, 12);
}

/// Typed access to the controller's registers.
pub struct Registers<R> {
    io: R,
    /// Bytes between doorbells (`4 << CAP.DSTRD`), once validated.
    stride: usize,
}

impl<R: RegisterIo> Registers<R> {
    /// Wraps a register block (BAR0); doorbell stride 4 until
    /// [`set_doorbell_stride`](Self::set_doorbell_stride) is called.
    pub fn new(io: R) -> Self {
        Self { io, stride: 4 }
    }

    /// The underlying block.
    pub fn io(&mut self) -> &mut R {
        &mut self.io
    }

    /// Size of the register block in bytes.
    pub fn size(&self) -> usize {
        self.io.size()
    }

    /// CAP.
    pub fn cap(&mut self) -> Untrusted<u64> {
        self.io.read64(offset::CAP)
    }

    /// VS.
    pub fn vs(&mut self) -> Untrusted<u32> {
        self.io.read32(offset::VS)
    }

    /// CC.
    pub fn cc(&mut self) -> Untrusted<u32> {
        self.io.read32(offset::CC)
    }

    /// Writes CC.
    pub fn set_cc(&mut self, value: u32) {
        self.io.write32(offset::CC, value)
    }

    /// CSTS.
    pub fn csts(&mut self) -> Untrusted<u32> {
        self.io.read32(offset::CSTS)
    }

    /// Writes INTMS (masks the interrupt vectors whose bits are set).
    pub fn set_intms(&mut self, value: u32) {
        self.io.write32(offset::INTMS, value)
    }

    /// Writes AQA.
    pub fn set_aqa(&mut self, value: u32) {
        self.io.write32(offset::AQA, value)
    }

    /// Writes ASQ (low dword, then high).
    pub fn set_asq(&mut self, iova: u64) {
        self.io.write32(offset::ASQ, iova as u32);
        self.io.write32(offset::ASQ + 4, (iova >> 32) as u32);
    }

    /// Writes ACQ (low dword, then high).
    pub fn set_acq(&mut self, iova: u64) {
        self.io.write32(offset::ACQ, iova as u32);
        self.io.write32(offset::ACQ + 4, (iova >> 32) as u32);
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
        self.io.write32(at, u32::from(tail))
    }

    /// Rings the CQ head doorbell of `qid`.
    pub fn ring_cq_head(&mut self, qid: u16, head: u16) {
        let at = self.doorbell_offset(qid, true);
        self.io.write32(at, u32::from(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_extract_and_set() {
        let cap = Untrusted::new(0x0000_0030_0f01_07ffu64 | (1 << 37));
        assert_eq!(cap::MQES.get(cap).in_range(0..=u64::MAX), Ok(0x7ff));
        assert_eq!(cap::TO.get(cap).in_range(0..=255), Ok(0x0f));
        assert_eq!(cap::CSS.get(cap).in_range(0..=255), Ok(0x01));
        assert_eq!(cc::IOSQES.set(6) | cc::IOCQES.set(4), 0x46_0000);
        assert_eq!(cc::SHN.set(cc::SHN_NORMAL), 0x4000);
        assert_eq!(aqa::ACQS.set(0x1fff), 0x0fff_0000, "truncated to 12 bits");
    }
}
