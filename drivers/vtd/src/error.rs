//! The crate's error type.

use core::fmt;
use core::time::Duration;

use paranoid::dma::DmaError;

/// Errors of the VT-d bring-up core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VtdError {
    /// A register read all-ones: the unit is gone (or the base is wrong).
    RegisterGone {
        /// The register.
        register: &'static str,
    },
    /// CAP or ECAP holds a value no real unit has.
    BadCapability {
        /// The field (`CAP.MGAW`...).
        field: &'static str,
        /// The raw register value.
        value: u64,
    },
    /// The unit translates no DMA: CAP.SAGAW is 0, no second-level paging
    /// at all (VT-d 3.x allows it for a unit that only remaps interrupts;
    /// QEMU's `intel-iommu,dma-translation=off`). Nothing was written to it;
    /// DMA can only be fenced at the devices.
    CannotTranslate {
        /// CAP as read.
        cap: u64,
    },
    /// A hardware handshake did not finish by its deadline.
    Timeout {
        /// The register polled (`GSTS`, `CCMD`, `IOTLB`, `IQH`, `ICS`...).
        register: &'static str,
        /// What was being waited for.
        waiting_for: &'static str,
        /// The last value read.
        last: u64,
        /// How long we waited.
        waited: Duration,
        /// The deadline (clock reading, ns).
        deadline_ns: u64,
    },
    /// The unit rejected an invalidation request (CCMD.CAIG or IOTLB.IAIG
    /// read 0).
    InvalidationRejected {
        /// The register.
        register: &'static str,
        /// The value read back.
        value: u64,
    },
    /// The invalidation queue stopped with FSTS.IQE (or ICE/ITE) set.
    QueueError {
        /// FSTS as read.
        fsts: u32,
        /// IQH as read (the faulting descriptor).
        head: u64,
    },
    /// The frame pool has no page left for a table.
    OutOfFrames,
    /// A table page could not be written (not backed).
    MemoryWrite {
        /// The physical address.
        pa: u64,
    },
    /// No free domain id left.
    NoDomainIds,
    /// The hardware lacks something the operation needs.
    Unsupported {
        /// What.
        what: &'static str,
    },
    /// The recovery window is not a valid window for this unit.
    Window(DmaError),
    /// The recovery window overlaps a reserved memory region of the DMAR.
    WindowCollidesWithRmrr {
        /// RMRR base.
        base: u64,
        /// RMRR limit (inclusive).
        limit: u64,
    },
    /// A mapping request left the recovery window.
    OutsideWindow {
        /// IOVA asked for.
        iova: u64,
        /// Length asked for.
        len: u64,
    },
    /// An address or length not aligned to 4 KiB.
    Misaligned {
        /// The value.
        value: u64,
    },
    /// The IOVA is mapped already.
    AlreadyMapped {
        /// The IOVA.
        iova: u64,
    },
    /// The IOVA is not mapped.
    NotMapped {
        /// The IOVA.
        iova: u64,
    },
    /// The IOVA belongs to a window mapping handed out
    /// ([`Vtd::map_window`](crate::Vtd::map_window)): it stays mapped.
    Pinned {
        /// The IOVA.
        iova: u64,
    },
    /// A source-id the operation cannot apply to (a quarantined device being
    /// attached, say).
    BadSource {
        /// The source-id.
        source_id: u16,
        /// Why.
        reason: &'static str,
    },
    /// A mapping batch holds more pages than it can track.
    BatchFull,
}

impl From<DmaError> for VtdError {
    fn from(e: DmaError) -> Self {
        Self::Window(e)
    }
}

impl fmt::Display for VtdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::RegisterGone { register } => {
                write!(f, "VT-d {register} reads all-ones: unit gone")
            }
            Self::BadCapability { field, value } => {
                write!(f, "VT-d {field} is nonsense (register {value:#x})")
            }
            Self::CannotTranslate { cap } => write!(
                f,
                "VT-d unit translates no DMA (CAP.SAGAW = 0, CAP {cap:#x}): interrupt remapping only"
            ),
            Self::Timeout {
                register,
                waiting_for,
                last,
                waited,
                deadline_ns,
            } => write!(
                f,
                "VT-d {register}: {waiting_for} not seen after {waited:?} (last {last:#x}, deadline {deadline_ns} ns)"
            ),
            Self::InvalidationRejected { register, value } => {
                write!(f, "VT-d {register} rejected the invalidation ({value:#x})")
            }
            Self::QueueError { fsts, head } => {
                write!(f, "VT-d invalidation queue error: FSTS {fsts:#x}, IQH {head:#x}")
            }
            Self::OutOfFrames => write!(f, "VT-d frame pool exhausted"),
            Self::MemoryWrite { pa } => write!(f, "cannot write table page at {pa:#x}"),
            Self::NoDomainIds => write!(f, "no free VT-d domain id"),
            Self::Unsupported { what } => write!(f, "VT-d unit lacks {what}"),
            Self::Window(e) => write!(f, "recovery window: {e}"),
            Self::WindowCollidesWithRmrr { base, limit } => write!(
                f,
                "recovery window overlaps RMRR {base:#x}..={limit:#x}"
            ),
            Self::OutsideWindow { iova, len } => {
                write!(f, "mapping {iova:#x}+{len:#x} leaves the recovery window")
            }
            Self::Misaligned { value } => write!(f, "{value:#x} is not 4 KiB aligned"),
            Self::AlreadyMapped { iova } => write!(f, "IOVA {iova:#x} is mapped already"),
            Self::NotMapped { iova } => write!(f, "IOVA {iova:#x} is not mapped"),
            Self::Pinned { iova } => {
                write!(f, "IOVA {iova:#x} backs a window mapping and stays mapped")
            }
            Self::BadSource { source_id, reason } => {
                write!(f, "source {source_id:#06x}: {reason}")
            }
            Self::BatchFull => write!(f, "mapping batch full"),
        }
    }
}
