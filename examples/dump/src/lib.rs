//! The paranoid crash-dump format, and (with `std`) its reader and verifier.
//!
//! A dump lives in a declared *extent* of a disk: a run of blocks the recovery
//! kernel may write, and nothing else. Layout, all little-endian, offsets from the
//! start of the extent:
//!
//! ```text
//! 0                 header record (4096 bytes, see `Header`)
//! 4096              chunk 0: chunk record (4096 bytes, see `ChunkHeader`) + data
//! 4096 + R          chunk 1 ...           (R = 4096 + chunk_size)
//! ```
//!
//! Each chunk carries a slice of the crashed kernel's physical memory and the
//! CRC-32 of its data; the header carries the crash note, the memory ranges, and
//! its own CRC-32. The recovery kernel writes the header first with the
//! `COMPLETE` flag clear, then the chunks, flushes, and rewrites the header with
//! `COMPLETE` set: a dump cut short is recognisable as such.
//!
//! The crashed kernel fills a *pattern region* with [`pattern_word`] so the
//! reader can verify, word for word, that what reached the disk is what was in
//! memory.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

use core::fmt;

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
pub const CHUNK_MAGIC: [u8; 8] = *b"PRNCHUNK";
/// Format version.
pub const VERSION: u32 = 1;
/// Size of the header record and of each chunk record.
pub const RECORD: usize = 4096;
/// Memory ranges a header can describe.
pub const MAX_RANGES: usize = 32;
/// Header flag: every chunk was written and flushed.
pub const FLAG_COMPLETE: u32 = 1 << 0;
/// Bytes of crash reason kept.
pub const REASON_LEN: usize = 128;
/// Bytes of crash-point name kept.
pub const POINT_LEN: usize = 32;

/// Errors decoding a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpError {
    /// The record is shorter than [`RECORD`].
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
            Self::BadVersion(v) => write!(f, "unsupported version {v}"),
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

/// The header record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Flags ([`FLAG_COMPLETE`]).
    pub flags: u32,
    /// IOMMU policy used.
    pub policy: Policy,
    /// Bytes of memory per chunk (multiple of 4096).
    pub chunk_size: u32,
    /// Chunks written.
    pub chunk_count: u64,
    /// Bytes of memory dumped.
    pub total_bytes: u64,
    /// When the crashed kernel panicked (ns on its clock since its boot).
    pub crash_ns: u64,
    /// Recovery timeline: recovery kernel entry, dump start, dump end (ns since
    /// recovery entry).
    pub dump_start_ns: u64,
    /// Dump end (ns since recovery entry).
    pub dump_end_ns: u64,
    /// Seed of the crashed kernel's memory pattern.
    pub pattern_seed: u64,
    /// The pattern region.
    pub pattern: Range,
    /// Where it crashed (crash point name).
    pub crash_point: [u8; POINT_LEN],
    /// Why it crashed (panic message, truncated).
    pub crash_reason: [u8; REASON_LEN],
    /// Memory ranges dumped, in order.
    pub ranges: [Range; MAX_RANGES],
    /// Ranges in use.
    pub range_count: u32,
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

impl Header {
    /// A header for an empty, incomplete dump.
    pub fn new(policy: Policy, chunk_size: u32) -> Self {
        Self {
            flags: 0,
            policy,
            chunk_size,
            chunk_count: 0,
            total_bytes: 0,
            crash_ns: 0,
            dump_start_ns: 0,
            dump_end_ns: 0,
            pattern_seed: 0,
            pattern: Range::default(),
            crash_point: [0; POINT_LEN],
            crash_reason: [0; REASON_LEN],
            ranges: [Range::default(); MAX_RANGES],
            range_count: 0,
        }
    }

    /// The ranges in use.
    pub fn ranges(&self) -> &[Range] {
        self.ranges.get(..self.range_count as usize).unwrap_or(&[])
    }

