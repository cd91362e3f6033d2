//! The crashed kernel's descriptor (the VMCOREINFO idea): a small table it
//! publishes in its own memory while healthy, found from the crash note, that
//! says what its memory holds and what is worth dumping first.
//!
//! The recovery kernel treats it as untrusted input: a kernel that crashed may
//! have scribbled over it. It is size-limited ([`DESCRIPTOR_LEN`]),
//! checksummed, and every region is checked against the memory to dump; a bad
//! table is ignored (everything is dumped as plain RAM) and the reason goes into
//! the report and the dump header.
//!
//! Layout (little-endian): `0` magic `PRNDESC1` | `8` version u32 (1) | `12`
//! region count u32 | `16` build id (16 bytes) | `32` regions, 24 bytes each:
//! start u64, len u64, kind u32, priority u32 (0 = most useful) | CRC-32 of
//! everything before it in the last four bytes.

use core::fmt;

use paranoid_dump::le::{get, put, u32_at, u64_at};
use paranoid_dump::{Range, BUILD_ID_LEN};

/// Magic of a descriptor.
pub const DESCRIPTOR_MAGIC: [u8; 8] = *b"PRNDESC1";
/// Bytes of an encoded descriptor (the most the recovery kernel reads).
pub const DESCRIPTOR_LEN: usize = 2048;
/// Regions a descriptor can list.
pub const MAX_REGIONS: usize = 48;
const REGIONS_AT: usize = 32;
const _: () = assert!(REGIONS_AT + 24 * MAX_REGIONS <= DESCRIPTOR_LEN - 4);

/// What a region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum RegionKind {
    /// The kernel's image (code, data, bss).
    KernelImage = 1,
    /// A stack.
    Stack = 2,
    /// Allocated memory (page tables, buffers).
    Heap = 3,
    /// Free memory: nothing of the kernel's lives there.
    Free = 4,
    /// The descriptor itself.
    Descriptor = 5,
}

impl RegionKind {
    fn from_u32(v: u32) -> Option<Self> {
        [
            Self::KernelImage,
            Self::Stack,
            Self::Heap,
            Self::Free,
            Self::Descriptor,
        ]
        .into_iter()
        .find(|k| *k as u32 == v)
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::KernelImage => "kernel-image",
            Self::Stack => "stack",
            Self::Heap => "heap",
            Self::Free => "free",
            Self::Descriptor => "descriptor",
        }
    }
}

/// One region of the crashed kernel's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Where.
    pub range: Range,
    /// What it holds.
    pub kind: RegionKind,
    /// Dump priority: 0 is the most useful.
    pub priority: u32,
}

/// Why a descriptor was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescriptorError {
    /// The crash note names none.
    Absent,
    /// It is not inside the crashed kernel's memory, or longer than
    /// [`DESCRIPTOR_LEN`].
    OutOfBounds {
        /// Where the note says it is.
        start: u64,
        /// Its length.
        len: u64,
    },
    /// Wrong magic.
    BadMagic,
    /// Unknown version.
    BadVersion(u32),
    /// Checksum mismatch.
    BadCrc,
    /// More regions than [`MAX_REGIONS`].
    TooManyRegions(u32),
    /// A region has an unknown kind.
    BadKind {
        /// Region index.
        index: usize,
        /// Kind found.
        kind: u32,
    },
    /// A region is empty, wraps around, or leaves the memory to dump.
    OutsideRam {
        /// Region index.
        index: usize,
        /// The region.
        range: Range,
    },
    /// Two regions overlap.
    Overlap {
        /// First region index.
        a: usize,
        /// Second region index.
        b: usize,
    },
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Absent => write!(f, "none published"),
            Self::OutOfBounds { start, len } => {
                write!(
                    f,
                    "at {start:#x}+{len:#x}: outside the crashed kernel's RAM or too long"
                )
            }
            Self::BadMagic => write!(f, "bad magic"),
            Self::BadVersion(v) => write!(f, "version {v} unknown"),
            Self::BadCrc => write!(f, "crc mismatch"),
            Self::TooManyRegions(n) => write!(f, "{n} regions (at most {MAX_REGIONS})"),
            Self::BadKind { index, kind } => write!(f, "region {index}: kind {kind} unknown"),
            Self::OutsideRam { index, range } => write!(
                f,
                "region {index} {:#x}..{:#x} outside the RAM to dump",
                range.start,
                range.end()
            ),
            Self::Overlap { a, b } => write!(f, "regions {a} and {b} overlap"),
        }
    }
}

/// A descriptor, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// The kernel's build id.
    pub build_id: [u8; BUILD_ID_LEN],
    /// Its regions.
    pub regions: [Option<Region>; MAX_REGIONS],
}

impl Default for Descriptor {
    fn default() -> Self {
        Self::new()
    }
}

impl Descriptor {
    /// An empty descriptor.
    pub const fn new() -> Self {
        Self {
            build_id: [0; BUILD_ID_LEN],
            regions: [None; MAX_REGIONS],
        }
    }

