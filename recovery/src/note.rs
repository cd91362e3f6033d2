//! The crash note: what the crashed kernel leaves for its recovery kernel.
//!
//! The crashed kernel writes it in memory from its panic path (no device I/O)
//! and passes its address on the recovery kernel's command line
//! (`crash_note=0x...`). The recovery kernel treats it as untrusted input: a
//! kernel that panicked may have scribbled over it, so it is checksummed and
//! every field is range-checked when decoded.

use core::fmt;

use paranoid_dump::le::{get, put, u32_at, u64_at};
use paranoid_dump::{fixed, text, CpuState, Range, MAX_RANGES, POINT_LEN, REASON_LEN};

/// Magic of a crash note.
pub const NOTE_MAGIC: [u8; 8] = *b"PRNCRASH";
/// Size of the encoded note.
pub const NOTE_LEN: usize = 4096;
/// Live DMA sources a note can list.
pub const MAX_SOURCES: usize = 8;
/// Memory-map type the crashed kernel gives its own RAM in the recovery
/// kernel's start info: not RAM the recovery kernel may allocate, but memory to
/// dump ("PRNA" in ASCII).
pub const CRASHED_RAM_KIND: u32 = 0x414e_5250;

/// Where kernel A crashes (or hands over), as its `crash=` word names it and
/// the crash note records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Memory patterned, no DMA live yet.
    Early,
    /// NVMe commands and NIC traffic in flight.
    DuringIo,
    /// Inside an interrupt-free critical section.
    Critical,
    /// A panicking index past the end of a table.
    IndexOob,
    /// No crash: the devices shut down in order, then the same jump.
    Handoff,
}

impl CrashPoint {
    /// Every crash point, in the order kernel A documents them.
    pub const ALL: [Self; 5] = [
        Self::Early,
        Self::DuringIo,
        Self::Critical,
        Self::IndexOob,
        Self::Handoff,
    ];

    /// The name on the command line, in the note and on the result line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Early => "early",
            Self::DuringIo => "during-io",
            Self::Critical => "critical",
            Self::IndexOob => "index-oob",
            Self::Handoff => "handoff",
        }
    }

    /// The point called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Why a crash note was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteError {
    /// Wrong magic: no note there (or overwritten).
    BadMagic,
    /// Checksum mismatch: the note was damaged.
    BadCrc,
    /// A count or range is out of bounds.
    BadField(&'static str),
}

impl fmt::Display for NoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => write!(f, "no crash note (bad magic)"),
            Self::BadCrc => write!(f, "crash note damaged (crc mismatch)"),
            Self::BadField(w) => write!(f, "crash note field `{w}` out of range"),
        }
    }
}

/// What the crashed kernel knew when it died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashNote {
    /// Nanoseconds since the crashed kernel booted, at the panic.
    pub crash_ns: u64,
    /// The raw time-stamp counter at the panic (the recovery kernel reads the
    /// same counter, so crash-to-dump time needs no clock agreement).
    pub crash_tsc: u64,
    /// Crash point name (`early`, `during-io`, ...).
    pub point: [u8; POINT_LEN],
    /// The panic message (truncated).
    pub reason: [u8; REASON_LEN],
    /// Seed of the memory pattern.
    pub pattern_seed: u64,
    /// The pattern region.
    pub pattern: Range,
    /// Memory to dump (the crashed kernel's RAM).
    pub ranges: [Range; MAX_RANGES],
    /// Ranges in use.
    pub range_count: u32,
    /// Blocks the crashed kernel itself was writing (its in-flight I/O target).
    pub scratch: Range,
    /// Whether the crashed kernel had DMA translation enabled.
    pub iommu_enabled: bool,
    /// Source ids of devices left with DMA live.
    pub live_sources: [u16; MAX_SOURCES],
    /// Entries in use.
    pub live_count: u32,
    /// Where an armed DMA (QEMU's `edu`) will write after the crash, and the
    /// 64-bit word its data starts with (`len` 0: none armed).
    pub armed_dma: Range,
    /// The first word of the armed DMA's data.
    pub armed_word: u64,
    /// The raw time-stamp counter when the armed DMA was started (0: none).
    /// QEMU's edu lands its transfer 100 ms later, so the recovery kernel can
    /// tell whether its fence came before the transfer or after it.
    pub armed_tsc: u64,
    /// The panicking CPU's registers (saved by the panic path, no device I/O).
    pub cpu: CpuState,
    /// Where the crashed kernel's descriptor ([`crate::descriptor`]) is (`len` 0:
    /// none published). Untrusted like the rest.
    pub descriptor: Range,
    /// The memory reserved for the recovery kernel (not dumped: it runs there).
    pub reserved: Range,
    /// The raw time-stamp counter when the crashed kernel last pet the node's
    /// watchdog (0: it kept none). The recovery kernel's first beat must come
    /// within the watchdog's period of this.
    pub watchdog_tsc: u64,
}

