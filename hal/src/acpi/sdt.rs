//! System description table headers and the RSDT/XSDT walk (ACPI 6.5, 5.2.6-5.2.8).

use super::{checksum, le, AcpiError, Rsdp};
use crate::phys::PhysRead;

/// Length of the common table header.
pub const SDT_HEADER_LEN: usize = 36;
/// The most root-table entries followed (real firmware lists a few dozen).
pub const MAX_ROOT_ENTRIES: usize = 256;
/// The longest table checksummed or copied (MCFG and DMAR are a few hundred
/// bytes; the bound keeps a corrupted length from making us sum gigabytes).
pub const MAX_TABLE_LEN: u32 = 1 << 20;

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
    mem.read(pa, &mut b)
        .map_err(|e| AcpiError::unreadable("table header", e))?;
    SdtHeader::parse(&b)
}

/// Sums `len` bytes at `pa` in chunks (no buffer sized by a firmware value).
pub(crate) fn sum_at(
    mem: &impl PhysRead,
    pa: u64,
    len: u64,
    what: &'static str,
) -> Result<u8, AcpiError> {
    let mut chunk = [0u8; 128];
    let mut sum = 0u8;
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        let part = chunk.get_mut(..n).unwrap_or(&mut []);
        let at = pa
            .checked_add(done)
            .ok_or(AcpiError::Unreadable { what, at: pa, len })?;
        mem.read(at, part)
            .map_err(|_| AcpiError::Unreadable { what, at: pa, len })?;
        sum = sum.wrapping_add(checksum(part));
        done += n as u64;
    }
    Ok(sum)
}

/// A 4-byte signature in the 8-byte error field.
fn pad(s: [u8; 4]) -> [u8; 8] {
    let [a, b, c, d] = s;
    [a, b, c, d, b' ', b' ', b' ', b' ']
}

/// A table found in memory: its address and checked header (length bounded,
/// every byte readable, checksum zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRef {
    /// Physical address of the header.
    pub address: u64,
    /// The header.
    pub header: SdtHeader,
}

/// Checks the table at `pa`: header, length bound, readable bytes, checksum.
fn checked(mem: &impl PhysRead, pa: u64, header: SdtHeader) -> Result<TableRef, AcpiError> {
    if header.length > MAX_TABLE_LEN {
        return Err(AcpiError::BadLength {
            what: "table",
            offset: 0,
            length: header.length.into(),
            available: MAX_TABLE_LEN.into(),
        });
    }
    let sum = sum_at(mem, pa, header.length.into(), "table")?;
    if sum != 0 {
        return Err(AcpiError::BadChecksum {
            signature: pad(header.signature),
            at: pa,
            sum,
        });
    }
    Ok(TableRef {
        address: pa,
        header,
    })
}

/// A table copied out of firmware memory into a fixed buffer of `N` bytes.
#[derive(Debug, Clone)]
pub struct OwnedTable<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> OwnedTable<N> {
    /// The whole table, header included.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// The bytes after the 36-byte header.
    pub fn body(&self) -> &[u8] {
        self.bytes().get(SDT_HEADER_LEN..).unwrap_or(&[])
    }
}

/// The root table (XSDT when the RSDP has one, else the RSDT), checked.
#[derive(Debug, Clone, Copy)]
pub struct Root<M> {
    mem: M,
    table: TableRef,
    width: u8,
    count: usize,
}

impl<M: PhysRead> Root<M> {
    /// Checks the root table the RSDP points at (signature, length, checksum,
    /// entry count).
    ///
    /// # Errors
    ///
    /// [`AcpiError::BadSignature`], [`AcpiError::BadChecksum`],
    /// [`AcpiError::BadLength`], [`AcpiError::Unreadable`], or
    /// [`AcpiError::TooManyEntries`] past [`MAX_ROOT_ENTRIES`].
    pub fn new(mem: M, rsdp: &Rsdp) -> Result<Self, AcpiError> {
        let (pa, expected, width) = match rsdp.xsdt {
            Some(x) => (x, *b"XSDT", 8u8),
            None => (u64::from(rsdp.rsdt), *b"RSDT", 4u8),
        };
        let header = read_header(&mem, pa)?;
        if header.signature != expected {
            return Err(AcpiError::BadSignature {
                expected,
                found: header.signature,
            });
        }
        // Bound the count before summing: the length is firmware-controlled.
        let count = (header.length as usize - SDT_HEADER_LEN) / usize::from(width);
        if count > MAX_ROOT_ENTRIES {
            return Err(AcpiError::TooManyEntries { count });
        }
        let table = checked(&mem, pa, header)?;
        Ok(Self {
            mem,
            table,
            width,
            count,
        })
    }

    /// The root table itself.
    pub fn table(&self) -> TableRef {
        self.table
    }

