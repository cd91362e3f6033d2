//! Reading and verifying a dump from a disk image.
//!
//! Verification walks the chunk stream: every record and CRC, every chunk's
//! decoding, the plan covered in order, and the crashed kernel's memory
//! pattern. It does not take the dump's word for what must be there: given the
//! guest's RAM layout ([`Options::ram`]), every RAM byte must be in a chunk, on
//! the missing list of a partial dump, or excluded on purpose (the recovery
//! kernel's own memory). Given the guest's RAM as a file ([`Options::truth`]),
//! every dumped byte is compared with it.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::codec::{self, CodecError};
use crate::{
    data_crc, pattern_word, text, ChunkRecord, DumpError, Header, Range, CHUNK_RECORD, PAGE,
    RECORD, REG_NAMES,
};

/// Why a dump failed verification.
#[derive(Debug)]
pub enum VerifyError {
    /// The image could not be read.
    Io(io::Error),
    /// The header record is invalid.
    Header(DumpError),
    /// A chunk is invalid.
    Chunk {
        /// Chunk index.
        index: u64,
        /// What is wrong.
        problem: ChunkProblem,
    },
    /// The chunks and the missing list do not add up to the plan.
    Coverage {
        /// Bytes the plan declares.
        planned: u64,
        /// Bytes the chunks carry.
        carried: u64,
        /// Bytes listed missing.
        missing: u64,
    },
}

/// What is wrong with a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkProblem {
    /// The record does not decode.
    Record(DumpError),
    /// The record's index is not its position.
    WrongIndex(u64),
    /// The chunk does not start at the plan's next address.
    WrongAddress {
        /// Expected physical address.
        expected: u64,
        /// Found.
        found: u64,
    },
    /// Length past the chunk size or the range.
    BadLength(u32),
    /// The chunk runs past the stream the header declares.
    PastStream {
        /// Its end in the stream.
        end: u64,
        /// The stream's length.
        stream: u64,
    },
    /// More chunks than the plan has memory for.
    PastPlan,
    /// The stored bytes do not decode or check.
    Codec(CodecError),
}

impl fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Record(e) => write!(f, "record: {e}"),
            Self::WrongIndex(i) => write!(f, "record says index {i}"),
            Self::WrongAddress { expected, found } => {
                write!(
                    f,
                    "starts at {found:#x}, the plan's next address is {expected:#x}"
                )
            }
            Self::BadLength(n) => write!(f, "length {n} past the chunk size or its range"),
            Self::PastStream { end, stream } => {
                write!(f, "ends at {end} of a {stream}-byte stream")
            }
            Self::PastPlan => write!(f, "past the end of the plan"),
            Self::Codec(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read image: {e}"),
            Self::Header(e) => write!(f, "invalid dump header: {e}"),
            Self::Chunk { index, problem } => write!(f, "chunk {index}: {problem}"),
            Self::Coverage {
                planned,
                carried,
                missing,
            } => write!(
                f,
                "the plan declares {planned} bytes, chunks carry {carried} and {missing} are listed missing"
            ),
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<io::Error> for VerifyError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Guest RAM kept in a host file (QEMU `memory-backend-file`): where each
/// physical range is in the file.
#[derive(Debug, Clone)]
pub struct Truth {
    /// The file.
    pub path: PathBuf,
    /// Physical ranges and their offsets in the file.
    pub map: Vec<(Range, u64)>,
}

impl Truth {
    /// The q35 layout (QEMU's `pc_q35_init`): RAM below 4 GiB first, then the
    /// rest at 4 GiB, in one backend file of `ram_bytes`.
    pub fn q35(path: PathBuf, ram_bytes: u64) -> Self {
        Self::of_layout(path, q35_ram(ram_bytes))
    }

    /// RAM laid out as `ranges` (in address order), one backend file holding
    /// them back to back (QEMU's `memory-backend-file` of any layout, e.g.
    /// [`q35_ram_limited`]).
    pub fn of_layout(path: PathBuf, ranges: Vec<Range>) -> Self {
        let map = ranges
            .into_iter()
            .scan(0u64, |off, r| {
                let at = *off;
                *off += r.len;
                Some((r, at))
            })
            .collect();
        Self { path, map }
    }

    fn offset(&self, phys: u64, len: u64) -> Option<u64> {
        self.map.iter().find_map(|(r, off)| {
            (phys >= r.start && phys.checked_add(len)? <= r.end()).then(|| off + (phys - r.start))
        })
    }
}

/// Guest RAM of a QEMU q35 machine with `ram_bytes` of memory: QEMU 7.2's
/// `pc_q35_init` keeps at most 2 GiB below 4 GiB when the machine has 2.75 GiB
/// or more, and puts the rest at 4 GiB; below 2.75 GiB all of it is below
/// 4 GiB (2.5 GiB: RAM up to `0xa000_0000`, past 2 GiB).
pub fn q35_ram(ram_bytes: u64) -> Vec<Range> {
    q35_ram_limited(ram_bytes, 1 << 32)
}

/// [`q35_ram`] on a machine started with `-machine max-ram-below-4g=LIMIT`:
/// QEMU takes the smaller of its own split point and `max_below_4g` as the
/// RAM kept below 4 GiB; the rest is at 4 GiB.
pub fn q35_ram_limited(ram_bytes: u64, max_below_4g: u64) -> Vec<Range> {
    let lowmem: u64 = if ram_bytes >= 0xb000_0000 {
        0x8000_0000
    } else {
        0xb000_0000
    };
    let below = ram_bytes.min(lowmem).min(max_below_4g);
    let mut out = vec![Range {
        start: 0,
        len: below,
    }];
    if ram_bytes > below {
        out.push(Range {
            start: 1 << 32,
            len: ram_bytes - below,
        });
    }
    out
}

/// What to check beyond the dump itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The guest's RAM layout: every byte must be dumped, missing or excluded.
    pub ram: Option<Vec<Range>>,
    /// Physical ranges that are not RAM the crashed kernel could use (firmware
    /// holes inside the layout, as the guest's memory map marks them).
    pub holes: Vec<Range>,
    /// The guest's RAM after the run, to compare every dumped byte with.
    pub truth: Option<Truth>,
}

