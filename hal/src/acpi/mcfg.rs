//! The MCFG table: where ECAM (memory-mapped configuration space) lives, for
//! every PCI segment and bus range (PCI Firmware Specification 3.2, 4.1.2).

use super::{checksum, le, AcpiError, SdtHeader, SDT_HEADER_LEN};

/// Offset of the first allocation: the header, then 8 reserved bytes.
const ENTRIES_AT: usize = SDT_HEADER_LEN + 8;
/// Size of one allocation entry.
const ENTRY_LEN: usize = 16;
/// The most allocations accepted (a large server lists a handful).
pub const MAX_MCFG_ALLOCATIONS: usize = 64;
/// ECAM gives each bus 1 MiB (32 devices × 8 functions × 4 KiB).
const BUS_SHIFT: u32 = 20;

/// One MCFG allocation: ECAM for a segment and bus range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcamRegion {
    /// Physical base address (the address of bus 0's space in this segment,
    /// even when `start_bus` is not 0).
    pub base: u64,
    /// PCI segment group.
    pub segment: u16,
    /// First bus decoded.
    pub start_bus: u8,
    /// Last bus decoded.
    pub end_bus: u8,
}

impl EcamRegion {
    /// Physical address of `start_bus`'s configuration space.
    pub const fn start_bus_address(&self) -> u64 {
        self.base.wrapping_add((self.start_bus as u64) << BUS_SHIFT)
    }

    /// Bytes of ECAM from `start_bus` to `end_bus`.
    pub const fn len(&self) -> u64 {
        (self.end_bus.saturating_sub(self.start_bus) as u64 + 1) << BUS_SHIFT
    }

    /// Always false: a region decodes at least one bus.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// True when this region decodes `bus` of `segment`.
    pub const fn decodes(&self, segment: u16, bus: u8) -> bool {
        self.segment == segment && self.start_bus <= bus && bus <= self.end_bus
    }

    /// The physical range `start..end` of this region's ECAM, or `None` if it
    /// overflows the address space.
    fn physical(&self) -> Option<(u64, u64)> {
        let start = self
            .base
            .checked_add(u64::from(self.start_bus) << BUS_SHIFT)?;
        Some((start, start.checked_add(self.len())?))
    }
}

/// A checked MCFG: every allocation well formed, none overlapping another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mcfg<'a> {
    entries: &'a [u8],
}

impl<'a> Mcfg<'a> {
    /// Checks an MCFG table (as returned by
    /// [`Root::copy`](super::Root::copy)).
    ///
    /// # Errors
    ///
    /// [`AcpiError::BadSignature`], [`AcpiError::BadChecksum`],
    /// [`AcpiError::BadLength`] (truncated, or entries not a multiple of 16
    /// bytes), [`AcpiError::NoEcamAllocations`], [`AcpiError::TooManyEntries`],
    /// [`AcpiError::BadField`] (inverted bus range, base not 1 MiB aligned or
    /// overflowing), [`AcpiError::EcamOverlap`].
    pub fn parse(table: &'a [u8]) -> Result<Self, AcpiError> {
        let header = SdtHeader::parse(table)?;
        if header.signature != *b"MCFG" {
            return Err(AcpiError::BadSignature {
                expected: *b"MCFG",
                found: header.signature,
            });
        }
        let length = header.length as usize;
        let bad_length = AcpiError::BadLength {
            what: "MCFG",
            offset: 0,
            length: length as u64,
            available: table.len() as u64,
        };
        let table = table.get(..length).ok_or(bad_length)?;
        let sum = checksum(table);
        if sum != 0 {
            return Err(AcpiError::BadChecksum {
                signature: *b"MCFG    ",
                at: 0,
                sum,
            });
        }
        let entries = table.get(ENTRIES_AT..).ok_or(bad_length)?;
        if entries.len() % ENTRY_LEN != 0 {
            return Err(bad_length);
        }
        let count = entries.len() / ENTRY_LEN;
        if count == 0 {
            return Err(AcpiError::NoEcamAllocations);
        }
        if count > MAX_MCFG_ALLOCATIONS {
            return Err(AcpiError::TooManyEntries { count });
        }
        let mcfg = Self { entries };
        for (i, r) in mcfg.allocations().enumerate() {
            check_region(i, &r)?;
        }
        for (i, a) in mcfg.allocations().enumerate() {
            for (j, b) in mcfg.allocations().enumerate().skip(i + 1) {
                if overlap(&a, &b) {
                    return Err(AcpiError::EcamOverlap {
                        first: i,
                        second: j,
                    });
                }
            }
        }
        Ok(mcfg)
    }

