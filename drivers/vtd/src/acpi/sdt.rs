//! System description table headers and the RSDT/XSDT walk (ACPI 6.5, 5.2.6-5.2.8).

use super::{checksum, le, AcpiError, PhysRead, Rsdp};

/// Length of the common table header.
pub const SDT_HEADER_LEN: usize = 36;
/// The most root-table entries followed (real firmware lists a few dozen).
pub const MAX_ROOT_ENTRIES: usize = 256;

/// The common header of every system description table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdtHeader {
    /// Signature ("XSDT", "DMAR"...).
    pub signature: [u8; 4],
    /// Length of the whole table, header included.
    pub length: u32,
    /// Revision of the table layout.
    pub revision: u8,
    /// OEM id.
    pub oem_id: [u8; 6],
    /// OEM table id.
    pub oem_table_id: [u8; 8],
}

impl SdtHeader {
    /// Decodes a header from the first 36 bytes of `b`.
    ///
    /// # Errors
    ///
    /// [`AcpiError::BadLength`] when `b` is shorter than a header or the length
    /// field is smaller than one.
    pub fn parse(b: &[u8]) -> Result<Self, AcpiError> {
        let short = AcpiError::BadLength {
            what: "table header",
            offset: 0,
            length: b.len() as u64,
            available: b.len() as u64,
        };
        let head = b.get(..SDT_HEADER_LEN).ok_or(short)?;
        let mut signature = [0u8; 4];
        signature.copy_from_slice(head.get(..4).ok_or(short)?);
        let length = le::u32_at(head, 4).ok_or(short)?;
        if (length as usize) < SDT_HEADER_LEN {
            return Err(AcpiError::BadLength {
                what: "table header",
                offset: 0,
                length: length.into(),
                available: b.len() as u64,
            });
        }
        let mut oem_id = [0u8; 6];
        oem_id.copy_from_slice(head.get(10..16).ok_or(short)?);
        let mut oem_table_id = [0u8; 8];
        oem_table_id.copy_from_slice(head.get(16..24).ok_or(short)?);
        Ok(Self {
            signature,
            length,
            revision: le::u8_at(head, 8).ok_or(short)?,
            oem_id,
            oem_table_id,
        })
    }
}

/// Reads the header of the table at `pa`.
fn read_header(mem: &impl PhysRead, pa: u64) -> Result<SdtHeader, AcpiError> {
    let mut b = [0u8; SDT_HEADER_LEN];
    if !mem.read(pa, &mut b) {
        return Err(AcpiError::Unreadable {
            what: "table header",
            at: pa,
            len: SDT_HEADER_LEN as u64,
        });
    }
    SdtHeader::parse(&b)
}

/// Sums `len` bytes at `pa` in chunks.
fn sum_at(mem: &impl PhysRead, pa: u64, len: u64, what: &'static str) -> Result<u8, AcpiError> {
    let mut chunk = [0u8; 128];
    let mut sum = 0u8;
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        let part = chunk.get_mut(..n).unwrap_or(&mut []);
        if !mem.read(pa.saturating_add(done), part) {
            return Err(AcpiError::Unreadable { what, at: pa, len });
        }
        sum = sum.wrapping_add(checksum(part));
        done += n as u64;
    }
    Ok(sum)
}

/// Finds the table with `signature` through the XSDT (or the RSDT on ACPI 1.0
/// firmware), copies it into `buf` and returns it, checksum verified.
///
/// # Errors
///
/// [`AcpiError::TableNotFound`] when no listed table has the signature;
/// [`AcpiError::BadChecksum`], [`AcpiError::BadSignature`],
/// [`AcpiError::BadLength`], [`AcpiError::Unreadable`] for a damaged root table
/// or candidate; [`AcpiError::TooLarge`] when the table does not fit `buf`;
/// [`AcpiError::TooManyEntries`] for a root table past
/// [`MAX_ROOT_ENTRIES`].
pub fn find_table<'b>(
    mem: &impl PhysRead,
    rsdp: &Rsdp,
    signature: [u8; 4],
    buf: &'b mut [u8],
) -> Result<&'b [u8], AcpiError> {
    let (root, expected, width) = match rsdp.xsdt {
        Some(x) => (x, *b"XSDT", 8u64),
        None => (u64::from(rsdp.rsdt), *b"RSDT", 4u64),
    };
    let header = read_header(mem, root)?;
    if header.signature != expected {
        return Err(AcpiError::BadSignature {
            expected,
            found: header.signature,
        });
    }
    let length = u64::from(header.length);
    let sum = sum_at(mem, root, length, "root table")?;
    if sum != 0 {
        return Err(AcpiError::BadChecksum {
            signature: pad(expected),
            at: root,
            sum,
        });
    }
    let count = ((length - SDT_HEADER_LEN as u64) / width) as usize;
    if count > MAX_ROOT_ENTRIES {
        return Err(AcpiError::TooManyEntries { count });
    }
    for i in 0..count as u64 {
        let at = root + SDT_HEADER_LEN as u64 + i * width;
        let mut e = [0u8; 8];
        let entry = e.get_mut(..width as usize).unwrap_or(&mut []);
        if !mem.read(at, entry) {
            return Err(AcpiError::Unreadable {
                what: "root table entry",
                at,
                len: width,
            });
        }
        let pa = u64::from_le_bytes(e);
        // Skip entries that do not even have a readable header: one bad entry
        // must not hide the table we want.
        let Ok(h) = read_header(mem, pa) else {
            continue;
        };
        if h.signature != signature {
            continue;
        }
        let len = h.length as usize;
        let capacity = buf.len();
        let Some(out) = buf.get_mut(..len) else {
            return Err(AcpiError::TooLarge {
                signature,
                length: h.length,
                capacity,
            });
        };
        if !mem.read(pa, out) {
            return Err(AcpiError::Unreadable {
                what: "table",
                at: pa,
                len: len as u64,
            });
        }
        let sum = checksum(out);
        if sum != 0 {
            return Err(AcpiError::BadChecksum {
                signature: pad(signature),
                at: pa,
                sum,
            });
        }
        return Ok(out);
    }
    Err(AcpiError::TableNotFound { signature })
}

