//! The [`Vtd`] type: a remapping unit taken over by the recovery kernel (see
//! [`crate::takeover`] for how it is built), its context tables, and what the
//! recovery kernel does with it afterwards: attach a device to the recovery
//! domain, block one or many, and the [`RecoveryIommu`] and [`Fencing`] views
//! the fault policy and the drain use.

use core::time::Duration;

use paranoid::dma::WindowSpec;
use paranoid::mmio::RegisterIo;
use paranoid::time::{Clock, Deadline};

use crate::domain::DomainIds;
use crate::fault;
use crate::invalidate::{ContextScope, Invalidator, IotlbScope, Request};
use crate::iommu::{Drained, Fault, Fencing, Quarantine, RecoveryIommu, SourceKind};
use crate::mem::FramePool;
use crate::tables::{write_entry, ContextEntry, PageTable, RootEntry};
use crate::unit::Unit;
use crate::VtdError;
use paranoid::phys::{MemoryMap, PhysWrite};

/// A set of source-ids.
#[derive(Clone)]
pub(crate) struct SourceSet([u64; 1024]);

impl SourceSet {
    pub(crate) const fn new() -> Self {
        Self([0; 1024])
    }
    pub(crate) fn insert(&mut self, sid: u16) {
        if let Some(w) = self.0.get_mut(usize::from(sid) / 64) {
            *w |= 1 << (sid % 64);
        }
    }
    pub(crate) fn contains(&self, sid: u16) -> bool {
        self.0
            .get(usize::from(sid) / 64)
            .is_some_and(|w| (w >> (sid % 64)) & 1 == 1)
    }
    pub(crate) fn clear(&mut self) {
        self.0 = [0; 1024];
    }
}

/// Devices attached to the recovery domain, at most.
pub const MAX_ATTACHED: usize = 32;
/// Sources [`Vtd::block_many`] blocks per invalidation round trip.
pub const BLOCK_BATCH: usize = 32;

/// A remapping unit taken over by the recovery kernel: the tables it uses now,
/// the recovery domain mapping the window, and the invalidation path.
pub struct Vtd<R: RegisterIo, C: Clock, M: PhysWrite> {
    pub(crate) unit: Unit<R, C>,
    pub(crate) mem: M,
    pub(crate) pool: FramePool,
    pub(crate) map: MemoryMap,
    pub(crate) haw: u8,
    pub(crate) inval: Invalidator,
    pub(crate) root: u64,
    pub(crate) contexts: [u64; 256],
    pub(crate) domains: DomainIds,
    pub(crate) old_sources: SourceSet,
    pub(crate) recovery: PageTable,
    pub(crate) recovery_did: u16,
    pub(crate) window: WindowSpec,
    pub(crate) attached: [u16; MAX_ATTACHED],
    pub(crate) attached_count: usize,
}

impl<R: RegisterIo, C: Clock, M: PhysWrite> Vtd<R, C, M> {
    /// Writes a context entry into our tables, creating the bus's context
    /// table on first use.
    pub(crate) fn install_entry(
        &mut self,
        bus: u8,
        devfn: u8,
        lo: u64,
        hi: u64,
    ) -> Result<(), VtdError> {
        let coherent = self.unit.caps().coherent;
        let ctx = match self.contexts.get(usize::from(bus)).copied() {
            Some(c) if c != 0 => c,
            _ => {
                let c = self
                    .pool
                    .alloc(&mut self.mem)
                    .ok_or(VtdError::OutOfFrames)?;
                let re = RootEntry::new(c);
                write_entry(
                    &mut self.mem,
                    self.root + u64::from(bus) * 16,
                    re.lo,
                    re.hi,
                    coherent,
                )?;
                if let Some(slot) = self.contexts.get_mut(usize::from(bus)) {
                    *slot = c;
                }
                c
            }
        };
        write_entry(&mut self.mem, ctx + u64::from(devfn) * 16, lo, hi, coherent)
    }

    /// Reads one of our own context entries.
    pub(crate) fn entry(&mut self, sid: u16) -> Option<(u64, ContextEntry)> {
        let ctx = self.contexts.get(usize::from(sid >> 8)).copied()?;
        if ctx == 0 {
            return None;
        }
        let at = ctx + u64::from(sid & 0xff) * 16;
        let lo = self.mem.read_u64(at).ok()?;
        let hi = self.mem.read_u64(at + 8).ok()?;
        Some((at, ContextEntry { lo, hi }))
    }

