//! The paranoid crash-dump format, and (with `std`) its reader and verifier.
//!
//! A dump lives in a declared *extent* of a disk: a run of blocks the recovery
//! kernel may write, and nothing else. Layout (format version 2), all
//! little-endian, offsets from the start of the extent:
//!
//! ```text
//! 0      header record (4096 bytes, see `Header`): crash note, CPU state at the
//!        panic, build id, the plan (ranges in dump order), what is missing and
//!        what was excluded, and its own CRC-32
//! 4096   the chunk stream: chunk record (256 bytes, see `ChunkRecord`), then its
//!        stored bytes; the next record follows at once (no padding)
//! ```
//!
//! A chunk carries a slice of the crashed kernel's physical memory
//! (`phys..phys + len`). Pages that are all zero are only marked in the
//! record's zero map; the other pages are concatenated and stored with the
//! chunk's encoding ([`Encoding`]: raw or LZ4). Each chunk is checkable on its
//! own: its record (address, length, encoding, zero map) has a CRC, its stored
//! bytes have a CRC, and the non-zero pages they decode to have a CRC.
//!
//! The recovery kernel writes the header first (flags clear: the crash note and
//! CPU state are on disk before anything else), then the chunks in the plan's
//! order (most useful memory first), flushes, and rewrites the header with
//! [`FLAG_COMPLETE`]; when the extent fills up first it closes the dump with
//! [`FLAG_PARTIAL`] and the list of ranges that are missing. A dump cut short
//! without either flag is recognisable as such.
//!
//! The crashed kernel fills a *pattern region* with [`pattern_word`] so the
//! reader can verify, word for word, that what reached the disk is what was in
//! memory.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

use core::fmt;

pub mod codec;
#[cfg(feature = "std")]
pub mod elf;
pub mod le;
#[cfg(feature = "std")]
pub mod reader;
pub mod stream;

use le::{get, put, u32_at, u64_at};

/// Magic of the header record.
pub const MAGIC: [u8; 8] = *b"PRNDUMP1";
/// Magic of a chunk record.
pub const CHUNK_MAGIC: [u8; 8] = *b"PRNCHNK2";
/// Format version: 2 added zero pages, compression, the plan order, partial
/// dumps, CPU state and exclusions.
pub const VERSION: u32 = 2;
/// Size of the header record.
pub const RECORD: usize = 4096;
/// Size of a chunk record.
pub const CHUNK_RECORD: usize = 256;
/// Bytes of a page (the zero map's unit).
pub const PAGE: usize = 4096;
/// Pages a chunk can hold (its zero map has a bit for each).
pub const MAX_CHUNK_PAGES: usize = 1024;
/// Ranges the plan can hold.
pub const MAX_RANGES: usize = 64;
/// Missing ranges a partial dump can list.
pub const MAX_MISSING: usize = 64;
/// Excluded ranges a header can list.
pub const MAX_EXCLUDED: usize = 16;
/// Header flag: every chunk of the plan was written and flushed.
pub const FLAG_COMPLETE: u32 = 1 << 0;
/// Header flag: the extent filled up; the missing list says what is not there.
pub const FLAG_PARTIAL: u32 = 1 << 1;
/// Bytes of crash reason kept.
pub const REASON_LEN: usize = 128;
/// Bytes of crash-point name kept.
pub const POINT_LEN: usize = 32;
/// Bytes of build id kept.
pub const BUILD_ID_LEN: usize = 16;
/// Bytes of the descriptor status line kept.
pub const DESCRIPTOR_LEN: usize = 64;

/// Errors decoding a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpError {
    /// The record is shorter than it must be.
    Truncated,
    /// Wrong magic: not a dump (or not this record kind).
    BadMagic,
    /// Unknown format version.
    BadVersion(u32),
    /// The record's CRC-32 does not match.
    BadCrc {
        /// CRC stored.
        stored: u32,
        /// CRC computed.
        computed: u32,
    },
    /// A field is out of its valid range.
    BadField(&'static str),
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "record truncated"),
            Self::BadMagic => write!(f, "bad magic"),
            Self::BadVersion(1) => write!(
                f,
                "dump format version 1 (fixed-size raw chunks) is not read by this reader, \
                 which reads version {VERSION}; use a paranoid build from before the format change"
            ),
            Self::BadVersion(v) => {
                write!(
                    f,
                    "unsupported dump format version {v} (this reader reads {VERSION})"
                )
            }
            Self::BadCrc { stored, computed } => write!(
                f,
                "crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Self::BadField(what) => write!(f, "bad field `{what}`"),
        }
    }
}

