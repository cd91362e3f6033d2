//! Handing the machine to another PVH kernel: load its ELF, write it a start
//! info, leave long mode and jump to its 32-bit entry.
//!
//! This is how a crashing kernel starts the recovery kernel it had preloaded
//! (QEMU: `-kernel A.elf -initrd B.elf`, B linked at another address, e.g.
//! `0x0400_0000`). The steps:
//!
//! 1. [`KernelImage::parse`] checks the ELF (64-bit x86_64 executable, bounded
//!    program headers inside the image) and finds the PVH entry in its
//!    `XEN_ELFNOTE_PHYS32_ENTRY` note;
//! 2. [`KernelImage::load`] copies its `PT_LOAD` segments to their physical
//!    addresses after checking each lies in RAM the caller owns (a
//!    [`RamRegion`] from its frame allocator) and off the image itself;
//! 3. [`write_start_info`] builds an `hvm_start_info` (command line, memory map,
//!    RSDP, modules) in a [`RamRegion`] the caller owns below 4 GiB;
//! 4. [`jump`] leaves long mode (compatibility mode, CR0.PG off, EFER.LME off,
//!    CR4 = 0) and enters the target with `ebx` = the start info, exactly as a
//!    PVH loader would.

use core::fmt;

use paranoid::phys::RamRegion;

use crate::frames::PhysRange;
use crate::start_info::{
    HvmMemmapEntry, HvmModlistEntry, HvmStartInfo, MemoryKind, MemoryRegion, Module,
    ADDRESSABLE_LIMIT, START_INFO_LIMIT, START_INFO_MAGIC,
};

/// Most program headers accepted.
pub const MAX_SEGMENTS: usize = 16;

/// Why a kernel image cannot be handed over to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffError {
    /// Not an ELF file, or too short for its header.
    NotElf,
    /// Not a little-endian ELF64.
    WrongClass,
    /// `e_machine` is not x86_64 (62).
    WrongMachine {
        /// The value found.
        machine: u16,
    },
    /// `e_type` is not `ET_EXEC`.
    NotExecutable {
        /// The value found.
        e_type: u16,
    },
    /// Program headers missing, too many, or outside the image.
    BadProgramHeaders {
        /// `e_phnum`.
        count: u16,
    },
    /// A segment's file bytes are outside the image, or `filesz > memsz`.
    SegmentOutOfImage {
        /// Program header index.
        index: usize,
    },
    /// A segment would land outside RAM below 4 GiB, outside the RAM the
    /// caller gave to load into, or on the image bytes.
    SegmentNotAllowed {
        /// Program header index.
        index: usize,
        /// Destination range.
        range: PhysRange,
    },
    /// No `XEN_ELFNOTE_PHYS32_ENTRY` note, or one with a bad descriptor.
    NoPvhEntry,
    /// The start-info block does not fit the memory given.
    StartInfoTooLarge {
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The start-info block is not below [`START_INFO_LIMIT`] (2 GiB: a
    /// paranoid-boot kernel reads it before it knows where else RAM is).
    StartInfoOutOfRange {
        /// Its address.
        at: u64,
    },
}

impl fmt::Display for HandoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotElf => write!(f, "not an ELF image"),
            Self::WrongClass => write!(f, "not a little-endian ELF64 image"),
            Self::WrongMachine { machine } => {
                write!(f, "ELF machine {machine}, expected 62 (x86_64)")
            }
            Self::NotExecutable { e_type } => write!(f, "ELF type {e_type}, expected 2 (ET_EXEC)"),
            Self::BadProgramHeaders { count } => write!(
                f,
                "{count} program headers: none, too many or outside the image"
            ),
            Self::SegmentOutOfImage { index } => write!(f, "segment {index} is outside the image"),
            Self::SegmentNotAllowed { index, range } => write!(
                f,
                "segment {index} would load at {:#x}..{:#x}: not free RAM",
                range.start, range.end
            ),
            Self::NoPvhEntry => write!(f, "no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"),
            Self::StartInfoTooLarge { needed, available } => {
                write!(f, "start info needs {needed} bytes, {available} available")
            }
            Self::StartInfoOutOfRange { at } => {
                write!(
                    f,
                    "start info at {at:#x} is not below {START_INFO_LIMIT:#x}"
                )
            }
        }
    }
}

