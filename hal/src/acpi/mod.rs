//! ACPI: the one firmware-table walker (RSDP → XSDT or RSDT → a table by
//! signature) and the MCFG parser.
//!
//! Firmware tables are as untrusted as device registers once a kernel has died
//! on top of them (a stray write may have hit them): every signature, length,
//! checksum and pointer is checked, entry counts are bounded by (bounded)
//! lengths, and a bad table is an [`AcpiError`], never a panic or a read past
//! the bytes fetched. Memory is read through [`PhysRead`](crate::phys::PhysRead),
//! so host tests and the fuzzer feed arbitrary bytes to the same code a kernel
//! runs. ACPI 6.5, 5.2.5 (RSDP), 5.2.6 (header), 5.2.7/5.2.8 (RSDT/XSDT); MCFG is
//! from the PCI Firmware Specification 3.2, 4.1.2. Table parsers of other crates
//! (the VT-d DMAR) build on [`SdtHeader`], [`checksum`] and [`le`].

use core::fmt;

use crate::phys::PhysError;

pub mod mcfg;
#[cfg(target_arch = "x86_64")]
pub mod pm_timer;
pub mod rsdp;
pub mod sdt;

pub use mcfg::{EcamRegion, Mcfg, MAX_MCFG_ALLOCATIONS};
#[cfg(target_arch = "x86_64")]
pub use pm_timer::{PmTimer, PM_TIMER_HZ};
pub use rsdp::{find_rsdp, Rsdp, RsdpSource};
pub use sdt::{
    find_table, OwnedTable, Root, SdtHeader, TableRef, MAX_ROOT_ENTRIES, MAX_TABLE_LEN,
    SDT_HEADER_LEN,
};

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
    /// A structure's memory could not be read (a pointer out of range).
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
    /// A table lists more entries than we follow.
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
        /// The field ("DMAR.HAW", "MCFG bus range"...).
        field: &'static str,
        /// Byte offset of its structure in the table.
        offset: usize,
        /// The value seen.
        value: u64,
    },
    /// Two MCFG allocations claim the same buses of a segment, or the same
    /// physical addresses.
    EcamOverlap {
        /// Index of the first allocation.
        first: usize,
        /// Index of the second allocation.
        second: usize,
    },
    /// The MCFG lists no allocation at all.
    NoEcamAllocations,
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
                write!(f, "table lists {count} entries, too many")
            }
            Self::TableNotFound { signature } => {
                write!(f, "table {} not found", Sig(signature))
            }
            Self::BadField {
                field,
                offset,
                value,
            } => write!(f, "{field} at offset {offset:#x} has bad value {value:#x}"),
            Self::EcamOverlap { first, second } => {
                write!(f, "MCFG allocations {first} and {second} overlap")
            }
            Self::NoEcamAllocations => write!(f, "MCFG lists no ECAM allocation"),
        }
    }
}

impl AcpiError {
    /// The error for a failed physical read of `what`.
    pub(crate) fn unreadable(what: &'static str, e: PhysError) -> Self {
        let (at, len) = match e {
            PhysError::OutOfRange { at, len, .. } | PhysError::Overflow { at, len } => (at, len),
            PhysError::Null => (0, 0),
        };
        Self::Unreadable { what, at, len }
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
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b))
}