    /// The regions in use.
    pub fn regions(&self) -> impl Iterator<Item = Region> + '_ {
        self.regions.iter().flatten().copied()
    }

    /// Adds a region; false when full.
    pub fn push(&mut self, range: Range, kind: RegionKind, priority: u32) -> bool {
        match self.regions.iter_mut().find(|r| r.is_none()) {
            Some(slot) => {
                *slot = Some(Region {
                    range,
                    kind,
                    priority,
                });
                true
            }
            None => false,
        }
    }

    /// Encodes (CRC in the last four bytes).
    pub fn encode(&self, out: &mut [u8; DESCRIPTOR_LEN]) {
        out.fill(0);
        put(out, 0, &DESCRIPTOR_MAGIC);
        put(out, 8, &1u32.to_le_bytes());
        put(out, 12, &(self.regions().count() as u32).to_le_bytes());
        put(out, 16, &self.build_id);
        for (i, r) in self.regions().enumerate() {
            let at = REGIONS_AT + 24 * i;
            put(out, at, &r.range.start.to_le_bytes());
            put(out, at + 8, &r.range.len.to_le_bytes());
            put(out, at + 16, &(r.kind as u32).to_le_bytes());
            put(out, at + 20, &r.priority.to_le_bytes());
        }
        let crc = paranoid_dump::data_crc(out.get(..DESCRIPTOR_LEN - 4).unwrap_or(&[]));
        put(out, DESCRIPTOR_LEN - 4, &crc.to_le_bytes());
    }

    /// Decodes and validates a descriptor against `ram`, the memory to dump:
    /// every region inside one range of it, no two overlapping.
    ///
    /// # Errors
    ///
    /// [`DescriptorError`] naming the first problem.
    pub fn decode(bytes: &[u8; DESCRIPTOR_LEN], ram: &[Range]) -> Result<Self, DescriptorError> {
        if get::<8>(bytes, 0) != DESCRIPTOR_MAGIC {
            return Err(DescriptorError::BadMagic);
        }
        let crc = paranoid_dump::data_crc(bytes.get(..DESCRIPTOR_LEN - 4).unwrap_or(&[]));
        if crc != u32_at(bytes, DESCRIPTOR_LEN - 4) {
            return Err(DescriptorError::BadCrc);
        }
        let version = u32_at(bytes, 8);
        if version != 1 {
            return Err(DescriptorError::BadVersion(version));
        }
        let count = u32_at(bytes, 12);
        if count as usize > MAX_REGIONS {
            return Err(DescriptorError::TooManyRegions(count));
        }
        let mut d = Self::new();
        d.build_id = get(bytes, 16);
        for (index, slot) in d.regions.iter_mut().take(count as usize).enumerate() {
            let at = REGIONS_AT + 24 * index;
            let range = Range {
                start: u64_at(bytes, at),
                len: u64_at(bytes, at + 8),
            };
            let kind = u32_at(bytes, at + 16);
            let kind =
                RegionKind::from_u32(kind).ok_or(DescriptorError::BadKind { index, kind })?;
            let inside = range.len > 0
                && range.start.checked_add(range.len).is_some()
                && ram
                    .iter()
                    .any(|r| range.start >= r.start && range.end() <= r.end());
            if !inside {
                return Err(DescriptorError::OutsideRam { index, range });
            }
            *slot = Some(Region {
                range,
                kind,
                priority: u32_at(bytes, at + 20),
            });
        }
        for (a, ra) in d.regions().enumerate() {
            if let Some(b) = d
                .regions()
                .enumerate()
                .skip(a + 1)
                .find(|(_, rb)| ra.range.overlaps(&rb.range))
                .map(|(b, _)| b)
            {
                return Err(DescriptorError::Overlap { a, b });
            }
        }
        Ok(d)
    }
}

