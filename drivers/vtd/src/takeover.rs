//! Taking a remapping unit over from a dead kernel: `adopt` or `fence`.
//!
//! Translation left on (GSTS.TES) means devices may still DMA through the dead
//! kernel's tables. Turning translation off would let that DMA hit physical
//! addresses directly, so it is never done; the new root table is swapped in
//! under TE with SRTP, followed by global context-cache and IOTLB invalidation.
//!
//! - **adopt** (what Linux does in a kdump kernel): copy the old root and
//!   context tables into recovery memory entry by entry, every pointer checked
//!   against the memory map, every entry against the unit's capabilities; keep
//!   the old domain ids reserved and the old page tables in place, so stale DMA
//!   keeps landing where the dead kernel pointed it. Any inconsistency (a
//!   pointer outside RAM, reserved bits, a context table shared by two buses or
//!   aliasing the root, scalable-mode tables, a window collision) fails the
//!   copy and the takeover falls back to fence.
//! - **fence**: fresh tables in which only the devices the recovery kernel
//!   attaches are present; every other device's DMA faults.
//!
//! Per-device overrides block a device under adopt or keep its old entry
//! under fence.

use core::fmt;

use paranoid::dma::WindowSpec;
use paranoid::mmio::RegisterIo;
use paranoid::time::{Clock, Deadline};

use crate::domain::DomainIds;
use crate::invalidate::{ContextScope, Invalidator, IotlbScope, Mode, Request, SetupReport};
use crate::mem::FramePool;
use crate::regs::{self, Global, Levels, RTADDR_TTM_MASK};
use crate::tables::{
    first_old_mapping, ram_pointer, write_entry, CheckedContext, ContextEntry, EntryProblem,
    PageTable, RootEntry, TranslationType, WalkProblem, ADDR_MASK,
};
use crate::unit::{Command, Unit};
use crate::VtdError;
use paranoid::phys::{MemoryMap, PhysWrite};

use crate::vtd::SourceSet;
pub use crate::vtd::{Vtd, BLOCK_BATCH, MAX_ATTACHED};

/// What to do with inherited translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Copy the old tables (fall back to fence when they are unusable).
    Adopt,
    /// Block every device the recovery kernel does not drive.
    Fence,
}

/// A per-device exception to the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideAction {
    /// Block the device even under adopt (a NIC still writing into a ring).
    Block,
    /// Keep the device's old entry even under fence (checked like adopt).
    Adopt,
}

/// A per-device override, by source-id (`PciAddress::source_id()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceOverride {
    /// The device.
    pub source_id: u16,
    /// What to do with it.
    pub action: OverrideAction,
}

/// Takeover settings.
#[derive(Debug, Clone, Copy)]
pub struct TakeoverConfig<'a> {
    /// Adopt or fence.
    pub policy: Policy,
    /// The reserved recovery window.
    pub window: WindowSpec,
    /// Per-device overrides.
    pub overrides: &'a [DeviceOverride],
    /// RMRR ranges (base, inclusive limit) of this unit, from the DMAR.
    pub rmrrs: &'a [(u64, u64)],
    /// Host address width from the DMAR (`None`: CAP.MGAW).
    pub host_address_width: Option<u8>,
    /// How to invalidate.
    pub invalidation: Mode,
}

impl<'a> TakeoverConfig<'a> {
    /// `policy` over `window`, no overrides or RMRRs, automatic invalidation.
    pub const fn new(policy: Policy, window: WindowSpec) -> Self {
        Self {
            policy,
            window,
            overrides: &[],
            rmrrs: &[],
            host_address_width: None,
            invalidation: Mode::Auto,
        }
    }

    fn override_for(&self, source_id: u16) -> Option<OverrideAction> {
        self.overrides
            .iter()
            .find(|o| o.source_id == source_id)
            .map(|o| o.action)
    }
}

