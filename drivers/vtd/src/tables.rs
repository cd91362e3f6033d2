//! Root, context and second-level page tables (VT-d 4.1, 9.1, 9.3, 9.8).
//!
//! Legacy mode only (RTADDR.TTM = 00): a 4 KiB root table of 256 entries, one
//! per bus, each pointing at a 4 KiB context table of 256 entries, one per
//! device/function; a context entry names a domain id and the root of its
//! second-level page table, 3 or 4 levels deep.

use crate::mem::FramePool;
use crate::regs::{Capabilities, Levels};
use crate::VtdError;
use paranoid::phys::{MemoryMap, PhysRead, PhysWrite};

/// Bits 63:12 of a table pointer.
pub const ADDR_MASK: u64 = !0xfff;

/// A root entry (9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RootEntry {
    /// Bits 63:0: P (0), context-table pointer (63:12).
    pub lo: u64,
    /// Bits 127:64: reserved in legacy mode.
    pub hi: u64,
}

impl RootEntry {
    /// An entry pointing at the context table at `ctp`.
    pub const fn new(ctp: u64) -> Self {
        Self {
            lo: (ctp & ADDR_MASK) | 1,
            hi: 0,
        }
    }
    /// RE.P.
    pub const fn present(&self) -> bool {
        self.lo & 1 != 0
    }
    /// RE.CTP.
    pub const fn context_table(&self) -> u64 {
        self.lo & ADDR_MASK
    }
    /// True when reserved bits (11:1, 127:64) are clear.
    pub const fn reserved_clear(&self) -> bool {
        self.lo & 0xffe == 0 && self.hi == 0
    }
}

/// The context entry's translation type (CE.TT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranslationType {
    /// 00: untranslated requests through the second-level tables.
    Untranslated,
    /// 01: as 00, plus translated requests and translation requests (device TLB).
    All,
    /// 10: pass-through (untranslated requests go to the same physical address).
    PassThrough,
}

/// What is wrong with a context entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryProblem {
    /// Reserved bits set.
    ReservedBits,
    /// TT = 11.
    ReservedTranslationType,
    /// Pass-through without ECAP.PT.
    PassThroughUnsupported,
    /// AW names a depth SAGAW does not support.
    UnsupportedWidth,
    /// DID beyond CAP.ND's domain count.
    DomainOutOfRange,
    /// The page-table pointer is not in RAM (or past the host address width).
    PointerOutsideRam,
    /// A context-table pointer is not in RAM, aliases the root table, or is
    /// shared by two buses (a loop or garbage).
    ContextTableInvalid,
}

/// A context entry (9.3, legacy mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContextEntry {
    /// P (0), FPD (1), TT (3:2), SLPTPTR (63:12).
    pub lo: u64,
    /// AW (2:0), DID (23:8).
    pub hi: u64,
}

/// A context entry that passed [`ContextEntry::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedContext {
    /// Domain id.
    pub did: u16,
    /// Translation type.
    pub tt: TranslationType,
    /// Page-table depth (`None` for pass-through).
    pub levels: Option<Levels>,
    /// Page-table root (meaningless for pass-through).
    pub slptptr: u64,
}

impl ContextEntry {
    /// A present entry translating through the tables at `slptptr`.
    pub const fn translated(slptptr: u64, levels: Levels, did: u16) -> Self {
        Self {
            lo: (slptptr & ADDR_MASK) | 1,
            hi: levels.aw() | (did as u64) << 8,
        }
    }
    /// CE.P.
    pub const fn present(&self) -> bool {
        self.lo & 1 != 0
    }
    /// CE.DID.
    pub const fn did(&self) -> u16 {
        (self.hi >> 8) as u16
    }

    /// Validates an entry found in old memory against the unit and the RAM map.
    ///
    /// # Errors
    ///
    /// The first [`EntryProblem`].
    pub fn check(
        &self,
        caps: &Capabilities,
        map: &MemoryMap,
        haw: u8,
    ) -> Result<CheckedContext, EntryProblem> {
        // lo 11:4 reserved; hi bit 7 and 63:24 reserved (9.3).
        if self.lo & 0xff0 != 0 || self.hi & (0xffff_ffff_ff00_0080) != 0 {
            return Err(EntryProblem::ReservedBits);
        }
        let tt = match (self.lo >> 2) & 3 {
            0 => TranslationType::Untranslated,
            1 => TranslationType::All,
            2 => TranslationType::PassThrough,
            _ => return Err(EntryProblem::ReservedTranslationType),
        };
        let did = self.did();
        if u32::from(did) >= caps.domains {
            return Err(EntryProblem::DomainOutOfRange);
        }
        let slptptr = self.lo & ADDR_MASK;
        if tt == TranslationType::PassThrough {
            if !caps.pass_through {
                return Err(EntryProblem::PassThroughUnsupported);
            }
            return Ok(CheckedContext {
                did,
                tt,
                levels: None,
                slptptr,
            });
        }
        let levels = Levels::from_aw(self.hi & 7)
            .filter(|&l| caps.supports(l))
            .ok_or(EntryProblem::UnsupportedWidth)?;
        if !ram_pointer(map, slptptr, haw) {
            return Err(EntryProblem::PointerOutsideRam);
        }
        Ok(CheckedContext {
            did,
            tt,
            levels: Some(levels),
            slptptr,
        })
    }
}