/// Ground truth comparison.
#[derive(Debug, Clone, Default)]
pub struct TruthCheck {
    /// Bytes compared.
    pub compared: u64,
    /// Bytes not compared (pages a device or the recovery kernel may write).
    pub skipped: u64,
    /// Bytes that differ.
    pub differing: u64,
    /// Addresses of the first differing bytes.
    pub first: Vec<u64>,
}

/// The overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Complete, every check passed.
    Verified,
    /// Closed early with a valid missing list; everything present checked out.
    Partial,
    /// A check failed, or the dump was cut short without a missing list.
    NotVerified,
}

/// The result of verifying a dump.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The header.
    pub header: Header,
    /// Chunks whose record and CRCs checked out.
    pub chunks: u64,
    /// Bytes of memory read back.
    pub bytes: u64,
    /// Bytes stored for them.
    pub stored: u64,
    /// Zero pages.
    pub zero_pages: u64,
    /// Pattern words compared.
    pub pattern_words: u64,
    /// Pattern words that did not match (first few addresses in `mismatch_at`).
    pub pattern_mismatches: u64,
    /// Addresses of the first mismatching words.
    pub mismatch_at: Vec<u64>,
    /// Chunks as (start, len), merged where contiguous.
    pub present: Vec<Range>,
    /// RAM neither dumped, missing nor excluded (with [`Options::ram`]).
    pub unaccounted: Vec<Range>,
    /// Dumped or missing memory outside the RAM layout.
    pub outside_ram: Vec<Range>,
    /// Ground truth comparison (with [`Options::truth`]).
    pub truth: Option<TruthCheck>,
}

impl Verified {
    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        let checks = self.pattern_mismatches == 0
            && self.unaccounted.is_empty()
            && self.outside_ram.is_empty()
            && self.truth.as_ref().is_none_or(|t| t.differing == 0);
        match (checks, self.header.is_complete(), self.header.is_partial()) {
            (true, true, _) if self.pattern_words > 0 => Verdict::Verified,
            (true, false, true) => Verdict::Partial,
            _ => Verdict::NotVerified,
        }
    }

    /// True when the dump is complete and every check passed.
    pub fn is_good(&self) -> bool {
        self.verdict() == Verdict::Verified
    }

    /// Dump throughput in MiB/s of memory, from the recovery kernel's own
    /// timestamps.
    pub fn throughput_mib_s(&self) -> f64 {
        let ns = self
            .header
            .dump_end_ns
            .saturating_sub(self.header.dump_start_ns);
        mib_s(self.bytes, ns)
    }
}

