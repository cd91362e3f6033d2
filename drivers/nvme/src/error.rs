//! The driver's one error type.
//!
//! Every variant says which register or structure was involved, the value the
//! device showed, and (for waits) how long we waited and the deadline we held to.

use core::fmt;
use core::time::Duration;

use paranoid::dma::DmaError;
use paranoid::lifecycle::ResetKind;
use paranoid::pci::PciError;

use crate::command::Status;
use crate::identify::FormatProblem;
use crate::regs::Register;

/// What was wrong with a completion queue entry (NVMe 1.4, 4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionProblem {
    /// The command identifier names no command outstanding on this queue.
    UnknownCid,
    /// The SQ identifier is not the queue the command was submitted to.
    WrongSqId,
    /// The SQ head pointer is past the queue's end, or outside the entries the
    /// controller could have consumed.
    SqHeadOutOfRange,
    /// The status field uses a reserved status code type (4..=6).
    ReservedStatus,
}

impl CompletionProblem {
    /// Short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::UnknownCid => "unknown command id",
            Self::WrongSqId => "wrong SQ id",
            Self::SqHeadOutOfRange => "SQ head out of range",
            Self::ReservedStatus => "reserved status bits",
        }
    }
}

/// Errors of the NVMe driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NvmeError {
    /// A register read all-ones: the controller is gone (surprise removal,
    /// link down, or memory decoding off).
    DeviceGone {
        /// The register read.
        register: Register,
    },
    /// Configuration-space work failed (command register, FLR).
    Pci(PciError),
    /// A DMA buffer could not be allocated or accessed.
    Dma(DmaError),
    /// A capability register field holds a value outside the spec.
    BadCapability {
        /// The register.
        register: Register,
        /// The field, in spec spelling (`CAP.MQES`).
        field: &'static str,
        /// The value seen.
        value: u64,
    },
    /// The controller needs a feature this driver does not implement (a 4 KiB
    /// memory page, the NVM command set, metadata-free LBA formats).
    Unsupported {
        /// What is missing, in spec spelling.
        field: &'static str,
        /// The value seen.
        value: u64,
    },
    /// CSTS.RDY did not reach `expected` by the deadline.
    ReadyTimeout {
        /// The RDY value waited for.
        expected: bool,
        /// The last CSTS seen.
        csts: u32,
        /// How long we waited.
        waited: Duration,
        /// The deadline (clock nanoseconds).
        deadline_ns: u64,
    },
    /// CSTS.RDY came back while CC.EN was clear: a controller that flaps.
    ReadyFlapping {
        /// The CSTS value seen.
        csts: u32,
    },
    /// CSTS.CFS is set (controller fatal status) and a reset did not clear it.
    ControllerFatal {
        /// The CSTS value seen.
        csts: u32,
    },
    /// An Identify data structure holds a value outside the spec or our limits.
    BadIdentify {
        /// The field, in spec spelling (`MDTS`, `LBAF.LBADS`).
        field: &'static str,
        /// The value seen.
        value: u64,
    },
    /// A completion queue entry failed validation; it was not consumed.
    BadCompletion {
        /// Queue identifier.
        queue: u16,
        /// What was wrong.
        problem: CompletionProblem,
        /// The offending value.
        value: u64,
    },
    /// A command did not complete by its deadline; the driver aborted it and
    /// reset the controller (`recovered` says whether the re-init succeeded).
    CommandTimeout {
        /// Queue identifier.
        queue: u16,
        /// Opcode of the command.
        opcode: u8,
        /// Its command identifier.
        cid: u16,
        /// How long we waited.
        waited: Duration,
        /// The deadline (clock nanoseconds).
        deadline_ns: u64,
        /// True when the controller was reset and is ready again.
        recovered: bool,
    },
    /// The controller completed a command with an error status.
    CommandFailed {
        /// Queue identifier.
        queue: u16,
        /// Opcode of the command.
        opcode: u8,
        /// The status field.
        status: Status,
    },
    /// The submission queue has no free slot (the controller stopped consuming).
    QueueFull {
        /// Queue identifier.
        queue: u16,
    },
    /// Blocks outside the namespace (or a zero-length transfer).
    LbaOutOfRange {
        /// First block asked for.
        lba: u64,
        /// Number of blocks asked for.
        blocks: u64,
        /// Blocks in the namespace.
        namespace_blocks: u64,
    },
    /// The buffer is too small for the transfer, or the offset is not
    /// dword-aligned.
    BadBuffer {
        /// Byte offset into the buffer.
        offset: usize,
        /// Bytes the transfer needs.
        needed: u64,
        /// Buffer length.
        len: usize,
    },
    /// The driver is not ready for I/O: init did not finish, or the controller
    /// was fenced after an unrecoverable error.
    NotReady,
    /// CC.SHN was set but CSTS.SHST did not report completion by the deadline;
    /// the controller was disabled and fenced anyway.
    ShutdownTimeout {
        /// The last CSTS seen.
        csts: u32,
        /// How long we waited.
        waited: Duration,
        /// The deadline (clock nanoseconds).
        deadline_ns: u64,
    },
    /// The escalation ladder asked for a reset this driver cannot perform.
    UnsupportedReset(ResetKind),
    /// The namespace id is not one the controller has (0, or above NN).
    NamespaceAbsent {
        /// The namespace id asked for.
        nsid: u32,
        /// Number of Namespaces (NN) the controller reports.
        nn: u32,
    },
    /// The namespace id is valid but not active (Identify Namespace returned
    /// NSZE 0, or it is missing from the Active Namespace ID list).
    NamespaceInactive {
        /// The namespace id asked for.
        nsid: u32,
    },
    /// The namespace's LBA format is one the driver refuses to write.
    UnsupportedFormat {
        /// The namespace id.
        nsid: u32,
        /// The LBA format index in use (FLBAS).
        format: u8,
        /// Its LBADS.
        lbads: u8,
        /// Its metadata size (LBAF.MS).
        ms: u16,
        /// What the driver cannot handle.
        problem: FormatProblem,
    },
    /// A byte offset or length is not a multiple of the namespace's block size.
    Misaligned {
        /// The byte offset asked for.
        byte_offset: u64,
        /// The byte length asked for.
        len: u64,
        /// Bytes per block of the namespace.
        block_size: u32,
    },
    /// A synchronous command was asked for while pipelined writes are in
    /// flight: reap them first ([`crate::Nvme::reap_write`]).
    Busy {
        /// Pipelined writes in flight.
        in_flight: usize,
    },
    /// The controller was reset (or fenced) while this pipelined write was in
    /// flight: it may or may not have reached the media. Its buffer is handed
    /// back.
    Abandoned,
    /// A feature value the controller returned is outside the spec (Set
    /// Features Number of Queues granting 65536 queues, ...).
    BadFeature {
        /// The feature, in spec spelling (`NSQA`).
        field: &'static str,
        /// The value seen.
        value: u64,
    },
}