/// Checks where the crash note says the descriptor is: inside `crashed_ram`
/// and at most [`DESCRIPTOR_LEN`] long.
///
/// # Errors
///
/// [`DescriptorError::Absent`] or [`DescriptorError::OutOfBounds`].
pub fn locate(at: Range, crashed_ram: &[Range]) -> Result<Range, DescriptorError> {
    if at.len == 0 {
        return Err(DescriptorError::Absent);
    }
    let inside = at.len as usize == DESCRIPTOR_LEN
        && at.start.checked_add(at.len).is_some()
        && crashed_ram
            .iter()
            .any(|r| at.start >= r.start && at.end() <= r.end());
    if inside {
        Ok(at)
    } else {
        Err(DescriptorError::OutOfBounds {
            start: at.start,
            len: at.len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RAM: [Range; 2] = [
        Range {
            start: 0x10_0000,
            len: 0x3f0_0000,
        },
        Range {
            start: 0x1_0000_0000,
            len: 0x1000_0000,
        },
    ];

    fn sample() -> Descriptor {
        let mut d = Descriptor::new();
        d.build_id = [0xab; BUILD_ID_LEN];
        d.push(
            Range {
                start: 0x10_0000,
                len: 0x10_0000,
            },
            RegionKind::KernelImage,
            1,
        );
        d.push(
            Range {
                start: 0x20_0000,
                len: 0x4_0000,
            },
            RegionKind::Stack,
            0,
        );
        d.push(
            Range {
                start: 0x1_0000_0000,
                len: 0x1000_0000,
            },
            RegionKind::Free,
            255,
        );
        d
    }

    fn sealed(d: &Descriptor, f: impl FnOnce(&mut [u8; DESCRIPTOR_LEN])) -> [u8; DESCRIPTOR_LEN] {
        let mut b = [0u8; DESCRIPTOR_LEN];
        d.encode(&mut b);
        f(&mut b);
        let crc = paranoid_dump::data_crc(&b[..DESCRIPTOR_LEN - 4]);
        b[DESCRIPTOR_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn round_trip() {
        let d = sample();
        assert_eq!(Descriptor::decode(&sealed(&d, |_| {}), &RAM), Ok(d));
    }

    #[test]
    fn hostile_tables_are_typed_errors() {
        let d = sample();
        let mut b = sealed(&d, |_| {});
        b[40] ^= 1;
        assert_eq!(Descriptor::decode(&b, &RAM), Err(DescriptorError::BadCrc));
        let b = sealed(&d, |b| b[12] = 200);
        assert_eq!(
            Descriptor::decode(&b, &RAM),
            Err(DescriptorError::TooManyRegions(200))
        );
        // A region outside RAM.
        let b = sealed(&d, |b| {
            b[32..40].copy_from_slice(&0x8000_0000u64.to_le_bytes())
        });
        assert!(matches!(
            Descriptor::decode(&b, &RAM),
            Err(DescriptorError::OutsideRam { index: 0, .. })
        ));
        // A region that wraps.
        let b = sealed(&d, |b| b[40..48].copy_from_slice(&u64::MAX.to_le_bytes()));
        assert!(matches!(
            Descriptor::decode(&b, &RAM),
            Err(DescriptorError::OutsideRam { index: 0, .. })
        ));
        // Overlapping regions: the stack inside the image.
        let b = sealed(&d, |b| {
            b[56..64].copy_from_slice(&0x18_0000u64.to_le_bytes())
        });
        assert_eq!(
            Descriptor::decode(&b, &RAM),
            Err(DescriptorError::Overlap { a: 0, b: 1 })
        );
        let b = sealed(&d, |b| b[48] = 77);
        assert_eq!(
            Descriptor::decode(&b, &RAM),
            Err(DescriptorError::BadKind { index: 0, kind: 77 })
        );
        let b = sealed(&d, |b| b[8] = 2);
        assert_eq!(
            Descriptor::decode(&b, &RAM),
            Err(DescriptorError::BadVersion(2))
        );
        assert_eq!(
            Descriptor::decode(&[0; DESCRIPTOR_LEN], &RAM),
            Err(DescriptorError::BadMagic)
        );
        // Where the note points.
        assert_eq!(locate(Range::default(), &RAM), Err(DescriptorError::Absent));
        assert!(locate(
            Range {
                start: 0x1000,
                len: DESCRIPTOR_LEN as u64
            },
            &RAM
        )
        .is_err());
        assert!(locate(
            Range {
                start: 0x20_0000,
                len: 1 << 20
            },
            &RAM
        )
        .is_err());
    }

    proptest! {
        /// Resealed garbage: a typed error, or regions inside RAM that do not
        /// overlap.
        #[test]
        fn garbage_never_panics_and_never_escapes_ram(bytes in proptest::collection::vec(any::<u8>(), DESCRIPTOR_LEN), count in 0u32..60) {
            let mut b = [0u8; DESCRIPTOR_LEN];
            b.copy_from_slice(&bytes);
            b[..8].copy_from_slice(&DESCRIPTOR_MAGIC);
            b[8..12].copy_from_slice(&1u32.to_le_bytes());
            b[12..16].copy_from_slice(&count.to_le_bytes());
            let crc = paranoid_dump::data_crc(&b[..DESCRIPTOR_LEN - 4]);
            b[DESCRIPTOR_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
            if let Ok(d) = Descriptor::decode(&b, &RAM) {
                for r in d.regions() {
                    prop_assert!(RAM.iter().any(|m| r.range.start >= m.start && r.range.end() <= m.end()));
                }
            }
        }

        /// Mutations of a good table: never a panic.
        #[test]
        fn mutated_tables_never_panic(flips in proptest::collection::vec((0usize..DESCRIPTOR_LEN, any::<u8>()), 1..6), reseal: bool) {
            let d = sample();
            let mut b = [0u8; DESCRIPTOR_LEN];
            d.encode(&mut b);
            for (at, v) in flips {
                b[at] ^= v;
            }
            if reseal {
                let crc = paranoid_dump::data_crc(&b[..DESCRIPTOR_LEN - 4]);
                b[DESCRIPTOR_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
            }
            let _ = Descriptor::decode(&b, &RAM);
        }
    }
}
