//! The dump's block sink on the paranoid NVMe driver: [`WRITE_DEPTH`] writes in
//! flight through the driver's owned pipelined API.
//!
//! Each [`BlockSink::write`] is copied into a free buffer of a
//! [`WritePipeline`] and submitted with [`Nvme::submit_write`]; the buffer
//! belongs to the controller until its completion is reaped. A
//! [`flush`](BlockSink::flush) first waits for every write in flight (each
//! wait bounded by the driver's I/O timeout; a timeout resets the controller
//! and the writes come back [`NvmeError::Abandoned`]), then flushes the
//! controller. The dump writer's extent check runs before any of this.

use paranoid::dma::{DmaArena, DmaBuffer, DmaError, ToDevice, Window};
use paranoid::mmio::RegisterIo;
use paranoid::pci::ConfigAccess;
use paranoid::time::Clock;
use paranoid_nvme::{Nvme, NvmeError, WritePipeline};

use crate::dump::{BlockSink, WRITE_DEPTH};

/// Writes dump blocks through `nvme`, up to [`WRITE_DEPTH`] in flight.
pub struct NvmeSink<'a, R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> {
    /// The ready controller.
    pub nvme: &'a mut Nvme<R, P, C, W>,
    /// The write buffers in the window.
    pub pipeline: WritePipeline<W, WRITE_DEPTH>,
    /// The namespace block size.
    pub block_size: u32,
}

impl<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> BlockSink for NvmeSink<'_, R, P, C, W> {
    type Error = NvmeError;

    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn max_transfer(&self) -> usize {
        self.pipeline.max_write()
    }

    fn write(&mut self, lba: u64, data: &[u8], during: &mut dyn FnMut()) -> Result<(), NvmeError> {
        write(&mut self.pipeline, self.nvme, lba, data, during)
    }

    fn flush(&mut self, during: &mut dyn FnMut()) -> Result<(), NvmeError> {
        self.pipeline.drain_while(self.nvme, during)?;
        self.nvme.flush_while(during)
    }
}

/// One pipelined write of `data` at block `lba`, calling `during` while it
/// waits. A controller that granted a shallower queue than [`WRITE_DEPTH`]
/// refuses a submission with [`NvmeError::QueueFull`] while buffers are still
/// free: then what is in flight is waited for and the write submitted again,
/// once.
///
/// # Errors
///
/// [`WritePipeline::write`]'s, and the drain's.
pub fn write<R, P, C, W>(
    pipeline: &mut WritePipeline<W, WRITE_DEPTH>,
    nvme: &mut Nvme<R, P, C, W>,
    lba: u64,
    data: &[u8],
    during: &mut dyn FnMut(),
) -> Result<(), NvmeError>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
{
    match pipeline.write_while(nvme, lba, data, during) {
        Err(NvmeError::QueueFull { .. }) => {
            pipeline.drain_while(nvme, during)?;
            pipeline.write_while(nvme, lba, data, during)
        }
        other => other,
    }
}

/// [`WRITE_DEPTH`] write buffers of `len` bytes from `arena`.
///
/// # Errors
///
/// The arena's, when the window is exhausted.
pub fn pipeline_buffers<W: Window, const N: usize>(
    arena: &mut DmaArena<W, N>,
    len: usize,
) -> Result<[DmaBuffer<W, ToDevice>; WRITE_DEPTH], DmaError> {
    let mut one = || arena.alloc::<ToDevice>(len, 4096);
    Ok([
        one()?,
        one()?,
        one()?,
        one()?,
        one()?,
        one()?,
        one()?,
        one()?,
    ])
}