/// True when a 4 KiB table at `pa` lies in RAM below the host address width.
pub fn ram_pointer(map: &MemoryMap, pa: u64, haw: u8) -> bool {
    pa % 4096 == 0 && (haw >= 64 || pa >> haw == 0) && map.contains(pa, 4096)
}

/// Second-level page-table entry bits (9.8).
pub mod pte {
    /// Read permission.
    pub const R: u64 = 1 << 0;
    /// Write permission.
    pub const W: u64 = 1 << 1;
    /// Page size: the entry maps a 2 MiB / 1 GiB page (levels 2 and 3).
    pub const PS: u64 = 1 << 7;
    /// Address bits 51:12.
    pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
}

/// Index of `iova` in a table at `level` (1 = leaf).
pub const fn index(iova: u64, level: u32) -> u64 {
    (iova >> (12 + 9 * (level - 1))) & 0x1ff
}

/// Bytes one entry covers at `level`.
pub const fn entry_span(level: u32) -> u64 {
    1u64 << (12 + 9 * (level - 1))
}

fn write(mem: &mut impl PhysWrite, pa: u64, v: u64, coherent: bool) -> Result<(), VtdError> {
    if mem.write_u64(pa, v).is_err() {
        return Err(VtdError::MemoryWrite { pa });
    }
    if !coherent {
        mem.flush(pa, 8);
    }
    Ok(())
}

/// Writes a 128-bit table entry, high half first so the unit never sees a
/// present low half with a stale high half.
pub fn write_entry(
    mem: &mut impl PhysWrite,
    pa: u64,
    lo: u64,
    hi: u64,
    coherent: bool,
) -> Result<(), VtdError> {
    if lo & 1 != 0 {
        write(mem, pa + 8, hi, coherent)?;
        write(mem, pa, lo, coherent)
    } else {
        // Clearing: drop P first.
        write(mem, pa, lo, coherent)?;
        write(mem, pa + 8, hi, coherent)
    }
}

/// A second-level address space in pages we own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageTable {
    /// Root table.
    pub root: u64,
    /// Depth.
    pub levels: Levels,
    /// Whether the unit snoops caches (no flush needed).
    pub coherent: bool,
    /// IOVAs pinned by a window mapping (`start..end`; empty when
    /// `start == end`): [`unmap`](Self::unmap) refuses them.
    pinned: (u64, u64),
}

impl PageTable {
    /// A fresh, empty address space.
    ///
    /// # Errors
    ///
    /// [`VtdError::OutOfFrames`].
    pub fn new(
        mem: &mut impl PhysWrite,
        pool: &mut FramePool,
        levels: Levels,
        coherent: bool,
    ) -> Result<Self, VtdError> {
        let root = pool.alloc(mem).ok_or(VtdError::OutOfFrames)?;
        Ok(Self {
            root,
            levels,
            coherent,
            pinned: (0, 0),
        })
    }

    /// The leaf entry's address for `iova`, allocating intermediate tables when
    /// `pool` is given.
    fn leaf(
        &self,
        mem: &mut impl PhysWrite,
        mut pool: Option<&mut FramePool>,
        iova: u64,
    ) -> Result<Option<u64>, VtdError> {
        let mut table = self.root;
        let mut level = self.levels.count();
        while level > 1 {
            let slot = table + index(iova, level) * 8;
            let e = mem
                .read_u64(slot)
                .map_err(|_| VtdError::MemoryWrite { pa: slot })?;
            if e & (pte::R | pte::W) == 0 {
                let Some(p) = pool.as_deref_mut() else {
                    return Ok(None);
                };
                let next = p.alloc(mem).ok_or(VtdError::OutOfFrames)?;
                write(mem, slot, next | pte::R | pte::W, self.coherent)?;
                table = next;
            } else if e & pte::PS != 0 {
                // We never create large pages; one here is not ours.
                return Err(VtdError::AlreadyMapped { iova });
            } else {
                table = e & pte::ADDR;
            }
            level -= 1;
        }
        Ok(Some(table + index(iova, 1) * 8))
    }

    /// Maps the 4 KiB page at `iova` to `pa`.
    ///
    /// # Errors
    ///
    /// [`VtdError::Misaligned`], [`VtdError::AlreadyMapped`],
    /// [`VtdError::OutOfFrames`], [`VtdError::MemoryWrite`].
    pub fn map(
        &self,
        mem: &mut impl PhysWrite,
        pool: &mut FramePool,
        iova: u64,
        pa: u64,
        writable: bool,
    ) -> Result<(), VtdError> {
        for v in [iova, pa] {
            if v % 4096 != 0 {
                return Err(VtdError::Misaligned { value: v });
            }
        }
        let slot = self
            .leaf(mem, Some(pool), iova)?
            .ok_or(VtdError::OutOfFrames)?;
        let old = mem
            .read_u64(slot)
            .map_err(|_| VtdError::MemoryWrite { pa: slot })?;
        if old & (pte::R | pte::W) != 0 {
            return Err(VtdError::AlreadyMapped { iova });
        }
        let perm = pte::R | if writable { pte::W } else { 0 };
        write(mem, slot, (pa & pte::ADDR) | perm, self.coherent)
    }