    /// True when the dump was completed and flushed.
    pub fn is_complete(&self) -> bool {
        self.flags & FLAG_COMPLETE != 0
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
        for (i, r) in self.ranges.iter().enumerate() {
            put(out, 256 + 16 * i, &r.start.to_le_bytes());
            put(out, 264 + 16 * i, &r.len.to_le_bytes());
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
        check_crc(rec)?;
        let version = u32_at(rec, 8);
        if version != VERSION {
            return Err(DumpError::BadVersion(version));
        }
        let policy = Policy::from_u32(u32_at(rec, 20)).ok_or(DumpError::BadField("policy"))?;
        let chunk_size = u32_at(rec, 24);
        if chunk_size == 0 || chunk_size % 4096 != 0 {
            return Err(DumpError::BadField("chunk_size"));
        }
        let range_count = u32_at(rec, 28);
        if range_count as usize > MAX_RANGES {
            return Err(DumpError::BadField("range_count"));
        }
        let mut ranges = [Range::default(); MAX_RANGES];
        for (i, r) in ranges.iter_mut().enumerate() {
            *r = Range {
                start: u64_at(rec, 256 + 16 * i),
                len: u64_at(rec, 264 + 16 * i),
            };
        }
        Ok(Self {
            flags: u32_at(rec, 16),
            policy,
            chunk_size,
            chunk_count: u64_at(rec, 32),
            total_bytes: u64_at(rec, 40),
            crash_ns: u64_at(rec, 48),
            dump_start_ns: u64_at(rec, 56),
            dump_end_ns: u64_at(rec, 64),
            pattern_seed: u64_at(rec, 72),
            pattern: Range {
                start: u64_at(rec, 80),
                len: u64_at(rec, 88),
            },
            crash_point: get(rec, 96),
            crash_reason: get(rec, 128),
            ranges,
            range_count,
        })
    }

    /// Byte offset of chunk `index`'s record from the start of the extent.
    pub fn chunk_offset(&self, index: u64) -> Option<u64> {
        let stride = RECORD as u64 + u64::from(self.chunk_size);
        index.checked_mul(stride)?.checked_add(RECORD as u64)
    }

    /// Bytes of extent a dump of `total_bytes` needs with this chunk size.
    pub fn extent_bytes(&self, total_bytes: u64) -> u64 {
        let chunks = total_bytes.div_ceil(u64::from(self.chunk_size.max(1)));
        RECORD as u64 + chunks * (RECORD as u64 + u64::from(self.chunk_size))
    }
}

fn check_crc(rec: &[u8]) -> Result<(), DumpError> {
    let stored = u32_at(rec, RECORD - 4);
    let computed = crc32fast::hash(rec.get(..RECORD - 4).unwrap_or(&[]));
    if stored == computed {
        Ok(())
    } else {
        Err(DumpError::BadCrc { stored, computed })
    }
}

/// The record in front of each chunk's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Chunk index (0-based, consecutive).
    pub index: u64,
    /// Physical address of the data.
    pub phys: u64,
    /// Bytes of data (≤ chunk size; the rest of the slot is zero).
    pub len: u32,
    /// CRC-32 of the data.
    pub data_crc: u32,
}

impl ChunkHeader {
    /// Encodes into a 4096-byte record.
    pub fn encode(&self, out: &mut [u8; RECORD]) {
        out.fill(0);
        put(out, 0, &CHUNK_MAGIC);
        put(out, 8, &self.index.to_le_bytes());
        put(out, 16, &self.phys.to_le_bytes());
        put(out, 24, &self.len.to_le_bytes());
        put(out, 28, &self.data_crc.to_le_bytes());
        let crc = crc32fast::hash(out.get(..RECORD - 4).unwrap_or(&[]));
        put(out, RECORD - 4, &crc.to_le_bytes());
    }

    /// Decodes and validates a chunk record.
    ///
    /// # Errors
    ///
    /// [`DumpError`] for a short record, bad magic or CRC.
    pub fn decode(rec: &[u8]) -> Result<Self, DumpError> {
        let rec = rec.get(..RECORD).ok_or(DumpError::Truncated)?;
        if get::<8>(rec, 0) != CHUNK_MAGIC {
            return Err(DumpError::BadMagic);
        }
        check_crc(rec)?;
        Ok(Self {
            index: u64_at(rec, 8),
            phys: u64_at(rec, 16),
            len: u32_at(rec, 24),
            data_crc: u32_at(rec, 28),
        })
    }
}

/// CRC-32 of chunk data (the same CRC the records use).
pub fn data_crc(data: &[u8]) -> u32 {
    crc32fast::hash(data)
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
            ChunkHeader::decode(&[0u8; RECORD]),
            Err(DumpError::BadMagic)
        );
    }

    #[test]
    fn chunk_round_trip_and_layout() {
        let c = ChunkHeader {
            index: 7,
            phys: 0x123000,
            len: 4096,
            data_crc: 0xdeadbeef,
        };
        let mut rec = [0u8; RECORD];
        c.encode(&mut rec);
        assert_eq!(ChunkHeader::decode(&rec), Ok(c));
        let h = sample();
        assert_eq!(h.chunk_offset(0), Some(4096));
        assert_eq!(h.chunk_offset(1), Some(4096 + 4096 + 256 * 1024));
        assert_eq!(h.extent_bytes(1), 4096 + 4096 + 256 * 1024);
        assert_eq!(h.chunk_offset(u64::MAX), None);
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
            let _ = ChunkHeader::decode(&bytes);
        }

        #[test]
        fn pattern_words_differ_between_neighbours(seed: u64, page in 0u64..1 << 30) {
            let a = pattern_word(seed, page * 8);
            let b = pattern_word(seed, page * 8 + 8);
            prop_assert_ne!(a, b);
        }
    }
}
