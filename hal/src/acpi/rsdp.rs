//! The Root System Description Pointer (ACPI 6.5, 5.2.5).

use super::{checksum, le, AcpiError};
use crate::phys::PhysRead;

/// Signature of the RSDP.
pub const RSDP_SIGNATURE: [u8; 8] = *b"RSD PTR ";
/// Length of the ACPI 1.0 RSDP (covered by the first checksum).
const V1_LEN: usize = 20;
/// Length of the ACPI 2.0+ RSDP.
const V2_LEN: usize = 36;
/// The longest extended RSDP accepted (the layout is 36 bytes; a later revision
/// may grow it, never past a page).
const MAX_V2_LEN: u32 = 4096;
/// The BIOS data area word holding the EBDA segment (5.2.5.1).
const EBDA_POINTER: u64 = 0x40e;
/// The part of the EBDA searched.
const EBDA_SCAN_LEN: u64 = 1024;
/// The BIOS read-only area searched.
const BIOS_AREA: core::ops::Range<u64> = 0xe_0000..0x10_0000;

/// Where an RSDP was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsdpSource {
    /// At the address the boot information gave.
    Given,
    /// In the first KiB of the extended BIOS data area.
    Ebda,
    /// In the BIOS area 0xE0000..0xFFFFF.
    BiosArea,
}

/// A validated RSDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rsdp {
    /// Its physical address.
    pub address: u64,
    /// How it was found.
    pub source: RsdpSource,
    /// Revision (0 for ACPI 1.0, 2 for 2.0 and later).
    pub revision: u8,
    /// OEM id.
    pub oem_id: [u8; 6],
    /// Physical address of the RSDT.
    pub rsdt: u32,
    /// Physical address of the XSDT (revision ≥ 2, non-zero).
    pub xsdt: Option<u64>,
}

/// Finds the RSDP: at `given` when the boot information has one (PVH start
/// info, multiboot, UEFI), else by the legacy scan of the EBDA and the BIOS area.
///
/// # Errors
///
/// [`AcpiError::BadChecksum`], [`AcpiError::BadLength`] or
/// [`AcpiError::Unreadable`] when the given address holds a damaged RSDP (no
/// fallback to scanning: the boot loader said where it is),
/// [`AcpiError::RsdpNotFound`] when there is no signature there or the scan
/// finds none.
pub fn find_rsdp(mem: &impl PhysRead, given: Option<u64>) -> Result<Rsdp, AcpiError> {
    if let Some(at) = given {
        return parse_at(mem, at, RsdpSource::Given);
    }
    let mut seg = [0u8; 2];
    if mem.read(EBDA_POINTER, &mut seg).is_ok() {
        let ebda = u64::from(u16::from_le_bytes(seg)) << 4;
        // The EBDA lives below the 640 KiB line; anything else is garbage.
        if (0x8_0000..0xa_0000).contains(&ebda) {
            if let Some(r) = scan(mem, ebda..ebda + EBDA_SCAN_LEN, RsdpSource::Ebda) {
                return Ok(r);
            }
        }
    }
    scan(mem, BIOS_AREA, RsdpSource::BiosArea).ok_or(AcpiError::RsdpNotFound)
}

/// Scans 16-byte boundaries of `range` for a valid RSDP.
fn scan(mem: &impl PhysRead, range: core::ops::Range<u64>, source: RsdpSource) -> Option<Rsdp> {
    let mut at = range.start;
    while at < range.end {
        let mut sig = [0u8; 8];
        if mem.read(at, &mut sig).is_ok() && sig == RSDP_SIGNATURE {
            // A signature with a bad checksum is a stale copy; keep looking.
            if let Ok(r) = parse_at(mem, at, source) {
                return Some(r);
            }
        }
        at += 16;
    }
    None
}

