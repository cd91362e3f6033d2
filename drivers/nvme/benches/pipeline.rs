//! Queue depth 1 against queue depth 8 on the simulated backend (model
//! included): the same writes through [`Nvme::write_blocks`] (one command
//! submitted and waited for at a time) and through a [`WritePipeline`] of
//! eight buffers (eight commands in flight, each completion reaped later),
//! for 4 KiB and 64 KiB writes.
//!
//! Two measures per case:
//! - instructions per write, counted by callgrind (the bench re-runs itself
//!   under `valgrind --tool=callgrind` with N and 2N writes and takes the
//!   difference, so set-up and init cancel out);
//! - MiB/s of data written, fastest of several timed batches.
//!
//! `cargo bench -p paranoid-nvme --features model --bench pipeline`
//!
//! [`Nvme::write_blocks`]: paranoid_nvme::Nvme::write_blocks

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use paranoid::dma::ToDevice;
use paranoid_nvme::model::{Bench, SimNvme};
use paranoid_nvme::{Config, WritePipeline, DEFAULT_INIT_BUDGET};

const COUNTED: u64 = 1_000;
const BATCH: u64 = 2_000;
const ROUNDS: usize = 9;
/// Blocks of 512 bytes in the namespace the writes cycle through.
const NAMESPACE_BLOCKS: u64 = 8192;

fn ready(b: &mut Bench) -> SimNvme {
    b.model.borrow_mut().params.nsze = NAMESPACE_BLOCKS;
    let nvme = b.driver(Config::default()).expect("driver");
    match nvme.init(DEFAULT_INIT_BUDGET) {
        Ok(ok) => ok.device.into_inner(),
        Err(f) => panic!("init: {f}"),
    }
}

/// `n` writes of `bytes` at queue depth `qd` (1 or 8).
fn run(b: &mut Bench, nvme: &mut SimNvme, qd: usize, bytes: usize, n: u64) {
    let data = vec![0xa5u8; bytes];
    let blocks = (bytes / 512) as u64;
    let span = NAMESPACE_BLOCKS / blocks;
    if qd == 1 {
        let mut buf = b.arena.alloc::<ToDevice>(bytes, 4096).expect("buffer");
        for i in 0..n {
            buf.write_bytes(0, black_box(&data)).expect("fill");
            nvme.write_blocks((i % span) * blocks, blocks, &buf, 0)
                .expect("write");
        }
        b.arena.free(buf).expect("free");
    } else {
        let bufs: [_; 8] =
            std::array::from_fn(|_| b.arena.alloc::<ToDevice>(bytes, 4096).expect("buffer"));
        let mut pipe = WritePipeline::new(bufs);
        for i in 0..n {
            pipe.write(nvme, (i % span) * blocks, black_box(&data))
                .expect("write");
        }
        pipe.drain(nvme).expect("drain");
        for buf in pipe.into_buffers().into_iter().flatten() {
            b.arena.free(buf).expect("free");
        }
    }
}

fn case(name: &str) -> (usize, usize) {
    match name {
        "qd1-4k" => (1, 4096),
        "qd8-4k" => (8, 4096),
        "qd1-64k" => (1, 65536),
        _ => (8, 65536),
    }
}

/// Child mode: `PARANOID_BENCH_CASE=qd1-4k|... PARANOID_BENCH_WRITES=n`.
fn child(name: &str) {
    let n = std::env::var("PARANOID_BENCH_WRITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(COUNTED);
    let (qd, bytes) = case(name);
    let mut b = Bench::qemu_like();
    let mut nvme = ready(&mut b);
    run(&mut b, &mut nvme, qd, bytes, n);
}

fn instructions(name: &str, n: u64) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .env("PARANOID_BENCH_CASE", name)
        .env("PARANOID_BENCH_WRITES", n.to_string())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|v| v.trim().parse().ok())
}

fn main() {
    if let Ok(name) = std::env::var("PARANOID_BENCH_CASE") {
        return child(&name);
    }
    println!("nvme writes, queue depth 1 vs 8, simulated backend (model included):");
    for name in ["qd1-4k", "qd8-4k", "qd1-64k", "qd8-64k"] {
        let (qd, bytes) = case(name);
        let per_write = match (instructions(name, COUNTED), instructions(name, 2 * COUNTED)) {
            (Some(one), Some(two)) => {
                format!("{:>9.0}", two.saturating_sub(one) as f64 / COUNTED as f64)
            }
            _ => "  (no valgrind)".to_string(),
        };
        let mut b = Bench::qemu_like();
        let mut nvme = ready(&mut b);
        run(&mut b, &mut nvme, qd, bytes, BATCH / 4);
        let mut best = f64::MAX;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            run(&mut b, &mut nvme, qd, bytes, BATCH);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let mib_s = (BATCH as f64 * bytes as f64) / (1 << 20) as f64 / best;
        println!(
            "  QD{qd} {:>2} KiB writes: instructions/write {per_write}   MiB/s {mib_s:>8.1}   commands {}",
            bytes / 1024,
            nvme.stats().commands
        );
        assert_eq!(nvme.stats().timeouts, 0);
    }
}
