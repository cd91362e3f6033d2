//! The vendor-neutral face of a recovery IOMMU: what the fault policy needs.
//!
//! VT-d implements it in [`crate::Vtd`]; an AMD-Vi core (device table instead of
//! root/context tables, event log instead of fault records) would implement the
//! same trait and reuse [`crate::policy`] unchanged.

use core::time::Duration;

use paranoid::dma::WindowSpec;
use paranoid::time::Deadline;

/// A DMA fault, independent of the vendor's record format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Requester id (bus << 8 | device << 3 | function).
    pub source_id: u16,
    /// Faulting address (page granular on VT-d).
    pub address: u64,
    /// True for a write into memory.
    pub write: bool,
    /// Vendor fault reason code.
    pub reason: u8,
}

/// What the IOMMU knows about a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A device the recovery kernel drives (attached to the recovery window).
    Recovery,
    /// A device the dead kernel had set up (it had a translation entry).
    Inherited,
    /// Neither: no one ever set this source up.
    Unknown,
}

/// Result of a quarantine request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quarantine {
    /// The source's entry was made not-present and caches invalidated.
    Blocked,
    /// It was blocked already (fenced, or quarantined before).
    AlreadyBlocked,
}

/// Result of draining the fault log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drained {
    /// Faults delivered to the sink.
    pub faults: u32,
    /// The unit lost faults since the last drain (overflow).
    pub overflow: bool,
}

/// A recovery IOMMU the fault policy can run on.
pub trait RecoveryIommu {
    /// The vendor driver's error.
    type Error;

    /// The reserved recovery window.
    fn window(&self) -> WindowSpec;

    /// The current time on the IOMMU's clock (for rate limiting).
    fn now_ns(&self) -> u64;

    /// Who `source_id` is.
    fn source_kind(&self, source_id: u16) -> SourceKind;

    /// Reads and clears pending faults, delivering each to `sink`.
    ///
    /// # Errors
    ///
    /// The vendor error when the fault registers are unreadable.
    fn drain_faults(&mut self, sink: &mut dyn FnMut(Fault)) -> Result<Drained, Self::Error>;

    /// Blocks every DMA of `source_id` from now on.
    ///
    /// # Errors
    ///
    /// The vendor error when the tables or the invalidation fail.
    fn quarantine(&mut self, source_id: u16, deadline: Deadline)
        -> Result<Quarantine, Self::Error>;
}

/// What a drain-then-fence pass needs beyond the fault policy's view: whether a
/// source is still translated, a batched block, and a bounded wait on the
/// IOMMU's clock ([`crate::drain`] runs on it).
pub trait Fencing: RecoveryIommu {
    /// True when DMA from `source_id` is translated now (its entry is present),
    /// false when it is blocked or never had an entry.
    fn translates(&mut self, source_id: u16) -> bool;

    /// Blocks every source in `sources` with as few invalidation round trips
    /// as the hardware allows; returns how many were blocked now (sources
    /// blocked already are skipped).
    ///
    /// # Errors
    ///
    /// The vendor error when the tables or the invalidation fail.
    fn block_all(&mut self, sources: &[u16], deadline: Deadline) -> Result<u32, Self::Error>;

    /// Waits `duration` on the IOMMU's clock (bounded by construction).
    fn delay(&self, duration: Duration);
}