/// Why adopting the old tables failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdoptError {
    /// RTADDR.TTM says scalable mode; only legacy tables are adopted.
    ScalableMode {
        /// RTADDR as read.
        rtaddr: u64,
    },
    /// The root table pointer is not in RAM or not aligned.
    RootPointer {
        /// RTADDR as read.
        rtaddr: u64,
    },
    /// A root entry has reserved bits set.
    RootEntry {
        /// Bus.
        bus: u8,
        /// Low half.
        lo: u64,
        /// High half.
        hi: u64,
    },
    /// A context-table pointer is bad.
    ContextTable {
        /// Bus.
        bus: u8,
        /// The pointer.
        pa: u64,
    },
    /// A context entry is bad.
    ContextEntry {
        /// Source-id.
        source_id: u16,
        /// Low half.
        lo: u64,
        /// High half.
        hi: u64,
        /// What is wrong.
        problem: EntryProblem,
    },
    /// An old mapping lies inside the recovery window (or the device was in
    /// pass-through, which maps everything).
    WindowCollision {
        /// Source-id.
        source_id: u16,
        /// First colliding IOVA.
        iova: u64,
    },
    /// The old page tables could not be walked.
    PageWalk {
        /// Source-id.
        source_id: u16,
        /// What stopped the walk.
        problem: WalkProblem,
    },
    /// The frame pool ran out while copying.
    OutOfFrames,
}

impl fmt::Display for AdoptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ScalableMode { rtaddr } => {
                write!(f, "scalable-mode root table (RTADDR {rtaddr:#x})")
            }
            Self::RootPointer { rtaddr } => {
                write!(f, "root table pointer {rtaddr:#x} outside RAM")
            }
            Self::RootEntry { bus, lo, hi } => {
                write!(
                    f,
                    "root entry of bus {bus:#04x} has reserved bits ({hi:#x}:{lo:#x})"
                )
            }
            Self::ContextTable { bus, pa } => {
                write!(f, "context table of bus {bus:#04x} at {pa:#x} is invalid")
            }
            Self::ContextEntry {
                source_id,
                lo,
                hi,
                problem,
            } => write!(
                f,
                "context entry of {source_id:#06x} ({hi:#x}:{lo:#x}): {problem:?}"
            ),
            Self::WindowCollision { source_id, iova } => write!(
                f,
                "old mapping of {source_id:#06x} at {iova:#x} inside the recovery window"
            ),
            Self::PageWalk { source_id, problem } => {
                write!(f, "old page tables of {source_id:#06x}: {problem:?}")
            }
            Self::OutOfFrames => write!(f, "frame pool exhausted while copying"),
        }
    }
}

/// How the takeover ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Old tables adopted.
    Adopted,
    /// Fenced, as asked.
    Fenced,
    /// Translation was off: fresh tables, nothing inherited to adopt.
    Fresh,
    /// Adopt was asked but failed; fenced instead.
    FencedAfterAdoptFailed(AdoptError),
}

/// What the takeover found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeoverReport {
    /// GSTS.TES was set: the dead kernel left translation on.
    pub translation_was_enabled: bool,
    /// The policy asked for.
    pub requested: Policy,
    /// How it ended.
    pub outcome: Outcome,
    /// RTADDR as found (when translation was on).
    pub old_root: Option<u64>,
    /// Present context entries seen in the old tables.
    pub old_contexts: u32,
    /// Context entries copied into the new tables.
    pub contexts_adopted: u32,
    /// Context entries left out by a `Block` override.
    pub contexts_blocked: u32,
    /// Old domain ids kept reserved.
    pub old_domains_reserved: u32,
    /// Under fence: why the old tables could not be read for source
    /// classification and `Adopt` overrides (they are then ignored).
    pub old_tables_unreadable: Option<AdoptError>,
    /// The recovery domain's id.
    pub recovery_domain: u16,
    /// The recovery domain's paging depth.
    pub levels: Levels,
    /// The invalidation setup.
    pub invalidation: SetupReport,
    /// FSTS at the start (faults pending from before the takeover).
    pub fsts_at_start: u32,
    /// Pages taken from the frame pool.
    pub frames_used: usize,
}

impl TakeoverReport {
    /// True when the old tables were adopted.
    pub fn adopted(&self) -> bool {
        self.outcome == Outcome::Adopted
    }
}