    /// Every allocation, in table order.
    pub fn allocations(&self) -> impl Iterator<Item = EcamRegion> + 'a {
        self.entries.chunks_exact(ENTRY_LEN).map(|e| EcamRegion {
            base: le::u64_at(e, 0).unwrap_or(0),
            segment: le::u16_at(e, 8).unwrap_or(0),
            start_bus: le::u8_at(e, 10).unwrap_or(0),
            end_bus: le::u8_at(e, 11).unwrap_or(0),
        })
    }

    /// The allocation that decodes `bus` of `segment`.
    pub fn region_for(&self, segment: u16, bus: u8) -> Option<EcamRegion> {
        self.allocations().find(|r| r.decodes(segment, bus))
    }
}

/// Rules for one allocation: a bus range that is not inverted, a base aligned
/// to the 1 MiB a bus takes, and an end that does not wrap.
fn check_region(index: usize, r: &EcamRegion) -> Result<(), AcpiError> {
    let offset = ENTRIES_AT + index * ENTRY_LEN;
    if r.start_bus > r.end_bus {
        return Err(AcpiError::BadField {
            field: "MCFG bus range",
            offset,
            value: u64::from(r.start_bus) << 8 | u64::from(r.end_bus),
        });
    }
    if r.base % (1 << BUS_SHIFT) != 0 {
        return Err(AcpiError::BadField {
            field: "MCFG base alignment",
            offset,
            value: r.base,
        });
    }
    if r.physical().is_none() {
        return Err(AcpiError::BadField {
            field: "MCFG base",
            offset,
            value: r.base,
        });
    }
    Ok(())
}

