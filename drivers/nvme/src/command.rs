//! Submission and completion queue entries (NVMe 1.4, 4.2 and 4.6), opcodes and
//! the status field.

use paranoid::Untrusted;

/// Size of a submission queue entry (CC.IOSQES = 6).
pub const SQE_SIZE: usize = 64;
/// Size of a completion queue entry (CC.IOCQES = 4).
pub const CQE_SIZE: usize = 16;
/// log2 of [`SQE_SIZE`].
pub const SQE_SIZE_LOG2: u64 = 6;
/// log2 of [`CQE_SIZE`].
pub const CQE_SIZE_LOG2: u64 = 4;

/// Admin command opcodes (NVMe 1.4, Figure 139).
pub mod admin {
    /// Delete I/O Submission Queue.
    pub const DELETE_IO_SQ: u8 = 0x00;
    /// Create I/O Submission Queue.
    pub const CREATE_IO_SQ: u8 = 0x01;
    /// Delete I/O Completion Queue.
    pub const DELETE_IO_CQ: u8 = 0x04;
    /// Create I/O Completion Queue.
    pub const CREATE_IO_CQ: u8 = 0x05;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Abort.
    pub const ABORT: u8 = 0x08;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
}

/// Feature identifiers (NVMe 1.4, Figure 271).
pub mod feature {
    /// Number of Queues.
    pub const NUMBER_OF_QUEUES: u32 = 0x07;
}

/// NVM command set opcodes (NVMe 1.4, Figure 346).
pub mod nvm {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
}

/// Identify CNS values (NVMe 1.4, Figure 244).
pub mod cns {
    /// Identify Namespace data structure for the given NSID.
    pub const NAMESPACE: u32 = 0x00;
    /// Identify Controller data structure.
    pub const CONTROLLER: u32 = 0x01;
    /// Active Namespace ID list (ids above the given NSID).
    pub const ACTIVE_NAMESPACES: u32 = 0x02;
}

/// A submission queue entry being built: sixteen dwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Command {
    dw: [u32; 16],
}

impl Command {
    /// A command with `opcode`, PRPs for data (PSDT = 0), everything else zero.
    pub const fn new(opcode: u8) -> Self {
        let mut dw = [0; 16];
        dw[0] = opcode as u32;
        Self { dw }
    }

    /// Sets the namespace identifier (CDW1).
    pub const fn nsid(mut self, nsid: u32) -> Self {
        self.dw[1] = nsid;
        self
    }

    /// Sets PRP entries 1 and 2 (CDW6..9).
    pub const fn prp(mut self, prp1: u64, prp2: u64) -> Self {
        self.dw[6] = prp1 as u32;
        self.dw[7] = (prp1 >> 32) as u32;
        self.dw[8] = prp2 as u32;
        self.dw[9] = (prp2 >> 32) as u32;
        self
    }

    /// Sets PRP entries 1 and 2 from window addresses (PRP2 zero when
    /// absent): the moment an [`Iova`](paranoid::dma::Iova) becomes bytes of
    /// the submission queue entry.
    ///
    /// Both entries come from one window: an address of another window is
    /// rejected at compile time.
    ///
    /// ```compile_fail,E0308
    /// use paranoid::dma::{Iova, Window};
    /// use paranoid_nvme::command::Command;
    /// struct Normal;
    /// impl Window for Normal { const NAME: &'static str = "normal"; const BASE: u64 = 0x1000_0000; const SIZE: u64 = 0x10_0000; }
    /// struct Recovery;
    /// impl Window for Recovery { const NAME: &'static str = "recovery"; const BASE: u64 = 0x7f_fff0_0000; const SIZE: u64 = 0x10_0000; }
    /// fn mixed(data: Iova<Recovery>, stale: Iova<Normal>) -> Command {
    ///     Command::new(0x01).prps(data, Some(stale))
    /// }
    /// ```
    pub const fn prps<W: paranoid::dma::Window>(
        self,
        prp1: paranoid::dma::Iova<W>,
        prp2: Option<paranoid::dma::Iova<W>>,
    ) -> Self {
        let prp2 = match prp2 {
            Some(p) => p.get(),
            None => 0,
        };
        self.prp(prp1.get(), prp2)
    }

    /// Sets command dword `n` (10..=15); other indexes are left alone.
    pub fn cdw(mut self, n: usize, value: u32) -> Self {
        if (10..16).contains(&n) {
            if let Some(d) = self.dw.get_mut(n) {
                *d = value;
            }
        }
        self
    }

