//! Writing the dump into the declared extent, and nowhere else.
//!
//! The writer is generic over where blocks go ([`BlockSink`]: the NVMe driver in
//! the recovery kernel, a vector in tests) and where memory comes from
//! ([`PhysMemory`]). Every write goes through one bounds check against the
//! extent: a bug in the chunk arithmetic becomes [`DumpWriteError::OutsideExtent`],
//! never a write to someone else's blocks (cluster safety).

use core::fmt;

use paranoid::init::Note;
use paranoid::time::Clock;
use paranoid_dump::{data_crc, ChunkHeader, Header, Range, FLAG_COMPLETE, RECORD};

use crate::heartbeat::{Heartbeat, Schedule};

/// Where dump blocks go.
pub trait BlockSink {
    /// The driver's error.
    type Error: fmt::Debug;
    /// Block size in bytes (512 or 4096).
    fn block_size(&self) -> u32;
    /// Largest single write in bytes (a multiple of the block size).
    fn max_transfer(&self) -> usize;
    /// Writes `data` (a multiple of the block size) at block `lba`.
    ///
    /// # Errors
    ///
    /// The driver's error.
    fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), Self::Error>;
    /// Makes previous writes durable.
    ///
    /// # Errors
    ///
    /// The driver's error.
    fn flush(&mut self) -> Result<(), Self::Error>;
}

/// A physical range that is not readable memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable {
    /// First address of the read.
    pub phys: u64,
}

/// Where the crashed kernel's memory is read from.
pub trait PhysMemory {
    /// Copies `out.len()` bytes at `phys` into `out`.
    ///
    /// # Errors
    ///
    /// [`Unreadable`] when the range is not readable memory.
    fn read(&self, phys: u64, out: &mut [u8]) -> Result<(), Unreadable>;
}

/// Why a dump could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpWriteError {
    /// The extent is too small for the memory to dump (nothing was written).
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
    /// The bounce buffer is smaller than one chunk.
    BounceTooSmall,
    /// Memory could not be read.
    Memory {
        /// Physical address.
        phys: u64,
    },
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
    /// Bytes written to the extent (records, data, padding; a record written
    /// twice counts twice).
    pub written: u64,
    /// Offset from the extent's start just past the last byte written: from
    /// here to the extent's end the dump left the disk as it was.
    pub extent_end: u64,
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
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DumpWriteError> {
        let len = data.len() as u64;
        let inside = offset % self.block == 0
            && len % self.block == 0
            && offset.checked_add(len).is_some_and(|e| e <= self.bytes);
        if !inside {
            return Err(DumpWriteError::OutsideExtent { offset, len });
        }
        let lba = self.first_lba + offset / self.block;
        self.sink
            .write(lba, data)
            .map_err(|e| DumpWriteError::Sink(Note::format(format_args!("{e:?}"))))?;
        self.written += len;
        self.end = self.end.max(offset + len);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DumpWriteError> {
        self.sink
            .flush()
            .map_err(|e| DumpWriteError::Sink(Note::format(format_args!("{e:?}"))))
    }
}

/// What to dump and where.
pub struct DumpJob<'a> {
    /// The header: crash note, policy, chunk size, pattern; ranges are taken from
    /// `ranges`.
    pub header: Header,
    /// Memory ranges to dump, in order (at most [`paranoid_dump::MAX_RANGES`]).
    pub ranges: &'a [Range],
    /// First block of the extent.
    pub extent_lba: u64,
    /// Blocks in the extent.
    pub extent_blocks: u64,
}