const RANGES_AT: usize = 256;
/// The armed DMA's start time, the last fixed field before the ranges.
const ARMED_TSC_AT: usize = 248;
const _: () = assert!(ARMED_TSC_AT + 8 <= RANGES_AT);
const SOURCES_AT: usize = RANGES_AT + 16 * MAX_RANGES;
const CPU_AT: usize = 1536;
const CPU_VALID_AT: usize = CPU_AT + paranoid_dump::CPU_STATE_LEN;
const DESCRIPTOR_AT: usize = 1792;
const RESERVED_AT: usize = 1808;
const WATCHDOG_TSC_AT: usize = RESERVED_AT + 16;
const _: () = assert!(SOURCES_AT + 2 * MAX_SOURCES + 16 <= CPU_AT);
const _: () = assert!(CPU_VALID_AT + 4 <= DESCRIPTOR_AT);
const _: () = assert!(WATCHDOG_TSC_AT + 8 <= NOTE_LEN - 4);

impl CrashNote {
    /// An empty note.
    pub const fn new() -> Self {
        Self {
            crash_ns: 0,
            crash_tsc: 0,
            point: [0; POINT_LEN],
            reason: [0; REASON_LEN],
            pattern_seed: 0,
            pattern: Range { start: 0, len: 0 },
            ranges: [Range { start: 0, len: 0 }; MAX_RANGES],
            range_count: 0,
            scratch: Range { start: 0, len: 0 },
            iommu_enabled: false,
            live_sources: [0; MAX_SOURCES],
            live_count: 0,
            armed_dma: Range { start: 0, len: 0 },
            armed_word: 0,
            armed_tsc: 0,
            cpu: CpuState::empty(),
            descriptor: Range { start: 0, len: 0 },
            reserved: Range { start: 0, len: 0 },
            watchdog_tsc: 0,
        }
    }

    /// Sets the crash point name.
    pub fn set_point(&mut self, point: &str) {
        self.point = fixed(point);
    }

    /// The crash point name.
    pub fn point(&self) -> &str {
        text(&self.point)
    }

    /// The crash point, when the name is one of [`CrashPoint`]'s (`None`: a
    /// crash before kernel A named one, `unplanned`, or a damaged name).
    pub fn crash_point(&self) -> Option<CrashPoint> {
        CrashPoint::from_name(self.point())
    }

    /// The panic message.
    pub fn reason(&self) -> &str {
        text(&self.reason)
    }

    /// The ranges in use.
    pub fn ranges(&self) -> &[Range] {
        self.ranges.get(..self.range_count as usize).unwrap_or(&[])
    }

    /// The live DMA sources.
    pub fn live_sources(&self) -> &[u16] {
        self.live_sources
            .get(..self.live_count as usize)
            .unwrap_or(&[])
    }