/// A physical memory range of the crashed kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    /// Physical start.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Range {
    /// One past the last byte (saturating).
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }

    /// True when `self` and `other` share a byte.
    pub const fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end() && other.start < self.end()
    }
}

/// How the IOMMU was taken over (recorded in the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Policy {
    /// Old translation tables adopted.
    Adopt = 0,
    /// Fresh tables, everything else blocked.
    Fence = 1,
    /// Old translation kept for a bounded drain, then fenced.
    DrainThenFence = 2,
    /// No IOMMU present.
    None = 3,
}

impl Policy {
    fn from_u32(v: u32) -> Option<Self> {
        [Self::Adopt, Self::Fence, Self::DrainThenFence, Self::None]
            .into_iter()
            .find(|p| *p as u32 == v)
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Adopt => "adopt",
            Self::Fence => "fence",
            Self::DrainThenFence => "drain-then-fence",
            Self::None => "none",
        }
    }
}

/// How a chunk's non-zero pages are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Encoding {
    /// As they are.
    Raw = 0,
    /// LZ4 block format (`lz4_flex`).
    Lz4 = 1,
}

impl Encoding {
    /// The encoding numbered `v`.
    pub fn from_u32(v: u32) -> Option<Self> {
        [Self::Raw, Self::Lz4].into_iter().find(|e| *e as u32 == v)
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Lz4 => "lz4",
        }
    }
}

/// Why a range of the crashed kernel's RAM is not in the dump on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExcludedKind {
    /// The recovery kernel's own reserved memory (it runs there).
    Recovery = 1,
    /// A device was allowed to write it after the takeover (an armed DMA
    /// target, a receive buffer): dumped, but it may differ from memory later.
    DmaTarget = 2,
    /// Marked free by the crashed kernel's descriptor (`exclude_free=on`).
    Free = 3,
}

impl ExcludedKind {
    /// The kind numbered `v`.
    pub fn from_u32(v: u32) -> Option<Self> {
        [Self::Recovery, Self::DmaTarget, Self::Free]
            .into_iter()
            .find(|k| *k as u32 == v)
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Recovery => "recovery",
            Self::DmaTarget => "dma-target",
            Self::Free => "free",
        }
    }

    /// True when the range is left out of the dump (a DMA target is dumped but
    /// may change afterwards).
    pub fn left_out(self) -> bool {
        !matches!(self, Self::DmaTarget)
    }
}

/// A range listed in the header's exclusions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Excluded {
    /// The range.
    pub range: Range,
    /// Why.
    pub kind: ExcludedKind,
}

/// Registers in `user_regs_struct` order (what gdb reads from NT_PRSTATUS).
pub const REG_NAMES: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

/// Index of `rip` in [`CpuState::regs`].
pub const REG_RIP: usize = 16;
/// Index of `rsp` in [`CpuState::regs`].
pub const REG_RSP: usize = 19;
/// Index of `rbp` in [`CpuState::regs`].
pub const REG_RBP: usize = 4;

/// The panicking CPU's registers, saved by the crashed kernel's panic path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuState {
    /// General registers, `rip`, `rflags` and segment selectors in
    /// `user_regs_struct` order ([`REG_NAMES`]).
    pub regs: [u64; 27],
    /// CR0.
    pub cr0: u64,
    /// CR2 (the last page-fault address).
    pub cr2: u64,
    /// CR3 (the page-table root).
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// False when the crashed kernel saved nothing.
    pub valid: bool,
}

/// Bytes of an encoded [`CpuState`] (31 words).
pub const CPU_STATE_LEN: usize = 31 * 8;