impl fmt::Display for TakeoverReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match self.outcome {
            Outcome::Adopted => "adopted",
            Outcome::Fenced => "fenced",
            Outcome::Fresh => "fresh",
            Outcome::FencedAfterAdoptFailed(_) => "fenced-after-adopt-failed",
        };
        write!(
            f,
            "vtd takeover: outcome={outcome} te_was_on={} requested={:?} old_root={:#x} old_contexts={} adopted={} blocked={} old_dids={} recovery_did={} levels={} qi={} old_qi={} fsts={:#x} frames={}",
            self.translation_was_enabled,
            self.requested,
            self.old_root.unwrap_or(0),
            self.old_contexts,
            self.contexts_adopted,
            self.contexts_blocked,
            self.old_domains_reserved,
            self.recovery_domain,
            self.levels.count(),
            self.invalidation.queued,
            self.invalidation.old_queue_was_enabled,
            self.fsts_at_start,
            self.frames_used,
        )?;
        if let Outcome::FencedAfterAdoptFailed(e) = self.outcome {
            write!(f, " reason=\"{e}\"")?;
        }
        if let Some(e) = self.old_tables_unreadable {
            write!(f, " old_tables=\"{e}\"")?;
        }
        Ok(())
    }
}

/// Entries a walk of one old page table may read (the window check).
const WALK_BUDGET: u32 = 4096;

/// Counts of one copy pass.
#[derive(Default)]
struct CopyStats {
    seen: u32,
    adopted: u32,
    blocked: u32,
}

impl<R: RegisterIo, C: Clock, M: PhysWrite> Vtd<R, C, M> {
    /// Takes the unit at `regs` over.
    ///
    /// `map` lists the memory the dead kernel's tables may live in (RAM minus
    /// the recovery kernel's own reservation); `pool` is recovery memory for the
    /// new tables.
    ///
    /// # Errors
    ///
    /// Probe errors ([`VtdError::RegisterGone`], [`VtdError::BadCapability`]);
    /// [`VtdError::Window`] or [`VtdError::WindowCollidesWithRmrr`] for a bad
    /// window; [`VtdError::Unsupported`] when no supported depth covers the
    /// window; [`VtdError::OutOfFrames`]; command and invalidation timeouts. A
    /// failed adopt is not an error: it is reported as
    /// [`Outcome::FencedAfterAdoptFailed`].
    pub fn take_over(
        regs: R,
        clock: C,
        mut mem: M,
        mut pool: FramePool,
        map: MemoryMap,
        config: &TakeoverConfig<'_>,
        deadline: Deadline,
    ) -> Result<(Self, TakeoverReport), VtdError> {
        let mut unit = Unit::probe(regs, clock)?;
        let caps = *unit.caps();
        let haw = config.host_address_width.unwrap_or(caps.mgaw).min(64);
        let window = config.window;
        window.validate(caps.mgaw)?;
        for &(base, limit) in config.rmrrs {
            if window.base <= limit && base < window.end() {
                return Err(VtdError::WindowCollidesWithRmrr { base, limit });
            }
        }
        let levels = caps.levels_for(window.end()).ok_or(VtdError::Unsupported {
            what: "a paging depth covering the recovery window",
        })?;
        let gsts = unit.status()?;
        let translation_was_enabled = gsts.contains(Global::TE);
        let fsts_at_start = unit.regs().read32(regs::FSTS).into_raw_for_report();
        unit.mask_fault_interrupt();
        let (inval, invalidation) = Invalidator::setup(
            &mut unit,
            &mut mem,
            &mut pool,
            config.invalidation,
            deadline,
        )?;
        let root = pool.alloc(&mut mem).ok_or(VtdError::OutOfFrames)?;
        let recovery = PageTable::new(&mut mem, &mut pool, levels, caps.coherent)?;
        let mut vtd = Self {
            unit,
            mem,
            pool,
            map,
            haw,
            inval,
            root,
            contexts: [0; 256],
            domains: DomainIds::new(caps.domains, caps.caching_mode),
            old_sources: SourceSet::new(),
            recovery,
            recovery_did: 0,
            window,
            attached: [0; MAX_ATTACHED],
            attached_count: 0,
        };
        let mut report = TakeoverReport {
            translation_was_enabled,
            requested: config.policy,
            outcome: Outcome::Fresh,
            old_root: None,
            old_contexts: 0,
            contexts_adopted: 0,
            contexts_blocked: 0,
            old_domains_reserved: 0,
            old_tables_unreadable: None,
            recovery_domain: 0,
            levels,
            invalidation,
            fsts_at_start,
            frames_used: 0,
        };
        if translation_was_enabled {
            let rtaddr = vtd.unit.root_table_address().into_raw_for_report();
            report.old_root = Some(rtaddr);
            let adopt_all = config.policy == Policy::Adopt;
            match vtd.copy_old_tables(rtaddr, config, adopt_all) {
                Ok(stats) => {
                    report.old_contexts = stats.seen;
                    report.contexts_adopted = stats.adopted;
                    report.contexts_blocked = stats.blocked;
                    report.outcome = if adopt_all {
                        Outcome::Adopted
                    } else {
                        Outcome::Fenced
                    };
                }
                Err(e) => {
                    vtd.discard_copy();
                    report.outcome = if adopt_all {
                        Outcome::FencedAfterAdoptFailed(e)
                    } else {
                        report.old_tables_unreadable = Some(e);
                        Outcome::Fenced
                    };
                }
            }
        }
        report.old_domains_reserved = vtd.domains.count();
        vtd.recovery_did = vtd.domains.allocate().ok_or(VtdError::NoDomainIds)?;
        report.recovery_domain = vtd.recovery_did;
        vtd.install(translation_was_enabled, deadline)?;
        report.frames_used = vtd.pool.used();
        Ok((vtd, report))
    }