const _: () = assert!(WRITE_DEPTH == 8, "pipeline_buffers allocates eight");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::tests::Patterned;
    use crate::dump::{write_dump, write_transfer, Buffers, DumpJob};
    use crate::heartbeat::Schedule;
    use paranoid_dump::{codec, reader, Encoding, Header, Policy, Range};
    use paranoid_nvme::model::{Bench, SimNvme};
    use paranoid_nvme::{Config, DEFAULT_INIT_BUDGET};
    use std::io::Write as _;
    use std::time::Duration;

    const NAMESPACE_BLOCKS: u64 = 16384;

    /// The sink, recording how many writes were in flight at most.
    struct Watched<'a, 'n>(
        NvmeSink<
            'n,
            paranoid::sim::SimMmio<paranoid_nvme::model::NvmeModel>,
            paranoid::sim::SimPci,
            paranoid::sim::SimClock,
            paranoid_nvme::model::SimWindow,
        >,
        &'a mut usize,
    );

    impl BlockSink for Watched<'_, '_> {
        type Error = NvmeError;
        fn block_size(&self) -> u32 {
            self.0.block_size()
        }
        fn max_transfer(&self) -> usize {
            self.0.max_transfer()
        }
        fn write(
            &mut self,
            lba: u64,
            data: &[u8],
            during: &mut dyn FnMut(),
        ) -> Result<(), NvmeError> {
            self.0.write(lba, data, during)?;
            *self.1 = (*self.1).max(self.0.nvme.in_flight());
            Ok(())
        }
        fn flush(&mut self, during: &mut dyn FnMut()) -> Result<(), NvmeError> {
            self.0.flush(during)?;
            assert_eq!(
                self.0.nvme.in_flight(),
                0,
                "a flush leaves writes in flight"
            );
            Ok(())
        }
    }

    fn ready(b: &mut Bench, config: Config) -> SimNvme {
        b.model.borrow_mut().params.nsze = NAMESPACE_BLOCKS;
        let nvme = b.driver(config).expect("driver");
        match nvme.init(DEFAULT_INIT_BUDGET) {
            Ok(ok) => ok.device.into_inner(),
            Err(f) => panic!("init: {f}"),
        }
    }

    /// Dumps 1.5 MiB through the sink on the simulated controller; returns
    /// the most writes in flight and the namespace image.
    fn dump_through(config: Config) -> (usize, Vec<u8>) {
        let mut b = Bench::qemu_like();
        let mut nvme = ready(&mut b, config);
        let ns = nvme.namespace_info().expect("namespace");
        let transfer = write_transfer(ns.max_transfer_bytes(), ns.block_size.bytes());
        assert_eq!(transfer, 64 << 10, "QEMU-like MDTS, the window's share");
        let buffers = pipeline_buffers(&mut b.arena, transfer).expect("buffers");
        let mut most = 0;
        let mut sink = Watched(
            NvmeSink {
                nvme: &mut nvme,
                pipeline: WritePipeline::new(buffers),
                block_size: ns.block_size.bytes(),
            },
            &mut most,
        );
        let ranges = [Range {
            start: 0x10_0000,
            len: 0x18_0000,
        }];
        let chunk = 64 * 1024;
        let (mut bounce, mut plain) = (vec![0; chunk], vec![0; chunk]);
        let (mut encoded, mut stage) = (vec![0; codec::encode_bound(chunk)], vec![0; 256 << 10]);
        let clock = b.clock.clone();
        let mut schedule = Schedule::new(&clock, Duration::from_millis(100));
        // Every word of the memory is checked against the pattern on reading.
        let mut header = Header::new(Policy::Fence, chunk as u32);
        header.pattern_seed = 7;
        header.pattern = ranges[0];
        let job = DumpJob {
            header,
            plan: &ranges,
            codec: Encoding::Raw,
            extent_lba: 2048,
            extent_blocks: 8192,
            raw_crc: false,
        };
        write_dump(
            job,
            &mut sink,
            &Patterned { seed: 7 },
            &clock,
            Buffers {
                bounce: &mut bounce,
                plain: &mut plain,
                encoded: &mut encoded,
                stage: &mut stage,
            },
            &mut [],
            &mut schedule,
            &mut |_, _| {},
        )
        .expect("dump");
        let freed = sink.0.pipeline.into_buffers();
        assert!(
            freed.iter().all(Option::is_some),
            "every buffer handed back"
        );
        let model = b.model.borrow();
        let image: Vec<u8> = (0..NAMESPACE_BLOCKS).flat_map(|l| model.block(l)).collect();
        (most, image)
    }

    fn verify(image: &[u8]) -> reader::Verified {
        let path = std::env::temp_dir().join(format!(
            "paranoid-nvme-sink-{}-{:?}.img",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(image)
            .unwrap();
        let v = reader::verify(&path, 2048 * 512, &Default::default(), |_, _| Ok(())).unwrap();
        std::fs::remove_file(&path).unwrap();
        v
    }

    #[test]
    fn eight_writes_in_flight_and_the_dump_verifies() {
        let (most, image) = dump_through(Config::default());
        assert_eq!(most, WRITE_DEPTH);
        // Nothing before the extent was written.
        assert!(image[..2048 * 512].iter().all(|&b| b == 0));
        let v = verify(&image);
        assert!(v.is_good(), "{v}");
        assert_eq!(v.header.total_bytes, 0x18_0000);
        assert_eq!(v.pattern_words, 0x18_0000 / 8);
    }

    #[test]
    fn a_shallow_queue_is_drained_and_written_all_the_same() {
        // Four queue entries: three writes in flight at most.
        let shallow = Config {
            io_queue_depth: 4,
            ..Config::default()
        };
        let (most, image) = dump_through(shallow);
        assert_eq!(most, 3);
        assert!(verify(&image).is_good());
    }

    #[test]
    fn without_the_drain_a_shallow_queue_refuses_the_fourth_write() {
        // The negative control of the retry in `write`: the pipeline alone
        // has free buffers but the driver no room.
        let mut b = Bench::qemu_like();
        let mut nvme = ready(
            &mut b,
            Config {
                io_queue_depth: 4,
                ..Config::default()
            },
        );
        let buffers = pipeline_buffers(&mut b.arena, 4096).expect("buffers");
        let mut pipe = WritePipeline::new(buffers);
        let data = [0x5au8; 4096];
        let results: Vec<_> = (0..4)
            .map(|i| pipe.write(&mut nvme, i * 8, &data))
            .collect();
        assert!(results[..3].iter().all(Result::is_ok));
        assert!(matches!(results[3], Err(NvmeError::QueueFull { .. })));
        // Through `write`, the fourth goes out after a drain.
        assert_eq!(write(&mut pipe, &mut nvme, 24, &data, &mut || {}), Ok(()));
        pipe.drain(&mut nvme).expect("drain");
        assert_eq!(b.model.borrow().block(24), vec![0x5a; 512]);
    }
}
