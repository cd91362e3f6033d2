//! Encoding and decoding one chunk: zero pages marked in the record's zero map,
//! the other pages concatenated and stored raw or LZ4-compressed
//! (`lz4_flex`'s block format, `no_std`, no allocation).
//!
//! Both sides work in caller-provided buffers, so the recovery kernel encodes
//! without a heap and the reader decodes hostile input without trusting any
//! length it did not check.

use core::fmt;

use crate::{data_crc, ChunkRecord, Encoding, MAX_CHUNK_PAGES, PAGE};

/// Why a chunk could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// More memory than a chunk can hold ([`MAX_CHUNK_PAGES`] pages), or none.
    BadLength(usize),
    /// A caller buffer is too small (`need` bytes).
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
    },
    /// The stored bytes do not match their CRC.
    StoredCrc {
        /// CRC in the record.
        stored: u32,
        /// CRC computed.
        computed: u32,
    },
    /// The stored bytes do not decode with the record's encoding.
    BadEncoding(Encoding),
    /// They decode to another length than the non-zero pages need.
    WrongPlainLength {
        /// Bytes the zero map needs.
        expected: usize,
        /// Bytes decoded.
        found: usize,
    },
    /// The decoded memory does not match its CRC.
    DataCrc {
        /// CRC in the record.
        stored: u32,
        /// CRC computed.
        computed: u32,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength(n) => write!(f, "chunk of {n} bytes (1..={} pages)", MAX_CHUNK_PAGES),
            Self::BufferTooSmall { need } => write!(f, "buffer too small ({need} bytes needed)"),
            Self::StoredCrc { stored, computed } => write!(
                f,
                "stored bytes crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Self::BadEncoding(e) => write!(f, "stored bytes are not valid {}", e.name()),
            Self::WrongPlainLength { expected, found } => write!(
                f,
                "stored bytes decode to {found} bytes, the zero map needs {expected}"
            ),
            Self::DataCrc { stored, computed } => write!(
                f,
                "memory crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
        }
    }
}

/// Largest LZ4 output for `n` input bytes.
pub const fn lz4_bound(n: usize) -> usize {
    lz4_flex::block::get_maximum_output_size(n)
}

/// Bytes of output buffer [`encode`] needs for a chunk of `len` bytes.
pub const fn encode_bound(len: usize) -> usize {
    lz4_bound(len)
}

fn is_zero(page: &[u8]) -> bool {
    page.chunks_exact(8)
        .all(|w| u64::from_ne_bytes(w.try_into().unwrap_or([1; 8])) == 0)
        && page.chunks_exact(8).remainder().iter().all(|&b| b == 0)
}