    /// Attaches `source_id` to the recovery domain (whose page tables map the
    /// window), replacing whatever entry it had.
    ///
    /// # Errors
    ///
    /// [`VtdError::BadSource`] when more than [`MAX_ATTACHED`] devices are
    /// attached; [`VtdError::OutOfFrames`]; invalidation errors.
    pub fn attach(&mut self, source_id: u16, deadline: Deadline) -> Result<(), VtdError> {
        if !self.is_attached(source_id) {
            let slot = self
                .attached
                .get_mut(self.attached_count)
                .ok_or(VtdError::BadSource {
                    source_id,
                    reason: "too many attached devices",
                })?;
            *slot = source_id;
            self.attached_count += 1;
        }
        let old = self.entry(source_id).map(|(_, e)| e);
        let new =
            ContextEntry::translated(self.recovery.root, self.recovery.levels, self.recovery_did);
        self.install_entry((source_id >> 8) as u8, source_id as u8, new.lo, new.hi)?;
        self.unit.flush_write_buffer(deadline)?;
        let caching_mode = self.unit.caps().caching_mode;
        let requests: &[Request] = match old {
            Some(e) if e.present() => &[
                Request::Context(ContextScope::Device {
                    did: e.did(),
                    sid: source_id,
                }),
                Request::Iotlb(IotlbScope::Domain(e.did())),
            ],
            // Caching mode may have cached the not-present entry.
            _ if caching_mode => &[Request::Context(ContextScope::Global)],
            _ => &[],
        };
        if !requests.is_empty() {
            self.inval
                .run(&mut self.unit, &mut self.mem, requests, deadline)?;
        }
        Ok(())
    }

    /// True when `source_id` is attached to the recovery domain.
    pub fn is_attached(&self, source_id: u16) -> bool {
        self.attached
            .get(..self.attached_count)
            .is_some_and(|a| a.contains(&source_id))
    }

    /// Makes `source_id`'s entry not-present and invalidates its caches.
    ///
    /// # Errors
    ///
    /// Invalidation errors; [`VtdError::MemoryWrite`].
    pub fn block(&mut self, source_id: u16, deadline: Deadline) -> Result<Quarantine, VtdError> {
        match self.block_many(&[source_id], deadline)? {
            0 => Ok(Quarantine::AlreadyBlocked),
            _ => Ok(Quarantine::Blocked),
        }
    }