    /// Sets the command identifier (CDW0 bits 31:16).
    pub fn set_cid(&mut self, cid: u16) {
        self.dw[0] = (self.dw[0] & 0xffff) | u32::from(cid) << 16;
    }

    /// The opcode.
    pub const fn opcode(&self) -> u8 {
        self.dw[0] as u8
    }

    /// The command identifier.
    pub const fn cid(&self) -> u16 {
        (self.dw[0] >> 16) as u16
    }

    /// Dword `n` (0 when out of range).
    pub fn dword(&self, n: usize) -> u32 {
        self.dw.get(n).copied().unwrap_or(0)
    }

    /// The entry as it sits in the queue (little endian).
    pub fn to_bytes(&self) -> [u8; SQE_SIZE] {
        let mut out = [0u8; SQE_SIZE];
        for (chunk, d) in out.chunks_exact_mut(4).zip(self.dw.iter()) {
            chunk.copy_from_slice(&d.to_le_bytes());
        }
        out
    }

    /// Parses an entry (the device model reads commands with this).
    pub fn from_bytes(bytes: &[u8; SQE_SIZE]) -> Self {
        let mut dw = [0u32; 16];
        for (d, chunk) in dw.iter_mut().zip(bytes.chunks_exact(4)) {
            let mut b = [0u8; 4];
            b.copy_from_slice(chunk);
            *d = u32::from_le_bytes(b);
        }
        Self { dw }
    }
}

/// A completion queue entry as the device wrote it: every field untrusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawCompletion {
    dw: [u32; 4],
}

impl RawCompletion {
    /// Wraps the four dwords of an entry.
    pub const fn new(dw: [u32; 4]) -> Self {
        Self { dw }
    }

    /// Builds an entry (device model side).
    pub fn build(dw0: u32, sq_head: u16, sq_id: u16, cid: u16, phase: bool, status: u16) -> Self {
        Self {
            dw: [
                dw0,
                0,
                u32::from(sq_head) | u32::from(sq_id) << 16,
                u32::from(cid) | u32::from(phase) << 16 | u32::from(status & 0x7fff) << 17,
            ],
        }
    }

    /// The entry as bytes (little endian).
    pub fn to_bytes(&self) -> [u8; CQE_SIZE] {
        let mut out = [0u8; CQE_SIZE];
        for (chunk, d) in out.chunks_exact_mut(4).zip(self.dw.iter()) {
            chunk.copy_from_slice(&d.to_le_bytes());
        }
        out
    }

    /// The raw dwords (tests, fuzzing, reports).
    pub const fn dwords(&self) -> [u32; 4] {
        self.dw
    }

    /// Command specific DW0.
    pub fn dw0(&self) -> Untrusted<u32> {
        Untrusted::new(self.dw[0])
    }

    /// SQ Head Pointer.
    pub fn sq_head(&self) -> Untrusted<u16> {
        Untrusted::new(self.dw[2] as u16)
    }

    /// SQ Identifier.
    pub fn sq_id(&self) -> Untrusted<u16> {
        Untrusted::new((self.dw[2] >> 16) as u16)
    }

    /// Command Identifier.
    pub fn cid(&self) -> Untrusted<u16> {
        Untrusted::new(self.dw[3] as u16)
    }

    /// Phase Tag (a bool cannot index anything).
    pub fn phase(&self) -> bool {
        self.dw[3] & (1 << 16) != 0
    }

    /// The 15-bit status field (DW3 bits 31:17).
    pub fn status(&self) -> Untrusted<u16> {
        Untrusted::new((self.dw[3] >> 17) as u16)
    }
}

/// A validated status field (NVMe 1.4, Figure 124): no reserved status code type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(u16);

/// Status code types (SCT).
pub mod sct {
    /// Generic Command Status.
    pub const GENERIC: u8 = 0;
    /// Command Specific Status.
    pub const COMMAND_SPECIFIC: u8 = 1;
    /// Media and Data Integrity Errors.
    pub const MEDIA: u8 = 2;
    /// Path Related Status.
    pub const PATH: u8 = 3;
    /// Vendor Specific.
    pub const VENDOR: u8 = 7;
}

