//! Writing the dump into the declared extent, and nowhere else.
//!
//! The writer is generic over where blocks go ([`BlockSink`]: the NVMe driver in
//! the recovery kernel, a vector in tests) and where memory comes from
//! (the HAL's [`PhysRead`]). Every write goes through one bounds check against the
//! extent: a bug in the chunk arithmetic becomes [`DumpWriteError::OutsideExtent`],
//! never a write to someone else's blocks (cluster safety).
//!
//! Memory goes out in the plan's order (most useful first), each chunk encoded
//! by [`paranoid_dump::codec`] (zero pages marked, the rest LZ4-compressed) and
//! packed into the chunk stream. When the next chunk would not fit the extent,
//! the dump is closed as partial with the rest of the plan listed missing: a
//! big machine still gets its most useful memory onto a small extent.

use core::fmt;

use paranoid::init::Note;
use paranoid::phys::PhysRead;
use paranoid::time::Clock;
use paranoid_dump::codec;
use paranoid_dump::{
    ChunkHeader, Encoding, Header, Range, CHUNK_RECORD, FLAG_COMPLETE, FLAG_PARTIAL,
    MAX_CHUNK_PAGES, MAX_MISSING, MAX_RANGES, PAGE, RECORD,
};

use crate::heartbeat::{Heartbeat, Schedule};

/// Dump writes kept in flight at once (the recovery kernel's NVMe sink and the
/// raw-writer baseline use the same).
pub const WRITE_DEPTH: usize = 8;
/// Window bytes the write buffers may take together: with the NIC's rings, the
/// NVMe queues and a second bring-up after a planned handoff, what the 1 MiB
/// recovery window can spare.
pub const WRITE_WINDOW_BYTES: usize = 512 * 1024;

/// Bytes one pipelined dump write carries: the controller's MDTS
/// (`mdts_bytes`), at most [`WRITE_WINDOW_BYTES`] / [`WRITE_DEPTH`], a whole
/// number of `block_size` blocks, at least one block.
pub fn write_transfer(mdts_bytes: u64, block_size: u32) -> usize {
    let block = u64::from(block_size.max(1));
    let share = (WRITE_WINDOW_BYTES / WRITE_DEPTH) as u64;
    let n = mdts_bytes.min(share) / block * block;
    n.max(block) as usize
}

/// Where dump blocks go.
pub trait BlockSink {
    /// The driver's error.
    type Error: fmt::Debug;
    /// Block size in bytes (512 or 4096).
    fn block_size(&self) -> u32;
    /// Largest single write in bytes (a multiple of the block size).
    fn max_transfer(&self) -> usize;
    /// Writes `data` (a multiple of the block size) at block `lba`. A sink
    /// that waits (for a free buffer, for the device) calls `during` while it
    /// does: the writer's heartbeats.
    ///
    /// # Errors
    ///
    /// The driver's error.
    fn write(&mut self, lba: u64, data: &[u8], during: &mut dyn FnMut())
        -> Result<(), Self::Error>;
    /// Makes previous writes durable, calling `during` while it waits (a
    /// flush of a large write-back cache can take seconds).
    ///
    /// # Errors
    ///
    /// The driver's error.
    fn flush(&mut self, during: &mut dyn FnMut()) -> Result<(), Self::Error>;
}

/// Why a dump could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpWriteError {
    /// The extent cannot even hold the header (nothing was written).
    ExtentTooSmall {
        /// Bytes needed.
        need: u64,
        /// Bytes in the extent.
        have: u64,
    },
    /// A write would have left the extent (a bug; nothing was written there).
    OutsideExtent {
        /// Offset into the extent.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Block size or transfer size unusable.
    BadGeometry {
        /// Block size reported.
        block_size: u32,
    },
    /// A buffer of [`Buffers`] is too small, or the chunk size is unusable.
    BounceTooSmall,
    /// The plan has more ranges than a header holds.
    PlanTooLong {
        /// Ranges in the plan.
        ranges: usize,
    },
    /// Memory could not be read.
    Memory {
        /// Physical address.
        phys: u64,
    },
    /// A chunk could not be encoded.
    Encode(codec::CodecError),
    /// The block device failed.
    Sink(Note),
}

