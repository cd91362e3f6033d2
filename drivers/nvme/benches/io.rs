//! What paranoia costs on the data path: one 4 KiB write (8 blocks, one
//! command, completion validated, LBA range checked) through the driver,
//! against the same path with validation compiled out (`unchecked-bench`), on
//! the simulated backend, in one run.
//!
//! Two measures, both printed with their ratio:
//! - instructions per write, counted by callgrind (the bench re-runs itself
//!   under `valgrind --tool=callgrind` with N and 2N writes per path and takes
//!   the difference, so set-up and init cancel out): exact, immune to a busy
//!   machine. The simulated controller's share is taken out: every call from
//!   a function outside `paranoid_nvme::model` into one inside it is charged,
//!   with everything it calls, to the model (the call records of callgrind's
//!   output), and the rest is the driver's own (with the HAL and the bench
//!   loop, a few instructions). Both are printed, the ratio on the driver's
//!   own;
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

/// Instructions of a child run under callgrind: (all, the model's share), or
/// `None` without valgrind.
fn instructions(path: &str, n: u64) -> Option<(u64, u64)> {
    let exe = std::env::current_exe().ok()?;
    let file = std::env::temp_dir().join(format!(
        "paranoid-nvme-io-{}-{path}-{n}.callgrind",
        std::process::id()
    ));
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--compress-strings=no",
            "--compress-pos=no",
        ])
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(exe)
        .env("PARANOID_BENCH_PATH", path)
        .env("PARANOID_BENCH_WRITES", n.to_string())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let all = text
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|v| v.trim().parse().ok())?;
    let profile = std::fs::read_to_string(&file).ok()?;
    let _ = std::fs::remove_file(&file);
    Some((all, model_share(&profile)))
}

/// Whether a (demangled) function belongs to the simulated controller: its
/// path, or for `<T as Trait>::f` its type `T`, is under `paranoid_nvme::model`
/// (a driver function instantiated with a model type is the driver's).
fn is_model(function: &str) -> bool {
    let own = match function.strip_prefix('<') {
        Some(rest) => rest.split(" as ").next().unwrap_or(rest),
        None => function,
    };
    own.starts_with("paranoid_nvme::model::")
}

/// Instructions spent in the model, from a callgrind profile written with
/// `--compress-strings=no --compress-pos=no`: the inclusive cost of every call
/// from a function outside the model into one inside it.
fn model_share(profile: &str) -> u64 {
    let mut caller = "";
    let mut callee = "";
    let mut call_cost_next = false;
    let mut model = 0;
    for line in profile.lines() {
        if let Some(f) = line.strip_prefix("fn=") {
            caller = f;
        } else if let Some(f) = line.strip_prefix("cfn=") {
            callee = f;
        } else if line.starts_with("calls=") {
            call_cost_next = true;
        } else if call_cost_next {
            call_cost_next = false;
            // `<position> <inclusive Ir>` of the call just declared.
            let cost: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if is_model(callee) && !is_model(caller) {
                model += cost;
            }
        }
    }
    model
}

fn main() {
    if let Ok(path) = std::env::var("PARANOID_BENCH_PATH") {
        return child(&path);
    }
    println!("nvme 4 KiB write through the driver, simulated backend:");
    // (all, model) per write: the difference of N and 2N writes, over N.
    let per_write = |path: &str| -> Option<(f64, f64)> {
        let one = instructions(path, COUNTED)?;
        let two = instructions(path, 2 * COUNTED)?;
        let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / COUNTED as f64;
        Some((per(one.0, two.0), per(one.1, two.1)))
    };
    match (per_write("checked"), per_write("unchecked")) {
        (Some((c, cm)), Some((u, um))) => {
            let (cd, ud) = (c - cm, u - um);
            println!("  instructions/write, all         paranoid {c:>9.0}   validation compiled out {u:>9.0}   ratio {:.3}", c / u);
            println!("  instructions/write, model       paranoid {cm:>9.0}   validation compiled out {um:>9.0}");
            println!("  instructions/write, driver own  paranoid {cd:>9.0}   validation compiled out {ud:>9.0}   ratio {:.3} ({:+.0} instructions of validation)", cd / ud, cd - ud);
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