impl CpuState {
    /// No state.
    pub const fn empty() -> Self {
        Self {
            regs: [0; 27],
            cr0: 0,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            valid: false,
        }
    }

    /// Writes the 31 words at `at` of `out`.
    pub fn encode(&self, out: &mut [u8], at: usize) {
        let words = self
            .regs
            .iter()
            .chain([&self.cr0, &self.cr2, &self.cr3, &self.cr4]);
        for (i, w) in words.enumerate() {
            put(out, at + 8 * i, &w.to_le_bytes());
        }
    }

    /// Reads the 31 words at `at` of `src` (`valid` as given).
    pub fn decode(src: &[u8], at: usize, valid: bool) -> Self {
        let mut s = Self::empty();
        for (i, r) in s.regs.iter_mut().enumerate() {
            *r = u64_at(src, at + 8 * i);
        }
        s.cr0 = u64_at(src, at + 8 * 27);
        s.cr2 = u64_at(src, at + 8 * 28);
        s.cr3 = u64_at(src, at + 8 * 29);
        s.cr4 = u64_at(src, at + 8 * 30);
        s.valid = valid;
        s
    }
}

/// The header record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Flags ([`FLAG_COMPLETE`], [`FLAG_PARTIAL`]).
    pub flags: u32,
    /// IOMMU policy used.
    pub policy: Policy,
    /// Encoding the writer used for chunks that compress.
    pub codec: Encoding,
    /// Most bytes of memory per chunk (a multiple of [`PAGE`], at most
    /// [`MAX_CHUNK_PAGES`] pages).
    pub chunk_size: u32,
    /// Chunks written.
    pub chunk_count: u64,
    /// Bytes of memory the chunks cover.
    pub total_bytes: u64,
    /// Bytes of the chunk stream (records and stored bytes).
    pub stream_bytes: u64,
    /// Stored bytes of chunk data (after zero pages and compression).
    pub stored_bytes: u64,
    /// Zero pages recorded and not written.
    pub zero_pages: u64,
    /// When the crashed kernel panicked (ns on its clock since its boot).
    pub crash_ns: u64,
    /// Dump start (ns since recovery entry).
    pub dump_start_ns: u64,
    /// Dump end (ns since recovery entry).
    pub dump_end_ns: u64,
    /// Time the recovery kernel spent encoding chunks (zero scan, CRC,
    /// compression), in ns.
    pub encode_ns: u64,
    /// Seed of the crashed kernel's memory pattern.
    pub pattern_seed: u64,
    /// The pattern region.
    pub pattern: Range,
    /// Where it crashed (crash point name).
    pub crash_point: [u8; POINT_LEN],
    /// Why it crashed (panic message, truncated).
    pub crash_reason: [u8; REASON_LEN],
    /// The crashed kernel's build id (from its descriptor; zeros: none).
    pub build_id: [u8; BUILD_ID_LEN],
    /// How the crashed kernel's descriptor was used (or why it was ignored).
    pub descriptor: [u8; DESCRIPTOR_LEN],
    /// The panicking CPU's registers.
    pub cpu: CpuState,
    /// The plan: memory ranges in dump order.
    pub ranges: [Range; MAX_RANGES],
    /// Ranges in use.
    pub range_count: u32,
    /// Ranges of the plan not in the dump (a partial dump).
    pub missing: [Range; MAX_MISSING],
    /// Missing ranges in use.
    pub missing_count: u32,
    /// RAM left out (or allowed to change) on purpose, and why.
    pub excluded: [Option<Excluded>; MAX_EXCLUDED],
}

/// Copies `s` into a fixed, zero-padded field (truncating at a char boundary).
pub fn fixed<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if let (Some(dst), Some(src)) = (out.get_mut(..end), s.as_bytes().get(..end)) {
        dst.copy_from_slice(src);
    }
    out
}

/// The text of a fixed field (up to the first zero byte; lossy on bad UTF-8).
pub fn text(field: &[u8]) -> &str {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let bytes = field.get(..end).unwrap_or(&[]);
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or(""),
    }
}