/// Validates the RSDP at `at`.
fn parse_at(mem: &impl PhysRead, at: u64, source: RsdpSource) -> Result<Rsdp, AcpiError> {
    let mut v1 = [0u8; V1_LEN];
    mem.read(at, &mut v1)
        .map_err(|e| AcpiError::unreadable("RSDP", e))?;
    if v1.get(..8) != Some(RSDP_SIGNATURE.as_slice()) {
        return Err(AcpiError::RsdpNotFound);
    }
    let sum = checksum(&v1);
    if sum != 0 {
        return Err(AcpiError::BadChecksum {
            signature: RSDP_SIGNATURE,
            at,
            sum,
        });
    }
    let revision = le::u8_at(&v1, 15).unwrap_or(0);
    let rsdt = le::u32_at(&v1, 16).unwrap_or(0);
    let mut oem_id = [0u8; 6];
    if let Some(s) = v1.get(9..15) {
        oem_id.copy_from_slice(s);
    }
    let mut xsdt = None;
    if revision >= 2 {
        let mut v2 = [0u8; V2_LEN];
        mem.read(at, &mut v2)
            .map_err(|e| AcpiError::unreadable("RSDP", e))?;
        let length = le::u32_at(&v2, 20).unwrap_or(0);
        // The extended checksum covers `length` bytes; we know the 36-byte
        // layout only, and a longer structure is fine as long as its sum matches.
        if !(V2_LEN as u32..=MAX_V2_LEN).contains(&length) {
            return Err(AcpiError::BadLength {
                what: "RSDP",
                offset: 0,
                length: length.into(),
                available: V2_LEN as u64,
            });
        }
        let sum = super::sdt::sum_at(mem, at, length.into(), "RSDP")?;
        if sum != 0 {
            return Err(AcpiError::BadChecksum {
                signature: RSDP_SIGNATURE,
                at,
                sum,
            });
        }
        xsdt = le::u64_at(&v2, 24).filter(|&x| x != 0);
    }
    Ok(Rsdp {
        address: at,
        source,
        revision,
        oem_id,
        rsdt,
        xsdt,
    })
}

/// Builds a valid revision-0 (ACPI 1.0) RSDP pointing at `rsdt`.
#[cfg(any(test, feature = "std"))]
pub fn build_v1(rsdt: u32) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[..8].copy_from_slice(&RSDP_SIGNATURE);
    b[9..15].copy_from_slice(b"PARANO");
    b[16..20].copy_from_slice(&rsdt.to_le_bytes());
    b[8] = 0u8.wrapping_sub(checksum(&b));
    b
}