/// A 4-byte signature in the 8-byte error field.
fn pad(s: [u8; 4]) -> [u8; 8] {
    let [a, b, c, d] = s;
    [a, b, c, d, b' ', b' ', b' ', b' ']
}

/// Builds a table with a header and a valid checksum (tests and the model).
#[cfg(any(test, feature = "model"))]
pub fn build_table(signature: [u8; 4], revision: u8, body: &[u8]) -> std::vec::Vec<u8> {
    let len = SDT_HEADER_LEN + body.len();
    let mut t = std::vec![0u8; SDT_HEADER_LEN];
    t[..4].copy_from_slice(&signature);
    t[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    t[8] = revision;
    t[10..16].copy_from_slice(b"PARANO");
    t[16..24].copy_from_slice(b"PARANOID");
    t.extend_from_slice(body);
    t[9] = 0u8.wrapping_sub(checksum(&t));
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::{find_rsdp, rsdp::tests::rsdp_v2, SliceMemory};

    fn image() -> Vec<u8> {
        // 0x0: RSDP, 0x100: XSDT with entries to 0x200 (junk) and 0x300 (DMAR),
        // 0x180: RSDT with the DMAR only.
        let mut m = vec![0u8; 0x1000];
        m[..36].copy_from_slice(&rsdp_v2(0x180, 0x100));
        let mut body = Vec::new();
        body.extend_from_slice(&0x200u64.to_le_bytes());
        body.extend_from_slice(&0xdead_0000u64.to_le_bytes());
        body.extend_from_slice(&0x300u64.to_le_bytes());
        let x = build_table(*b"XSDT", 1, &body);
        m[0x100..0x100 + x.len()].copy_from_slice(&x);
        let r = build_table(*b"RSDT", 1, &0x300u32.to_le_bytes());
        m[0x180..0x180 + r.len()].copy_from_slice(&r);
        let junk = build_table(*b"APIC", 1, &[1, 2, 3]);
        m[0x200..0x200 + junk.len()].copy_from_slice(&junk);
        let d = build_table(*b"DMAR", 1, &[38, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        m[0x300..0x300 + d.len()].copy_from_slice(&d);
        m
    }

    #[test]
    fn walks_xsdt_past_unreadable_entries_and_checks_checksums() {
        let mut m = image();
        let mem = SliceMemory { base: 0, bytes: &m };
        let rsdp = find_rsdp(&mem, Some(0)).unwrap();
        let mut buf = [0u8; 256];
        let t = find_table(&mem, &rsdp, *b"DMAR", &mut buf).unwrap();
        assert_eq!(t.len(), 48);
        assert_eq!(
            find_table(&mem, &rsdp, *b"FACP", &mut buf),
            Err(AcpiError::TableNotFound {
                signature: *b"FACP"
            })
        );
        let mut tiny = [0u8; 40];
        assert!(matches!(
            find_table(&mem, &rsdp, *b"DMAR", &mut tiny),
            Err(AcpiError::TooLarge { length: 48, .. })
        ));
        m[0x300 + 40] ^= 0xff;
        let mem = SliceMemory { base: 0, bytes: &m };
        assert!(matches!(
            find_table(&mem, &rsdp, *b"DMAR", &mut buf),
            Err(AcpiError::BadChecksum { at: 0x300, .. })
        ));
    }

    #[test]
    fn acpi1_uses_rsdt() {
        let m = image();
        let mem = SliceMemory { base: 0, bytes: &m };
        let mut rsdp = find_rsdp(&mem, Some(0)).unwrap();
        rsdp.xsdt = None;
        let mut buf = [0u8; 256];
        assert_eq!(
            find_table(&mem, &rsdp, *b"DMAR", &mut buf).unwrap().len(),
            48
        );
        rsdp.rsdt = 0x100;
        assert!(matches!(
            find_table(&mem, &rsdp, *b"DMAR", &mut buf),
            Err(AcpiError::BadSignature { .. })
        ));
    }
}