const RANGES_AT: usize = 640;
const MISSING_AT: usize = RANGES_AT + 16 * MAX_RANGES;
const EXCLUDED_AT: usize = MISSING_AT + 16 * MAX_MISSING;
const CPU_AT: usize = 384;
const _: () = assert!(EXCLUDED_AT + 24 * MAX_EXCLUDED <= RECORD - 4);
const _: () = assert!(CPU_AT + CPU_STATE_LEN <= RANGES_AT);

impl Header {
    /// A header for an empty, unfinished dump.
    pub fn new(policy: Policy, chunk_size: u32) -> Self {
        Self {
            flags: 0,
            policy,
            codec: Encoding::Lz4,
            chunk_size,
            chunk_count: 0,
            total_bytes: 0,
            stream_bytes: 0,
            stored_bytes: 0,
            zero_pages: 0,
            crash_ns: 0,
            dump_start_ns: 0,
            dump_end_ns: 0,
            encode_ns: 0,
            pattern_seed: 0,
            pattern: Range::default(),
            crash_point: [0; POINT_LEN],
            crash_reason: [0; REASON_LEN],
            build_id: [0; BUILD_ID_LEN],
            descriptor: [0; DESCRIPTOR_LEN],
            cpu: CpuState::empty(),
            ranges: [Range::default(); MAX_RANGES],
            range_count: 0,
            missing: [Range::default(); MAX_MISSING],
            missing_count: 0,
            excluded: [None; MAX_EXCLUDED],
        }
    }

    /// The plan's ranges in use.
    pub fn ranges(&self) -> &[Range] {
        self.ranges.get(..self.range_count as usize).unwrap_or(&[])
    }

    /// The missing ranges in use.
    pub fn missing(&self) -> &[Range] {
        self.missing
            .get(..self.missing_count as usize)
            .unwrap_or(&[])
    }