/// What the dump took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpStats {
    /// Chunks written.
    pub chunks: u64,
    /// Bytes of memory dumped.
    pub bytes: u64,
    /// Bytes of memory the plan had that did not fit (a partial dump).
    pub missing: u64,
    /// Stored bytes of chunk data (after zero pages and compression).
    pub stored: u64,
    /// Zero pages recorded and not written.
    pub zero_pages: u64,
    /// Bytes written to the extent (records, data, padding; a record written
    /// twice counts twice).
    pub written: u64,
    /// Offset from the extent's start just past the last byte written: from
    /// here to the extent's end the dump left the disk as it was.
    pub extent_end: u64,
    /// Time spent encoding (zero scan, CRC, compression), ns.
    pub encode_ns: u64,
    /// Start and end on the clock.
    pub start_ns: u64,
    /// End on the clock.
    pub end_ns: u64,
    /// Heartbeat schedule at the end.
    pub heartbeat: Schedule,
}

/// The extent, with the one bounds check every write goes through.
struct Extent<'s, S: BlockSink> {
    sink: &'s mut S,
    first_lba: u64,
    bytes: u64,
    block: u64,
    written: u64,
    end: u64,
}

impl<S: BlockSink> Extent<'_, S> {
    fn write(
        &mut self,
        offset: u64,
        data: &[u8],
        during: &mut dyn FnMut(),
    ) -> Result<(), DumpWriteError> {
        let len = data.len() as u64;
        let inside = offset % self.block == 0
            && len % self.block == 0
            && offset.checked_add(len).is_some_and(|e| e <= self.bytes);
        if !inside {
            return Err(DumpWriteError::OutsideExtent { offset, len });
        }
        let lba = self.first_lba + offset / self.block;
        self.sink
            .write(lba, data, during)
            .map_err(|e| DumpWriteError::Sink(Note::format(format_args!("{e:?}"))))?;
        self.written += len;
        self.end = self.end.max(offset + len);
        Ok(())
    }

    fn flush(&mut self, during: &mut dyn FnMut()) -> Result<(), DumpWriteError> {
        self.sink
            .flush(during)
            .map_err(|e| DumpWriteError::Sink(Note::format(format_args!("{e:?}"))))
    }
}

/// The chunk stream being packed into whole blocks.
struct Packer<'b> {
    stage: &'b mut [u8],
    fill: usize,
    /// Bytes of stream already written (a multiple of the stage size).
    flushed: u64,
    max_io: usize,
}

impl Packer<'_> {
    fn len(&self) -> u64 {
        self.flushed + self.fill as u64
    }

    fn append<S: BlockSink>(
        &mut self,
        extent: &mut Extent<'_, S>,
        mut bytes: &[u8],
        on_write: &mut dyn FnMut(),
    ) -> Result<(), DumpWriteError> {
        while !bytes.is_empty() {
            let room = self.stage.len() - self.fill;
            let n = room.min(bytes.len());
            let (now, later) = bytes.split_at(n);
            self.stage
                .get_mut(self.fill..self.fill + n)
                .ok_or(DumpWriteError::BounceTooSmall)?
                .copy_from_slice(now);
            self.fill += n;
            bytes = later;
            if self.fill == self.stage.len() {
                self.write_out(extent, self.fill, on_write)?;
            }
        }
        Ok(())
    }

    /// Writes the first `len` staged bytes (a multiple of the block size) out.
    fn write_out<S: BlockSink>(
        &mut self,
        extent: &mut Extent<'_, S>,
        len: usize,
        on_write: &mut dyn FnMut(),
    ) -> Result<(), DumpWriteError> {
        let mut off = 0usize;
        while off < len {
            let n = (len - off).min(self.max_io);
            let piece = self
                .stage
                .get(off..off + n)
                .ok_or(DumpWriteError::BounceTooSmall)?;
            extent.write(RECORD as u64 + self.flushed + off as u64, piece, on_write)?;
            on_write();
            off += n;
        }
        self.flushed += len as u64;
        self.fill = 0;
        Ok(())
    }

    /// Pads the tail to whole blocks with zeros and writes it.
    fn finish<S: BlockSink>(
        &mut self,
        extent: &mut Extent<'_, S>,
        on_write: &mut dyn FnMut(),
    ) -> Result<(), DumpWriteError> {
        let padded = self.fill.next_multiple_of(extent.block as usize);
        self.stage
            .get_mut(self.fill..padded)
            .ok_or(DumpWriteError::BounceTooSmall)?
            .fill(0);
        let stream = self.len();
        self.write_out(extent, padded, on_write)?;
        self.flushed = stream;
        Ok(())
    }
}