/// Writes the dump: an incomplete header, every chunk, a flush, then the complete
/// header and a flush. Heartbeats run between I/Os; `on_chunk` sees each chunk
/// (to stream it over the network).
///
/// `bounce` must hold one chunk (`header.chunk_size` bytes).
///
/// # Errors
///
/// [`DumpWriteError`]; on [`DumpWriteError::ExtentTooSmall`] nothing is written.
#[allow(clippy::too_many_arguments)]
pub fn write_dump<S: BlockSink, M: PhysMemory, C: Clock>(
    job: DumpJob<'_>,
    sink: &mut S,
    memory: &M,
    clock: &C,
    bounce: &mut [u8],
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
    if bounce.len() < chunk || chunk == 0 {
        return Err(DumpWriteError::BounceTooSmall);
    }
    header.range_count = 0;
    for (slot, r) in header.ranges.iter_mut().zip(job.ranges) {
        *slot = *r;
        header.range_count += 1;
    }
    let total: u64 = header.ranges().iter().map(|r| r.len).sum();
    header.total_bytes = total;
    header.flags = 0;
    let need = header.extent_bytes(total);
    let have = job.extent_blocks.saturating_mul(block);
    if need > have || (header.range_count as usize) < job.ranges.len() {
        return Err(DumpWriteError::ExtentTooSmall { need, have });
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
    let mut record = [0u8; RECORD];
    header.encode(&mut record);
    extent.write(0, &record)?;

    let max_io = (extent.sink.max_transfer() as u64 / block * block) as usize;
    let mut index = 0u64;
    let mut bytes = 0u64;
    let ranges = header.ranges;
    for r in ranges.iter().take(header.range_count as usize) {
        let mut done = 0u64;
        while done < r.len {
            let len = (r.len - done).min(chunk as u64) as usize;
            let phys = r.start + done;
            let data = bounce
                .get_mut(..len)
                .ok_or(DumpWriteError::BounceTooSmall)?;
            memory
                .read(phys, data)
                .map_err(|e| DumpWriteError::Memory { phys: e.phys })?;
            let ch = ChunkHeader {
                index,
                phys,
                len: len as u32,
                data_crc: data_crc(data),
            };
            on_chunk(&ch, data);
            let at = header
                .chunk_offset(index)
                .ok_or(DumpWriteError::OutsideExtent {
                    offset: u64::MAX,
                    len: 0,
                })?;
            ch.encode(&mut record);
            extent.write(at, &record)?;
            // Pad the tail to whole blocks with zeros (the bounce buffer is ours).
            let padded = len.next_multiple_of(block as usize);
            if let Some(pad) = bounce.get_mut(len..padded) {
                pad.fill(0);
            }
            let mut off = 0usize;
            while off < padded {
                let n = (padded - off).min(max_io);
                let piece = bounce
                    .get(off..off + n)
                    .ok_or(DumpWriteError::BounceTooSmall)?;
                extent.write(at + RECORD as u64 + off as u64, piece)?;
                schedule.tick(clock, heartbeats);
                off += n;
            }
            index += 1;
            done += len as u64;
            bytes += len as u64;
        }
    }
    extent.flush()?;
    header.chunk_count = index;
    header.flags = FLAG_COMPLETE;
    let end_ns = clock.now_ns();
    header.dump_end_ns = end_ns;
    header.encode(&mut record);
    extent.write(0, &record)?;
    extent.flush()?;
    schedule.finish(clock);
    Ok(DumpStats {
        chunks: index,
        bytes,
        written: extent.written,
        extent_end: extent.end,
        start_ns,
        end_ns,
        heartbeat: *schedule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
    }

    impl BlockSink for Disk {
        type Error = &'static str;
        fn block_size(&self) -> u32 {
            512
        }
        fn max_transfer(&self) -> usize {
            64 * 1024
        }
        fn write(&mut self, lba: u64, data: &[u8]) -> Result<(), &'static str> {
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
        fn flush(&mut self) -> Result<(), &'static str> {
            Ok(())
        }
    }

    struct Patterned {
        seed: u64,
    }

    impl PhysMemory for Patterned {
        fn read(&self, phys: u64, out: &mut [u8]) -> Result<(), Unreadable> {
            for (i, w) in out.chunks_mut(8).enumerate() {
                let v = pattern_word(self.seed, phys + 8 * i as u64).to_le_bytes();
                w.copy_from_slice(v.get(..w.len()).ok_or(Unreadable { phys })?);
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

    fn job(ranges: &[Range], blocks: u64) -> DumpJob<'_> {
        let mut header = Header::new(Policy::Fence, 64 * 1024);
        header.pattern_seed = 99;
        header.pattern = Range {
            start: 0x20_0000,
            len: 0x4_0000,
        };
        DumpJob {
            header,
            ranges,
            extent_lba: 100,
            extent_blocks: blocks,
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
        let mut bounce = vec![0u8; 64 * 1024];
        let mut streamed = 0;
        let stats = write_dump(
            job(&ranges, 4000),
            &mut disk,
            &Patterned { seed: 99 },
            &clock,
            &mut bounce,
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
        // Heartbeats: no gap longer than the period on the simulated clock.
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
        let v = reader::verify(&path, 100 * 512, |_, _| Ok(())).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(v.is_good(), "{v}");
        assert_eq!(v.pattern_words, 0x4_0000 / 8);
    }

    #[test]
    fn too_small_extent_writes_nothing() {
        let clock = SimClock::new();
        let mut disk = Disk {
            blocks: vec![0; 1 << 20],
            clock: clock.clone(),
            ns_per_kib: 0,
            writes: vec![],
        };
        let ranges = [Range {
            start: 0,
            len: 1 << 20,
        }];
        let mut schedule = Schedule::new(&clock, Duration::from_millis(10));
        let r = write_dump(
            job(&ranges, 100),
            &mut disk,
            &Patterned { seed: 1 },
            &clock,
            &mut vec![0; 64 * 1024],
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
            &mut vec![0; 64 * 1024],
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