fn mib_s(bytes: u64, ns: u64) -> f64 {
    if ns == 0 {
        return 0.0;
    }
    bytes as f64 / (1024.0 * 1024.0) / (ns as f64 / 1e9)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        let state = if h.is_complete() {
            "complete"
        } else if h.is_partial() {
            "PARTIAL"
        } else {
            "INCOMPLETE"
        };
        writeln!(
            f,
            "dump: {state} ({} chunks of up to {} KiB, {:.1} MiB of memory in {:.1} MiB stored)",
            self.chunks,
            h.chunk_size / 1024,
            mib(self.bytes),
            mib(self.stored),
        )?;
        writeln!(f, "  crash point : {}", text(&h.crash_point))?;
        writeln!(f, "  crash reason: {}", text(&h.crash_reason))?;
        writeln!(f, "  iommu policy: {}", h.policy.name())?;
        let id: String = h.build_id.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(f, "  build id    : {id}")?;
        writeln!(f, "  descriptor  : {}", text(&h.descriptor))?;
        if h.cpu.valid {
            let r = &h.cpu.regs;
            writeln!(
                f,
                "  cpu         : rip {:#x} rsp {:#x} rbp {:#x} rflags {:#x} cr0 {:#x} cr2 {:#x} cr3 {:#x} cr4 {:#x}",
                r[crate::REG_RIP],
                r[crate::REG_RSP],
                r[crate::REG_RBP],
                r[18],
                h.cpu.cr0,
                h.cpu.cr2,
                h.cpu.cr3,
                h.cpu.cr4
            )?;
        } else {
            writeln!(f, "  cpu         : not saved")?;
        }
        for r in h.ranges() {
            writeln!(
                f,
                "  plan        : {:#012x}..{:#012x} ({} MiB)",
                r.start,
                r.end(),
                r.len >> 20
            )?;
        }
        for r in h.missing() {
            writeln!(
                f,
                "  missing     : {:#012x}..{:#012x} ({:.1} MiB)",
                r.start,
                r.end(),
                mib(r.len)
            )?;
        }
        for e in h.excluded() {
            writeln!(
                f,
                "  excluded    : {:#012x}..{:#012x} ({})",
                e.range.start,
                e.range.end(),
                e.kind.name()
            )?;
        }
        let pages = self.bytes.div_ceil(PAGE as u64);
        let encode_ns = h.encode_ns;
        writeln!(
            f,
            "  compression : {} zero pages of {} ({:.1}%), ratio {:.2} ({} codec), encode {:.1} MiB/s of memory",
            self.zero_pages,
            pages,
            100.0 * self.zero_pages as f64 / pages.max(1) as f64,
            self.bytes as f64 / self.stored.max(1) as f64,
            h.codec.name(),
            mib_s(self.bytes, encode_ns),
        )?;
        let nonzero = self.bytes.saturating_sub(self.zero_pages * PAGE as u64);
        writeln!(
            f,
            "  non-zero    : {:.1} MiB stored as {:.1} MiB (ratio {:.2})",
            mib(nonzero),
            mib(self.stored),
            nonzero as f64 / self.stored.max(1) as f64
        )?;
        writeln!(
            f,
            "  pattern     : {} words checked in {:#x}..{:#x}, {} mismatches",
            self.pattern_words,
            h.pattern.start,
            h.pattern.end(),
            self.pattern_mismatches
        )?;
        for a in &self.mismatch_at {
            writeln!(f, "    mismatch at {a:#x}")?;
        }
        for r in &self.unaccounted {
            writeln!(
                f,
                "  UNACCOUNTED : {:#012x}..{:#012x}: RAM neither dumped, missing nor excluded",
                r.start,
                r.end()
            )?;
        }
        for r in &self.outside_ram {
            writeln!(
                f,
                "  OUTSIDE RAM : {:#012x}..{:#012x}: in the dump but not RAM",
                r.start,
                r.end()
            )?;
        }
        if let Some(t) = &self.truth {
            writeln!(
                f,
                "  ground truth: {} bytes compared, {} skipped (recovery-owned or device-written), {} differ",
                t.compared, t.skipped, t.differing
            )?;
            for a in &t.first {
                writeln!(f, "    differs at {a:#x}")?;
            }
        }
        write!(
            f,
            "  dump time   : {:.1} ms ({:.1} MiB/s of memory)",
            h.dump_end_ns.saturating_sub(h.dump_start_ns) as f64 / 1e6,
            self.throughput_mib_s()
        )
    }
}

/// The CPU registers of a header, one `name value` per line.
pub fn registers(h: &Header) -> String {
    REG_NAMES
        .iter()
        .zip(h.cpu.regs)
        .map(|(n, v)| format!("{n} {v:#x}\n"))
        .collect()
}

/// Reads the header at `offset` bytes into `image`.
///
/// # Errors
///
/// [`VerifyError::Io`] or [`VerifyError::Header`].
pub fn read_header(image: &mut File, offset: u64) -> Result<Header, VerifyError> {
    let mut rec = vec![0u8; RECORD];
    image.seek(SeekFrom::Start(offset))?;
    image.read_exact(&mut rec)?;
    Header::decode(&rec).map_err(VerifyError::Header)
}