/// Two allocations overlap when they decode a common bus of one segment, or
/// their ECAM windows share physical addresses.
fn overlap(a: &EcamRegion, b: &EcamRegion) -> bool {
    let buses = a.segment == b.segment && a.start_bus <= b.end_bus && b.start_bus <= a.end_bus;
    let memory = match (a.physical(), b.physical()) {
        (Some((a0, a1)), Some((b0, b1))) => a0 < b1 && b0 < a1,
        _ => true,
    };
    buses || memory
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::build::{mcfg, mcfg_entry};

    #[test]
    fn every_allocation_of_every_segment_is_listed() {
        let t = mcfg(&[
            mcfg_entry(0xb000_0000, 0, 0, 0xff),
            mcfg_entry(0xc000_0000, 1, 0x10, 0x1f),
            mcfg_entry(0xd000_0000, 1, 0x40, 0x7f),
        ]);
        let m = Mcfg::parse(&t).unwrap();
        let all: Vec<_> = m.allocations().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].start_bus_address(), 0xc100_0000);
        assert_eq!(all[1].len(), 16 << 20);
        assert_eq!(m.region_for(1, 0x50).unwrap().base, 0xd000_0000);
        assert_eq!(m.region_for(1, 0x20), None);
        assert_eq!(m.region_for(2, 0), None);
    }

    #[test]
    fn a_bad_allocation_is_named_by_its_offset() {
        let t = mcfg(&[
            mcfg_entry(0xb000_0000, 0, 0, 0xff),
            mcfg_entry(0xc000_0000, 1, 0, 0x1f),
            mcfg_entry(0xd000_0000, 2, 9, 8),
        ]);
        assert_eq!(
            Mcfg::parse(&t).err(),
            Some(AcpiError::BadField {
                field: "MCFG bus range",
                offset: ENTRIES_AT + 2 * ENTRY_LEN,
                value: 9 << 8 | 8,
            })
        );
    }

    #[test]
    fn windows_back_to_back_in_memory_do_not_overlap() {
        // The second window ends where the first begins, and the other way.
        for (first, second) in [(0xb010_0000, 0xb000_0000), (0xb000_0000, 0xb010_0000)] {
            let t = mcfg(&[mcfg_entry(first, 0, 0, 0), mcfg_entry(second, 1, 0, 0)]);
            assert_eq!(Mcfg::parse(&t).map(|m| m.allocations().count()), Ok(2));
        }
        // One byte of shared memory is an overlap.
        let t = mcfg(&[
            mcfg_entry(0xb000_0000, 0, 0, 1),
            mcfg_entry(0xb010_0000, 1, 0, 0),
        ]);
        assert!(matches!(
            Mcfg::parse(&t),
            Err(AcpiError::EcamOverlap {
                first: 0,
                second: 1
            })
        ));
    }

    #[test]
    fn a_one_bus_allocation_is_valid() {
        let t = mcfg(&[mcfg_entry(0xb000_0000, 0, 5, 5)]);
        let m = Mcfg::parse(&t).unwrap();
        let r = m.region_for(0, 5).unwrap();
        assert_eq!((r.start_bus, r.end_bus, r.len()), (5, 5, 1 << 20));
        assert_eq!(m.region_for(0, 6), None);
    }

    #[test]
    fn malformed_tables_are_typed_errors() {
        // Zero allocations.
        assert_eq!(Mcfg::parse(&mcfg(&[])), Err(AcpiError::NoEcamAllocations));
        // Truncated below the reserved bytes, and a length past the bytes given.
        let t = mcfg(&[mcfg_entry(0xb000_0000, 0, 0, 0xff)]);
        assert!(matches!(
            Mcfg::parse(&t[..40]),
            Err(AcpiError::BadLength { .. })
        ));
        // A partial trailing entry (length not 44 + 16k).
        let mut odd = t.clone();
        odd.truncate(t.len() - 4);
        let len = odd.len() as u32;
        odd[4..8].copy_from_slice(&len.to_le_bytes());
        odd[9] = 0;
        odd[9] = 0u8.wrapping_sub(checksum(&odd));
        assert!(matches!(
            Mcfg::parse(&odd),
            Err(AcpiError::BadLength { what: "MCFG", .. })
        ));
        // Bad checksum.
        let mut bad = t.clone();
        bad[ENTRIES_AT] ^= 1;
        assert!(matches!(
            Mcfg::parse(&bad),
            Err(AcpiError::BadChecksum { .. })
        ));
        // Inverted bus range, misaligned and wrapping bases.
        let t = mcfg(&[mcfg_entry(0xb000_0000, 0, 9, 3)]);
        assert!(matches!(
            Mcfg::parse(&t),
            Err(AcpiError::BadField {
                field: "MCFG bus range",
                ..
            })
        ));
        let t = mcfg(&[mcfg_entry(0xb000_1000, 0, 0, 3)]);
        assert!(matches!(
            Mcfg::parse(&t),
            Err(AcpiError::BadField {
                field: "MCFG base alignment",
                ..
            })
        ));
        let t = mcfg(&[mcfg_entry(0xffff_ffff_fff0_0000, 0, 0, 3)]);
        assert!(matches!(
            Mcfg::parse(&t),
            Err(AcpiError::BadField {
                field: "MCFG base",
                ..
            })
        ));
        // Too many allocations (and exactly as many as allowed).
        let many: Vec<_> = (0..=MAX_MCFG_ALLOCATIONS as u16)
            .map(|s| mcfg_entry(u64::from(s + 1) << 28, s, 0, 0))
            .collect();
        let most = mcfg(&many[..MAX_MCFG_ALLOCATIONS]);
        assert_eq!(
            Mcfg::parse(&most).unwrap().allocations().count(),
            MAX_MCFG_ALLOCATIONS
        );
        assert!(matches!(
            Mcfg::parse(&mcfg(&many)),
            Err(AcpiError::TooManyEntries { count: 65 })
        ));
        // Not an MCFG.
        let t = crate::acpi::build::build_table(*b"DMAR", 1, &[0; 24]);
        assert!(matches!(
            Mcfg::parse(&t),
            Err(AcpiError::BadSignature { .. })
        ));
    }

    #[test]
    fn overlapping_allocations_are_refused() {
        // Same segment, overlapping buses.
        let t = mcfg(&[
            mcfg_entry(0xb000_0000, 0, 0, 0x3f),
            mcfg_entry(0xe000_0000, 0, 0x20, 0x4f),
        ]);
        assert_eq!(
            Mcfg::parse(&t).unwrap_err(),
            AcpiError::EcamOverlap {
                first: 0,
                second: 1
            }
        );
        // Different segments, the same physical window.
        let t = mcfg(&[
            mcfg_entry(0xb000_0000, 0, 0, 0xff),
            mcfg_entry(0xb800_0000, 1, 0, 0x0f),
            mcfg_entry(0xc000_0000, 2, 0, 0x0f),
        ]);
        assert_eq!(
            Mcfg::parse(&t).unwrap_err(),
            AcpiError::EcamOverlap {
                first: 0,
                second: 1
            }
        );
        // Adjacent, not overlapping.
        let t = mcfg(&[
            mcfg_entry(0xb000_0000, 0, 0, 0x7f),
            mcfg_entry(0xb000_0000, 1, 0x80, 0xff),
        ]);
        assert!(Mcfg::parse(&t).is_ok());
    }
}
