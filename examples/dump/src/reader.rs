//! Reading and verifying a dump from a disk image.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::{data_crc, pattern_word, text, ChunkHeader, DumpError, Header, Range, RECORD};

/// Why a dump failed verification.
#[derive(Debug)]
pub enum VerifyError {
    /// The image could not be read.
    Io(io::Error),
    /// The header record is invalid.
    Header(DumpError),
    /// A chunk record is invalid.
    Chunk {
        /// Chunk index.
        index: u64,
        /// What is wrong.
        problem: ChunkProblem,
    },
}

/// What is wrong with a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkProblem {
    /// The record does not decode.
    Record(DumpError),
    /// The record's index is not its position.
    WrongIndex(u64),
    /// The data does not cover the next expected address.
    WrongAddress {
        /// Expected physical address.
        expected: u64,
        /// Found.
        found: u64,
    },
    /// Length zero or past the chunk size or the range.
    BadLength(u32),
    /// Data CRC mismatch.
    DataCrc {
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// More or fewer chunks than the ranges need.
    Coverage {
        /// Bytes the ranges declare.
        declared: u64,
        /// Bytes the chunks carry.
        carried: u64,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read image: {e}"),
            Self::Header(e) => write!(f, "invalid dump header: {e}"),
            Self::Chunk { index, problem } => write!(f, "chunk {index}: {problem:?}"),
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<io::Error> for VerifyError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// The result of verifying a dump.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The header.
    pub header: Header,
    /// Chunks whose record and CRC checked out.
    pub chunks: u64,
    /// Bytes of memory read back.
    pub bytes: u64,
    /// Pattern words compared.
    pub pattern_words: u64,
    /// Pattern words that did not match (first few addresses in `mismatch_at`).
    pub pattern_mismatches: u64,
    /// Addresses of the first mismatching words.
    pub mismatch_at: Vec<u64>,
}

impl Verified {
    /// True when the dump is complete and every pattern word matched.
    pub fn is_good(&self) -> bool {
        self.header.is_complete() && self.pattern_mismatches == 0 && self.pattern_words > 0
    }

    /// Dump throughput in MiB/s from the recovery kernel's own timestamps.
    pub fn throughput_mib_s(&self) -> f64 {
        let ns = self
            .header
            .dump_end_ns
            .saturating_sub(self.header.dump_start_ns);
        if ns == 0 {
            return 0.0;
        }
        self.bytes as f64 / (1024.0 * 1024.0) / (ns as f64 / 1e9)
    }
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        writeln!(
            f,
            "dump: {} ({} chunks of {} KiB, {:.1} MiB)",
            if h.is_complete() {
                "complete"
            } else {
                "INCOMPLETE"
            },
            self.chunks,
            h.chunk_size / 1024,
            self.bytes as f64 / 1048576.0
        )?;
        writeln!(f, "  crash point : {}", text(&h.crash_point))?;
        writeln!(f, "  crash reason: {}", text(&h.crash_reason))?;
        writeln!(f, "  iommu policy: {}", h.policy.name())?;
        for r in h.ranges() {
            writeln!(
                f,
                "  range       : {:#012x}..{:#012x} ({} MiB)",
                r.start,
                r.start + r.len,
                r.len >> 20
            )?;
        }
        writeln!(
            f,
            "  pattern     : {} words checked in {:#x}..{:#x}, {} mismatches",
            self.pattern_words,
            h.pattern.start,
            h.pattern.start + h.pattern.len,
            self.pattern_mismatches
        )?;
        for a in &self.mismatch_at {
            writeln!(f, "    mismatch at {a:#x}")?;
        }
        write!(
            f,
            "  dump time   : {:.1} ms ({:.1} MiB/s)",
            h.dump_end_ns.saturating_sub(h.dump_start_ns) as f64 / 1e6,
            self.throughput_mib_s()
        )
    }
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
/// chunk's data (to extract it).
///
/// # Errors
///
/// The first problem found.
pub fn verify(
    path: &Path,
    offset: u64,
    mut visit: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> Result<Verified, VerifyError> {
    let mut image = File::open(path)?;
    let header = read_header(&mut image, offset)?;
    let declared: u64 = header.ranges().iter().map(|r| r.len).sum();
    let mut expected = Expected::new(header.ranges());
    let mut out = Verified {
        header: header.clone(),
        chunks: 0,
        bytes: 0,
        pattern_words: 0,
        pattern_mismatches: 0,
        mismatch_at: vec![],
    };
    let mut rec = vec![0u8; RECORD];
    let mut data = vec![0u8; header.chunk_size as usize];
    for index in 0..header.chunk_count {
        let bad = |problem| VerifyError::Chunk { index, problem };
        let at =
            header
                .chunk_offset(index)
                .ok_or(bad(ChunkProblem::Record(DumpError::BadField(
                    "chunk_count",
                ))))?;
        image.seek(SeekFrom::Start(offset + at))?;
        image.read_exact(&mut rec)?;
        let chunk = ChunkHeader::decode(&rec).map_err(|e| bad(ChunkProblem::Record(e)))?;
        if chunk.index != index {
            return Err(bad(ChunkProblem::WrongIndex(chunk.index)));
        }
        let Some((phys, room)) = expected.next() else {
            return Err(bad(ChunkProblem::Coverage {
                declared,
                carried: out.bytes + u64::from(chunk.len),
            }));
        };
        if chunk.phys != phys {
            return Err(bad(ChunkProblem::WrongAddress {
                expected: phys,
                found: chunk.phys,
            }));
        }
        if chunk.len == 0 || chunk.len > header.chunk_size || u64::from(chunk.len) > room {
            return Err(bad(ChunkProblem::BadLength(chunk.len)));
        }
        let buf = data
            .get_mut(..chunk.len as usize)
            .ok_or(bad(ChunkProblem::BadLength(chunk.len)))?;
        image.read_exact(buf)?;
        let computed = data_crc(buf);
        if computed != chunk.data_crc {
            return Err(bad(ChunkProblem::DataCrc {
                stored: chunk.data_crc,
                computed,
            }));
        }
        check_pattern(&header, chunk.phys, buf, &mut out);
        visit(chunk.phys, buf)?;
        expected.consume(u64::from(chunk.len));
        out.chunks += 1;
        out.bytes += u64::from(chunk.len);
    }
    if out.bytes != declared {
        return Err(VerifyError::Chunk {
            index: header.chunk_count,
            problem: ChunkProblem::Coverage {
                declared,
                carried: out.bytes,
            },
        });
    }
    Ok(out)
}

fn check_pattern(h: &Header, phys: u64, data: &[u8], out: &mut Verified) {
    let p = h.pattern;
    for (i, word) in data.chunks_exact(8).enumerate() {
        let a = phys + 8 * i as u64;
        if a < p.start || a + 8 > p.start + p.len {
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

/// Walks the declared ranges in order.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fixed, Policy, FLAG_COMPLETE};
    use std::io::Write;

    /// Writes a dump of `ranges` filled with the pattern, as the recovery kernel does.
    fn write_dump(path: &Path, offset: u64, corrupt: Option<usize>) -> Header {
        let mut h = Header::new(Policy::Adopt, 8192);
        h.ranges[0] = Range {
            start: 0x1000,
            len: 0x5000,
        };
        h.ranges[1] = Range {
            start: 0x10_0000,
            len: 0x2000,
        };
        h.range_count = 2;
        h.pattern = Range {
            start: 0x10_0000,
            len: 0x2000,
        };
        h.pattern_seed = 7;
        h.crash_point = fixed("early");
        let mut f = File::create(path).unwrap();
        f.set_len(offset + h.extent_bytes(0x7000) + 0x10000)
            .unwrap();
        let mut index = 0;
        for r in h.ranges().to_vec() {
            let mut done = 0;
            while done < r.len {
                let len = (r.len - done).min(8192);
                let phys = r.start + done;
                let mut data: Vec<u8> = (0..len / 8)
                    .flat_map(|i| pattern_word(7, phys + 8 * i).to_le_bytes())
                    .collect();
                let crc = data_crc(&data);
                if corrupt == Some(index as usize) {
                    data[9] ^= 0x40;
                }
                let mut rec = [0u8; RECORD];
                ChunkHeader {
                    index,
                    phys,
                    len: len as u32,
                    data_crc: crc,
                }
                .encode(&mut rec);
                f.seek(SeekFrom::Start(offset + h.chunk_offset(index).unwrap()))
                    .unwrap();
                f.write_all(&rec).unwrap();
                f.write_all(&data).unwrap();
                index += 1;
                done += len;
            }
        }
        h.chunk_count = index;
        h.total_bytes = 0x7000;
        h.flags = FLAG_COMPLETE;
        let mut rec = [0u8; RECORD];
        h.encode(&mut rec);
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&rec).unwrap();
        h
    }

    #[test]
    fn verifies_a_good_dump_and_catches_corruption() {
        let dir = std::env::temp_dir().join(format!("paranoid-dump-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.img");
        write_dump(&good, 0x10_0000, None);
        let v = verify(&good, 0x10_0000, |_, _| Ok(())).unwrap();
        assert!(v.is_good(), "{v}");
        assert_eq!(v.chunks, 4);
        assert_eq!(v.pattern_words, 0x2000 / 8);
        let bad = dir.join("bad.img");
        write_dump(&bad, 0, Some(3));
        let e = verify(&bad, 0, |_, _| Ok(())).unwrap_err();
        assert!(
            matches!(
                e,
                VerifyError::Chunk {
                    index: 3,
                    problem: ChunkProblem::DataCrc { .. }
                }
            ),
            "{e}"
        );
        assert!(matches!(
            verify(&good, 0, |_, _| Ok(())),
            Err(VerifyError::Header(DumpError::BadMagic))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
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