/// Encodes `data` (memory at `phys`) as chunk `index`: zero pages marked, the
/// rest gathered into `plain` and stored into `out` with `codec` (raw when
/// compression would not make it smaller). Returns the record; its stored bytes
/// are `out[..record.stored_len]`.
///
/// # Errors
///
/// [`CodecError::BadLength`] for an empty or oversized chunk,
/// [`CodecError::BufferTooSmall`] when `plain` cannot hold `data` or `out`
/// cannot hold [`encode_bound`] bytes.
pub fn encode(
    index: u64,
    phys: u64,
    data: &[u8],
    codec: Encoding,
    plain: &mut [u8],
    out: &mut [u8],
) -> Result<ChunkRecord, CodecError> {
    if data.is_empty() || data.len() > MAX_CHUNK_PAGES * PAGE {
        return Err(CodecError::BadLength(data.len()));
    }
    if plain.len() < data.len() {
        return Err(CodecError::BufferTooSmall { need: data.len() });
    }
    if out.len() < encode_bound(data.len()) {
        return Err(CodecError::BufferTooSmall {
            need: encode_bound(data.len()),
        });
    }
    let mut rec = ChunkRecord {
        index,
        phys,
        len: data.len() as u32,
        encoding: Encoding::Raw,
        stored_len: 0,
        data_crc: 0,
        stored_crc: 0,
        zero_map: [0; MAX_CHUNK_PAGES / 8],
    };
    let mut n = 0usize;
    for (i, page) in data.chunks(PAGE).enumerate() {
        if is_zero(page) {
            rec.set_zero_page(i);
        } else if let Some(dst) = plain.get_mut(n..n + page.len()) {
            dst.copy_from_slice(page);
            n += page.len();
        }
    }
    let gathered = plain.get(..n).unwrap_or(&[]);
    // The non-zero pages' CRC: the zero map (in the record, under its own CRC)
    // says where they go, so this checks the whole chunk without reading the
    // zero pages twice.
    rec.data_crc = data_crc(gathered);
    let compressed = match codec {
        Encoding::Lz4 if n > 0 => lz4_flex::block::compress_into(gathered, out)
            .ok()
            .filter(|&c| c < n),
        _ => None,
    };
    match compressed {
        Some(c) => {
            rec.encoding = Encoding::Lz4;
            rec.stored_len = c as u32;
            rec.stored_crc = data_crc(out.get(..c).unwrap_or(&[]));
        }
        None => {
            if let Some(dst) = out.get_mut(..n) {
                dst.copy_from_slice(gathered);
            }
            rec.stored_len = n as u32;
            rec.stored_crc = rec.data_crc;
        }
    }
    Ok(rec)
}