/// Verifies the dump in `path` at `offset`, calling `visit(phys, data)` for each
/// chunk's memory (to extract it).
///
/// # Errors
///
/// The first problem that makes the dump unreadable; failed content checks
/// (pattern, layout, ground truth) are reported in [`Verified`] instead.
pub fn verify(
    path: &Path,
    offset: u64,
    options: &Options,
    mut visit: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> Result<Verified, VerifyError> {
    let mut image = File::open(path)?;
    let header = read_header(&mut image, offset)?;
    let mut truth = match &options.truth {
        Some(t) => Some((t, File::open(&t.path)?, TruthCheck::default())),
        None => None,
    };
    let planned: u64 = header.ranges().iter().map(|r| r.len).sum();
    let mut expected = Expected::new(header.ranges());
    let mut out = Verified {
        header: header.clone(),
        chunks: 0,
        bytes: 0,
        stored: 0,
        zero_pages: 0,
        pattern_words: 0,
        pattern_mismatches: 0,
        mismatch_at: vec![],
        present: vec![],
        unaccounted: vec![],
        outside_ram: vec![],
        truth: None,
    };
    let max = header.chunk_size as usize;
    let mut rec = vec![0u8; CHUNK_RECORD];
    let mut stored = vec![0u8; codec::encode_bound(max)];
    let (mut plain, mut data) = (vec![0u8; max], vec![0u8; max]);
    let mut truth_buf = vec![0u8; max];
    let mut at = 0u64;
    image.seek(SeekFrom::Start(offset + RECORD as u64))?;
    for index in 0..header.chunk_count {
        let bad = |problem| VerifyError::Chunk { index, problem };
        let end = at + CHUNK_RECORD as u64;
        if end > header.stream_bytes {
            return Err(bad(ChunkProblem::PastStream {
                end,
                stream: header.stream_bytes,
            }));
        }
        image.read_exact(&mut rec)?;
        let chunk = ChunkRecord::decode(&rec).map_err(|e| bad(ChunkProblem::Record(e)))?;
        if chunk.index != index {
            return Err(bad(ChunkProblem::WrongIndex(chunk.index)));
        }
        let (phys, room) = expected.next().ok_or(bad(ChunkProblem::PastPlan))?;
        if chunk.phys != phys {
            return Err(bad(ChunkProblem::WrongAddress {
                expected: phys,
                found: chunk.phys,
            }));
        }
        if chunk.len > header.chunk_size || u64::from(chunk.len) > room {
            return Err(bad(ChunkProblem::BadLength(chunk.len)));
        }
        let end = end + u64::from(chunk.stored_len);
        if end > header.stream_bytes {
            return Err(bad(ChunkProblem::PastStream {
                end,
                stream: header.stream_bytes,
            }));
        }
        let s = stored
            .get_mut(..chunk.stored_len as usize)
            .ok_or(bad(ChunkProblem::BadLength(chunk.stored_len)))?;
        image.read_exact(s)?;
        let mem = codec::decode(&chunk, s, &mut plain, &mut data)
            .map_err(|e| bad(ChunkProblem::Codec(e)))?;
        check_pattern(&header, chunk.phys, mem, &mut out);
        if let Some((t, file, check)) = truth.as_mut() {
            compare_truth(&header, t, file, chunk.phys, mem, &mut truth_buf, check)?;
        }
        visit(chunk.phys, mem)?;
        expected.consume(u64::from(chunk.len));
        push_merged(
            &mut out.present,
            Range {
                start: chunk.phys,
                len: u64::from(chunk.len),
            },
        );
        out.chunks += 1;
        out.bytes += u64::from(chunk.len);
        out.stored += u64::from(chunk.stored_len);
        out.zero_pages += chunk.zero_pages() as u64;
        at = end;
    }
    let missing: u64 = header.missing().iter().map(|r| r.len).sum();
    let rest = expected.rest();
    let consistent = if header.is_partial() {
        // The missing list is exactly what the plan had left.
        rest == merged(header.missing())
    } else {
        !header.is_complete() || (out.bytes == planned && missing == 0)
    };
    if !consistent {
        return Err(VerifyError::Coverage {
            planned,
            carried: out.bytes,
            missing,
        });
    }
    if let Some(ram) = &options.ram {
        let mut accounted: Vec<Range> = out.present.clone();
        accounted.extend(header.missing().iter().copied());
        accounted.extend(
            header
                .excluded()
                .filter(|e| e.kind.left_out())
                .map(|e| e.range),
        );
        accounted.extend(options.holes.iter().copied());
        out.unaccounted = subtract_all(ram, &accounted);
        let mut dumped: Vec<Range> = out.present.clone();
        dumped.extend(header.missing().iter().copied());
        out.outside_ram = subtract_all(&dumped, ram);
    }
    out.truth = truth.map(|(_, _, c)| c);
    Ok(out)
}

fn compare_truth(
    h: &Header,
    truth: &Truth,
    file: &mut File,
    phys: u64,
    mem: &[u8],
    buf: &mut [u8],
    check: &mut TruthCheck,
) -> Result<(), VerifyError> {
    for (i, page) in mem.chunks(PAGE).enumerate() {
        let p = phys + (i * PAGE) as u64;
        let r = Range {
            start: p,
            len: page.len() as u64,
        };
        if h.excluded().any(|e| e.range.overlaps(&r)) {
            check.skipped += r.len;
            continue;
        }
        let Some(off) = truth.offset(p, r.len) else {
            check.differing += r.len;
            if check.first.len() < 8 {
                check.first.push(p);
            }
            continue;
        };
        let dst = buf.get_mut(..page.len()).unwrap_or_default();
        file.seek(SeekFrom::Start(off))?;
        file.read_exact(dst)?;
        for (k, (a, b)) in page.iter().zip(dst.iter()).enumerate() {
            if a != b {
                check.differing += 1;
                if check.first.len() < 8 {
                    check.first.push(p + k as u64);
                }
            }
        }
        check.compared += r.len;
    }
    Ok(())
}

fn check_pattern(h: &Header, phys: u64, data: &[u8], out: &mut Verified) {
    let p = h.pattern;
    for (i, word) in data.chunks_exact(8).enumerate() {
        let a = phys + 8 * i as u64;
        if a < p.start || a + 8 > p.end() {
            continue;
        }
        out.pattern_words += 1;
        let v = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        if v != pattern_word(h.pattern_seed, a) {
            out.pattern_mismatches += 1;
            if out.mismatch_at.len() < 8 {
                out.mismatch_at.push(a);
            }
        }
    }
}

fn push_merged(list: &mut Vec<Range>, r: Range) {
    match list.last_mut() {
        Some(last) if last.end() == r.start => last.len += r.len,
        _ => list.push(r),
    }
}

/// `ranges` sorted by start with neighbours merged.
fn merged(ranges: &[Range]) -> Vec<Range> {
    let mut v: Vec<Range> = ranges.iter().copied().filter(|r| r.len > 0).collect();
    v.sort_by_key(|r| r.start);
    let mut out: Vec<Range> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(last) if last.end() >= r.start => {
                let end = last.end().max(r.end());
                last.len = end - last.start;
            }
            _ => out.push(r),
        }
    }
    out
}

