//! The dump streamed over the network: each chunk cut into UDP datagrams, then
//! an end record. Lets a recovery kernel send the dump to a collector as well as
//! (or instead of) writing it to storage.
//!
//! Every datagram to [`STREAM_PORT`] carries one record (little-endian):
//!
//! ```text
//! 0   magic "PRNSTRM1"
//! 8   kind: 1 data, 2 end
//! data: 12 chunk index u64 | 20 phys u64 | 28 chunk len u32 | 32 chunk crc u32
//!       36 offset in chunk u32 | 40 length u16 | 42 data...
//! end:  12 chunks u64 | 20 bytes u64 | 28 pattern seed u64 | 36 pattern start u64 | 44 pattern len u64
//! ```

use crate::le::bytes as get_bytes;
use crate::Range;

/// UDP port the stream goes to.
pub const STREAM_PORT: u16 = 7375;
/// Magic of a stream record.
pub const STREAM_MAGIC: [u8; 8] = *b"PRNSTRM1";
/// Data bytes per datagram (fits a 1500-byte MTU with the headers).
pub const DATA_PER_RECORD: usize = 1400;
/// Bytes of a data record's header.
pub const DATA_HEADER: usize = 42;

/// One record of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// A piece of a chunk.
    Data {
        /// Chunk index.
        index: u64,
        /// Physical address of the chunk.
        phys: u64,
        /// The chunk's length.
        chunk_len: u32,
        /// The chunk's CRC-32.
        chunk_crc: u32,
        /// Where this piece starts in the chunk.
        offset: u32,
        /// The bytes.
        data: &'a [u8],
    },
    /// The end: how many chunks there were, and the pattern to check.
    End {
        /// Chunks sent.
        chunks: u64,
        /// Bytes of memory sent.
        bytes: u64,
        /// Pattern seed.
        seed: u64,
        /// Pattern region.
        pattern: Range,
    },
}

/// Encodes a data record into `out`; returns its length (0 when `out` is too
/// small or `data` too long).
pub fn encode_data(
    out: &mut [u8],
    index: u64,
    phys: u64,
    chunk_len: u32,
    chunk_crc: u32,
    offset: u32,
    data: &[u8],
) -> usize {
    let len = DATA_HEADER + data.len();
    let Some(buf) = out.get_mut(..len) else {
        return 0;
    };
    if data.len() > DATA_PER_RECORD {
        return 0;
    }
    buf[..8].copy_from_slice(&STREAM_MAGIC);
    buf[8..12].copy_from_slice(&1u32.to_le_bytes());
    buf[12..20].copy_from_slice(&index.to_le_bytes());
    buf[20..28].copy_from_slice(&phys.to_le_bytes());
    buf[28..32].copy_from_slice(&chunk_len.to_le_bytes());
    buf[32..36].copy_from_slice(&chunk_crc.to_le_bytes());
    buf[36..40].copy_from_slice(&offset.to_le_bytes());
    buf[40..42].copy_from_slice(&(data.len() as u16).to_le_bytes());
    buf[42..].copy_from_slice(data);
    len
}

/// Encodes the end record into `out`; returns its length (0 if too small).
pub fn encode_end(out: &mut [u8], chunks: u64, bytes: u64, seed: u64, pattern: Range) -> usize {
    let Some(buf) = out.get_mut(..52) else {
        return 0;
    };
    buf[..8].copy_from_slice(&STREAM_MAGIC);
    buf[8..12].copy_from_slice(&2u32.to_le_bytes());
    buf[12..20].copy_from_slice(&chunks.to_le_bytes());
    buf[20..28].copy_from_slice(&bytes.to_le_bytes());
    buf[28..36].copy_from_slice(&seed.to_le_bytes());
    buf[36..44].copy_from_slice(&pattern.start.to_le_bytes());
    buf[44..52].copy_from_slice(&pattern.len.to_le_bytes());
    52
}

/// Decodes a record; `None` for anything that is not one.
pub fn decode(payload: &[u8]) -> Option<Record<'_>> {
    if get_bytes::<8>(payload, 0)? != STREAM_MAGIC {
        return None;
    }
    let u32_at = |at| get_bytes::<4>(payload, at).map(u32::from_le_bytes);
    let u64_at = |at| get_bytes::<8>(payload, at).map(u64::from_le_bytes);
    match u32_at(8)? {
        1 => {
            let len = usize::from(u16::from_le_bytes(get_bytes::<2>(payload, 40)?));
            Some(Record::Data {
                index: u64_at(12)?,
                phys: u64_at(20)?,
                chunk_len: u32_at(28)?,
                chunk_crc: u32_at(32)?,
                offset: u32_at(36)?,
                data: payload.get(DATA_HEADER..DATA_HEADER + len)?,
            })
        }
        2 => Some(Record::End {
            chunks: u64_at(12)?,
            bytes: u64_at(20)?,
            seed: u64_at(28)?,
            pattern: Range {
                start: u64_at(36)?,
                len: u64_at(44)?,
            },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let mut buf = [0u8; 1500];
        let n = encode_data(&mut buf, 3, 0x1000, 4096, 0xabcd, 1400, &[7; 100]);
        assert_eq!(
            decode(&buf[..n]),
            Some(Record::Data {
                index: 3,
                phys: 0x1000,
                chunk_len: 4096,
                chunk_crc: 0xabcd,
                offset: 1400,
                data: &[7; 100]
            })
        );
        let n = encode_end(&mut buf, 9, 36864, 5, Range { start: 1, len: 2 });
        assert!(matches!(
            decode(&buf[..n]),
            Some(Record::End {
                chunks: 9,
                bytes: 36864,
                seed: 5,
                ..
            })
        ));
        assert_eq!(encode_data(&mut buf[..10], 0, 0, 0, 0, 0, &[]), 0);
        assert_eq!(encode_data(&mut [0u8; 2000], 0, 0, 0, 0, 0, &[0; 1401]), 0);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
            let _ = decode(&bytes);
            let mut with_magic = STREAM_MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = decode(&with_magic);
        }
    }
}