/// Decodes the stored bytes of `rec` into `out` (at least `rec.len` bytes),
/// using `plain` (at least `rec.len` bytes) as scratch, and checks both CRCs.
/// Returns the memory, `out[..rec.len]`.
///
/// # Errors
///
/// [`CodecError`] for a short buffer, a CRC mismatch, or stored bytes that do
/// not decode to exactly the non-zero pages.
pub fn decode<'o>(
    rec: &ChunkRecord,
    stored: &[u8],
    plain: &mut [u8],
    out: &'o mut [u8],
) -> Result<&'o [u8], CodecError> {
    let len = rec.len as usize;
    if len == 0 || len > MAX_CHUNK_PAGES * PAGE {
        return Err(CodecError::BadLength(len));
    }
    let (Some(out), Some(plain)) = (out.get_mut(..len), plain.get_mut(..len)) else {
        return Err(CodecError::BufferTooSmall { need: len });
    };
    let computed = data_crc(stored);
    if computed != rec.stored_crc {
        return Err(CodecError::StoredCrc {
            stored: rec.stored_crc,
            computed,
        });
    }
    let expected = rec.plain_len();
    let found = match rec.encoding {
        Encoding::Raw => {
            let dst = plain
                .get_mut(..stored.len())
                .ok_or(CodecError::WrongPlainLength {
                    expected,
                    found: stored.len(),
                })?;
            dst.copy_from_slice(stored);
            stored.len()
        }
        Encoding::Lz4 => lz4_flex::block::decompress_into(stored, plain)
            .map_err(|_| CodecError::BadEncoding(Encoding::Lz4))?,
    };
    if found != expected {
        return Err(CodecError::WrongPlainLength { expected, found });
    }
    let computed = data_crc(plain.get(..found).unwrap_or(&[]));
    if computed != rec.data_crc {
        return Err(CodecError::DataCrc {
            stored: rec.data_crc,
            computed,
        });
    }
    let mut at = 0usize;
    for (i, page) in out.chunks_mut(PAGE).enumerate() {
        if rec.is_zero_page(i) {
            page.fill(0);
        } else {
            let src = plain
                .get(at..at + page.len())
                .ok_or(CodecError::WrongPlainLength { expected, found })?;
            page.copy_from_slice(src);
            at += page.len();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern_word;
    use proptest::prelude::*;

    fn memory() -> Vec<u8> {
        // A patterned page, a zero page, a compressible page, a short tail.
        let mut m: Vec<u8> = (0..512u64)
            .flat_map(|i| pattern_word(3, i * 8).to_le_bytes())
            .collect();
        m.extend_from_slice(&[0; PAGE]);
        m.extend((0..PAGE).map(|i| (i / 64) as u8));
        m.extend_from_slice(&[5; 100]);
        m
    }

    #[test]
    fn round_trips_with_zero_pages_and_lz4() {
        let m = memory();
        for codec in [Encoding::Raw, Encoding::Lz4] {
            let (mut plain, mut out) = (vec![0; m.len()], vec![0; encode_bound(m.len())]);
            let rec = encode(1, 0x1000, &m, codec, &mut plain, &mut out).unwrap();
            assert_eq!(rec.zero_pages(), 1);
            assert!(rec.stored_len as usize <= 3 * PAGE);
            if codec == Encoding::Lz4 {
                assert_eq!(rec.encoding, Encoding::Lz4);
                assert!((rec.stored_len as usize) < 2 * PAGE + 100);
            }
            let stored = out[..rec.stored_len as usize].to_vec();
            let mut back = vec![0; m.len()];
            assert_eq!(
                decode(&rec, &stored, &mut plain, &mut back).unwrap(),
                &m[..]
            );
        }
    }

    #[test]
    fn damage_is_a_typed_error() {
        let m = memory();
        let (mut plain, mut out) = (vec![0; m.len()], vec![0; encode_bound(m.len())]);
        let rec = encode(0, 0, &m, Encoding::Lz4, &mut plain, &mut out).unwrap();
        let mut stored = out[..rec.stored_len as usize].to_vec();
        let mut back = vec![0; m.len()];
        stored[3] ^= 0x10;
        assert!(matches!(
            decode(&rec, &stored, &mut plain, &mut back),
            Err(CodecError::StoredCrc { .. })
        ));
        // Bad LZ4 with a matching stored CRC: decoding fails or the memory CRC does.
        let mut r2 = rec;
        r2.stored_crc = data_crc(&stored);
        assert!(decode(&r2, &stored, &mut plain, &mut back).is_err());
        // A zero map that does not match the stored bytes.
        let mut r3 = rec;
        r3.set_zero_page(0);
        assert!(matches!(
            decode(&r3, &out[..rec.stored_len as usize], &mut plain, &mut back),
            Err(CodecError::WrongPlainLength { .. })
        ));
        assert!(matches!(
            decode(&rec, &stored, &mut plain[..10], &mut back),
            Err(CodecError::BufferTooSmall { .. })
        ));
    }

    proptest! {
        #[test]
        fn hostile_stored_bytes_never_panic(
            stored in proptest::collection::vec(any::<u8>(), 0..3000),
            len in 1u32..20000,
            zero in any::<u8>(),
            lz4: bool,
        ) {
            let mut rec = ChunkRecord {
                index: 0,
                phys: 0,
                len,
                encoding: if lz4 { Encoding::Lz4 } else { Encoding::Raw },
                stored_len: stored.len() as u32,
                data_crc: 0,
                stored_crc: data_crc(&stored),
                zero_map: [0; MAX_CHUNK_PAGES / 8],
            };
            rec.zero_map[0] = zero;
            let (mut plain, mut out) = (vec![0; 20000], vec![0; 20000]);
            let _ = decode(&rec, &stored, &mut plain, &mut out);
        }

        #[test]
        fn encode_decode_round_trip(data in proptest::collection::vec(0u8..4, 1..20000)) {
            let (mut plain, mut out) = (vec![0; data.len()], vec![0; encode_bound(data.len())]);
            let rec = encode(0, 0, &data, Encoding::Lz4, &mut plain, &mut out).unwrap();
            let stored = out[..rec.stored_len as usize].to_vec();
            let mut back = vec![0; data.len()];
            prop_assert_eq!(decode(&rec, &stored, &mut plain, &mut back).unwrap(), &data[..]);
        }
    }
}