impl NvmeError {
    /// A short class name, for campaign summaries and logs.
    pub const fn class(&self) -> &'static str {
        match self {
            Self::DeviceGone { .. } => "device gone",
            Self::Pci(_) => "pci",
            Self::Dma(_) => "dma",
            Self::BadCapability { .. } => "bad capability",
            Self::Unsupported { .. } => "unsupported",
            Self::ReadyTimeout { .. } => "ready timeout",
            Self::ReadyFlapping { .. } => "ready flapping",
            Self::ControllerFatal { .. } => "controller fatal",
            Self::BadIdentify { .. } => "bad identify",
            Self::BadCompletion { .. } => "bad completion",
            Self::CommandTimeout { .. } => "command timeout",
            Self::CommandFailed { .. } => "command failed",
            Self::QueueFull { .. } => "queue full",
            Self::LbaOutOfRange { .. } => "lba out of range",
            Self::BadBuffer { .. } => "bad buffer",
            Self::NotReady => "not ready",
            Self::ShutdownTimeout { .. } => "shutdown timeout",
            Self::UnsupportedReset(_) => "unsupported reset",
            Self::NamespaceAbsent { .. } => "namespace absent",
            Self::NamespaceInactive { .. } => "namespace inactive",
            Self::UnsupportedFormat { .. } => "unsupported format",
            Self::Misaligned { .. } => "misaligned",
            Self::Busy { .. } => "busy",
            Self::Abandoned => "abandoned",
            Self::BadFeature { .. } => "bad feature",
        }
    }
}

