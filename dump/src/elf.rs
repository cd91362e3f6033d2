//! Extraction to an ELF64 core file (`ET_CORE`) that gdb, readelf and crash
//! tools read: a `PT_NOTE` with the panicking CPU's registers (`NT_PRSTATUS`,
//! the x86-64 `elf_prstatus` layout gdb expects) and a paranoid note (crash
//! point, reason, build id), then one `PT_LOAD` per dumped range with both
//! `p_vaddr` and `p_paddr` set (the crashed kernel identity-maps its memory).
//! Zero pages are restored as holes of a sparse file.

use std::io::{self, Seek, SeekFrom, Write};

use crate::{text, Header, Range, PAGE};

const EHDR: u64 = 64;
const PHDR: u64 = 56;
/// `NT_PRSTATUS`.
pub const NT_PRSTATUS: u32 = 1;
/// Type of the paranoid note (name `PARANOID`): crash point, reason, build id.
pub const NT_PARANOID_CRASH: u32 = 0x5052_4e01;
/// Bytes of the x86-64 `struct elf_prstatus`.
pub const PRSTATUS_LEN: usize = 336;
/// Offset of `pr_reg` (a `user_regs_struct`) in it.
pub const PR_REG_AT: usize = 112;

fn note(out: &mut Vec<u8>, name: &str, kind: u32, desc: &[u8]) {
    let name = [name.as_bytes(), &[0]].concat();
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&name);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// The `elf_prstatus` of the panicking CPU: signal 6 (the panic is an abort),
/// pid 1, registers in `user_regs_struct` order at [`PR_REG_AT`].
pub fn prstatus(h: &Header) -> [u8; PRSTATUS_LEN] {
    let mut d = [0u8; PRSTATUS_LEN];
    d[0..4].copy_from_slice(&6i32.to_le_bytes()); // si_signo
    d[12..14].copy_from_slice(&6i16.to_le_bytes()); // pr_cursig
    d[32..36].copy_from_slice(&1i32.to_le_bytes()); // pr_pid
    for (i, r) in h.cpu.regs.iter().enumerate() {
        let at = PR_REG_AT + 8 * i;
        d[at..at + 8].copy_from_slice(&r.to_le_bytes());
    }
    d
}

/// The notes segment for `h`.
pub fn notes(h: &Header) -> Vec<u8> {
    let mut n = Vec::new();
    if h.cpu.valid {
        note(&mut n, "CORE", NT_PRSTATUS, &prstatus(h));
    }
    let id: String = h.build_id.iter().map(|b| format!("{b:02x}")).collect();
    let desc = format!(
        "point={}\nreason={}\nbuild_id={id}\ncr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x}\n",
        text(&h.crash_point),
        text(&h.crash_reason),
        h.cpu.cr0,
        h.cpu.cr2,
        h.cpu.cr3,
        h.cpu.cr4
    );
    note(&mut n, "PARANOID", NT_PARANOID_CRASH, desc.as_bytes());
    n
}

/// Writes the ELF header and program headers (the note segment, then one
/// `PT_LOAD` per range) and the notes; returns the file offset of each range's
/// data.
///
/// # Errors
///
/// I/O errors.
pub fn write_headers<W: Write>(
    out: &mut W,
    notes: &[u8],
    ranges: &[Range],
) -> io::Result<Vec<u64>> {
    let phnum = u16::try_from(ranges.len() + 1).map_err(|_| io::Error::other("too many ranges"))?;
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
    let notes_at = EHDR + PHDR * u64::from(phnum);
    let mut p = Vec::with_capacity(56 * (ranges.len() + 1));
    let mut phdr = |kind: u32, flags: u32, offset: u64, addr: u64, len: u64, align: u64| {
        p.extend_from_slice(&kind.to_le_bytes());
        p.extend_from_slice(&flags.to_le_bytes());
        p.extend_from_slice(&offset.to_le_bytes());
        p.extend_from_slice(&addr.to_le_bytes()); // vaddr (identity-mapped kernel)
        p.extend_from_slice(&addr.to_le_bytes()); // paddr
        p.extend_from_slice(&len.to_le_bytes());
        p.extend_from_slice(&len.to_le_bytes());
        p.extend_from_slice(&align.to_le_bytes());
    };
    phdr(4, 4, notes_at, 0, notes.len() as u64, 4); // PT_NOTE
    let mut offset = (notes_at + notes.len() as u64).next_multiple_of(PAGE as u64);
    let mut offsets = Vec::new();
    for r in ranges {
        phdr(1, 7, offset, r.start, r.len, PAGE as u64); // PT_LOAD, RWX
        offsets.push(offset);
        offset += r.len.next_multiple_of(PAGE as u64);
    }
    out.write_all(&e)?;
    out.write_all(&p)?;
    out.write_all(notes)?;
    Ok(offsets)
}