/// The buffers the writer works in (the kernel has no heap).
pub struct Buffers<'b> {
    /// Memory read from the crashed kernel: one chunk.
    pub bounce: &'b mut [u8],
    /// Non-zero pages gathered: one chunk.
    pub plain: &'b mut [u8],
    /// Encoded bytes: [`codec::encode_bound`] of one chunk.
    pub encoded: &'b mut [u8],
    /// Stream staging: a multiple of the block size, at least one block.
    pub stage: &'b mut [u8],
}

/// What to dump and where.
pub struct DumpJob<'a> {
    /// The header: crash note, CPU state, policy, chunk size, pattern,
    /// exclusions, descriptor status; its plan is taken from `plan`.
    pub header: Header,
    /// Memory ranges to dump, in the order to dump them (most useful first; at
    /// most [`MAX_RANGES`]).
    pub plan: &'a [Range],
    /// How chunks are compressed.
    pub codec: Encoding,
    /// First block of the extent.
    pub extent_lba: u64,
    /// Blocks in the extent.
    pub extent_blocks: u64,
    /// Compute the CRC of each chunk's whole memory for `on_chunk` (the
    /// network stream needs it; 0 otherwise).
    pub raw_crc: bool,
}

/// Bytes of extent a dump with `chunks` chunks storing `stored` bytes needs.
pub fn extent_needed(chunks: u64, stored: u64) -> u64 {
    RECORD as u64 + chunks * CHUNK_RECORD as u64 + stored
}