impl From<PciError> for NvmeError {
    fn from(e: PciError) -> Self {
        Self::Pci(e)
    }
}

impl From<DmaError> for NvmeError {
    fn from(e: DmaError) -> Self {
        Self::Dma(e)
    }
}

impl fmt::Display for NvmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::DeviceGone { register } => {
                write!(f, "{} reads all-ones: controller gone", register.name())
            }
            Self::Pci(e) => write!(f, "pci: {e:?}"),
            Self::Dma(e) => write!(f, "dma: {e}"),
            Self::BadCapability {
                register,
                field,
                value,
            } => write!(f, "{} has {field} = {value:#x}", register.name()),
            Self::Unsupported { field, value } => {
                write!(f, "unsupported {field} = {value:#x}")
            }
            Self::ReadyTimeout {
                expected,
                csts,
                waited,
                ..
            } => write!(
                f,
                "CSTS.RDY not {} after {waited:?} (CSTS {csts:#x})",
                u8::from(expected)
            ),
            Self::ReadyFlapping { csts } => {
                write!(f, "CSTS.RDY set again with CC.EN clear (CSTS {csts:#x})")
            }
            Self::ControllerFatal { csts } => {
                write!(f, "CSTS.CFS persists after reset (CSTS {csts:#x})")
            }
            Self::BadIdentify { field, value } => {
                write!(f, "Identify {field} = {value:#x}")
            }
            Self::BadCompletion {
                queue,
                problem,
                value,
            } => write!(f, "queue {queue}: {} ({value:#x})", problem.name()),
            Self::CommandTimeout {
                queue,
                opcode,
                cid,
                waited,
                recovered,
                ..
            } => write!(
                f,
                "queue {queue}: opcode {opcode:#x} cid {cid} timed out after {waited:?} (recovered: {recovered})"
            ),
            Self::CommandFailed {
                queue,
                opcode,
                status,
            } => write!(
                f,
                "queue {queue}: opcode {opcode:#x} failed, SCT {:#x} SC {:#x}",
                status.sct(),
                status.sc()
            ),
            Self::QueueFull { queue } => write!(f, "queue {queue} full"),
            Self::LbaOutOfRange {
                lba,
                blocks,
                namespace_blocks,
            } => write!(
                f,
                "blocks {lba}+{blocks} outside the namespace of {namespace_blocks} blocks"
            ),
            Self::BadBuffer {
                offset,
                needed,
                len,
            } => write!(
                f,
                "buffer of {len} bytes cannot hold {needed} bytes at offset {offset}"
            ),
            Self::NotReady => write!(f, "controller not ready (init failed or fenced)"),
            Self::ShutdownTimeout { csts, waited, .. } => write!(
                f,
                "CSTS.SHST not complete after {waited:?} (CSTS {csts:#x}); disabled and fenced"
            ),
            Self::UnsupportedReset(k) => write!(f, "{} not supported", k.name()),
            Self::NamespaceAbsent { nsid, nn } => {
                write!(f, "namespace {nsid} absent (NN = {nn})")
            }
            Self::NamespaceInactive { nsid } => write!(f, "namespace {nsid} inactive"),
            Self::UnsupportedFormat {
                nsid,
                format,
                lbads,
                ms,
                problem,
            } => write!(
                f,
                "namespace {nsid}: LBA format {format} (LBADS {lbads}, MS {ms}) refused: {}",
                problem.name()
            ),
            Self::Misaligned {
                byte_offset,
                len,
                block_size,
            } => write!(
                f,
                "bytes {byte_offset}+{len} not aligned to the {block_size}-byte block"
            ),
            Self::Busy { in_flight } => {
                write!(f, "{in_flight} pipelined writes in flight: reap them first")
            }
            Self::Abandoned => write!(f, "controller reset while the write was in flight"),
            Self::BadFeature { field, value } => write!(f, "feature {field} = {value:#x}"),
        }
    }
}