    /// Reads an old table word, only from RAM listed in the map.
    fn old_u64(&mut self, pa: u64) -> Option<u64> {
        if !self.map.contains(pa, 8) {
            return None;
        }
        self.mem.read_u64(pa).ok()
    }

    /// Copies the old root and context tables: every entry under adopt, only
    /// `Adopt` overrides under fence (which still records who had an entry).
    fn copy_old_tables(
        &mut self,
        rtaddr: u64,
        config: &TakeoverConfig<'_>,
        adopt_all: bool,
    ) -> Result<CopyStats, AdoptError> {
        if rtaddr & RTADDR_TTM_MASK != 0 {
            return Err(AdoptError::ScalableMode { rtaddr });
        }
        let old_root = rtaddr & ADDR_MASK;
        if pointer_check() && (rtaddr & 0xfff != 0 || !ram_pointer(&self.map, old_root, self.haw)) {
            return Err(AdoptError::RootPointer { rtaddr });
        }
        let caps = *self.unit.caps();
        let mut stats = CopyStats::default();
        let mut seen_tables = [0u64; 256];
        for bus in 0..=255u8 {
            let at = old_root + u64::from(bus) * 16;
            let (Some(lo), Some(hi)) = (self.old_u64(at), self.old_u64(at + 8)) else {
                return Err(AdoptError::RootPointer { rtaddr });
            };
            let re = RootEntry { lo, hi };
            if !re.present() {
                continue;
            }
            if !re.reserved_clear() {
                return Err(AdoptError::RootEntry { bus, lo, hi });
            }
            let ctp = re.context_table();
            // A context table must be RAM, and neither the root table nor
            // another bus's table: that is a loop, or garbage.
            let aliased = ctp == old_root || seen_tables.contains(&ctp);
            if pointer_check() && (aliased || !ram_pointer(&self.map, ctp, self.haw)) {
                return Err(AdoptError::ContextTable { bus, pa: ctp });
            }
            if let Some(s) = seen_tables.get_mut(usize::from(bus)) {
                *s = ctp;
            }
            for devfn in 0..=255u8 {
                let sid = u16::from(bus) << 8 | u16::from(devfn);
                let at = ctp + u64::from(devfn) * 16;
                let (Some(lo), Some(hi)) = (self.old_u64(at), self.old_u64(at + 8)) else {
                    return Err(AdoptError::ContextTable { bus, pa: ctp });
                };
                let ce = ContextEntry { lo, hi };
                if !ce.present() {
                    continue;
                }
                stats.seen += 1;
                self.old_sources.insert(sid);
                let install = match config.override_for(sid) {
                    Some(OverrideAction::Block) => {
                        stats.blocked += 1;
                        false
                    }
                    Some(OverrideAction::Adopt) => true,
                    None => adopt_all || mutant!("vtd_fence_keeps_old_entries"),
                };
                if !install {
                    continue;
                }
                let checked = ce.check(&caps, &self.map, self.haw).map_err(|problem| {
                    AdoptError::ContextEntry {
                        source_id: sid,
                        lo,
                        hi,
                        problem,
                    }
                })?;
                self.check_window_free(sid, checked)?;
                if !mutant!("vtd_no_old_domain_reservation") {
                    self.domains.reserve(checked.did);
                }
                self.install_entry(bus, devfn, lo, hi)
                    .map_err(|_| AdoptError::OutOfFrames)?;
                stats.adopted += 1;
            }
        }
        Ok(stats)
    }