/// Writes the dump: the header (crash note and CPU state, not yet complete),
/// every chunk of the plan while the extent has room, a flush, then the final
/// header (complete, or partial with what is missing) and a flush. Heartbeats
/// run between I/Os; `on_chunk` sees each chunk's memory (to stream it over
/// the network).
///
/// # Errors
///
/// [`DumpWriteError`]; on [`DumpWriteError::ExtentTooSmall`] and the buffer,
/// geometry and plan errors nothing is written.
#[expect(
    clippy::too_many_arguments,
    reason = "the dump's inputs, each a different thing"
)]
pub fn write_dump<S: BlockSink, M: PhysRead, C: Clock>(
    job: DumpJob<'_>,
    sink: &mut S,
    memory: &M,
    clock: &C,
    buffers: Buffers<'_>,
    heartbeats: &mut [&mut dyn Heartbeat],
    schedule: &mut Schedule,
    on_chunk: &mut dyn FnMut(&ChunkHeader, &[u8]),
) -> Result<DumpStats, DumpWriteError> {
    let block_size = sink.block_size();
    let block = u64::from(block_size);
    if !(512..=4096).contains(&block_size)
        || !block_size.is_power_of_two()
        || sink.max_transfer() < block_size as usize
    {
        return Err(DumpWriteError::BadGeometry { block_size });
    }
    let mut header = job.header;
    let chunk = header.chunk_size as usize;
    let Buffers {
        bounce,
        plain,
        encoded,
        stage,
    } = buffers;
    if chunk == 0
        || chunk % PAGE != 0
        || chunk > MAX_CHUNK_PAGES * PAGE
        || bounce.len() < chunk
        || plain.len() < chunk
        || encoded.len() < codec::encode_bound(chunk)
        || stage.is_empty()
        || stage.len() % block_size as usize != 0
    {
        return Err(DumpWriteError::BounceTooSmall);
    }
    if job.plan.len() > MAX_RANGES.min(MAX_MISSING) {
        return Err(DumpWriteError::PlanTooLong {
            ranges: job.plan.len(),
        });
    }
    header.range_count = 0;
    for (slot, r) in header.ranges.iter_mut().zip(job.plan) {
        *slot = *r;
        header.range_count += 1;
    }
    header.codec = job.codec;
    header.flags = 0;
    header.missing_count = 0;
    let have = job.extent_blocks.saturating_mul(block);
    if have < RECORD as u64 + block {
        return Err(DumpWriteError::ExtentTooSmall {
            need: RECORD as u64 + block,
            have,
        });
    }
    let start_ns = clock.now_ns();
    header.dump_start_ns = start_ns;
    let mut extent = Extent {
        sink,
        first_lba: job.extent_lba,
        bytes: have,
        block,
        written: 0,
        end: 0,
    };
    // The crash note and CPU state reach the disk before any memory does.
    let mut record = [0u8; RECORD];
    header.encode(&mut record);
    extent.write(0, &record, &mut || {})?;

    let max_io = (extent.sink.max_transfer() as u64 / block * block) as usize;
    let mut packer = Packer {
        stage,
        fill: 0,
        flushed: 0,
        max_io,
    };
    let capacity = have - RECORD as u64;
    let mut stats = DumpStats {
        chunks: 0,
        bytes: 0,
        missing: 0,
        stored: 0,
        zero_pages: 0,
        written: 0,
        extent_end: 0,
        encode_ns: 0,
        start_ns,
        end_ns: 0,
        heartbeat: *schedule,
    };
    let mut tick = || {
        schedule.tick(clock, heartbeats);
    };
    let mut chunk_record = [0u8; CHUNK_RECORD];
    let plan = header.ranges;
    let mut full = false;
    for r in plan.iter().take(header.range_count as usize) {
        let mut done = 0u64;
        while done < r.len {
            let phys = r.start + done;
            if full {
                break;
            }
            let len = (r.len - done).min(chunk as u64) as usize;
            let data = bounce
                .get_mut(..len)
                .ok_or(DumpWriteError::BounceTooSmall)?;
            memory
                .read(phys, data)
                .map_err(|_| DumpWriteError::Memory { phys })?;
            let t = clock.now_ns();
            let rec = codec::encode(stats.chunks, phys, data, job.codec, plain, encoded)
                .map_err(DumpWriteError::Encode)?;
            stats.encode_ns += clock.now_ns().saturating_sub(t);
            let stored = encoded
                .get(..rec.stored_len as usize)
                .ok_or(DumpWriteError::BounceTooSmall)?;
            let end = packer.len() + CHUNK_RECORD as u64 + stored.len() as u64;
            if end > capacity {
                full = true;
                break;
            }
            on_chunk(
                &ChunkHeader {
                    index: rec.index,
                    phys,
                    len: rec.len,
                    data_crc: if job.raw_crc {
                        paranoid_dump::data_crc(data)
                    } else {
                        0
                    },
                },
                data,
            );
            rec.encode(&mut chunk_record);
            packer.append(&mut extent, &chunk_record, &mut tick)?;
            packer.append(&mut extent, stored, &mut tick)?;
            tick();
            stats.chunks += 1;
            stats.bytes += len as u64;
            stats.stored += stored.len() as u64;
            stats.zero_pages += rec.zero_pages() as u64;
            done += len as u64;
        }
        if full {
            // This range from `done` on, and every range after it, is missing.
            let left = Range {
                start: r.start + done,
                len: r.len - done,
            };
            if let Some(slot) = header.missing.get_mut(header.missing_count as usize) {
                *slot = left;
                header.missing_count += 1;
            }
            stats.missing += left.len;
        }
    }
    packer.finish(&mut extent, &mut tick)?;
    extent.flush(&mut tick)?;
    header.chunk_count = stats.chunks;
    header.total_bytes = stats.bytes;
    header.stream_bytes = packer.len();
    header.stored_bytes = stats.stored;
    header.zero_pages = stats.zero_pages;
    header.encode_ns = stats.encode_ns;
    header.flags = if full { FLAG_PARTIAL } else { FLAG_COMPLETE };
    let end_ns = clock.now_ns();
    header.dump_end_ns = end_ns;
    header.encode(&mut record);
    extent.write(0, &record, &mut tick)?;
    extent.flush(&mut tick)?;
    schedule.finish(clock);
    stats.end_ns = end_ns;
    stats.written = extent.written;
    stats.extent_end = extent.end;
    stats.heartbeat = *schedule;
    Ok(stats)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use paranoid::phys::PhysError;
    use paranoid::sim::SimClock;
    use paranoid_dump::{pattern_word, reader, Policy};
    use std::io::Write;
    use std::time::Duration;

    /// A disk in memory that takes simulated time per write.
    struct Disk {
        blocks: Vec<u8>,
        clock: SimClock,
        ns_per_kib: u64,
        writes: Vec<(u64, usize)>,
        /// How long a flush takes (the device's write-back cache going out),
        /// in 1 ms steps that each call `during`.
        flush_ns: u64,
    }

    impl BlockSink for Disk {
        type Error = &'static str;
        fn block_size(&self) -> u32 {
            512
        }
        fn max_transfer(&self) -> usize {
            64 * 1024
        }
        fn write(
            &mut self,
            lba: u64,
            data: &[u8],
            _: &mut dyn FnMut(),
        ) -> Result<(), &'static str> {
            let at = lba as usize * 512;
            self.blocks
                .get_mut(at..at + data.len())
                .ok_or("past the disk")?
                .copy_from_slice(data);
            self.clock
                .advance_ns(self.ns_per_kib * data.len() as u64 / 1024);
            self.writes.push((lba, data.len()));
            Ok(())
        }
        fn flush(&mut self, during: &mut dyn FnMut()) -> Result<(), &'static str> {
            for _ in 0..self.flush_ns / 1_000_000 {
                self.clock.advance_ns(1_000_000);
                during();
            }
            Ok(())
        }
    }

    /// The crashed kernel's memory as tests play it: `pattern_word(seed, …)`
    /// at every address (the NVMe sink's tests read it too).
    pub(crate) struct Patterned {
        pub(crate) seed: u64,
    }

    impl PhysRead for Patterned {
        fn read(&self, phys: u64, out: &mut [u8]) -> Result<(), PhysError> {
            let bad = PhysError::Overflow {
                at: phys,
                len: out.len() as u64,
            };
            for (i, w) in out.chunks_mut(8).enumerate() {
                let v = pattern_word(self.seed, phys + 8 * i as u64).to_le_bytes();
                w.copy_from_slice(v.get(..w.len()).ok_or(bad)?);
            }
            Ok(())
        }
    }

    struct Counter {
        beats: Vec<u64>,
        clock: SimClock,
    }

    impl Heartbeat for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        fn beat(&mut self) -> Result<(), &'static str> {
            self.beats.push(paranoid::time::Clock::now_ns(&self.clock));
            Ok(())
        }
    }

    /// The writer's buffers, owned.
    struct Store(Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

    impl Store {
        fn new(chunk: usize) -> Self {
            Self(
                vec![0; chunk],
                vec![0; chunk],
                vec![0; codec::encode_bound(chunk)],
                vec![0; 16 * 1024],
            )
        }

        fn bufs(&mut self) -> Buffers<'_> {
            Buffers {
                bounce: &mut self.0,
                plain: &mut self.1,
                encoded: &mut self.2,
                stage: &mut self.3,
            }
        }
    }

    fn job(ranges: &[Range], blocks: u64) -> DumpJob<'_> {
        let mut header = Header::new(Policy::Fence, 64 * 1024);
        header.pattern_seed = 99;
        header.pattern = Range {
            start: 0x20_0000,
            len: 0x4_0000,
        };
        DumpJob {
            header,
            plan: ranges,
            codec: Encoding::Lz4,
            extent_lba: 100,
            extent_blocks: blocks,
            raw_crc: false,
        }
    }

    #[test]
    fn dump_verifies_and_stays_inside_the_extent_with_heartbeats_on_time() {
        let clock = SimClock::new();
        let mut disk = Disk {
            blocks: vec![0xee; 4 << 20],
            clock: clock.clone(),
            ns_per_kib: 60_000,
            writes: vec![],
            // Two seconds per flush: longer than any heartbeat period.
            flush_ns: 2_000_000_000,
        };
        let ranges = [
            Range {
                start: 0x10_0000,
                len: 0x3_1000,
            },
            Range {
                start: 0x20_0000,
                len: 0x4_0000,
            },
        ];
        let mut hb = Counter {
            beats: vec![],
            clock: clock.clone(),
        };
        let mut schedule = Schedule::new(&clock, Duration::from_millis(10));
        let mut store = Store::new(64 * 1024);
        let mut streamed = 0;
        let stats = write_dump(
            job(&ranges, 4000),
            &mut disk,
            &Patterned { seed: 99 },
            &clock,
            store.bufs(),
            &mut [&mut hb],
            &mut schedule,
            &mut |_, d| streamed += d.len(),
        )
        .unwrap();
        assert_eq!(stats.bytes, 0x7_1000);
        assert_eq!(streamed, 0x7_1000);
        // Nothing outside blocks 100..4100 changed.
        assert!(disk.blocks[..100 * 512].iter().all(|&b| b == 0xee));
        assert!(disk.blocks[4100 * 512..].iter().all(|&b| b == 0xee));
        assert!(disk
            .writes
            .iter()
            .all(|&(lba, len)| lba >= 100 && lba * 512 + len as u64 <= 4100 * 512));
        // Heartbeats: no gap longer than the period on the simulated clock,
        // the two slow flushes included.
        assert!(
            stats.heartbeat.beats >= 3,
            "beats {}",
            stats.heartbeat.beats
        );
        assert!(
            stats.heartbeat.max_gap_ns <= 10_000_000,
            "gap {}",
            stats.heartbeat.max_gap_ns
        );
        // The reader verifies it.
        let path =
            std::env::temp_dir().join(format!("paranoid-recovery-{}.img", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&disk.blocks)
            .unwrap();
        let v = reader::verify(&path, 100 * 512, &Default::default(), |_, _| Ok(())).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(v.is_good(), "{v}");
        assert_eq!(v.pattern_words, 0x4_0000 / 8);
    }

    #[test]
    fn a_full_extent_closes_a_valid_partial_dump() {
        let clock = SimClock::new();
        let mut disk = Disk {
            blocks: vec![0; 1 << 20],
            clock: clock.clone(),
            ns_per_kib: 0,
            writes: vec![],
            flush_ns: 0,
        };
        let ranges = [
            Range {
                start: 0x20_0000,
                len: 0x4_0000,
            },
            Range {
                start: 0x100_0000,
                len: 0x10_0000,
            },
        ];
        let mut schedule = Schedule::new(&clock, Duration::from_millis(10));
        let stats = write_dump(
            job(&ranges, 400),
            &mut disk,
            &Patterned { seed: 99 },
            &clock,
            Store::new(64 * 1024).bufs(),
            &mut [],
            &mut schedule,
            &mut |_, _| {},
        )
        .unwrap();
        assert!(stats.missing > 0 && stats.bytes > 0, "{stats:?}");
        assert_eq!(stats.bytes + stats.missing, 0x14_0000);
        assert!(disk
            .writes
            .iter()
            .all(|&(lba, len)| lba >= 100 && lba * 512 + len as u64 <= 500 * 512));
        let path = std::env::temp_dir().join(format!(
            "paranoid-recovery-partial-{}.img",
            std::process::id()
        ));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&disk.blocks)
            .unwrap();
        let v = reader::verify(&path, 100 * 512, &Default::default(), |_, _| Ok(())).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(v.verdict(), reader::Verdict::Partial, "{v}");
        assert_eq!(
            v.header.missing().iter().map(|r| r.len).sum::<u64>(),
            stats.missing
        );
    }

    #[test]
    fn write_transfers_are_mdts_or_the_window_share_in_whole_blocks() {
        // QEMU's MDTS (512 KiB) is more than the share: the share.
        assert_eq!(write_transfer(512 << 10, 512), 64 << 10);
        // A small MDTS is the limit.
        assert_eq!(write_transfer(32 << 10, 4096), 32 << 10);
        // Whole blocks, at least one.
        assert_eq!(write_transfer(10_000, 4096), 8192);
        assert_eq!(write_transfer(0, 512), 512);
        assert!(WRITE_DEPTH * write_transfer(u64::MAX, 512) <= WRITE_WINDOW_BYTES);
    }

    #[test]
    fn an_extent_without_room_for_the_header_writes_nothing() {
        let clock = SimClock::new();
        let mut disk = Disk {
            blocks: vec![0; 1 << 20],
            clock: clock.clone(),
            ns_per_kib: 0,
            writes: vec![],
            flush_ns: 0,
        };
        let ranges = [Range {
            start: 0,
            len: 1 << 20,
        }];
        let mut schedule = Schedule::new(&clock, Duration::from_millis(10));
        let r = write_dump(
            job(&ranges, 8),
            &mut disk,
            &Patterned { seed: 1 },
            &clock,
            Store::new(64 * 1024).bufs(),
            &mut [],
            &mut schedule,
            &mut |_, _| {},
        );
        assert!(matches!(r, Err(DumpWriteError::ExtentTooSmall { .. })));
        assert!(disk.writes.is_empty());
    }

    #[test]
    fn without_heartbeats_the_gap_is_the_whole_dump() {
        let clock = SimClock::new();
        let mut disk = Disk {
            blocks: vec![0; 2 << 20],
            clock: clock.clone(),
            ns_per_kib: 50_000,
            writes: vec![],
            flush_ns: 0,
        };
        let ranges = [Range {
            start: 0x20_0000,
            len: 0x4_0000,
        }];
        let mut schedule = Schedule::new(&clock, Duration::from_millis(10));
        let stats = write_dump(
            job(&ranges, 3000),
            &mut disk,
            &Patterned { seed: 99 },
            &clock,
            Store::new(64 * 1024).bufs(),
            &mut [],
            &mut schedule,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(stats.heartbeat.beats, 0);
        assert!(
            stats.heartbeat.max_gap_ns > 10_000_000,
            "a watchdog with a 10 ms period would fire"
        );
    }
}