/// The parts of `from` that no range of `minus` covers.
pub fn subtract_all(from: &[Range], minus: &[Range]) -> Vec<Range> {
    let minus = merged(minus);
    let mut out = Vec::new();
    for r in merged(from) {
        let mut at = r.start;
        for m in minus.iter().filter(|m| m.overlaps(&r)) {
            if m.start > at {
                out.push(Range {
                    start: at,
                    len: m.start - at,
                });
            }
            at = at.max(m.end());
        }
        if at < r.end() {
            out.push(Range {
                start: at,
                len: r.end() - at,
            });
        }
    }
    out
}

/// Walks the plan's ranges in order.
struct Expected<'r> {
    ranges: &'r [Range],
    range: usize,
    done: u64,
}

impl<'r> Expected<'r> {
    fn new(ranges: &'r [Range]) -> Self {
        Self {
            ranges,
            range: 0,
            done: 0,
        }
    }

    /// The next expected address and the bytes left in its range.
    fn next(&mut self) -> Option<(u64, u64)> {
        loop {
            let r = self.ranges.get(self.range)?;
            if self.done < r.len {
                return Some((r.start + self.done, r.len - self.done));
            }
            self.range += 1;
            self.done = 0;
        }
    }

    fn consume(&mut self, n: u64) {
        self.done += n;
    }

    /// What the plan has left, merged.
    fn rest(&mut self) -> Vec<Range> {
        let mut left = Vec::new();
        if let Some((start, len)) = self.next() {
            left.push(Range { start, len });
            left.extend(self.ranges.iter().skip(self.range + 1).copied());
        }
        merged(&left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{codec, fixed, Encoding, ExcludedKind, Policy, FLAG_COMPLETE, FLAG_PARTIAL};
    use proptest::prelude::*;

    /// Memory of the test machine: the pattern at 0x10_0000, zeros elsewhere,
    /// some text at 0x2000.
    fn memory(phys: u64, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| {
                let a = phys + i;
                if (0x10_0000..0x10_2000).contains(&a) {
                    pattern_word(7, a & !7).to_le_bytes()[(a % 8) as usize]
                } else if (0x2000..0x2400).contains(&a) {
                    b"crash "[(a % 6) as usize]
                } else {
                    0
                }
            })
            .collect()
    }

    /// Writes a dump of the plan into an image, as the recovery kernel does;
    /// stops (partial) after `stop_after` chunks.
    fn image(stop_after: Option<u64>) -> (Vec<u8>, Header) {
        let mut h = Header::new(Policy::Adopt, 8192);
        h.ranges[0] = Range {
            start: 0x10_0000,
            len: 0x2000,
        };
        h.ranges[1] = Range {
            start: 0x1000,
            len: 0x5000,
        };
        h.range_count = 2;
        h.pattern = Range {
            start: 0x10_0000,
            len: 0x2000,
        };
        h.pattern_seed = 7;
        h.crash_point = fixed("early");
        h.exclude(
            Range {
                start: 0x6000,
                len: 0xfa000,
            },
            ExcludedKind::Recovery,
        );
        let mut stream = Vec::new();
        let mut index = 0u64;
        'plan: for r in h.ranges().to_vec() {
            let mut done = 0;
            while done < r.len {
                if Some(index) == stop_after {
                    h.missing[0] = Range {
                        start: r.start + done,
                        len: r.len - done,
                    };
                    h.missing_count = 1;
                    h.flags = FLAG_PARTIAL;
                    break 'plan;
                }
                let len = (r.len - done).min(8192);
                let phys = r.start + done;
                let m = memory(phys, len as usize);
                let (mut plain, mut out) =
                    (vec![0; m.len()], vec![0; codec::encode_bound(m.len())]);
                let c =
                    codec::encode(index, phys, &m, Encoding::Lz4, &mut plain, &mut out).unwrap();
                let mut rec = [0u8; CHUNK_RECORD];
                c.encode(&mut rec);
                stream.extend_from_slice(&rec);
                stream.extend_from_slice(&out[..c.stored_len as usize]);
                index += 1;
                done += len;
                h.total_bytes += len;
            }
        }
        if h.flags == 0 {
            h.flags = FLAG_COMPLETE;
        }
        h.chunk_count = index;
        h.stream_bytes = stream.len() as u64;
        let mut img = vec![0u8; RECORD];
        let mut rec = [0u8; RECORD];
        h.encode(&mut rec);
        img.copy_from_slice(&rec);
        img.extend_from_slice(&stream);
        img.resize(img.len().next_multiple_of(512) + 4096, 0);
        (img, h)
    }

    fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("paranoid-dump-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn ram() -> Options {
        Options {
            ram: Some(vec![Range {
                start: 0x1000,
                len: 0x10_1000,
            }]),
            ..Options::default()
        }
    }

    #[test]
    fn verifies_a_good_dump_against_the_layout_and_the_truth() {
        let (img, _) = image(None);
        let path = tmp("good.img", &img);
        let truth = tmp("ram.bin", &memory(0, 0x20_0000));
        let mut opts = ram();
        opts.truth = Some(Truth {
            path: truth.clone(),
            map: vec![(
                Range {
                    start: 0,
                    len: 0x20_0000,
                },
                0,
            )],
        });
        let v = verify(&path, 0, &opts, |_, _| Ok(())).unwrap();
        assert_eq!(v.verdict(), Verdict::Verified, "{v}");
        assert_eq!(v.pattern_words, 0x2000 / 8);
        assert!(v.zero_pages >= 2, "{v}");
        assert!(v.stored < v.bytes, "{v}");
        let t = v.truth.as_ref().unwrap();
        assert_eq!((t.differing, t.compared), (0, 0x7000));
        // Negative control: one dumped page altered in the host copy.
        let mut ram_bytes = memory(0, 0x20_0000);
        ram_bytes[0x2010] ^= 0xff;
        std::fs::write(&truth, &ram_bytes).unwrap();
        let v = verify(&path, 0, &opts, |_, _| Ok(())).unwrap();
        assert_eq!(v.truth.as_ref().unwrap().first, vec![0x2010]);
        assert_eq!(v.verdict(), Verdict::NotVerified);
    }