    /// The memory the tables are read from.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Physical addresses the root lists (at most [`MAX_ROOT_ENTRIES`]).
    pub fn entries(&self) -> impl Iterator<Item = u64> + '_ {
        let base = self.table.address + SDT_HEADER_LEN as u64;
        let width = u64::from(self.width);
        (0..self.count as u64).map(move |i| {
            let at = base + i * width;
            if width == 8 {
                self.mem.read_u64(at).unwrap_or(0)
            } else {
                self.mem.read_u32(at).map(u64::from).unwrap_or(0)
            }
        })
    }

    /// The first table with `signature`, checked; `Ok(None)` when absent.
    ///
    /// Listed tables without a readable header are skipped (one bad entry must
    /// not hide the table we want); a table carrying the signature but broken
    /// is an error.
    ///
    /// # Errors
    ///
    /// The [`AcpiError`] of the table with that signature.
    pub fn find(&self, signature: [u8; 4]) -> Result<Option<TableRef>, AcpiError> {
        for pa in self.entries() {
            let mut b = [0u8; SDT_HEADER_LEN];
            if self.mem.read(pa, &mut b).is_err() || b.get(..4) != Some(signature.as_slice()) {
                continue;
            }
            let h = SdtHeader::parse(&b)?;
            return checked(&self.mem, pa, h).map(Some);
        }
        Ok(None)
    }

    /// Copies the table with `signature` into `buf`, checksum verified on the
    /// copy.
    ///
    /// # Errors
    ///
    /// As [`Root::find`]; [`AcpiError::TableNotFound`] when absent,
    /// [`AcpiError::TooLarge`] when it does not fit `buf`.
    pub fn copy<'b>(&self, signature: [u8; 4], buf: &'b mut [u8]) -> Result<&'b [u8], AcpiError> {
        let t = self
            .find(signature)?
            .ok_or(AcpiError::TableNotFound { signature })?;
        let capacity = buf.len();
        let len = t.header.length as usize;
        let out = buf.get_mut(..len).ok_or(AcpiError::TooLarge {
            signature,
            length: t.header.length,
            capacity,
        })?;
        self.mem
            .read(t.address, out)
            .map_err(|e| AcpiError::unreadable("table", e))?;
        let sum = checksum(out);
        if sum != 0 {
            return Err(AcpiError::BadChecksum {
                signature: pad(signature),
                at: t.address,
                sum,
            });
        }
        Ok(out)
    }

    /// Copies the table with `signature` into an [`OwnedTable`] of `N` bytes.
    ///
    /// # Errors
    ///
    /// As [`Root::copy`].
    pub fn copy_owned<const N: usize>(
        &self,
        signature: [u8; 4],
    ) -> Result<OwnedTable<N>, AcpiError> {
        let mut t = OwnedTable {
            bytes: [0u8; N],
            len: 0,
        };
        t.len = self.copy(signature, &mut t.bytes)?.len();
        Ok(t)
    }
}

/// Finds the table with `signature` through the XSDT (or the RSDT on ACPI 1.0
/// firmware), copies it into `buf` and returns it, checksum verified.
///
/// # Errors
///
/// As [`Root::new`] and [`Root::copy`].
pub fn find_table<'b>(
    mem: &impl PhysRead,
    rsdp: &Rsdp,
    signature: [u8; 4],
    buf: &'b mut [u8],
) -> Result<&'b [u8], AcpiError> {
    Root::new(mem, rsdp)?.copy(signature, buf)
}

/// Builds a table with a header and a valid checksum (tests and models).
#[cfg(any(test, feature = "std"))]
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
    use crate::acpi::{find_rsdp, rsdp::build_v2};
    use crate::phys::SliceMemory;

    fn image() -> Vec<u8> {
        // 0x0: RSDP, 0x100: XSDT with entries to 0x200 (junk) and 0x300 (DMAR),
        // 0x180: RSDT with the DMAR only.
        let mut m = vec![0u8; 0x1000];
        m[..36].copy_from_slice(&build_v2(0x180, 0x100));
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
        let root = Root::new(&mem, &rsdp).unwrap();
        assert_eq!(
            root.entries().collect::<Vec<_>>(),
            vec![0x200, 0xdead_0000, 0x300]
        );
        assert_eq!(root.copy_owned::<64>(*b"DMAR").unwrap().bytes().len(), 48);
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

    #[test]
    fn root_length_is_bounded_before_it_is_summed() {
        let mut m = image();
        // XSDT length 0x10_0000: 131 067 entries listed.
        m[0x104..0x108].copy_from_slice(&0x10_0000u32.to_le_bytes());
        let mem = SliceMemory { base: 0, bytes: &m };
        let rsdp = find_rsdp(&mem, Some(0)).unwrap();
        assert!(matches!(
            Root::new(&mem, &rsdp),
            Err(AcpiError::TooManyEntries { count: 131_067 })
        ));
        // A length inside the bound but past the end of memory: unreadable.
        m[0x104..0x108].copy_from_slice(&0x100u32.to_le_bytes());
        let mem = SliceMemory {
            base: 0,
            bytes: &m[..0x180],
        };
        assert!(matches!(
            Root::new(&mem, &rsdp),
            Err(AcpiError::Unreadable { .. })
        ));
        // A table whose length overflows the bound.
        let mut m = image();
        m[0x304..0x308].copy_from_slice(&u32::MAX.to_le_bytes());
        let mem = SliceMemory { base: 0, bytes: &m };
        let root = Root::new(&mem, &rsdp).unwrap();
        assert!(matches!(
            root.find(*b"DMAR"),
            Err(AcpiError::BadLength { what: "table", .. })
        ));
        // A length shorter than a header.
        m[0x304..0x308].copy_from_slice(&10u32.to_le_bytes());
        let mem = SliceMemory { base: 0, bytes: &m };
        let root = Root::new(&mem, &rsdp).unwrap();
        assert!(matches!(
            root.find(*b"DMAR"),
            Err(AcpiError::BadLength { length: 10, .. })
        ));
    }
}
