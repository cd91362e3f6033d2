//! Memory types of the boot identity map, and where device memory may be.
//!
//! `entry.S` maps the first 64 GiB 1:1 with 2 MiB pages before anything tells
//! it where RAM is: write-back, except 2..4 GiB ([`UNCACHED_FROM`] to
//! [`UNCACHED_TO`]), which it maps uncached, because that is where a PC puts
//! device memory (q35: ECAM at `0xB000_0000`, the 32-bit PCI hole, VT-d at
//! `0xFED9_0000`, the IOAPIC and LAPIC). Machines have RAM there too: QEMU's
//! q35 keeps all of its RAM below 4 GiB when it has less than 2.75 GiB
//! (`-m 2560M`: RAM up to `0xA000_0000`, and the firmware's ACPI tables and
//! QEMU's initrd at its top).
//!
//! Once the memory map is read, [`MemoryLayout::new`] finds that RAM, and
//! the boot code switches every 2 MiB page of the window that holds nothing
//! but memory (the kinds [`is_memory`] names) to write-back. A page only
//! partly memory stays uncached: its memory is still read correctly, only
//! slower, and its other part may be device memory. The layout then tells
//!
//! - where low RAM ends ([`MemoryLayout::low_end`]): the tables reader
//!   ([`crate::BootInfo::tables`]) reaches up to there and no further;
//! - where device memory may be mapped ([`MemoryLayout::is_device_memory`],
//!   which [`crate::platform::check_mmio`] asks): only in uncached pages at
//!   or above the end of low RAM, never on a range the memory map calls
//!   memory.

use crate::start_info::{MemoryKind, MemoryRegion};

/// Where `entry.S` starts mapping uncached (2 GiB, `UC_FROM_PDE`).
pub const UNCACHED_FROM: u64 = 0x8000_0000;
/// Where its uncached window ends (4 GiB, `UC_TO_PDE`).
pub const UNCACHED_TO: u64 = 1 << 32;
/// Size of a boot page (a page-directory entry maps 2 MiB).
pub const PAGE_SIZE: u64 = 2 << 20;
/// 2 MiB pages in the uncached window.
const WINDOW_PAGES: usize = ((UNCACHED_TO - UNCACHED_FROM) / PAGE_SIZE) as usize;
/// Index in the page directories of the window's first page.
const WINDOW_FIRST_PDE: usize = (UNCACHED_FROM / PAGE_SIZE) as usize;
/// PCD | PWT of a page-directory entry (`PDE_UC` in `entry.S`): PAT entry 3,
/// uncached in the power-on PAT; clear, PAT entry 0, write-back.
const PDE_UC: u64 = 0x18;

/// True for the memory-map kinds that are memory (RAM, ACPI tables and
/// storage, persistent memory, and the kinds another kernel marks its own
/// RAM with): never device registers, wherever they lie.
pub const fn is_memory(kind: MemoryKind) -> bool {
    matches!(
        kind,
        MemoryKind::Ram
            | MemoryKind::AcpiReclaimable
            | MemoryKind::AcpiNvs
            | MemoryKind::Persistent
            | MemoryKind::Other(_)
    )
}

/// The furthest end of the regions of `map` that `keep` selects and that
/// hold `at`.
fn reach(map: &[MemoryRegion], at: u64, keep: impl Fn(&MemoryRegion) -> bool) -> Option<u64> {
    map.iter()
        .filter(|r| keep(r) && r.start <= at && at < r.end())
        .map(MemoryRegion::end)
        .max()
}

/// True when `start..end` is covered by memory ([`is_memory`]) of `map`
/// (regions in any order; they may overlap or abut).
fn all_memory(map: &[MemoryRegion], start: u64, end: u64) -> bool {
    let mut at = start;
    // Each step moves `at` past the end of another region: at most one step
    // per region.
    for _ in 0..=map.len() {
        if at >= end {
            return true;
        }
        match reach(map, at, |r| is_memory(r.kind)) {
            Some(next) => at = next,
            None => return false,
        }
    }
    at >= end
}

/// The end of low RAM: from [`UNCACHED_FROM`] up, as far as memory ranges
/// reach without a gap, and reserved ranges that begin where a memory range
/// ends (firmware data at the top of RAM: on q35 SeaBIOS's ACPI tables; a
/// reserved range after a reserved range is not taken); never below
/// [`UNCACHED_FROM`] (everything below it counts as low RAM) nor above
/// [`UNCACHED_TO`].
fn low_ram_end(map: &[MemoryRegion]) -> u64 {
    let after_memory = |r: &MemoryRegion| {
        r.kind == MemoryKind::Reserved
            && map.iter().any(|m| is_memory(m.kind) && m.end() == r.start)
    };
    let mut at = UNCACHED_FROM;
    // Each step moves `at` past the end of another region.
    for _ in 0..map.len() {
        if at >= UNCACHED_TO {
            break;
        }
        match reach(map, at, |r| is_memory(r.kind) || after_memory(r)) {
            Some(next) => at = next,
            None => break,
        }
    }
    at.min(UNCACHED_TO)
}

/// Where low RAM ends and which 2 MiB pages of the uncached window the boot
/// code switched to write-back (those entirely memory), from the memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLayout {
    low_end: u64,
    write_back: [u64; WINDOW_PAGES / 64],
}

impl MemoryLayout {
    /// The layout the memory map `map` implies (nothing is changed yet).
    pub fn new(map: &[MemoryRegion]) -> Self {
        let mut write_back = [0u64; WINDOW_PAGES / 64];
        for page in 0..WINDOW_PAGES {
            let start = UNCACHED_FROM + page as u64 * PAGE_SIZE;
            if all_memory(map, start, start + PAGE_SIZE) {
                if let Some(word) = write_back.get_mut(page / 64) {
                    *word |= 1 << (page % 64);
                }
            }
        }
        Self {
            low_end: low_ram_end(map),
            write_back,
        }
    }

