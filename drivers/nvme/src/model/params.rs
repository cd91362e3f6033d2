//! What the modelled controller reports (QEMU's defaults) and how it misbehaves.

use std::time::Duration;

/// Identity and capabilities, as QEMU 7.2's `nvme` device reports them by
/// default (`hw/nvme/ctrl.c`, `nvme_init_ctrl`): 1b36:0010, VS 1.4, CAP.MQES
/// 2047, CAP.TO 15 (7.5 s), CAP.DSTRD 0, CAP.CQR 1, CAP.CSS NVM + I/O command
/// sets, MPSMIN 0, MPSMAX 4; MDTS 7; SQES 0x66, CQES 0x44; 256 namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// CAP.MQES (0's based).
    pub mqes: u16,
    /// CAP.TO (500 ms units).
    pub to: u8,
    /// CAP.DSTRD.
    pub dstrd: u8,
    /// CAP.CSS.
    pub css: u8,
    /// CAP.MPSMIN.
    pub mpsmin: u8,
    /// CAP.MPSMAX.
    pub mpsmax: u8,
    /// VS.
    pub vs: u32,
    /// Bytes of BAR0.
    pub bar_size: usize,
    /// I/O queue pairs the controller supports.
    pub max_ioqpairs: u16,
    /// Identify Controller MDTS.
    pub mdts: u8,
    /// Identify Controller SQES.
    pub sqes: u8,
    /// Identify Controller CQES.
    pub cqes: u8,
    /// Identify Controller NN.
    pub nn: u32,
    /// Identify Controller RTD3E (µs).
    pub rtd3e: u32,
    /// Namespace 1 size in blocks (NSZE = NCAP = NUSE).
    pub nsze: u64,
    /// Namespace 1 LBA data size exponent (the format in use).
    pub lbads: u8,
    /// DW0 of the Set Features Number of Queues completion, instead of the
    /// grant (nonsense such as 0xffff_ffff).
    pub queues_granted: Option<u32>,
    /// I/O completions are held until this many wait, then posted newest
    /// first (out of order); an Abort or a reset posts or drops them. 0 or 1:
    /// in order.
    pub reorder_io: u16,
    /// Namespaces other than the default namespace 1 (an entry with nsid 1
    /// replaces it): each with its own size and LBA format, attached or not.
    pub namespaces: Vec<NamespaceParams>,
}

/// QEMU 7.2's LBA format table (`hw/nvme/ns.c`): NLBAF 7 (eight formats),
/// `(MS, LBADS)`: 512 and 4096-byte blocks with 0, 8, 16 or 64 bytes of
/// metadata.
pub const QEMU_LBAF: [(u16, u8); 8] = [
    (0, 9),
    (8, 9),
    (16, 9),
    (64, 9),
    (0, 12),
    (8, 12),
    (16, 12),
    (64, 12),
];

/// One namespace of the model, as QEMU's `nvme-ns` device sets it up
/// (`logical_block_size`, `ms`, `mset`, `pi`, `detached`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceParams {
    /// Namespace id (1..=NN).
    pub nsid: u32,
    /// Size in blocks (NSZE = NCAP = NUSE).
    pub nsze: u64,
    /// Index into [`QEMU_LBAF`] (FLBAS bits 3:0).
    pub format: u8,
    /// FLBAS bit 4: metadata at the end of each block (QEMU `mset=1`).
    pub extended: bool,
    /// DPS bits 2:0: protection information type (QEMU `pi=`), 0 = none.
    pub pi: u8,
    /// Attached to the controller (active); a detached one identifies as
    /// zeros and refuses I/O.
    pub attached: bool,
}

impl NamespaceParams {
    /// An attached namespace of `nsze` 512-byte blocks, no metadata.
    pub const fn lba512(nsid: u32, nsze: u64) -> Self {
        Self {
            nsid,
            nsze,
            format: 0,
            extended: false,
            pi: 0,
            attached: true,
        }
    }

    /// An attached namespace of `nsze` 4096-byte blocks, no metadata.
    pub const fn lba4096(nsid: u32, nsze: u64) -> Self {
        Self {
            format: 4,
            ..Self::lba512(nsid, nsze)
        }
    }

    /// The same namespace with `ms` bytes of metadata per block (8, 16 or
    /// 64), interleaved with the data when `extended`.
    pub const fn with_metadata(self, ms: u16, extended: bool) -> Self {
        let base = if self.format >= 4 { 4 } else { 0 };
        let step = match ms {
            0 => 0,
            8 => 1,
            16 => 2,
            _ => 3,
        };
        Self {
            format: base + step,
            extended,
            ..self
        }
    }

    /// The same namespace with protection information of type `pi` (1..=3;
    /// QEMU requires metadata of at least 8 bytes, so 8 are added if none).
    pub const fn with_pi(self, pi: u8) -> Self {
        let with_ms = if self.format % 4 == 0 {
            self.with_metadata(8, false)
        } else {
            self
        };
        Self { pi, ..with_ms }
    }