    #[test]
    fn the_layout_catches_ram_the_dump_leaves_out() {
        let (img, _) = image(None);
        let path = tmp("layout.img", &img);
        let mut opts = ram();
        opts.ram.as_mut().unwrap().push(Range {
            start: 1 << 32,
            len: 0x1000,
        });
        let v = verify(&path, 0, &opts, |_, _| Ok(())).unwrap();
        assert_eq!(
            v.unaccounted,
            vec![Range {
                start: 1 << 32,
                len: 0x1000
            }]
        );
        assert_eq!(v.verdict(), Verdict::NotVerified);
        // Memory dumped that is not RAM.
        let mut opts = ram();
        opts.ram = Some(vec![Range {
            start: 0x1000,
            len: 0xf_f000,
        }]);
        let v = verify(&path, 0, &opts, |_, _| Ok(())).unwrap();
        assert_eq!(v.outside_ram.len(), 1, "{v}");
    }

    #[test]
    fn a_partial_dump_is_partial_not_corrupt() {
        let (img, h) = image(Some(2));
        let path = tmp("partial.img", &img);
        let v = verify(&path, 0, &ram(), |_, _| Ok(())).unwrap();
        assert_eq!(v.verdict(), Verdict::Partial, "{v}");
        assert_eq!(h.missing().len(), 1);
        // A missing list that does not match what the plan had left.
        let mut bad = h.clone();
        bad.missing[0].len -= 0x1000;
        let mut img2 = img.clone();
        let mut rec = [0u8; RECORD];
        bad.encode(&mut rec);
        img2[..RECORD].copy_from_slice(&rec);
        let e = verify(&tmp("partial-bad.img", &img2), 0, &ram(), |_, _| Ok(())).unwrap_err();
        assert!(matches!(e, VerifyError::Coverage { .. }), "{e}");
    }