/// Writes a core file: headers and notes, then each chunk at its place.
pub struct CoreWriter<W: Write + Seek> {
    out: W,
    ranges: Vec<Range>,
    offsets: Vec<u64>,
    end: u64,
}

impl<W: Write + Seek> CoreWriter<W> {
    /// Starts a core file for the dump `h` whose memory is `ranges`.
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn new(mut out: W, h: &Header, ranges: &[Range]) -> io::Result<Self> {
        let offsets = write_headers(&mut out, &notes(h), ranges)?;
        let end = ranges
            .iter()
            .zip(&offsets)
            .map(|(r, o)| o + r.len)
            .max()
            .unwrap_or(0);
        Ok(Self {
            out,
            ranges: ranges.to_vec(),
            offsets,
            end,
        })
    }

    /// Places `data` of physical address `phys` (zero pages left as holes).
    ///
    /// # Errors
    ///
    /// I/O errors, or data outside every range.
    pub fn put(&mut self, phys: u64, data: &[u8]) -> io::Result<()> {
        let (r, off) = self
            .ranges
            .iter()
            .zip(&self.offsets)
            .find(|(r, _)| phys >= r.start && phys + data.len() as u64 <= r.end())
            .ok_or_else(|| {
                io::Error::other(format!("data at {phys:#x} outside the dumped ranges"))
            })?;
        let base = off + (phys - r.start);
        for (i, page) in data.chunks(PAGE).enumerate() {
            if page.iter().all(|&b| b == 0) {
                continue;
            }
            self.out.seek(SeekFrom::Start(base + (i * PAGE) as u64))?;
            self.out.write_all(page)?;
        }
        Ok(())
    }

    /// Finishes the file (its length covers the last range).
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn finish(mut self) -> io::Result<W> {
        let len = self.out.seek(SeekFrom::End(0))?;
        if len < self.end {
            // A sparse tail: write the last byte.
            self.out.seek(SeekFrom::Start(self.end - 1))?;
            self.out.write_all(&[0])?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, REG_RIP};
    use std::io::Cursor;

    #[test]
    fn core_has_prstatus_and_identity_loads() {
        let mut h = Header::new(Policy::Fence, 4096);
        h.cpu.valid = true;
        h.cpu.regs[REG_RIP] = 0x10_2345;
        let ranges = [Range {
            start: 0x1_0000_0000,
            len: 0x2000,
        }];
        let mut w = CoreWriter::new(Cursor::new(Vec::new()), &h, &ranges).unwrap();
        w.put(0x1_0000_1000, &[9; 4096]).unwrap();
        assert!(w.put(0x5000, &[1]).is_err());
        let f = w.finish().unwrap().into_inner();
        assert_eq!(u16::from_le_bytes([f[56], f[57]]), 2); // phnum
                                                           // PT_NOTE first, then PT_LOAD with vaddr = paddr.
        assert_eq!(u32::from_le_bytes(f[64..68].try_into().unwrap()), 4);
        let load = 64 + 56;
        assert_eq!(u32::from_le_bytes(f[load..load + 4].try_into().unwrap()), 1);
        assert_eq!(f[load + 16..load + 24], f[load + 24..load + 32]);
        assert_eq!(
            u64::from_le_bytes(f[load + 16..load + 24].try_into().unwrap()),
            1 << 32
        );
        // The note: "CORE", NT_PRSTATUS, 336 bytes, rip at 112 + 16 * 8.
        let n = 64 + 2 * 56;
        assert_eq!(&f[n..n + 12], &[5, 0, 0, 0, 0x50, 1, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&f[n + 12..n + 17], b"CORE\0");
        let desc = n + 20;
        let rip = desc + PR_REG_AT + 8 * REG_RIP;
        assert_eq!(
            u64::from_le_bytes(f[rip..rip + 8].try_into().unwrap()),
            0x10_2345
        );
        let data_at = u64::from_le_bytes(f[load + 8..load + 16].try_into().unwrap()) as usize;
        assert_eq!(f.len(), data_at + 0x2000);
        assert!(f[data_at..data_at + 4096].iter().all(|&b| b == 0));
        assert!(f[data_at + 4096..].iter().all(|&b| b == 9));
    }
}