    /// The end of low RAM, at least [`UNCACHED_FROM`]: below it the identity
    /// map holds RAM and firmware data (and the legacy VGA window below
    /// 1 MiB), above it up to [`UNCACHED_TO`] device memory (and, on some
    /// machines, more RAM that the memory map lists).
    pub fn low_end(&self) -> u64 {
        self.low_end
    }

    /// True when the 2 MiB page at `addr` (in the uncached window) was
    /// switched to write-back.
    pub fn is_write_back(&self, addr: u64) -> bool {
        let Some(page) = addr.checked_sub(UNCACHED_FROM).map(|o| o / PAGE_SIZE) else {
            return false;
        };
        let page = page as usize;
        page < WINDOW_PAGES
            && self
                .write_back
                .get(page / 64)
                .is_some_and(|w| w & (1 << (page % 64)) != 0)
    }

    /// The write-back pages of the window, by address.
    pub fn write_back_pages(&self) -> impl Iterator<Item = u64> + '_ {
        (0..WINDOW_PAGES as u64)
            .map(|p| UNCACHED_FROM + p * PAGE_SIZE)
            .filter(|&a| self.is_write_back(a))
    }

    /// True when `base..base + size` may be device memory: it is not empty,
    /// lies in the uncached window at or above [`Self::low_end`] in no
    /// write-back page ([`Self::uncached`]), and no range of `map` (the
    /// memory map this layout was made from) that is memory
    /// ([`is_memory`]) overlaps it.
    pub fn is_device_memory(&self, map: &[MemoryRegion], base: u64, size: u64) -> bool {
        let Some(end) = base.checked_add(size) else {
            return false;
        };
        self.uncached(base, end)
            && !map
                .iter()
                .any(|r| is_memory(r.kind) && r.start < end && base < r.end())
    }

    /// True when `base..end` (not empty) lies in the uncached window, at or
    /// above [`Self::low_end`], and none of its pages is write-back.
    pub fn uncached(&self, base: u64, end: u64) -> bool {
        if base >= end || base < self.low_end || end > UNCACHED_TO {
            return false;
        }
        let first = base - base % PAGE_SIZE;
        let mut page = first;
        while page < end {
            if self.is_write_back(page) {
                return false;
            }
            page += PAGE_SIZE;
        }
        true
    }
}

unsafe extern "C" {
    /// The page directories of `entry.S` (`.bss`): 64 of 512 entries.
    static mut paranoid_boot_pd: [u64; 64 * 512];
}

/// True when the boot page tables map the 2 MiB page of `addr` uncached
/// (PCD or PWT set), as they say now; `None` at or above
/// [`crate::start_info::IDENTITY_LIMIT`], which they do not map.
pub fn page_uncached(addr: u64) -> Option<bool> {
    let index = usize::try_from(addr / PAGE_SIZE).ok()?;
    if addr >= crate::start_info::IDENTITY_LIMIT {
        return None;
    }
    let pd = (&raw const paranoid_boot_pd).cast::<u64>();
    // SAFETY:
    // - `index` is below IDENTITY_LIMIT / 2 MiB = 64 * 512, inside
    //   `paranoid_boot_pd` (entry.S's page directories in `.bss`);
    // - one aligned volatile load of a `u64`; the only writer after entry.S
    //   is `apply`, which runs once before the kernel's `main`, on the one
    //   CPU: the entry is never read half-written.
    let entry = unsafe { pd.add(index).read_volatile() };
    Some(entry & PDE_UC != 0)
}

/// Switches the write-back pages of `layout` to write-back in the boot page
/// tables and flushes the TLB. Called once by the boot code, after the memory
/// map is read and before the kernel's `main` runs.
pub(crate) fn apply(layout: &MemoryLayout) {
    let pd = (&raw mut paranoid_boot_pd).cast::<u64>();
    let pages = layout
        .write_back_pages()
        .map(|a| WINDOW_FIRST_PDE + ((a - UNCACHED_FROM) / PAGE_SIZE) as usize);
    // SAFETY:
    // - `paranoid_boot_pd` is entry.S's page directories in this kernel's
    //   `.bss`, which only the boot crate writes (entry.S filled them, this
    //   is the only other writer); each index is below 1024 + 1024, inside
    //   its 64 * 512 entries, so every access stays in the array;
    // - only PCD and PWT change, and only of pages the memory map lists as
    //   memory from end to end: no device register is behind them, so
    //   caching them cannot merge, reorder or repeat a device access. They
    //   were uncached until now, so no cache line of theirs exists that the
    //   new type could make stale (a kernel that ran before, the crashed one,
    //   mapped the same pages write-back by the same rule: its dirty lines
    //   are read through the cache from now on);
    // - the pages hold none of this kernel's code, data or stack (its image
    //   lies below 2 GiB) and nothing references them yet: the kernel is
    //   single-CPU and `main` has not run, so no access sees the entry
    //   half-changed; reloading CR3 drops the stale translations (entry.S
    //   sets no global bit);
    // - `mov cr3` with the same value keeps the address space.
    unsafe {
        for i in pages {
            let entry = pd.add(i);
            entry.write_volatile(entry.read_volatile() & !PDE_UC);
        }
        core::arch::asm!(
            "mov {t}, cr3",
            "mov cr3, {t}",
            t = out(reg) _,
            options(nostack, preserves_flags)
        );
    }
}
