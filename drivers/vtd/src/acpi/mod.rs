//! ACPI: find the RSDP, walk the RSDT/XSDT, parse the DMAR table.
//!
//! Firmware tables are as untrusted as device registers once a kernel has died
//! on top of them (a stray write may have hit them), so every length, offset and
//! checksum is checked and a bad table is an [`AcpiError`], never a panic or a
//! read past the bytes we fetched. Physical memory is read through
//! [`PhysRead`], so host tests and the fuzzer feed arbitrary bytes.

use core::fmt;

pub mod dmar;
pub mod rsdp;
pub mod sdt;

pub use dmar::{
    Atsr, DeviceScope, DeviceScopeKind, Dmar, DmarFlags, Drhd, RemappingStructure, Rmrr,
};
pub use rsdp::{find_rsdp, Rsdp, RsdpSource};
pub use sdt::{find_table, SdtHeader, SDT_HEADER_LEN};

/// Reads physical memory (firmware tables) by copy.
pub trait PhysRead {
    /// Copies `out.len()` bytes at physical address `pa` into `out`; false, with
    /// `out` unspecified, when the range is not readable memory.
    fn read(&self, pa: u64, out: &mut [u8]) -> bool;
}

impl<T: PhysRead + ?Sized> PhysRead for &T {
    fn read(&self, pa: u64, out: &mut [u8]) -> bool {
        (**self).read(pa, out)
    }
}

/// A byte slice seen as physical memory at `base` (tests, the fuzzer, and a
/// kernel that copied a table already).
#[derive(Debug, Clone, Copy)]
pub struct SliceMemory<'a> {
    /// Physical address of the first byte.
    pub base: u64,
    /// The bytes.
    pub bytes: &'a [u8],
}

impl PhysRead for SliceMemory<'_> {
    fn read(&self, pa: u64, out: &mut [u8]) -> bool {
        let Some(off) = pa.checked_sub(self.base) else {
            return false;
        };
        let Ok(off) = usize::try_from(off) else {
            return false;
        };
        let Some(src) = off
            .checked_add(out.len())
            .and_then(|end| self.bytes.get(off..end))
        else {
            return false;
        };
        out.copy_from_slice(src);
        true
    }
}

/// Why an ACPI table could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// No RSDP at the given address or anywhere in the legacy scan areas.
    RsdpNotFound,
    /// A checksum did not sum to zero.
    BadChecksum {
        /// Signature of the structure ("RSD PTR ", "XSDT", "DMAR"...).
        signature: [u8; 8],
        /// Its physical address.
        at: u64,
        /// The byte sum seen.
        sum: u8,
    },
    /// A structure's memory could not be read.
    Unreadable {
        /// What was being read.
        what: &'static str,
        /// Physical address.
        at: u64,
        /// Bytes asked for.
        len: u64,
    },
    /// A length field is too small for its structure or runs past its container.
    BadLength {
        /// What carries the length.
        what: &'static str,
        /// Byte offset of the structure in its table.
        offset: usize,
        /// The length seen.
        length: u64,
        /// The bytes available.
        available: u64,
    },
    /// A table is larger than the caller's buffer.
    TooLarge {
        /// Its signature.
        signature: [u8; 4],
        /// Its length.
        length: u32,
        /// The buffer size.
        capacity: usize,
    },
    /// A signature did not match.
    BadSignature {
        /// Expected signature.
        expected: [u8; 4],
        /// Signature seen.
        found: [u8; 4],
    },
    /// The root table lists more entries than we follow.
    TooManyEntries {
        /// Entries listed.
        count: usize,
    },
    /// The table asked for is not listed in the RSDT/XSDT.
    TableNotFound {
        /// Its signature.
        signature: [u8; 4],
    },
    /// A field value the specification does not allow.
    BadField {
        /// The field ("DMAR.HAW", "DRHD.Size", "device scope path"...).
        field: &'static str,
        /// Byte offset of its structure in the table.
        offset: usize,
        /// The value seen.
        value: u64,
    },
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RsdpNotFound => write!(f, "no ACPI RSDP found"),
            Self::BadChecksum { signature, at, sum } => write!(
                f,
                "bad checksum of {} at {at:#x} (sum {sum:#04x})",
                Sig(signature)
            ),
            Self::Unreadable { what, at, len } => {
                write!(f, "cannot read {what} at {at:#x}+{len:#x}")
            }
            Self::BadLength {
                what,
                offset,
                length,
                available,
            } => write!(
                f,
                "{what} at offset {offset:#x}: length {length:#x} with {available:#x} bytes available"
            ),
            Self::TooLarge {
                signature,
                length,
                capacity,
            } => write!(
                f,
                "table {} is {length:#x} bytes, buffer holds {capacity:#x}",
                Sig(signature)
            ),
            Self::BadSignature { expected, found } => write!(
                f,
                "signature {} where {} was expected",
                Sig(found),
                Sig(expected)
            ),
            Self::TooManyEntries { count } => {
                write!(f, "root table lists {count} entries, too many")
            }
            Self::TableNotFound { signature } => {
                write!(f, "table {} not found", Sig(signature))
            }
            Self::BadField {
                field,
                offset,
                value,
            } => write!(f, "{field} at offset {offset:#x} has bad value {value:#x}"),
        }
    }
}