    /// The same namespace, detached (inactive).
    pub const fn detached(self) -> Self {
        Self {
            attached: false,
            ..self
        }
    }

    /// `(MS, LBADS)` of its format.
    pub fn lbaf(&self) -> (u16, u8) {
        QEMU_LBAF
            .get(usize::from(self.format))
            .copied()
            .unwrap_or((0, 9))
    }

    /// Bytes per block of data.
    pub fn block_bytes(&self) -> u64 {
        1 << self.lbaf().1
    }

    /// True when the driver can write it: no metadata, no protection.
    pub fn writable(&self) -> bool {
        self.lbaf().0 == 0 && self.pi == 0
    }
}

impl Default for Params {
    fn default() -> Self {
        Self {
            mqes: 2047,
            to: 0xf,
            dstrd: 0,
            css: 0x41,
            mpsmin: 0,
            mpsmax: 4,
            vs: 0x0001_0400,
            bar_size: 0x4000,
            max_ioqpairs: 64,
            mdts: 7,
            sqes: 0x66,
            cqes: 0x44,
            nn: 256,
            rtd3e: 0,
            nsze: 2048,
            lbads: 9,
            namespaces: Vec::new(),
            queues_granted: None,
            reorder_io: 0,
        }
    }
}

impl Params {
    /// CAP as the register reads.
    pub fn cap(&self) -> u64 {
        u64::from(self.mqes)
            | 1 << 16
            | u64::from(self.to) << 24
            | u64::from(self.dstrd & 0xf) << 32
            | u64::from(self.css) << 37
            | u64::from(self.mpsmin & 0xf) << 48
            | u64::from(self.mpsmax & 0xf) << 52
    }
}

/// How long a misbehaviour lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// Until the next controller reset (CC.EN 1 → 0).
    Transient,
    /// A controller reset does not clear it; FLR does.
    UntilFlr,
    /// Nothing clears it.
    Forever,
}

/// A malicious or buggy completion queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionFault {
    /// A command identifier the host never used.
    UnknownCid,
    /// The phase tag of the previous pass (the host cannot see the entry).
    WrongPhase,
    /// An SQ head pointer past the end of the queue.
    SqHeadOutOfRange,
    /// An SQ head pointer equal to the queue size: one past the last entry,
    /// the first value outside the queue.
    SqHeadAtQueueSize,
    /// An SQ head pointer inside the queue but past the host's tail: the
    /// controller claims to have fetched entries the host never submitted
    /// (in a 2-entry queue, where that value is the host's own head, the
    /// queue size instead).
    SqHeadPastTail,
    /// Another queue's SQ identifier.
    WrongSqId,
    /// A reserved status code type.
    ReservedStatus,
    /// The command is never completed (held until aborted or reset).
    Drop,
    /// The command fails with this status (SCT in bits 10:8, SC in bits
    /// 7:0): a device-side failure, not a lie (targeted tests only).
    Status(u16),
    /// The completion is posted twice.
    Duplicate,
    /// The entry is replaced by these four dwords (fuzzing); with
    /// `keep_phase` the phase tag is set to the one the host expects, so the
    /// host reads the entry.
    Raw {
        /// The entry's dwords.
        dw: [u32; 4],
        /// Force the expected phase tag.
        keep_phase: bool,
    },
}

/// Nonsense in Identify data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentifyFaults {
    /// MDTS reported instead of the real one.
    pub mdts: Option<u8>,
    /// SQES reported.
    pub sqes: Option<u8>,
    /// CQES reported.
    pub cqes: Option<u8>,
    /// NN reported.
    pub nn: Option<u32>,
    /// NSZE reported.
    pub nsze: Option<u64>,
    /// NCAP reported.
    pub ncap: Option<u64>,
    /// NLBAF reported.
    pub nlbaf: Option<u8>,
    /// FLBAS reported.
    pub flbas: Option<u8>,
    /// LBADS of the format in use reported.
    pub lbads: Option<u8>,
    /// Metadata size of the format in use reported.
    pub ms: Option<u16>,
}

/// Every way the model can misbehave; `Faults::default()` is a healthy device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// CC.EN 1 → 0: CSTS.RDY clears only after this long.
    pub reset_delay: Duration,
    /// CC.EN 0 → 1: CSTS.RDY sets only after this long.
    pub ready_delay: Duration,
    /// CSTS.RDY never clears after a disable.
    pub rdy_stuck: Option<Persist>,
    /// CSTS.RDY never sets after an enable.
    pub never_ready: Option<Persist>,
    /// While disabled, CSTS.RDY toggles with this period.
    pub rdy_flap: Option<Duration>,
    /// CSTS.CFS is set and stays this long.
    pub cfs: Option<Persist>,
    /// Faults applied to the n-th completion the model posts (0-based).
    pub completions: Vec<(u64, CompletionFault)>,
    /// Abort never aborts anything.
    pub abort_ineffective: bool,
    /// Identify data nonsense.
    pub identify: IdentifyFaults,
    /// CC.SHN is never acknowledged in CSTS.SHST.
    pub shutdown_never_completes: bool,
}
