//! Extraction to an ELF64 core file (`ET_CORE`, one `PT_LOAD` per range), the
//! shape `readelf`, `gdb` and crash tools read.

use std::io::{self, Seek, SeekFrom, Write};

use crate::Range;

const EHDR: u64 = 64;
const PHDR: u64 = 56;

/// Writes the ELF header and program headers for `ranges`; returns the file offset
/// of each range's data.
///
/// # Errors
///
/// I/O errors.
pub fn write_headers<W: Write>(out: &mut W, ranges: &[Range]) -> io::Result<Vec<u64>> {
    let phnum = u16::try_from(ranges.len()).map_err(|_| io::Error::other("too many ranges"))?;
    let mut e = Vec::with_capacity(64);
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    e.extend_from_slice(&[0; 8]);
    e.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
    e.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&0u64.to_le_bytes()); // entry
    e.extend_from_slice(&EHDR.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    e.extend_from_slice(&(EHDR as u16).to_le_bytes());
    e.extend_from_slice(&(PHDR as u16).to_le_bytes());
    e.extend_from_slice(&phnum.to_le_bytes());
    e.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
    out.write_all(&e)?;
    let mut offset = (EHDR + PHDR * u64::from(phnum)).next_multiple_of(4096);
    let mut offsets = Vec::new();
    for r in ranges {
        let mut p = Vec::with_capacity(56);
        p.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        p.extend_from_slice(&6u32.to_le_bytes()); // R W
        p.extend_from_slice(&offset.to_le_bytes());
        p.extend_from_slice(&r.start.to_le_bytes()); // vaddr (identity-mapped kernel)
        p.extend_from_slice(&r.start.to_le_bytes()); // paddr
        p.extend_from_slice(&r.len.to_le_bytes());
        p.extend_from_slice(&r.len.to_le_bytes());
        p.extend_from_slice(&4096u64.to_le_bytes());
        out.write_all(&p)?;
        offsets.push(offset);
        offset += r.len.next_multiple_of(4096);
    }
    Ok(offsets)
}

/// Writes a core file: headers, then each chunk at its place.
pub struct CoreWriter<W: Write + Seek> {
    out: W,
    ranges: Vec<Range>,
    offsets: Vec<u64>,
}

impl<W: Write + Seek> CoreWriter<W> {
    /// Starts a core file for `ranges`.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn new(mut out: W, ranges: &[Range]) -> io::Result<Self> {
        let offsets = write_headers(&mut out, ranges)?;
        Ok(Self {
            out,
            ranges: ranges.to_vec(),
            offsets,
        })
    }

    /// Places `data` of physical address `phys`.
    ///
    /// # Errors
    ///
    /// I/O errors, or data outside every range.
    pub fn put(&mut self, phys: u64, data: &[u8]) -> io::Result<()> {
        let (r, off) = self
            .ranges
            .iter()
            .zip(&self.offsets)
            .find(|(r, _)| phys >= r.start && phys + data.len() as u64 <= r.start + r.len)
            .ok_or_else(|| {
                io::Error::other(format!("data at {phys:#x} outside the dumped ranges"))
            })?;
        self.out.seek(SeekFrom::Start(off + (phys - r.start)))?;
        self.out.write_all(data)
    }
}
