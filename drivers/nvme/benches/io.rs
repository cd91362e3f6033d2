//! What paranoia costs on the data path: one 4 KiB write (8 blocks, one
//! command, completion validated, LBA range checked) through the driver,
//! against the same path with validation compiled out (`unchecked-bench`), on
//! the simulated backend, in one run.
//!
//! Two measures, both printed with their ratio:
//! - instructions per write, counted by callgrind (the bench re-runs itself
//!   under `valgrind --tool=callgrind` with N and 2N writes per path and takes
//!   the difference, so set-up and init cancel out): exact, immune to a busy
//!   machine;
//! - time per write, batches of both paths interleaved, fastest batch each.
//!
//! `cargo bench -p paranoid-nvme --features model,unchecked-bench --bench io`

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use paranoid::dma::ToDevice;
use paranoid_nvme::model::Bench;
use paranoid_nvme::{Config, DEFAULT_INIT_BUDGET};

const BATCH: u64 = 2_000;
const ROUNDS: usize = 21;
const COUNTED: u64 = 2_000;

/// A ready driver on a fresh bench, and a 4 KiB buffer of the window.
fn setup() -> (
    Bench,
    paranoid_nvme::model::SimNvme,
    paranoid::dma::DmaBuffer<paranoid_nvme::model::SimWindow, ToDevice>,
) {
    let mut b = Bench::qemu_like();
    let nvme = b.driver(Config::default()).expect("driver");
    let nvme = match nvme.init(DEFAULT_INIT_BUDGET) {
        Ok(ok) => ok.device.into_inner(),
        Err(f) => panic!("init: {f}"),
    };
    let mut buf = b.arena.alloc::<ToDevice>(4096, 4096).expect("buffer");
    buf.write_bytes(0, &[0xa5; 4096]).expect("fill");
    (b, nvme, buf)
}

fn writes(
    nvme: &mut paranoid_nvme::model::SimNvme,
    buf: &paranoid::dma::DmaBuffer<paranoid_nvme::model::SimWindow, ToDevice>,
    checked: bool,
    n: u64,
    lba: &mut u64,
) {
    for _ in 0..n {
        *lba = (*lba + 8) % 2040;
        let at = black_box(*lba);
        if checked {
            black_box(nvme.write_blocks(at, 8, buf, 0)).expect("write");
        } else {
            black_box(nvme.write_blocks_unchecked_for_bench(at, 8, buf, 0)).expect("write");
        }
    }
}

/// Child mode: `PARANOID_BENCH_PATH=checked|unchecked PARANOID_BENCH_WRITES=n`.
fn child(path: &str) {
    let n: u64 = std::env::var("PARANOID_BENCH_WRITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(COUNTED);
    let (_b, mut nvme, buf) = setup();
    let mut lba = 0;
    writes(&mut nvme, &buf, path == "checked", n, &mut lba);
}

/// Instructions of a child run under callgrind, or `None` without valgrind.
fn instructions(path: &str, n: u64) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .env("PARANOID_BENCH_PATH", path)
        .env("PARANOID_BENCH_WRITES", n.to_string())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|v| v.trim().parse().ok())
}

fn main() {
    if let Ok(path) = std::env::var("PARANOID_BENCH_PATH") {
        return child(&path);
    }
    println!("nvme 4 KiB write through the driver, simulated backend (model included):");
    let per_write = |path: &str| -> Option<f64> {
        let one = instructions(path, COUNTED)?;
        let two = instructions(path, 2 * COUNTED)?;
        Some(two.saturating_sub(one) as f64 / COUNTED as f64)
    };
    match (per_write("checked"), per_write("unchecked")) {
        (Some(c), Some(u)) => {
            println!("  instructions/write  paranoid {c:>9.0}   validation compiled out {u:>9.0}   ratio {:.3} ({:+.2}%)", c / u, (c / u - 1.0) * 100.0);
        }
        _ => println!("  instructions/write  (valgrind not found: skipped)"),
    }
    let (_b, mut nvme, buf) = setup();
    let mut lba = 0;
    writes(&mut nvme, &buf, true, BATCH, &mut lba);
    writes(&mut nvme, &buf, false, BATCH, &mut lba);
    let (mut checked, mut unchecked) = (f64::MAX, f64::MAX);
    for round in 0..ROUNDS {
        // Alternate which path goes first, so neither gets the warmer cache.
        for path in [round % 2 == 0, round % 2 == 1] {
            let t = Instant::now();
            writes(&mut nvme, &buf, path, BATCH, &mut lba);
            let per = t.elapsed().as_nanos() as f64 / BATCH as f64;
            let best = if path { &mut checked } else { &mut unchecked };
            *best = best.min(per);
        }
    }
    println!(
        "  ns/write (fastest of {ROUNDS} batches of {BATCH})  paranoid {checked:>7.1}   validation compiled out {unchecked:>7.1}   ratio {:.3}",
        checked / unchecked
    );
    assert_eq!(nvme.stats().timeouts, 0);
}