    /// The exclusions.
    pub fn excluded(&self) -> impl Iterator<Item = Excluded> + '_ {
        self.excluded.iter().flatten().copied()
    }

    /// Adds an exclusion; false when the list is full.
    pub fn exclude(&mut self, range: Range, kind: ExcludedKind) -> bool {
        match self.excluded.iter_mut().find(|e| e.is_none()) {
            Some(slot) => {
                *slot = Some(Excluded { range, kind });
                true
            }
            None => false,
        }
    }

    /// True when the dump was completed and flushed.
    pub fn is_complete(&self) -> bool {
        self.flags & FLAG_COMPLETE != 0
    }

    /// True when the dump was closed early with a missing list.
    pub fn is_partial(&self) -> bool {
        self.flags & FLAG_PARTIAL != 0
    }

    /// Encodes into a 4096-byte record (CRC in the last four bytes).
    pub fn encode(&self, out: &mut [u8; RECORD]) {
        out.fill(0);
        put(out, 0, &MAGIC);
        put(out, 8, &VERSION.to_le_bytes());
        put(out, 12, &(RECORD as u32).to_le_bytes());
        put(out, 16, &self.flags.to_le_bytes());
        put(out, 20, &(self.policy as u32).to_le_bytes());
        put(out, 24, &self.chunk_size.to_le_bytes());
        put(out, 28, &self.range_count.to_le_bytes());
        put(out, 32, &self.chunk_count.to_le_bytes());
        put(out, 40, &self.total_bytes.to_le_bytes());
        put(out, 48, &self.crash_ns.to_le_bytes());
        put(out, 56, &self.dump_start_ns.to_le_bytes());
        put(out, 64, &self.dump_end_ns.to_le_bytes());
        put(out, 72, &self.pattern_seed.to_le_bytes());
        put(out, 80, &self.pattern.start.to_le_bytes());
        put(out, 88, &self.pattern.len.to_le_bytes());
        put(out, 96, &self.crash_point);
        put(out, 128, &self.crash_reason);
        put(out, 256, &self.stream_bytes.to_le_bytes());
        put(out, 264, &self.stored_bytes.to_le_bytes());
        put(out, 272, &self.zero_pages.to_le_bytes());
        put(out, 280, &self.missing_count.to_le_bytes());
        put(out, 288, &(self.codec as u32).to_le_bytes());
        put(out, 292, &u32::from(self.cpu.valid).to_le_bytes());
        put(out, 296, &self.build_id);
        put(out, 312, &self.descriptor);
        put(out, 376, &self.encode_ns.to_le_bytes());
        self.cpu.encode(out, CPU_AT);
        for (i, r) in self.ranges.iter().enumerate() {
            put(out, RANGES_AT + 16 * i, &r.start.to_le_bytes());
            put(out, RANGES_AT + 8 + 16 * i, &r.len.to_le_bytes());
        }
        for (i, r) in self.missing.iter().enumerate() {
            put(out, MISSING_AT + 16 * i, &r.start.to_le_bytes());
            put(out, MISSING_AT + 8 + 16 * i, &r.len.to_le_bytes());
        }
        for (i, e) in self.excluded.iter().enumerate() {
            if let Some(e) = e {
                put(out, EXCLUDED_AT + 24 * i, &e.range.start.to_le_bytes());
                put(out, EXCLUDED_AT + 8 + 24 * i, &e.range.len.to_le_bytes());
                put(
                    out,
                    EXCLUDED_AT + 16 + 24 * i,
                    &(e.kind as u32).to_le_bytes(),
                );
            }
        }
        let crc = crc32fast::hash(out.get(..RECORD - 4).unwrap_or(&[]));
        put(out, RECORD - 4, &crc.to_le_bytes());
    }

    /// Decodes and validates a header record.
    ///
    /// # Errors
    ///
    /// [`DumpError`] for a short record, bad magic, version, CRC or field.
    pub fn decode(rec: &[u8]) -> Result<Self, DumpError> {
        let rec = rec.get(..RECORD).ok_or(DumpError::Truncated)?;
        if get::<8>(rec, 0) != MAGIC {
            return Err(DumpError::BadMagic);
        }
        let version = u32_at(rec, 8);
        if version != VERSION {
            return Err(DumpError::BadVersion(version));
        }
        check_crc(rec, RECORD)?;
        let policy = Policy::from_u32(u32_at(rec, 20)).ok_or(DumpError::BadField("policy"))?;
        let codec = Encoding::from_u32(u32_at(rec, 288)).ok_or(DumpError::BadField("codec"))?;
        let chunk_size = u32_at(rec, 24);
        if chunk_size == 0
            || chunk_size as usize % PAGE != 0
            || chunk_size as usize > MAX_CHUNK_PAGES * PAGE
        {
            return Err(DumpError::BadField("chunk_size"));
        }
        let range_count = u32_at(rec, 28);
        if range_count as usize > MAX_RANGES {
            return Err(DumpError::BadField("range_count"));
        }
        let missing_count = u32_at(rec, 280);
        if missing_count as usize > MAX_MISSING {
            return Err(DumpError::BadField("missing_count"));
        }
        let range = |at: usize| -> Result<Range, DumpError> {
            let r = Range {
                start: u64_at(rec, at),
                len: u64_at(rec, at + 8),
            };
            match r.start.checked_add(r.len) {
                Some(_) => Ok(r),
                None => Err(DumpError::BadField("range")),
            }
        };
        let mut h = Self::new(policy, chunk_size);
        h.codec = codec;
        for (i, r) in h.ranges.iter_mut().enumerate() {
            *r = range(RANGES_AT + 16 * i)?;
        }
        for (i, r) in h.missing.iter_mut().enumerate() {
            *r = range(MISSING_AT + 16 * i)?;
        }
        for (i, slot) in h.excluded.iter_mut().enumerate() {
            let kind = u32_at(rec, EXCLUDED_AT + 16 + 24 * i);
            if kind == 0 {
                continue;
            }
            let kind = ExcludedKind::from_u32(kind).ok_or(DumpError::BadField("excluded kind"))?;
            *slot = Some(Excluded {
                range: range(EXCLUDED_AT + 24 * i)?,
                kind,
            });
        }
        let pattern = range(80)?;
        h.flags = u32_at(rec, 16);
        h.range_count = range_count;
        h.missing_count = missing_count;
        h.chunk_count = u64_at(rec, 32);
        h.total_bytes = u64_at(rec, 40);
        h.crash_ns = u64_at(rec, 48);
        h.dump_start_ns = u64_at(rec, 56);
        h.dump_end_ns = u64_at(rec, 64);
        h.pattern_seed = u64_at(rec, 72);
        h.pattern = pattern;
        h.crash_point = get(rec, 96);
        h.crash_reason = get(rec, 128);
        h.stream_bytes = u64_at(rec, 256);
        h.stored_bytes = u64_at(rec, 264);
        h.zero_pages = u64_at(rec, 272);
        h.build_id = get(rec, 296);
        h.descriptor = get(rec, 312);
        h.encode_ns = u64_at(rec, 376);
        h.cpu = CpuState::decode(rec, CPU_AT, u32_at(rec, 292) != 0);
        if h.is_complete() && h.is_partial() {
            return Err(DumpError::BadField("flags"));
        }
        // The plan names each byte once: overlapping ranges would dump memory
        // twice and hide what they leave out.
        let plan = h.ranges();
        for (i, a) in plan.iter().enumerate() {
            if plan
                .iter()
                .skip(i + 1)
                .any(|b| a.len > 0 && b.len > 0 && a.overlaps(b))
            {
                return Err(DumpError::BadField("plan overlaps"));
            }
        }
        Ok(h)
    }
}