/// Generic status codes used by the driver and the model.
pub mod sc {
    /// Successful Completion.
    pub const SUCCESS: u8 = 0x00;
    /// Invalid Command Opcode.
    pub const INVALID_OPCODE: u8 = 0x01;
    /// Invalid Field in Command.
    pub const INVALID_FIELD: u8 = 0x02;
    /// Data Transfer Error.
    pub const DATA_TRANSFER_ERROR: u8 = 0x04;
    /// Command Abort Requested.
    pub const ABORT_REQUESTED: u8 = 0x07;
    /// Invalid Namespace or Format.
    pub const INVALID_NAMESPACE: u8 = 0x0b;
    /// LBA Out of Range.
    pub const LBA_OUT_OF_RANGE: u8 = 0x80;
    /// Command specific: Invalid Queue Identifier.
    pub const INVALID_QUEUE_ID: u8 = 0x01;
    /// Command specific: Invalid Queue Size.
    pub const INVALID_QUEUE_SIZE: u8 = 0x02;
    /// Command specific: Completion Queue Invalid.
    pub const INVALID_CQ: u8 = 0x00;
}

impl Status {
    /// Validates a status field: SCT 4..=6 is reserved.
    ///
    /// # Errors
    ///
    /// The raw field when it uses a reserved SCT.
    pub fn validate(raw: Untrusted<u16>) -> Result<Self, u16> {
        raw.validate(|v| {
            let v = v & 0x7fff;
            match (v >> 8) & 0x7 {
                4..=6 => Err(v),
                _ => Ok(Self(v)),
            }
        })
    }

    /// Builds a status (device model side).
    pub const fn new(sct: u8, sc: u8) -> Self {
        Self(((sct as u16 & 7) << 8) | sc as u16)
    }

    /// The raw 15-bit field.
    pub const fn raw(self) -> u16 {
        self.0
    }

    /// Status Code.
    pub const fn sc(self) -> u8 {
        self.0 as u8
    }

    /// Status Code Type.
    pub const fn sct(self) -> u8 {
        ((self.0 >> 8) & 7) as u8
    }

    /// Do Not Retry.
    pub const fn dnr(self) -> bool {
        self.0 & (1 << 14) != 0
    }

    /// True for Successful Completion.
    pub const fn is_success(self) -> bool {
        self.sc() == sc::SUCCESS && self.sct() == sct::GENERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_round_trips_and_cid_is_in_dw0() {
        let mut c = Command::new(nvm::WRITE)
            .nsid(1)
            .prp(0x1234_5678_9000, 0xabc0_0000)
            .cdw(10, 7)
            .cdw(12, 3)
            .cdw(3, 0xdead);
        c.set_cid(0x4242);
        assert_eq!(c.dword(0), 0x4242_0001);
        assert_eq!(c.dword(3), 0, "cdw() only touches 10..=15");
        let back = Command::from_bytes(&c.to_bytes());
        assert_eq!(back, c);
        assert_eq!(back.cid(), 0x4242);
    }

    #[test]
    fn completion_fields_and_status_validation() {
        let e = RawCompletion::build(9, 5, 1, 77, true, Status::new(1, 2).raw());
        assert_eq!(e.sq_head().in_range(0..=10), Ok(5));
        assert_eq!(e.sq_id().in_range(0..=10), Ok(1));
        assert_eq!(e.cid().in_range(0..=100), Ok(77));
        assert!(e.phase());
        let s = Status::validate(e.status()).unwrap();
        assert_eq!((s.sct(), s.sc()), (1, 2));
        assert!(!s.is_success());
        assert!(Status::validate(Untrusted::new(0x4 << 8)).is_err());
        assert!(Status::validate(Untrusted::new(0x7 << 8)).is_ok());
        let r = RawCompletion::new(e.dwords());
        assert_eq!(r.to_bytes(), e.to_bytes());
    }

    #[test]
    fn status_fields_are_sc_sct_and_dnr() {
        // DNR is bit 14 of the status field, beside More (13) and CRD (12:11).
        let s = Status::validate(Untrusted::new(1 << 14 | 2 << 8 | 0x81)).unwrap();
        assert_eq!((s.sct(), s.sc(), s.dnr()), (2, 0x81, true));
        let s = Status::validate(Untrusted::new(1 << 13 | 3 << 11 | 2 << 8 | 0x81)).unwrap();
        assert_eq!((s.sct(), s.sc(), s.dnr()), (2, 0x81, false));
    }
}