/// Builds a valid revision-2 RSDP pointing at `rsdt` and `xsdt`.
#[cfg(any(test, feature = "std"))]
pub fn build_v2(rsdt: u32, xsdt: u64) -> [u8; 36] {
    let mut b = [0u8; 36];
    b[..8].copy_from_slice(&RSDP_SIGNATURE);
    b[9..15].copy_from_slice(b"PARANO");
    b[15] = 2;
    b[16..20].copy_from_slice(&rsdt.to_le_bytes());
    b[20..24].copy_from_slice(&36u32.to_le_bytes());
    b[24..32].copy_from_slice(&xsdt.to_le_bytes());
    b[8] = 0u8.wrapping_sub(checksum(&b[..20]));
    b[32] = 0u8.wrapping_sub(checksum(&b));
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phys::SliceMemory;

    #[test]
    fn finds_by_scan_in_ebda_and_bios_area_and_skips_stale_copies() {
        let mut low = vec![0u8; 0x10_0000];
        // EBDA at 0x9fc00.
        low[0x40e..0x410].copy_from_slice(&0x9fc0u16.to_le_bytes());
        let good = build_v2(0x1234, 0x5678);
        let mut stale = good;
        stale[16] ^= 1; // bad checksum
        low[0x9fc00..0x9fc00 + 36].copy_from_slice(&stale);
        low[0xf5a10..0xf5a10 + 36].copy_from_slice(&good);
        let mem = SliceMemory {
            base: 0,
            bytes: &low,
        };
        let r = find_rsdp(&mem, None).unwrap();
        assert_eq!(r.address, 0xf5a10);
        assert_eq!(r.source, RsdpSource::BiosArea);
        assert_eq!((r.rsdt, r.xsdt), (0x1234, Some(0x5678)));
        low[0x9fc00..0x9fc00 + 36].copy_from_slice(&good);
        let mem = SliceMemory {
            base: 0,
            bytes: &low,
        };
        assert_eq!(find_rsdp(&mem, None).unwrap().source, RsdpSource::Ebda);
    }

    #[test]
    fn the_scan_covers_its_ranges_to_their_last_paragraph_and_no_further() {
        let good = build_v2(0x1234, 0x5678);
        let found = |at: usize, ebda: u16| {
            let mut low = vec![0u8; 0x10_0100];
            low[0x40e..0x410].copy_from_slice(&ebda.to_le_bytes());
            low[at..at + 36].copy_from_slice(&good);
            let mem = SliceMemory {
                base: 0,
                bytes: &low,
            };
            find_rsdp(&mem, None).ok().map(|r| (r.address, r.source))
        };
        // The BIOS area is 0xe0000..0x100000; the EBDA scan is its first KiB.
        assert_eq!(found(0xe_0000, 0), Some((0xe_0000, RsdpSource::BiosArea)));
        assert_eq!(found(0xf_fff0, 0), Some((0xf_fff0, RsdpSource::BiosArea)));
        assert_eq!(found(0x10_0000, 0), None);
        assert_eq!(found(0x9_fff0, 0x9fc0), Some((0x9_fff0, RsdpSource::Ebda)));
        assert_eq!(found(0xa_0000, 0x9fc0), None);
    }

    #[test]
    fn given_address_is_checked_not_trusted() {
        let mut b = build_v2(1, 2);
        let mem = SliceMemory {
            base: 0x1000,
            bytes: &b,
        };
        assert_eq!(find_rsdp(&mem, Some(0x1000)).unwrap().xsdt, Some(2));
        assert!(matches!(
            find_rsdp(&mem, Some(0x1020)),
            Err(AcpiError::Unreadable { .. })
        ));
        b[20..24].copy_from_slice(&0xffff_ffffu32.to_le_bytes());
        let mem = SliceMemory {
            base: 0x1000,
            bytes: &b,
        };
        assert!(matches!(
            find_rsdp(&mem, Some(0x1000)),
            Err(AcpiError::BadLength { .. })
        ));
        let empty = SliceMemory {
            base: 0,
            bytes: &[],
        };
        assert_eq!(find_rsdp(&empty, None), Err(AcpiError::RsdpNotFound));
    }

    #[test]
    fn v1_checksum_and_v2_extended_checksum_are_both_checked() {
        let v1 = build_v1(0x40);
        let mem = SliceMemory {
            base: 0x1000,
            bytes: &v1,
        };
        let r = find_rsdp(&mem, Some(0x1000)).unwrap();
        assert_eq!((r.revision, r.rsdt, r.xsdt), (0, 0x40, None));
        let mut bad = v1;
        bad[17] ^= 0x10;
        let mem = SliceMemory {
            base: 0x1000,
            bytes: &bad,
        };
        assert!(matches!(
            find_rsdp(&mem, Some(0x1000)),
            Err(AcpiError::BadChecksum { .. })
        ));
        // The first 20 bytes sum right, the extended part does not.
        let mut v2 = build_v2(0x40, 0x80);
        v2[25] ^= 0x01;
        let mem = SliceMemory {
            base: 0x1000,
            bytes: &v2,
        };
        assert!(matches!(
            find_rsdp(&mem, Some(0x1000)),
            Err(AcpiError::BadChecksum { sum: 1, .. })
        ));
        // Revision 2 with a truncated structure: the extended part is unreadable.
        let v2 = build_v2(0x40, 0x80);
        let mem = SliceMemory {
            base: 0x1000,
            bytes: &v2[..24],
        };
        assert!(matches!(
            find_rsdp(&mem, Some(0x1000)),
            Err(AcpiError::Unreadable { .. })
        ));
    }
}