    /// Refuses an adopted entry that maps anything inside the window: a stale
    /// access there would land instead of faulting, and window faults would no
    /// longer mean "our bug".
    fn check_window_free(&mut self, sid: u16, c: CheckedContext) -> Result<(), AdoptError> {
        let collision = AdoptError::WindowCollision {
            source_id: sid,
            iova: self.window.base,
        };
        let levels = match (c.tt, c.levels) {
            (TranslationType::PassThrough, _) | (_, None) => return Err(collision),
            (_, Some(l)) => l,
        };
        let mut budget = WALK_BUDGET;
        let (window, map, haw) = (self.window, self.map, self.haw);
        // The walk reads only tables whose page the map lists as RAM
        // (`ram_pointer`), and through `PhysRead`: old memory is never written.
        let hit = first_old_mapping(
            &self.mem,
            &map,
            haw,
            c.slptptr,
            levels,
            window.base,
            window.size,
            &mut budget,
        )
        .map_err(|problem| AdoptError::PageWalk {
            source_id: sid,
            problem,
        })?;
        match hit {
            Some(iova) => Err(AdoptError::WindowCollision {
                source_id: sid,
                iova,
            }),
            None => Ok(()),
        }
    }

    /// Undoes a failed copy: empty tables, no reserved ids (the old tables are
    /// not used, so their ids mean nothing to the unit after the global
    /// invalidation). Old sources stay recorded for fault classification.
    fn discard_copy(&mut self) {
        let coherent = self.unit.caps().coherent;
        for bus in 0..256u64 {
            if let Some(slot) = self.contexts.get_mut(bus as usize) {
                if *slot != 0 {
                    self.pool.free(*slot);
                    *slot = 0;
                    // Our own root page: the write cannot fail unless the pool
                    // memory vanished, and then install fails loudly anyway.
                    let _ = write_entry(&mut self.mem, self.root + bus * 16, 0, 0, coherent);
                }
            }
        }
        let caps = *self.unit.caps();
        self.domains = DomainIds::new(caps.domains, caps.caching_mode);
    }

    /// Points the unit at our root table and flushes every cache; turns
    /// translation on if it was off. TE is never turned off.
    fn install(&mut self, te_was_on: bool, deadline: Deadline) -> Result<(), VtdError> {
        self.unit.flush_write_buffer(deadline)?;
        let enable_first = mutant!("vtd_enable_before_root");
        if enable_first && !te_was_on {
            self.unit.command(Command::EnableTranslation, deadline)?;
        }
        self.unit.set_root_table(self.root, deadline)?;
        self.inval.run(
            &mut self.unit,
            &mut self.mem,
            &[
                Request::Context(ContextScope::Global),
                Request::Iotlb(IotlbScope::Global),
            ],
            deadline,
        )?;
        if !enable_first && !te_was_on {
            self.unit.command(Command::EnableTranslation, deadline)?;
        }
        Ok(())
    }
}

/// Whether old table pointers are validated (always, but under the
/// `vtd_skip_pointer_check` mutant).
fn pointer_check() -> bool {
    !mutant!("vtd_skip_pointer_check")
}