    /// Makes the entries of `sources` not-present with one write-buffer flush
    /// and one invalidation round trip per [`BLOCK_BATCH`] sources
    /// (device-selective context-cache invalidation for each source, one
    /// domain-selective IOTLB invalidation per old domain: VT-d 6.5.3.3).
    /// Sources without a present entry are skipped. Returns how many entries
    /// were made not-present.
    ///
    /// A failure in one batch does not stop the others: every source gets its
    /// entry cleared if its table is writable, and the first error is
    /// returned.
    ///
    /// # Errors
    ///
    /// Invalidation errors; [`VtdError::MemoryWrite`].
    pub fn block_many(&mut self, sources: &[u16], deadline: Deadline) -> Result<u32, VtdError> {
        let mut blocked = 0u32;
        let mut first_error = None;
        for chunk in sources.chunks(BLOCK_BATCH) {
            match self.block_batch(chunk, deadline) {
                Ok(n) => blocked += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(blocked),
        }
    }

    /// One batch of [`Vtd::block_many`]: at most [`BLOCK_BATCH`] sources.
    fn block_batch(&mut self, sources: &[u16], deadline: Deadline) -> Result<u32, VtdError> {
        let coherent = self.unit.caps().coherent;
        let mut requests = [Request::Context(ContextScope::Global); 2 * BLOCK_BATCH];
        let mut written = [0u16; BLOCK_BATCH];
        let (mut n_requests, mut n_written) = (0usize, 0usize);
        let mut write_error = None;
        for &sid in sources.iter().take(BLOCK_BATCH) {
            let Some((at, e)) = self.entry(sid) else {
                continue;
            };
            if !e.present() {
                continue;
            }
            if let Err(err) = write_entry(&mut self.mem, at, 0, 0, coherent) {
                write_error.get_or_insert(err);
                continue;
            }
            let did = e.did();
            push_request(
                &mut requests,
                &mut n_requests,
                Request::Context(ContextScope::Device { did, sid }),
            );
            let iotlb = Request::Iotlb(IotlbScope::Domain(did));
            if !requests
                .get(..n_requests)
                .is_some_and(|r| r.contains(&iotlb))
            {
                push_request(&mut requests, &mut n_requests, iotlb);
            }
            if let Some(slot) = written.get_mut(n_written) {
                *slot = sid;
                n_written += 1;
            }
        }
        if n_written > 0 {
            self.unit.flush_write_buffer(deadline)?;
            self.inval.run(
                &mut self.unit,
                &mut self.mem,
                requests.get(..n_requests).unwrap_or(&[]),
                deadline,
            )?;
            for &sid in written.get(..n_written).unwrap_or(&[]) {
                self.detach(sid);
            }
        }
        match write_error {
            Some(e) => Err(e),
            None => Ok(n_written as u32),
        }
    }

    /// Forgets that `source_id` was attached (its entry is gone).
    fn detach(&mut self, source_id: u16) {
        if let Some(n) = self
            .attached
            .get(..self.attached_count)
            .and_then(|a| a.iter().position(|&s| s == source_id))
        {
            if let Some(tail) = self.attached.get_mut(n..self.attached_count) {
                tail.rotate_left(1);
            }
            self.attached_count -= 1;
        }
    }

    /// True when `source_id` has a present context entry in the tables the
    /// unit uses now: its DMA is translated (an adopted old entry, the recovery
    /// domain, or an `Adopt` override), not blocked.
    pub fn translates(&mut self, source_id: u16) -> bool {
        self.entry(source_id).is_some_and(|(_, e)| e.present())
    }

    /// The clock the unit's waits are measured with.
    pub fn clock(&self) -> &C {
        self.unit.clock()
    }

    /// Leaves the unit off for the next kernel: translation off, then queued
    /// invalidation off when it is on. This is for a kernel that hands the
    /// machine over in order (kernel A's clean shutdown); the recovery kernel
    /// never turns translation off. It consumes the value, so nothing can map
    /// or attach through tables the unit no longer uses.
    ///
    /// # Errors
    ///
    /// [`VtdError`] when a command is not acknowledged before `deadline`.
    pub fn turn_off(mut self, deadline: Deadline) -> Result<(), VtdError> {
        self.unit
            .command(crate::unit::Command::DisableTranslation, deadline)?;
        if self
            .unit
            .status()
            .is_ok_and(|g| g.contains(crate::regs::Global::QIE))
        {
            self.unit
                .command(crate::unit::Command::DisableQueuedInvalidation, deadline)?;
        }
        Ok(())
    }

    /// The recovery domain's id.
    pub fn recovery_domain(&self) -> u16 {
        self.recovery_did
    }

    /// The recovery window.
    pub fn window_spec(&self) -> WindowSpec {
        self.window
    }

    /// The root table the unit uses now.
    pub fn root_table(&self) -> u64 {
        self.root
    }

    /// Invalidation counters.
    pub fn invalidations(&self) -> crate::invalidate::Counters {
        self.inval.counters()
    }

    /// True when the dead kernel's tables had an entry for `source_id`.
    pub fn was_inherited(&self, source_id: u16) -> bool {
        self.old_sources.contains(source_id)
    }

    /// Forgets which sources the dead kernel had set up.
    pub fn forget_inherited(&mut self) {
        self.old_sources.clear();
    }
}

/// Appends `r` to the first `*n` requests (a full buffer drops it: callers
/// size the buffer for two requests per source).
fn push_request(requests: &mut [Request], n: &mut usize, r: Request) {
    if let Some(slot) = requests.get_mut(*n) {
        *slot = r;
        *n += 1;
    }
}

impl<R: RegisterIo, C: Clock, M: PhysWrite> RecoveryIommu for Vtd<R, C, M> {
    type Error = VtdError;

    fn window(&self) -> WindowSpec {
        self.window
    }

    fn now_ns(&self) -> u64 {
        self.unit.clock().now_ns()
    }

    fn source_kind(&self, source_id: u16) -> SourceKind {
        if self.is_attached(source_id) {
            SourceKind::Recovery
        } else if self.old_sources.contains(source_id) {
            SourceKind::Inherited
        } else {
            SourceKind::Unknown
        }
    }

    fn drain_faults(&mut self, sink: &mut dyn FnMut(Fault)) -> Result<Drained, VtdError> {
        let stats = fault::drain(&mut self.unit, &mut |r| {
            sink(Fault {
                source_id: r.source_id,
                address: r.address,
                write: r.write,
                reason: r.reason,
            })
        })?;
        Ok(Drained {
            faults: stats.records,
            overflow: stats.overflow,
        })
    }

    fn quarantine(&mut self, source_id: u16, deadline: Deadline) -> Result<Quarantine, VtdError> {
        self.block(source_id, deadline)
    }
}

impl<R: RegisterIo, C: Clock, M: PhysWrite> Fencing for Vtd<R, C, M> {
    fn translates(&mut self, source_id: u16) -> bool {
        Vtd::translates(self, source_id)
    }

    fn block_all(&mut self, sources: &[u16], deadline: Deadline) -> Result<u32, VtdError> {
        self.block_many(sources, deadline)
    }

    fn delay(&self, duration: Duration) {
        self.unit.clock().delay(duration);
    }
}