/// Little-endian readers over a slice that return `None` past the end.
pub mod le {
    /// Reads a `u8` at `off`.
    pub fn u8_at(b: &[u8], off: usize) -> Option<u8> {
        b.get(off).copied()
    }
    /// Reads a `u16` at `off`.
    pub fn u16_at(b: &[u8], off: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(u16::from_le_bytes(s))
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

/// Builders of valid tables (tests, fuzzers and device models; feature `std`).
#[cfg(any(test, feature = "std"))]
pub mod build {
    pub use super::rsdp::build_v1;
    pub use super::rsdp::build_v2;
    pub use super::sdt::build_table;

    /// An MCFG body's allocation entry.
    pub fn mcfg_entry(base: u64, segment: u16, start_bus: u8, end_bus: u8) -> [u8; 16] {
        let mut e = [0u8; 16];
        e[..8].copy_from_slice(&base.to_le_bytes());
        e[8..10].copy_from_slice(&segment.to_le_bytes());
        e[10] = start_bus;
        e[11] = end_bus;
        e
    }

    /// A whole MCFG table (header, 8 reserved bytes, the entries).
    pub fn mcfg(entries: &[[u8; 16]]) -> std::vec::Vec<u8> {
        let mut body = std::vec![0u8; 8];
        for e in entries {
            body.extend_from_slice(e);
        }
        build_table(*b"MCFG", 1, &body)
    }

    /// Lays out an RSDP (revision 2) at 0, an XSDT at 0x40 listing `tables`,
    /// and the tables after it: a physical-memory image starting at address 0.
    pub fn image(tables: &[&[u8]]) -> std::vec::Vec<u8> {
        let mut at = 0x40 + super::SDT_HEADER_LEN + 8 * tables.len();
        at = at.next_multiple_of(16);
        let mut pointers = std::vec::Vec::new();
        let mut placed = std::vec::Vec::new();
        for t in tables {
            pointers.extend_from_slice(&(at as u64).to_le_bytes());
            placed.push(at);
            at = (at + t.len()).next_multiple_of(16);
        }
        let mut m = std::vec![0u8; at.max(0x100)];
        m[..36].copy_from_slice(&build_v2(0, 0x40));
        let xsdt = build_table(*b"XSDT", 1, &pointers);
        m[0x40..0x40 + xsdt.len()].copy_from_slice(&xsdt);
        for (t, at) in tables.iter().zip(placed) {
            m[at..at + t.len()].copy_from_slice(t);
        }
        m
    }
}

#[cfg(test)]
mod fuzz {
    //! The whole walk (RSDP → XSDT → MCFG) over mutated and random images:
    //! never a panic, and every error displays.

    use super::build::{image, mcfg, mcfg_entry};
    use super::*;
    use crate::phys::SliceMemory;
    use proptest::prelude::*;

    fn walk(bytes: &[u8]) {
        let mem = SliceMemory { base: 0, bytes };
        let mut text = std::string::String::new();
        let mut note = |e: &AcpiError| {
            use core::fmt::Write;
            let _ = write!(text, "{e}");
        };
        for given in [Some(0), None] {
            let rsdp = match find_rsdp(&mem, given) {
                Ok(r) => r,
                Err(e) => {
                    note(&e);
                    continue;
                }
            };
            let root = match Root::new(&mem, &rsdp) {
                Ok(r) => r,
                Err(e) => {
                    note(&e);
                    continue;
                }
            };
            let _ = root.entries().count();
            let _ = root.find(*b"APIC");
            match root.copy_owned::<4096>(*b"MCFG") {
                Ok(t) => match Mcfg::parse(t.bytes()) {
                    Ok(m) => {
                        let _ = m.allocations().count();
                        let _ = m.region_for(0, 0);
                    }
                    Err(e) => note(&e),
                },
                Err(e) => note(&e),
            }
        }
    }

    fn seed() -> std::vec::Vec<u8> {
        let m = mcfg(&[
            mcfg_entry(0xb000_0000, 0, 0, 0xff),
            mcfg_entry(0xc000_0000, 1, 0, 0x3f),
        ]);
        let apic = build_table(*b"APIC", 1, &[0; 16]);
        image(&[&apic, &m])
    }

    use super::sdt::build_table;

    #[test]
    fn seed_image_walks() {
        let s = seed();
        let mem = SliceMemory { base: 0, bytes: &s };
        let rsdp = find_rsdp(&mem, Some(0)).unwrap();
        let root = Root::new(&mem, &rsdp).unwrap();
        let t = root.copy_owned::<256>(*b"MCFG").unwrap();
        assert_eq!(Mcfg::parse(t.bytes()).unwrap().allocations().count(), 2);
    }

    #[test]
    fn mutated_images_never_panic() {
        // Deterministic mutation loop: every single-byte change to the seed at
        // every offset, with a few values each (0, 0xff, +1, bit flips).
        let s = seed();
        for at in 0..s.len() {
            for v in [0u8, 0xff, s[at].wrapping_add(1), s[at] ^ 0x80, s[at] ^ 0x01] {
                let mut m = s.clone();
                m[at] = v;
                walk(&m);
            }
        }
    }

    /// The table parsers on raw bytes (a table a kernel copied, or got from
    /// elsewhere, whose length field need not match the bytes).
    fn parse_raw(bytes: &[u8]) {
        if let Err(e) = Mcfg::parse(bytes) {
            let _ = std::format!("{e}");
        }
        let _ = SdtHeader::parse(bytes);
    }

    #[test]
    fn mutated_and_truncated_mcfg_never_panics() {
        let t = mcfg(&[
            mcfg_entry(0xb000_0000, 0, 0, 0xff),
            mcfg_entry(0xc000_0000, 1, 0, 0x3f),
        ]);
        for cut in 0..=t.len() {
            parse_raw(&t[..cut]);
        }
        for at in 0..t.len() {
            for v in [0u8, 0xff, t[at].wrapping_add(1), t[at] ^ 0x80] {
                let mut m = t.clone();
                m[at] = v;
                parse_raw(&m);
                parse_raw(&m[..m.len() - 8]);
            }
        }
    }

    proptest! {
        #[test]
        fn random_images_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            walk(&bytes);
            parse_raw(&bytes);
        }

        #[test]
        fn multi_byte_mutations_never_panic(
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..16),
            cut in any::<u16>(),
        ) {
            let mut m = seed();
            for (at, v) in edits {
                let i = usize::from(at) % m.len();
                m[i] = v;
            }
            let keep = usize::from(cut) % (m.len() + 1);
            m.truncate(keep.max(m.len() / 2));
            walk(&m);
        }
    }
}