/// A `PT_LOAD` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Offset of its bytes in the image.
    pub file_offset: u64,
    /// Bytes to copy.
    pub file_size: u64,
    /// Physical destination.
    pub paddr: u64,
    /// Bytes in memory (the rest after `file_size` is zeroed).
    pub mem_size: u64,
}

/// A checked kernel ELF, not yet loaded.
#[derive(Debug, Clone, Copy)]
pub struct KernelImage<'a> {
    bytes: &'a [u8],
    segments: [Segment; MAX_SEGMENTS],
    segment_count: usize,
    pvh_entry: u32,
}

fn u16_at(b: &[u8], at: u64) -> Option<u16> {
    let at = usize::try_from(at).ok()?;
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

impl<'a> KernelImage<'a> {
    /// Checks an ELF image and finds its PVH entry.
    ///
    /// # Errors
    ///
    /// A [`HandoffError`] naming what is wrong with the image.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, HandoffError> {
        if bytes.get(..4) != Some(b"\x7fELF".as_slice()) || bytes.len() < 64 {
            return Err(HandoffError::NotElf);
        }
        // EI_CLASS = 2 (ELF64), EI_DATA = 1 (little endian).
        if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
            return Err(HandoffError::WrongClass);
        }
        let e_type = u16_at(bytes, 16).ok_or(HandoffError::NotElf)?;
        let machine = u16_at(bytes, 18).ok_or(HandoffError::NotElf)?;
        if machine != 62 {
            return Err(HandoffError::WrongMachine { machine });
        }
        if e_type != 2 {
            return Err(HandoffError::NotExecutable { e_type });
        }
        let phoff = u64_at(bytes, 32).ok_or(HandoffError::NotElf)?;
        let phentsize = u16_at(bytes, 54).ok_or(HandoffError::NotElf)?;
        let count = u16_at(bytes, 56).ok_or(HandoffError::NotElf)?;
        let bad_headers = HandoffError::BadProgramHeaders { count };
        if count == 0 || usize::from(count) > MAX_SEGMENTS || phentsize < 56 {
            return Err(bad_headers);
        }
        let table_end = u64::from(phentsize)
            .checked_mul(count.into())
            .and_then(|n| n.checked_add(phoff))
            .ok_or(bad_headers)?;
        if table_end > bytes.len() as u64 {
            return Err(bad_headers);
        }
        let mut image = KernelImage {
            bytes,
            segments: [Segment::default(); MAX_SEGMENTS],
            segment_count: 0,
            pvh_entry: 0,
        };
        for index in 0..usize::from(count) {
            let ph = phoff + index as u64 * u64::from(phentsize);
            let field = |off: u64| u64_at(bytes, ph + off).ok_or(bad_headers);
            let p_type = u32_at(bytes, ph).ok_or(bad_headers)?;
            let (offset, paddr, filesz, memsz) = (field(8)?, field(24)?, field(32)?, field(40)?);
            let in_image = offset
                .checked_add(filesz)
                .is_some_and(|end| end <= bytes.len() as u64);
            if !in_image || (p_type == PT_LOAD && filesz > memsz) {
                return Err(HandoffError::SegmentOutOfImage { index });
            }
            match p_type {
                PT_LOAD if memsz > 0 => {
                    if let Some(slot) = image.segments.get_mut(image.segment_count) {
                        *slot = Segment {
                            file_offset: offset,
                            file_size: filesz,
                            paddr,
                            mem_size: memsz,
                        };
                        image.segment_count += 1;
                    }
                }
                PT_NOTE => {
                    if let Some(entry) = find_pvh_note(bytes, offset, filesz) {
                        image.pvh_entry = entry;
                    }
                }
                _ => {}
            }
        }
        if image.pvh_entry == 0 {
            return Err(HandoffError::NoPvhEntry);
        }
        Ok(image)
    }

    /// The 32-bit PVH entry point.
    pub fn pvh_entry(&self) -> u32 {
        self.pvh_entry
    }

    /// The loadable segments.
    pub fn segments(&self) -> &[Segment] {
        self.segments.get(..self.segment_count).unwrap_or(&[])
    }

    /// The physical range the loaded kernel occupies (lowest to highest segment byte).
    pub fn footprint(&self) -> PhysRange {
        let start = self.segments().iter().map(|s| s.paddr).min().unwrap_or(0);
        let end = self
            .segments()
            .iter()
            .map(|s| s.paddr.saturating_add(s.mem_size))
            .max()
            .unwrap_or(0);
        PhysRange { start, end }
    }

    /// Checks every segment destination, then copies the segments into
    /// `dest` and zeroes their tails.
    ///
    /// A destination must lie inside `dest` (RAM the caller owns: claimed
    /// from its frame allocator, so nothing the running kernel uses), inside
    /// one [`MemoryKind::Ram`] region of `ram`, below 4 GiB, and must not
    /// overlap the image bytes.
    ///
    /// # Errors
    ///
    /// [`HandoffError::SegmentNotAllowed`] before anything was written.
    pub fn load(&self, dest: &mut RamRegion, ram: &[MemoryRegion]) -> Result<(), HandoffError> {
        let source = PhysRange {
            start: self.bytes.as_ptr() as u64,
            end: self.bytes.as_ptr() as u64 + self.bytes.len() as u64,
        };
        let owned = PhysRange {
            start: dest.start(),
            end: dest.start() + dest.len(),
        };
        for (index, s) in self.segments().iter().enumerate() {
            let range = PhysRange {
                start: s.paddr,
                end: s.paddr.saturating_add(s.mem_size),
            };
            let in_ram = ram.iter().any(|r| {
                r.kind == MemoryKind::Ram && r.start <= range.start && range.end <= r.end()
            });
            let inside = owned.start <= range.start && range.end <= owned.end;
            if !in_ram || !inside || source.overlaps(&range) || range.end > ADDRESSABLE_LIMIT {
                return Err(HandoffError::SegmentNotAllowed { index, range });
            }
        }
        for (index, s) in self.segments().iter().enumerate() {
            let from = self
                .bytes
                .get(s.file_offset as usize..(s.file_offset + s.file_size) as usize)
                .unwrap_or(&[]);
            let at = s.paddr - owned.start;
            let written = dest.copy_from_slice(at, from)
                && dest.zero(at + s.file_size, s.mem_size - s.file_size);
            if !written {
                // Checked above for every segment: not reached.
                return Err(HandoffError::SegmentNotAllowed {
                    index,
                    range: PhysRange {
                        start: s.paddr,
                        end: s.paddr.saturating_add(s.mem_size),
                    },
                });
            }
        }
        Ok(())
    }
}