    /// Encodes into `out` (CRC-32 in the last four bytes).
    pub fn encode(&self, out: &mut [u8; NOTE_LEN]) {
        out.fill(0);
        put(out, 0, &NOTE_MAGIC);
        put(out, 8, &self.crash_ns.to_le_bytes());
        put(out, 16, &self.pattern_seed.to_le_bytes());
        put(out, 24, &self.pattern.start.to_le_bytes());
        put(out, 32, &self.pattern.len.to_le_bytes());
        put(out, 40, &self.scratch.start.to_le_bytes());
        put(out, 48, &self.scratch.len.to_le_bytes());
        put(out, 56, &self.range_count.to_le_bytes());
        put(out, 60, &self.live_count.to_le_bytes());
        put(out, 64, &u32::from(self.iommu_enabled).to_le_bytes());
        put(out, 68, &self.point);
        put(out, 100, &self.reason);
        put(out, 232, &self.crash_tsc.to_le_bytes());
        put(out, 240, &self.armed_word.to_le_bytes());
        put(out, ARMED_TSC_AT, &self.armed_tsc.to_le_bytes());
        put(
            out,
            SOURCES_AT + 2 * MAX_SOURCES,
            &self.armed_dma.start.to_le_bytes(),
        );
        put(
            out,
            SOURCES_AT + 2 * MAX_SOURCES + 8,
            &self.armed_dma.len.to_le_bytes(),
        );
        for (i, r) in self.ranges.iter().enumerate() {
            put(out, RANGES_AT + 16 * i, &r.start.to_le_bytes());
            put(out, RANGES_AT + 8 + 16 * i, &r.len.to_le_bytes());
        }
        for (i, s) in self.live_sources.iter().enumerate() {
            put(out, SOURCES_AT + 2 * i, &s.to_le_bytes());
        }
        self.cpu.encode(out, CPU_AT);
        put(out, CPU_VALID_AT, &u32::from(self.cpu.valid).to_le_bytes());
        put(out, DESCRIPTOR_AT, &self.descriptor.start.to_le_bytes());
        put(out, DESCRIPTOR_AT + 8, &self.descriptor.len.to_le_bytes());
        put(out, RESERVED_AT, &self.reserved.start.to_le_bytes());
        put(out, RESERVED_AT + 8, &self.reserved.len.to_le_bytes());
        put(out, WATCHDOG_TSC_AT, &self.watchdog_tsc.to_le_bytes());
        let crc = paranoid_dump::data_crc(out.get(..NOTE_LEN - 4).unwrap_or(&[]));
        put(out, NOTE_LEN - 4, &crc.to_le_bytes());
    }

    /// Decodes and validates a note.
    ///
    /// # Errors
    ///
    /// [`NoteError`] for a missing, damaged or inconsistent note.
    pub fn decode(bytes: &[u8; NOTE_LEN]) -> Result<Self, NoteError> {
        if get::<8>(bytes, 0) != NOTE_MAGIC {
            return Err(NoteError::BadMagic);
        }
        let crc = paranoid_dump::data_crc(bytes.get(..NOTE_LEN - 4).unwrap_or(&[]));
        if crc != u32_at(bytes, NOTE_LEN - 4) {
            return Err(NoteError::BadCrc);
        }
        let range_count = u32_at(bytes, 56);
        if range_count as usize > MAX_RANGES {
            return Err(NoteError::BadField("range_count"));
        }
        let live_count = u32_at(bytes, 60);
        if live_count as usize > MAX_SOURCES {
            return Err(NoteError::BadField("live_count"));
        }
        let mut n = Self::new();
        n.crash_ns = u64_at(bytes, 8);
        n.crash_tsc = u64_at(bytes, 232);
        n.armed_word = u64_at(bytes, 240);
        n.armed_tsc = u64_at(bytes, ARMED_TSC_AT);
        n.armed_dma = Range {
            start: u64_at(bytes, SOURCES_AT + 2 * MAX_SOURCES),
            len: u64_at(bytes, SOURCES_AT + 2 * MAX_SOURCES + 8),
        };
        n.pattern_seed = u64_at(bytes, 16);
        n.pattern = Range {
            start: u64_at(bytes, 24),
            len: u64_at(bytes, 32),
        };
        n.scratch = Range {
            start: u64_at(bytes, 40),
            len: u64_at(bytes, 48),
        };
        n.range_count = range_count;
        n.live_count = live_count;
        n.iommu_enabled = u32_at(bytes, 64) != 0;
        n.point = get(bytes, 68);
        n.reason = get(bytes, 100);
        for (i, r) in n.ranges.iter_mut().enumerate() {
            *r = Range {
                start: u64_at(bytes, RANGES_AT + 16 * i),
                len: u64_at(bytes, RANGES_AT + 8 + 16 * i),
            };
        }
        for (i, s) in n.live_sources.iter_mut().enumerate() {
            *s = u16::from_le_bytes(get(bytes, SOURCES_AT + 2 * i));
        }
        n.cpu = CpuState::decode(bytes, CPU_AT, u32_at(bytes, CPU_VALID_AT) != 0);
        n.descriptor = Range {
            start: u64_at(bytes, DESCRIPTOR_AT),
            len: u64_at(bytes, DESCRIPTOR_AT + 8),
        };
        n.reserved = Range {
            start: u64_at(bytes, RESERVED_AT),
            len: u64_at(bytes, RESERVED_AT + 8),
        };
        n.watchdog_tsc = u64_at(bytes, WATCHDOG_TSC_AT);
        for r in n
            .ranges()
            .iter()
            .chain([&n.pattern, &n.armed_dma, &n.descriptor, &n.reserved])
        {
            if r.start.checked_add(r.len).is_none() {
                return Err(NoteError::BadField("range"));
            }
        }
        Ok(n)
    }
}