/// Prints a signature, with non-printable bytes escaped.
struct Sig<'a>(&'a [u8]);

impl fmt::Display for Sig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// The byte sum of `bytes` (zero for a valid ACPI checksum).
pub(crate) fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b))
}

/// Little-endian readers over a slice that return `None` past the end.
pub(crate) mod le {
    /// Reads a `u8` at `off`.
    pub fn u8_at(b: &[u8], off: usize) -> Option<u8> {
        b.get(off).copied()
    }
    /// Reads a `u16` at `off`.
    pub fn u16_at(b: &[u8], off: usize) -> Option<u16> {
        let s = b.get(off..off.checked_add(2)?)?;
        Some(u16::from_le_bytes([*s.first()?, *s.get(1)?]))
    }
    /// Reads a `u32` at `off`.
    pub fn u32_at(b: &[u8], off: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_le_bytes(s))
    }
    /// Reads a `u64` at `off`.
    pub fn u64_at(b: &[u8], off: usize) -> Option<u64> {
        let s: [u8; 8] = b.get(off..off.checked_add(8)?)?.try_into().ok()?;
        Some(u64::from_le_bytes(s))
    }
}

/// Fuzzing helpers (feature `model`): run the whole RSDP → XSDT → DMAR path
/// over arbitrary bytes.
#[cfg(feature = "model")]
pub mod fuzzing {
    use super::{find_rsdp, find_table, Dmar, SliceMemory};

    /// Lays `table` out as physical memory behind a valid RSDP and XSDT (and
    /// also treats the raw bytes as memory to scan), then runs the walk and the
    /// parser. Never panics on any input; that is the property fuzzed.
    pub fn walk_image(table: &[u8]) {
        // The bytes themselves as low memory: a scan for an RSDP in them.
        let raw = SliceMemory {
            base: 0xe_0000,
            bytes: table,
        };
        if let Ok(r) = find_rsdp(&raw, None) {
            let mut buf = [0u8; 4096];
            let _ = find_table(&raw, &r, *b"DMAR", &mut buf);
        }
        // A well-formed RSDP and XSDT pointing at the table.
        let mut image = std::vec![0u8; 0x100];
        image[..36].copy_from_slice(&crate::acpi::rsdp::build_v2(0, 0x40));
        let xsdt = crate::acpi::sdt::build_table(*b"XSDT", 1, &0x100u64.to_le_bytes());
        image[0x40..0x40 + xsdt.len()].copy_from_slice(&xsdt);
        image.extend_from_slice(table);
        let mem = SliceMemory {
            base: 0,
            bytes: &image,
        };
        if let Ok(r) = find_rsdp(&mem, Some(0)) {
            let mut buf = [0u8; 2048];
            if let Ok(t) = find_table(&mem, &r, *b"DMAR", &mut buf) {
                if let Ok(d) = Dmar::parse(t) {
                    let _ = d.structures().count();
                }
            }
        }
    }
}