    #[test]
    fn damage_gives_typed_errors() {
        let (img, h) = image(None);
        // A stored byte flipped.
        let mut bad = img.clone();
        bad[RECORD + CHUNK_RECORD + 5] ^= 0x40;
        let e = verify(&tmp("crc.img", &bad), 0, &Options::default(), |_, _| Ok(())).unwrap_err();
        assert!(
            matches!(
                e,
                VerifyError::Chunk {
                    index: 0,
                    problem: ChunkProblem::Codec(CodecError::StoredCrc { .. })
                }
            ),
            "{e}"
        );
        // A record flipped.
        let mut bad = img.clone();
        bad[RECORD + 17] ^= 1;
        let e = verify(&tmp("rec.img", &bad), 0, &Options::default(), |_, _| Ok(())).unwrap_err();
        assert!(
            matches!(
                e,
                VerifyError::Chunk {
                    index: 0,
                    problem: ChunkProblem::Record(_)
                }
            ),
            "{e}"
        );
        // Truncated image.
        let e = verify(
            &tmp("short.img", &img[..RECORD + 300]),
            0,
            &Options::default(),
            |_, _| Ok(()),
        )
        .unwrap_err();
        assert!(matches!(e, VerifyError::Io(_)), "{e}");
        // A plan that overlaps: refused at the header.
        let mut h2 = h.clone();
        h2.ranges[1].start = 0x10_1000;
        let mut rec = [0u8; RECORD];
        h2.encode(&mut rec);
        let mut bad = img.clone();
        bad[..RECORD].copy_from_slice(&rec);
        let e = verify(&tmp("overlap.img", &bad), 0, &Options::default(), |_, _| {
            Ok(())
        })
        .unwrap_err();
        assert!(
            matches!(e, VerifyError::Header(DumpError::BadField("plan overlaps"))),
            "{e}"
        );
        // A plan that points elsewhere: chunk addresses disagree.
        h2.ranges[1].start = 0x20_0000;
        h2.encode(&mut rec);
        bad[..RECORD].copy_from_slice(&rec);
        let e = verify(
            &tmp("plan.img", &bad),
            0,
            &Options::default(),
            |_, _| Ok(()),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                VerifyError::Chunk {
                    problem: ChunkProblem::WrongAddress { .. },
                    ..
                }
            ),
            "{e}"
        );
        // A stream length the header understates.
        let mut h3 = h.clone();
        h3.stream_bytes = 100;
        h3.encode(&mut rec);
        let mut bad = img.clone();
        bad[..RECORD].copy_from_slice(&rec);
        let e = verify(&tmp("stream.img", &bad), 0, &Options::default(), |_, _| {
            Ok(())
        })
        .unwrap_err();
        assert!(
            matches!(
                e,
                VerifyError::Chunk {
                    problem: ChunkProblem::PastStream { .. },
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn q35_layout_follows_max_ram_below_4g() {
        // `-m 3G -machine max-ram-below-4g=1G`: 1 GiB low, 2 GiB at 4 GiB.
        let gib = 1u64 << 30;
        assert_eq!(
            q35_ram_limited(3 * gib, gib),
            vec![
                Range { start: 0, len: gib },
                Range {
                    start: 4 * gib,
                    len: 2 * gib
                }
            ]
        );
        // A limit above QEMU's own split point changes nothing; 512 MiB with
        // a 256 MiB limit is split too.
        assert_eq!(q35_ram_limited(3 * gib, 3 * gib), q35_ram(3 * gib));
        assert_eq!(
            q35_ram_limited(512 << 20, 256 << 20),
            vec![
                Range {
                    start: 0,
                    len: 256 << 20
                },
                Range {
                    start: 4 * gib,
                    len: 256 << 20
                }
            ]
        );
        let t = Truth::of_layout(PathBuf::from("x"), q35_ram_limited(3 * gib, gib));
        assert_eq!(t.offset(4 * gib, 8), Some(gib));
    }

    #[test]
    fn q35_layout_follows_qemu() {
        assert_eq!(
            q35_ram(256 << 20),
            vec![Range {
                start: 0,
                len: 256 << 20
            }]
        );
        assert_eq!(
            q35_ram(2 << 30),
            vec![Range {
                start: 0,
                len: 2 << 30
            }]
        );
        // 2.5 GiB: all of it below 4 GiB, past 2 GiB (up to 0xa000_0000).
        assert_eq!(
            q35_ram(2560 << 20),
            vec![Range {
                start: 0,
                len: 0xa000_0000
            }]
        );
        // Just under 2.75 GiB still all low; at 2.75 GiB QEMU splits 2 + 0.75.
        assert_eq!(
            q35_ram(0xb000_0000 - (1 << 20)),
            vec![Range {
                start: 0,
                len: 0xb000_0000 - (1 << 20)
            }]
        );
        assert_eq!(
            q35_ram(0xb000_0000),
            vec![
                Range {
                    start: 0,
                    len: 2 << 30
                },
                Range {
                    start: 1 << 32,
                    len: 0x3000_0000
                }
            ]
        );
        assert_eq!(
            q35_ram(6 << 30),
            vec![
                Range {
                    start: 0,
                    len: 2 << 30
                },
                Range {
                    start: 1 << 32,
                    len: 4 << 30
                }
            ]
        );
        let t = Truth::q35(PathBuf::from("x"), 6 << 30);
        assert_eq!(t.offset((1 << 32) + 5, 1), Some((2 << 30) + 5));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Mutations of a good image: a typed error or a result, never a panic.
        #[test]
        fn mutated_images_never_panic(flips in proptest::collection::vec((0usize..12_000, any::<u8>()), 1..8), cut in 0usize..13_000) {
            let (mut img, _) = image(None);
            for (at, v) in flips {
                let n = img.len();
                img[at % n] ^= v;
            }
            img.truncate(cut.max(1));
            let path = tmp(&format!("mut-{}.img", cut), &img);
            let _ = verify(&path, 0, &ram(), |_, _| Ok(()));
        }
    }
}

/// A dump received as a stream, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamVerified {
    /// Chunks received complete with a matching CRC.
    pub chunks: u64,
    /// Bytes of memory received.
    pub bytes: u64,
    /// Pattern words compared.
    pub pattern_words: u64,
    /// Pattern words that did not match.
    pub pattern_mismatches: u64,
    /// Datagrams that were stream records.
    pub records: u64,
}

impl fmt::Display for StreamVerified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream: {} chunks, {:.1} MiB in {} datagrams; pattern: {} words checked, {} mismatches",
            self.chunks,
            self.bytes as f64 / 1048576.0,
            self.records,
            self.pattern_words,
            self.pattern_mismatches
        )
    }
}

/// UDP payloads to `port` in a pcap capture (Ethernet, IPv4).
pub fn udp_payloads(pcap: &[u8], port: u16) -> Result<Vec<&[u8]>, String> {
    let little = match pcap.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1]) => true,
        Some([0xa1, 0xb2, 0xc3, 0xd4]) => false,
        _ => return Err("not a pcap file".into()),
    };
    let word = |b: &[u8]| {
        let a: [u8; 4] = b.try_into().unwrap_or([0; 4]);
        if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut out = Vec::new();
    let mut at = 24usize;
    while let Some(rec) = pcap.get(at..at + 16) {
        let len = word(rec.get(8..12).unwrap_or(&[])) as usize;
        let frame = pcap
            .get(at + 16..at + 16 + len)
            .ok_or("truncated pcap record")?;
        at += 16 + len;
        if frame.get(12..14) != Some(&[0x08, 0x00]) || frame.get(23) != Some(&17) {
            continue;
        }
        let ihl = usize::from(frame.get(14).copied().unwrap_or(0) & 0x0f) * 4;
        let udp = 14 + ihl;
        let dst = frame
            .get(udp + 2..udp + 4)
            .map(|b| u16::from_be_bytes([b[0], b[1]]));
        let udp_len = frame
            .get(udp + 4..udp + 6)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        if dst == Some(port) {
            if let Some(payload) = udp_len.and_then(|l| frame.get(udp + 8..udp + l.max(8))) {
                out.push(payload);
            }
        }
    }
    Ok(out)
}