/// Looks through a note segment for `Xen` / `XEN_ELFNOTE_PHYS32_ENTRY`.
fn find_pvh_note(bytes: &[u8], offset: u64, size: u64) -> Option<u32> {
    let end = offset.checked_add(size)?;
    let mut at = offset;
    // Each note is at least 12 bytes: the walk is bounded by the segment size.
    while at.checked_add(12)? <= end {
        let namesz = u64::from(u32_at(bytes, at)?);
        let descsz = u64::from(u32_at(bytes, at + 4)?);
        let kind = u32_at(bytes, at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at.checked_add(namesz.checked_add(3)? & !3)?;
        let next = desc_at.checked_add(descsz.checked_add(3)? & !3)?;
        let name = bytes.get(name_at as usize..(name_at + namesz) as usize)?;
        if kind == XEN_ELFNOTE_PHYS32_ENTRY && name == b"Xen\0" {
            let entry = match descsz {
                4 => u64::from(u32_at(bytes, desc_at)?),
                8 => u64_at(bytes, desc_at)?,
                _ => return None,
            };
            return u32::try_from(entry).ok().filter(|&e| e != 0);
        }
        at = next;
    }
    None
}

/// Writes an `hvm_start_info` with its module list, memory map and command
/// line at the start of `block` (RAM the caller owns below
/// [`START_INFO_LIMIT`], kept unused until the target kernel has parsed it);
/// returns the address to hand over in `ebx`.
///
/// # Errors
///
/// [`HandoffError::StartInfoOutOfRange`] or [`HandoffError::StartInfoTooLarge`].
pub fn write_start_info(
    block: &mut RamRegion,
    cmdline: &str,
    memory_map: &[MemoryRegion],
    rsdp: Option<u64>,
    modules: &[Module],
) -> Result<u32, HandoffError> {
    let (at, len) = (block.start(), block.len());
    let header = HvmStartInfo::LEN as u64;
    let modlist = header;
    let memmap = modlist + (HvmModlistEntry::LEN * modules.len()) as u64;
    let line = memmap + (HvmMemmapEntry::LEN * memory_map.len()) as u64;
    let needed = line + cmdline.len() as u64 + 1;
    if needed > len {
        return Err(HandoffError::StartInfoTooLarge {
            needed,
            available: len,
        });
    }
    let ebx = u32::try_from(at).map_err(|_| HandoffError::StartInfoOutOfRange { at })?;
    if at + needed > START_INFO_LIMIT {
        return Err(HandoffError::StartInfoOutOfRange { at });
    }
    let info = HvmStartInfo {
        magic: START_INFO_MAGIC,
        version: 1,
        flags: 0,
        nr_modules: modules.len() as u32,
        modlist_paddr: if modules.is_empty() { 0 } else { at + modlist },
        cmdline_paddr: at + line,
        rsdp_paddr: rsdp.unwrap_or(0),
        memmap_paddr: at + memmap,
        memmap_entries: memory_map.len() as u32,
        reserved: 0,
    };
    // Every write lies in `0..needed`, inside the block (checked above).
    let mut ok = block.copy_from_slice(0, &info.to_le_bytes());
    for (i, m) in modules.iter().enumerate() {
        let e = HvmModlistEntry {
            paddr: m.start,
            size: m.size,
            cmdline_paddr: 0,
            reserved: 0,
        };
        ok &= block.copy_from_slice(
            modlist + (HvmModlistEntry::LEN * i) as u64,
            &e.to_le_bytes(),
        );
    }
    for (i, r) in memory_map.iter().enumerate() {
        let e = HvmMemmapEntry {
            addr: r.start,
            size: r.size,
            kind: r.kind.raw(),
            reserved: 0,
        };
        ok &= block.copy_from_slice(memmap + (HvmMemmapEntry::LEN * i) as u64, &e.to_le_bytes());
    }
    ok &= block.copy_from_slice(line, cmdline.as_bytes());
    ok &= block.write_u8(line + cmdline.len() as u64, 0);
    if !ok {
        // Not reached: `needed <= len` was checked.
        return Err(HandoffError::StartInfoTooLarge {
            needed,
            available: len,
        });
    }
    Ok(ebx)
}

unsafe extern "C" {
    fn paranoid_boot_pvh_handoff(entry: u32, start_info: u32) -> !;
}

/// Leaves long mode and enters a PVH kernel at `entry` with `ebx = start_info`.
///
/// # Safety
///
/// - `entry` must be the PVH entry of a kernel loaded in memory (see
///   [`KernelImage::load`]) and `start_info` a block written by
///   [`write_start_info`];
/// - the code of this kernel must be identity-mapped (it is: the boot page
///   tables map the first 4 GiB 1:1) and below 4 GiB;
/// - nothing of the running kernel is needed afterwards: this never returns.
pub unsafe fn jump(entry: u32, start_info: u32) -> ! {
    // SAFETY: forwarded contract; the assembly leaves long mode from
    // identity-mapped code and jumps with the PVH register state.
    unsafe { paranoid_boot_pvh_handoff(entry, start_info) }
}