    /// Unmaps the 4 KiB page at `iova`, returning the physical page it mapped.
    /// The caller invalidates the IOTLB before reusing the page.
    ///
    /// # Errors
    ///
    /// [`VtdError::Pinned`] for a page a window mapping holds,
    /// [`VtdError::NotMapped`], [`VtdError::MemoryWrite`].
    pub fn unmap(&self, mem: &mut impl PhysWrite, iova: u64) -> Result<u64, VtdError> {
        if self.is_pinned(iova) {
            return Err(VtdError::Pinned { iova });
        }
        let slot = self
            .leaf(mem, None, iova)?
            .ok_or(VtdError::NotMapped { iova })?;
        let old = mem
            .read_u64(slot)
            .map_err(|_| VtdError::MemoryWrite { pa: slot })?;
        if old & (pte::R | pte::W) == 0 {
            return Err(VtdError::NotMapped { iova });
        }
        write(mem, slot, 0, self.coherent)?;
        Ok(old & pte::ADDR)
    }

    /// Pins `iova..iova + len` (with whatever was pinned before: the smallest
    /// range covering both): a window mapping handed out for it promises the
    /// pages stay where they are.
    pub(crate) fn pin(&mut self, iova: u64, len: u64) {
        let end = iova.saturating_add(len);
        self.pinned = if self.pinned.0 == self.pinned.1 {
            (iova, end)
        } else {
            (self.pinned.0.min(iova), self.pinned.1.max(end))
        };
    }

    /// True when `iova` lies in a pinned range.
    pub fn is_pinned(&self, iova: u64) -> bool {
        (self.pinned.0..self.pinned.1).contains(&iova)
    }

    /// The physical address `iova` maps to and whether it is writable.
    pub fn translate(&self, mem: &mut impl PhysWrite, iova: u64) -> Option<(u64, bool)> {
        let slot = self.leaf(mem, None, iova).ok()??;
        let e = mem.read_u64(slot).ok()?;
        (e & (pte::R | pte::W) != 0).then_some(((e & pte::ADDR) | (iova & 0xfff), e & pte::W != 0))
    }
}

/// Why a walk of old page tables stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkProblem {
    /// A pointer left RAM or the host address width.
    PointerOutsideRam {
        /// The pointer.
        pa: u64,
    },
    /// The walk read more entries than its budget (a table graph built to blow
    /// up the walk).
    Budget,
}

/// Finds the first present mapping of `base..base + len` in an old (untrusted)
/// page table: every pointer checked against `map`, at most `budget` entries read.
///
/// # Errors
///
/// [`WalkProblem`] when the tables are garbage.
#[expect(
    clippy::too_many_arguments,
    reason = "the walk's inputs are all independent facts"
)]
pub fn first_old_mapping(
    mem: &impl PhysRead,
    map: &MemoryMap,
    haw: u8,
    root: u64,
    levels: Levels,
    base: u64,
    len: u64,
    budget: &mut u32,
) -> Result<Option<u64>, WalkProblem> {
    walk(
        mem,
        map,
        haw,
        root,
        levels.count(),
        base,
        base.saturating_add(len),
        budget,
    )
}

#[expect(
    clippy::too_many_arguments,
    reason = "a recursive walk carries its context"
)]
fn walk(
    mem: &impl PhysRead,
    map: &MemoryMap,
    haw: u8,
    table: u64,
    level: u32,
    start: u64,
    end: u64,
    budget: &mut u32,
) -> Result<Option<u64>, WalkProblem> {
    if !ram_pointer(map, table, haw) {
        return Err(WalkProblem::PointerOutsideRam { pa: table });
    }
    let span = entry_span(level);
    let mut iova = start;
    while iova < end {
        *budget = budget.checked_sub(1).ok_or(WalkProblem::Budget)?;
        let slot = table + index(iova, level) * 8;
        let e = mem
            .read_u64(slot)
            .map_err(|_| WalkProblem::PointerOutsideRam { pa: slot })?;
        let entry_end = (iova | (span - 1)).saturating_add(1);
        let sub_end = entry_end.min(end);
        if e & (pte::R | pte::W) != 0 {
            if level == 1 || e & pte::PS != 0 {
                return Ok(Some(iova));
            }
            let next = e & pte::ADDR;
            if let Some(hit) = walk(mem, map, haw, next, level - 1, iova, sub_end, budget)? {
                return Ok(Some(hit));
            }
        }
        if entry_end <= iova {
            break;
        }
        iova = entry_end;
    }
    Ok(None)
}