fn check_crc(rec: &[u8], len: usize) -> Result<(), DumpError> {
    let stored = u32_at(rec, len - 4);
    let computed = crc32fast::hash(rec.get(..len - 4).unwrap_or(&[]));
    if stored == computed {
        Ok(())
    } else {
        Err(DumpError::BadCrc { stored, computed })
    }
}

/// The record in front of each chunk's stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRecord {
    /// Chunk index (0-based, consecutive).
    pub index: u64,
    /// Physical address of the memory.
    pub phys: u64,
    /// Bytes of memory (zero pages included).
    pub len: u32,
    /// How the non-zero pages are stored.
    pub encoding: Encoding,
    /// Bytes stored after the record.
    pub stored_len: u32,
    /// CRC-32 of the memory's non-zero pages, concatenated (the zero map,
    /// under the record's CRC, places them).
    pub data_crc: u32,
    /// CRC-32 of the stored bytes.
    pub stored_crc: u32,
    /// Bit `i` set: page `i` is all zero and not stored.
    pub zero_map: [u8; MAX_CHUNK_PAGES / 8],
}

impl ChunkRecord {
    /// Pages of the chunk (the last may be short).
    pub fn pages(&self) -> usize {
        (self.len as usize).div_ceil(PAGE)
    }

    /// True when page `i` is recorded as zero.
    pub fn is_zero_page(&self, i: usize) -> bool {
        self.zero_map
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// Marks page `i` as zero.
    pub fn set_zero_page(&mut self, i: usize) {
        if let Some(b) = self.zero_map.get_mut(i / 8) {
            *b |= 1 << (i % 8);
        }
    }

    /// Bytes of page `i` (the last page may be short).
    pub fn page_len(&self, i: usize) -> usize {
        (self.len as usize).saturating_sub(i * PAGE).min(PAGE)
    }

    /// Bytes of the non-zero pages (what the stored bytes decode to).
    pub fn plain_len(&self) -> usize {
        (0..self.pages())
            .filter(|&i| !self.is_zero_page(i))
            .map(|i| self.page_len(i))
            .sum()
    }

    /// Zero pages.
    pub fn zero_pages(&self) -> usize {
        (0..self.pages()).filter(|&i| self.is_zero_page(i)).count()
    }

    /// Encodes into a record.
    pub fn encode(&self, out: &mut [u8; CHUNK_RECORD]) {
        out.fill(0);
        put(out, 0, &CHUNK_MAGIC);
        put(out, 8, &self.index.to_le_bytes());
        put(out, 16, &self.phys.to_le_bytes());
        put(out, 24, &self.len.to_le_bytes());
        put(out, 28, &(self.encoding as u32).to_le_bytes());
        put(out, 32, &self.stored_len.to_le_bytes());
        put(out, 36, &self.data_crc.to_le_bytes());
        put(out, 40, &self.stored_crc.to_le_bytes());
        put(out, 48, &self.zero_map);
        let crc = crc32fast::hash(out.get(..CHUNK_RECORD - 4).unwrap_or(&[]));
        put(out, CHUNK_RECORD - 4, &crc.to_le_bytes());
    }

    /// Decodes and validates a chunk record.
    ///
    /// # Errors
    ///
    /// [`DumpError`] for a short record, bad magic, CRC, encoding or length.
    pub fn decode(rec: &[u8]) -> Result<Self, DumpError> {
        let rec = rec.get(..CHUNK_RECORD).ok_or(DumpError::Truncated)?;
        if get::<8>(rec, 0) != CHUNK_MAGIC {
            return Err(DumpError::BadMagic);
        }
        check_crc(rec, CHUNK_RECORD)?;
        let c = Self {
            index: u64_at(rec, 8),
            phys: u64_at(rec, 16),
            len: u32_at(rec, 24),
            encoding: Encoding::from_u32(u32_at(rec, 28)).ok_or(DumpError::BadField("encoding"))?,
            stored_len: u32_at(rec, 32),
            data_crc: u32_at(rec, 36),
            stored_crc: u32_at(rec, 40),
            zero_map: get(rec, 48),
        };
        if c.len == 0 || c.len as usize > MAX_CHUNK_PAGES * PAGE {
            return Err(DumpError::BadField("len"));
        }
        if c.phys.checked_add(u64::from(c.len)).is_none() {
            return Err(DumpError::BadField("phys"));
        }
        let plain = c.plain_len();
        let bound = match c.encoding {
            Encoding::Raw => plain,
            Encoding::Lz4 => codec::lz4_bound(plain),
        };
        if c.stored_len as usize > bound
            || (c.encoding == Encoding::Raw && c.stored_len as usize != plain)
        {
            return Err(DumpError::BadField("stored_len"));
        }
        Ok(c)
    }
}

/// CRC-32 of chunk data (the same CRC the records use).
pub fn data_crc(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// The chunk header the network stream sends (memory as it is, no encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Chunk index (0-based, consecutive).
    pub index: u64,
    /// Physical address of the data.
    pub phys: u64,
    /// Bytes of data.
    pub len: u32,
    /// CRC-32 of the data.
    pub data_crc: u32,
}

/// The 64-bit word the crashed kernel stores at physical address `phys` (8-byte
/// aligned) of its pattern region: splitmix64 of the address and the seed, so
/// every word differs and a misplaced or stale page is caught.
pub const fn pattern_word(seed: u64, phys: u64) -> u64 {
    let mut z = phys.wrapping_add(seed).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Header {
        let mut h = Header::new(Policy::Fence, 256 * 1024);
        h.flags = FLAG_COMPLETE;
        h.chunk_count = 3;
        h.total_bytes = 700_000;
        h.pattern_seed = 42;
        h.pattern = Range {
            start: 0x200_0000,
            len: 0x100_0000,
        };
        h.crash_point = fixed("during-io");
        h.crash_reason = fixed("panicked at kernel-a/src/main.rs:10: crash point reached");
        h.ranges[0] = Range {
            start: 0x10_0000,
            len: 0x7f0_0000,
        };
        h.range_count = 1;
        h.missing[0] = Range {
            start: 0x1_0000_0000,
            len: 0x1000,
        };
        h.missing_count = 1;
        h.cpu.regs[REG_RIP] = 0x10_1234;
        h.cpu.cr3 = 0x20_0000;
        h.cpu.valid = true;
        h.build_id = [7; BUILD_ID_LEN];
        h.exclude(
            Range {
                start: 0x400_0000,
                len: 0x400_0000,
            },
            ExcludedKind::Recovery,
        );
        h
    }

    #[test]
    fn header_round_trips_and_detects_corruption() {
        let h = sample();
        let mut rec = [0u8; RECORD];
        h.encode(&mut rec);
        assert_eq!(Header::decode(&rec), Ok(h.clone()));
        assert_eq!(text(&h.crash_point), "during-io");
        rec[100] ^= 1;
        assert!(matches!(
            Header::decode(&rec),
            Err(DumpError::BadCrc { .. })
        ));
        assert_eq!(Header::decode(&rec[..100]), Err(DumpError::Truncated));
        assert_eq!(
            ChunkRecord::decode(&[0u8; RECORD]),
            Err(DumpError::BadMagic)
        );
    }

    #[test]
    fn an_overlapping_plan_is_refused() {
        let mut h = sample();
        h.ranges[1] = Range {
            start: 0x20_0000,
            len: 0x1000,
        };
        h.range_count = 2;
        let mut rec = [0u8; RECORD];
        h.encode(&mut rec);
        assert_eq!(
            Header::decode(&rec),
            Err(DumpError::BadField("plan overlaps"))
        );
    }

    #[test]
    fn version_one_is_refused_with_a_clear_error() {
        let mut rec = [0u8; RECORD];
        sample().encode(&mut rec);
        rec[8..12].copy_from_slice(&1u32.to_le_bytes());
        let e = Header::decode(&rec).unwrap_err();
        assert_eq!(e, DumpError::BadVersion(1));
        assert!(e.to_string().contains("version 1"), "{e}");
    }

    #[test]
    fn chunk_record_round_trip_and_bounds() {
        let mut c = ChunkRecord {
            index: 7,
            phys: 0x123000,
            len: 3 * 4096 + 100,
            encoding: Encoding::Raw,
            stored_len: 2 * 4096 + 100,
            data_crc: 0xdeadbeef,
            stored_crc: 1,
            zero_map: [0; MAX_CHUNK_PAGES / 8],
        };
        c.set_zero_page(1);
        assert_eq!(c.pages(), 4);
        assert_eq!(c.plain_len(), 2 * 4096 + 100);
        let mut rec = [0u8; CHUNK_RECORD];
        c.encode(&mut rec);
        assert_eq!(ChunkRecord::decode(&rec), Ok(c));
        // A raw chunk must store exactly its non-zero pages.
        c.stored_len += 1;
        c.encode(&mut rec);
        assert_eq!(
            ChunkRecord::decode(&rec),
            Err(DumpError::BadField("stored_len"))
        );
        c.stored_len -= 1;
        c.len = 0;
        c.encode(&mut rec);
        assert_eq!(ChunkRecord::decode(&rec), Err(DumpError::BadField("len")));
        // An unknown encoding.
        c.len = 4096;
        c.stored_len = 0;
        c.encode(&mut rec);
        rec[28] = 9;
        let crc = crc32fast::hash(&rec[..CHUNK_RECORD - 4]);
        rec[CHUNK_RECORD - 4..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            ChunkRecord::decode(&rec),
            Err(DumpError::BadField("encoding"))
        );
    }

    #[test]
    fn fixed_truncates_on_char_boundary() {
        let f: [u8; 5] = fixed("ééé");
        assert_eq!(text(&f), "éé");
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            let _ = Header::decode(&bytes);
            let _ = ChunkRecord::decode(&bytes);
        }

        /// Hostile headers with valid magic, version and CRC: a typed error or a
        /// header whose counts are in bounds.
        #[test]
        fn resealed_garbage_decodes_in_bounds(bytes in proptest::collection::vec(any::<u8>(), RECORD)) {
            let mut rec = [0u8; RECORD];
            rec.copy_from_slice(&bytes);
            rec[..8].copy_from_slice(&MAGIC);
            rec[8..12].copy_from_slice(&VERSION.to_le_bytes());
            let crc = crc32fast::hash(&rec[..RECORD - 4]);
            rec[RECORD - 4..].copy_from_slice(&crc.to_le_bytes());
            if let Ok(h) = Header::decode(&rec) {
                prop_assert!(h.ranges().len() <= MAX_RANGES);
                prop_assert!(h.missing().len() <= MAX_MISSING);
            }
        }

        #[test]
        fn pattern_words_differ_between_neighbours(seed: u64, page in 0u64..1 << 30) {
            let a = pattern_word(seed, page * 8);
            let b = pattern_word(seed, page * 8 + 8);
            prop_assert_ne!(a, b);
        }
    }
}
