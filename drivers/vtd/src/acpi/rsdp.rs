//! The Root System Description Pointer (ACPI 6.5, 5.2.5).

use super::{checksum, le, AcpiError, PhysRead};

/// Signature of the RSDP.
pub const RSDP_SIGNATURE: [u8; 8] = *b"RSD PTR ";
/// Length of the ACPI 1.0 RSDP (covered by the first checksum).
const V1_LEN: usize = 20;
/// Length of the ACPI 2.0+ RSDP.
const V2_LEN: usize = 36;
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
/// [`AcpiError::BadChecksum`] or [`AcpiError::BadLength`] when the given address
/// holds a damaged RSDP (no fallback to scanning: the boot loader said where it
/// is), [`AcpiError::RsdpNotFound`] when the scan finds none.
pub fn find_rsdp(mem: &impl PhysRead, given: Option<u64>) -> Result<Rsdp, AcpiError> {
    if let Some(at) = given {
        return parse_at(mem, at, RsdpSource::Given);
    }
    let mut seg = [0u8; 2];
    if mem.read(EBDA_POINTER, &mut seg) {
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
        if mem.read(at, &mut sig) && sig == RSDP_SIGNATURE {
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
    let mut b = [0u8; V2_LEN];
    let unreadable = |len: usize| AcpiError::Unreadable {
        what: "RSDP",
        at,
        len: len as u64,
    };
    let v1 = b.get_mut(..V1_LEN).ok_or(unreadable(V1_LEN))?;
    if !mem.read(at, v1) {
        return Err(unreadable(V1_LEN));
    }
    let mut sig = [0u8; 8];
    sig.copy_from_slice(b.get(..8).ok_or(unreadable(8))?);
    if sig != RSDP_SIGNATURE {
        return Err(AcpiError::RsdpNotFound);
    }
    let sum = checksum(b.get(..V1_LEN).unwrap_or(&[]));
    if sum != 0 {
        return Err(AcpiError::BadChecksum {
            signature: RSDP_SIGNATURE,
            at,
            sum,
        });
    }
    let revision = le::u8_at(&b, 15).unwrap_or(0);
    let rsdt = le::u32_at(&b, 16).unwrap_or(0);
    let mut oem_id = [0u8; 6];
    oem_id.copy_from_slice(b.get(9..15).unwrap_or(&[0; 6]));
    let mut xsdt = None;
    if revision >= 2 {
        if !mem.read(at, &mut b) {
            return Err(unreadable(V2_LEN));
        }
        let length = le::u32_at(&b, 20).unwrap_or(0);
        // The extended checksum covers `length` bytes; we know the 36-byte layout
        // only, and a longer structure is fine as long as its sum matches.
        if (length as usize) < V2_LEN || length > 4096 {
            return Err(AcpiError::BadLength {
                what: "RSDP",
                offset: 0,
                length: length.into(),
                available: V2_LEN as u64,
            });
        }
        let sum = extended_sum(mem, at, length as usize)?;
        if sum != 0 {
            return Err(AcpiError::BadChecksum {
                signature: RSDP_SIGNATURE,
                at,
                sum,
            });
        }
        xsdt = le::u64_at(&b, 24).filter(|&x| x != 0);
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

/// The byte sum of `len` bytes at `at`, read in small chunks (no buffer sized by
/// a firmware value).
fn extended_sum(mem: &impl PhysRead, at: u64, len: usize) -> Result<u8, AcpiError> {
    let mut sum = 0u8;
    let mut done = 0usize;
    let mut chunk = [0u8; 64];
    while done < len {
        let n = (len - done).min(chunk.len());
        let part = chunk.get_mut(..n).unwrap_or(&mut []);
        if !mem.read(at + done as u64, part) {
            return Err(AcpiError::Unreadable {
                what: "RSDP",
                at,
                len: len as u64,
            });
        }
        sum = sum.wrapping_add(checksum(part));
        done += n;
    }
    Ok(sum)
}

/// Builds a valid revision-2 RSDP pointing at `rsdt` and `xsdt` (tests, the
/// fuzzer).
#[cfg(any(test, feature = "model"))]
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
pub(crate) mod tests {
    use super::*;
    use crate::acpi::SliceMemory;

    pub(crate) fn rsdp_v2(rsdt: u32, xsdt: u64) -> [u8; 36] {
        build_v2(rsdt, xsdt)
    }

    #[test]
    fn finds_by_scan_in_ebda_and_bios_area_and_skips_stale_copies() {
        let mut low = vec![0u8; 0x10_0000];
        // EBDA at 0x9fc00.
        low[0x40e..0x410].copy_from_slice(&0x9fc0u16.to_le_bytes());
        let good = rsdp_v2(0x1234, 0x5678);
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
    fn given_address_is_checked_not_trusted() {
        let mut b = rsdp_v2(1, 2);
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
}