/// Reassembles and verifies a streamed dump from a pcap capture: every chunk
/// complete with its CRC, as many chunks as the end record says, and every
/// pattern word.
///
/// # Errors
///
/// A description of the first problem.
pub fn verify_stream(pcap: &[u8]) -> Result<StreamVerified, String> {
    use crate::stream::{decode, Record, STREAM_PORT};
    use std::collections::BTreeMap;
    struct Chunk {
        phys: u64,
        crc: u32,
        data: Vec<u8>,
        filled: usize,
    }
    let mut chunks: BTreeMap<u64, Chunk> = BTreeMap::new();
    let mut end = None;
    let mut records = 0;
    for payload in udp_payloads(pcap, STREAM_PORT)? {
        let Some(record) = decode(payload) else {
            continue;
        };
        records += 1;
        match record {
            Record::Data {
                index,
                phys,
                chunk_len,
                chunk_crc,
                offset,
                data,
            } => {
                if chunk_len as usize > 16 << 20 {
                    return Err(format!("chunk {index}: length {chunk_len} is nonsense"));
                }
                let c = chunks.entry(index).or_insert_with(|| Chunk {
                    phys,
                    crc: chunk_crc,
                    data: vec![0; chunk_len as usize],
                    filled: 0,
                });
                let at = offset as usize;
                let dst = c
                    .data
                    .get_mut(at..at + data.len())
                    .ok_or(format!("chunk {index}: piece past its end"))?;
                dst.copy_from_slice(data);
                c.filled += data.len();
            }
            Record::End {
                chunks,
                bytes,
                seed,
                pattern,
            } => end = Some((chunks, bytes, seed, pattern)),
        }
    }
    let (count, bytes, seed, pattern) = end.ok_or("no end record: the stream was cut short")?;
    if chunks.len() as u64 != count {
        return Err(format!(
            "{} chunks received, the end record says {count}",
            chunks.len()
        ));
    }
    let mut out = StreamVerified {
        chunks: 0,
        bytes: 0,
        pattern_words: 0,
        pattern_mismatches: 0,
        records,
    };
    for (index, c) in &chunks {
        if c.filled != c.data.len() {
            return Err(format!(
                "chunk {index}: {} of {} bytes received",
                c.filled,
                c.data.len()
            ));
        }
        if data_crc(&c.data) != c.crc {
            return Err(format!("chunk {index}: CRC mismatch"));
        }
        for (i, word) in c.data.chunks_exact(8).enumerate() {
            let a = c.phys + 8 * i as u64;
            if a >= pattern.start && a + 8 <= pattern.start + pattern.len {
                out.pattern_words += 1;
                let v = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
                out.pattern_mismatches += u64::from(v != pattern_word(seed, a));
            }
        }
        out.chunks += 1;
        out.bytes += c.data.len() as u64;
    }
    if out.bytes != bytes {
        return Err(format!(
            "{} bytes received, the end record says {bytes}",
            out.bytes
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod stream_tests {
    use super::*;
    use crate::stream::{encode_data, encode_end, DATA_PER_RECORD, STREAM_PORT};

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 255, 255, 255, 255,
        ];
        ip[2..4].copy_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&(STREAM_PORT - 1).to_be_bytes());
        f.extend_from_slice(&STREAM_PORT.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ];
        for f in frames {
            p.extend_from_slice(&[0; 8]);
            p.extend_from_slice(&(f.len() as u32).to_le_bytes());
            p.extend_from_slice(&(f.len() as u32).to_le_bytes());
            p.extend_from_slice(f);
        }
        p
    }

    fn stream(corrupt: bool, drop_end: bool) -> Vec<u8> {
        let seed = 11;
        let mut frames = Vec::new();
        let mut buf = [0u8; 1500];
        for index in 0..3u64 {
            let phys = 0x20_0000 + index * 4096;
            let data: Vec<u8> = (0..512)
                .flat_map(|i| pattern_word(seed, phys + 8 * i).to_le_bytes())
                .collect();
            let crc = data_crc(&data);
            for (k, piece) in data.chunks(DATA_PER_RECORD).enumerate() {
                let mut piece = piece.to_vec();
                if corrupt && index == 1 && k == 2 {
                    piece[0] ^= 1;
                }
                let n = encode_data(
                    &mut buf,
                    index,
                    phys,
                    4096,
                    crc,
                    (k * DATA_PER_RECORD) as u32,
                    &piece,
                );
                frames.push(frame(&buf[..n]));
            }
        }
        if !drop_end {
            let n = encode_end(
                &mut buf,
                3,
                3 * 4096,
                seed,
                Range {
                    start: 0x20_0000,
                    len: 3 * 4096,
                },
            );
            frames.push(frame(&buf[..n]));
        }
        pcap(&frames)
    }

    #[test]
    fn stream_verifies_and_damage_is_caught() {
        let v = verify_stream(&stream(false, false)).unwrap();
        assert_eq!(
            (v.chunks, v.bytes, v.pattern_words, v.pattern_mismatches),
            (3, 3 * 4096, 3 * 512, 0)
        );
        assert!(verify_stream(&stream(true, false))
            .unwrap_err()
            .contains("CRC"));
        assert!(verify_stream(&stream(false, true))
            .unwrap_err()
            .contains("no end record"));
        assert!(verify_stream(b"not a pcap").is_err());
    }
}