impl Default for CrashNote {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crash_points_round_trip_through_their_names_and_the_note() {
        let names: Vec<&str> = CrashPoint::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            ["early", "during-io", "critical", "index-oob", "handoff"]
        );
        for p in CrashPoint::ALL {
            assert_eq!(CrashPoint::from_name(p.name()), Some(p));
            let mut note = CrashNote::new();
            note.set_point(p.name());
            assert_eq!(note.crash_point(), Some(p));
        }
        assert_eq!(CrashPoint::from_name("unplanned"), None);
        assert_eq!(CrashPoint::from_name("Handoff"), None);
        assert_eq!(CrashNote::new().crash_point(), None);
    }

    #[test]
    fn round_trip_and_damage() {
        let mut n = CrashNote::new();
        n.set_point("during-io");
        n.reason = fixed("panicked at src/main.rs:1:1: crash point `during-io`");
        n.ranges[0] = Range {
            start: 0x10_0000,
            len: 0x3f0_0000,
        };
        n.range_count = 1;
        n.live_sources[0] = 0x20;
        n.live_count = 1;
        n.iommu_enabled = true;
        n.crash_tsc = 0x1234_5678_9abc;
        n.armed_dma = Range {
            start: 0xc30_0000,
            len: 4096,
        };
        n.armed_word = 0xfeed;
        n.armed_tsc = 0x1234_5600_0000;
        n.watchdog_tsc = 0x1234_5700_0000;
        n.cpu.regs[paranoid_dump::REG_RIP] = 0x10_2030;
        n.cpu.cr3 = 0x1000;
        n.cpu.valid = true;
        n.descriptor = Range {
            start: 0x10_8000,
            len: 2048,
        };
        let mut page = [0u8; NOTE_LEN];
        n.encode(&mut page);
        let back = CrashNote::decode(&page).unwrap();
        assert_eq!(back, n);
        assert_eq!(back.point(), "during-io");
        page[700] ^= 1;
        assert_eq!(CrashNote::decode(&page), Err(NoteError::BadCrc));
        assert_eq!(
            CrashNote::decode(&[0u8; NOTE_LEN]),
            Err(NoteError::BadMagic)
        );
    }

    proptest! {
        #[test]
        fn garbage_never_decodes_to_out_of_range_counts(bytes in proptest::collection::vec(any::<u8>(), NOTE_LEN)) {
            let mut page = [0u8; NOTE_LEN];
            page.copy_from_slice(&bytes);
            page[..8].copy_from_slice(&NOTE_MAGIC);
            let crc = paranoid_dump::data_crc(&page[..NOTE_LEN - 4]);
            page[NOTE_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
            if let Ok(n) = CrashNote::decode(&page) {
                prop_assert!(n.ranges().len() <= MAX_RANGES);
                prop_assert!(n.live_sources().len() <= MAX_SOURCES);
            }
        }
    }
}
