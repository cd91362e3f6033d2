//! Data-path paranoia overhead: a 1514-byte (and a 60-byte) frame sent through
//! the transmit ring, looped back by the model's wire and received through the
//! receive ring, with descriptor validation (`send`/`receive_wait`) and with it
//! compiled out (`send_unchecked`/`receive_wait_unchecked`, feature
//! `unchecked-bench`), in the same run. Criterion reports each; an interleaved
//! A/B loop at the end prints the ratio.
//!
//! `cargo bench -p paranoid-e1000 --features model,unchecked-bench`
//!
//! With `E1000_BENCH=instructions` it prints instructions per round trip
//! instead (no Criterion): the bench re-runs itself under callgrind with 0 and
//! N frames per variant and length, takes the difference, and splits it into
//! the simulated NIC's share (every call from outside `paranoid_e1000::model`
//! into it, with all it calls, from callgrind's call records) and the driver's
//! own (with the HAL and the bench loop). The ratio is on the driver's own:
//!
//! `E1000_BENCH=instructions cargo bench -p paranoid-e1000 --features model,unchecked-bench --bench frame`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use paranoid::time::Deadline;
use paranoid_e1000::init::init;
use paranoid_e1000::model::{Behaviour, Harness, SimE1000, Wire};
use paranoid_e1000::Config;

fn ready() -> (Harness, SimE1000) {
    // QEMU timing: the model moves descriptors at once, so the time measured is
    // the driver's plus the model's bookkeeping, not simulated waiting.
    let mut h = Harness::build(
        paranoid::sim::SimClock::new(),
        Wire::loopback(),
        0,
        Behaviour::qemu(),
        false,
    );
    let driver = h.driver(Config::default()).expect("rings fit");
    let nic = init(driver, &h.clock).expect("init").device.into_inner();
    (h, nic)
}

fn frame(mac: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = mac.to_vec();
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(len, 0x5a);
    f
}

fn checked(nic: &mut SimE1000, h: &Harness, f: &[u8], buf: &mut [u8]) -> usize {
    let d = Deadline::after(&h.clock, Duration::from_millis(10));
    nic.send(f, d).expect("send");
    nic.receive_wait(buf, d).expect("receive")
}

fn unchecked(nic: &mut SimE1000, h: &Harness, f: &[u8], buf: &mut [u8]) -> usize {
    let d = Deadline::after(&h.clock, Duration::from_millis(10));
    nic.send_unchecked(f, d).expect("send");
    nic.receive_wait_unchecked(buf, d).expect("receive")
}

fn bench(c: &mut Criterion) {
    for len in [60usize, 1514] {
        let (h, mut nic) = ready();
        let f = frame(nic.mac().0, len);
        let mut buf = vec![0u8; 2048];
        c.bench_function(&format!("e1000 frame {len} B checked"), |b| {
            b.iter(|| black_box(checked(&mut nic, &h, black_box(&f), &mut buf)))
        });
        c.bench_function(&format!("e1000 frame {len} B unchecked"), |b| {
            b.iter(|| black_box(unchecked(&mut nic, &h, black_box(&f), &mut buf)))
        });
    }
}

/// Interleaved rounds of both variants on one NIC; the minimum per-frame time
/// of each (least disturbed by the shared machine) gives the ratio.
fn ab_ratio() {
    for len in [60usize, 1514] {
        let (h, mut nic) = ready();
        let f = frame(nic.mac().0, len);
        let mut buf = vec![0u8; 2048];
        let (mut best_c, mut best_u) = (f64::MAX, f64::MAX);
        let per_round = 2_000;
        for _ in 0..30 {
            let t = Instant::now();
            for _ in 0..per_round {
                black_box(checked(&mut nic, &h, &f, &mut buf));
            }
            best_c = best_c.min(t.elapsed().as_nanos() as f64 / per_round as f64);
            let t = Instant::now();
            for _ in 0..per_round {
                black_box(unchecked(&mut nic, &h, &f, &mut buf));
            }
            best_u = best_u.min(t.elapsed().as_nanos() as f64 / per_round as f64);
        }
        println!(
            "e1000 {len}-byte frame round trip: checked {best_c:.0} ns, unchecked {best_u:.0} ns, overhead {:+.1}%",
            (best_c / best_u - 1.0) * 100.0
        );
    }
}

/// Instruction-count mode for callgrind: `E1000_BENCH_MODE=checked|unchecked`,
/// `E1000_BENCH_LEN` bytes, `E1000_BENCH_FRAMES` round trips, nothing else. Run
/// it with 0 and with N frames: the difference divided by N is the per-frame
/// instruction count, free of the set-up and of timing noise.
fn instructions(mode: &str) {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (len, frames) = (
        env("E1000_BENCH_LEN", 1514),
        env("E1000_BENCH_FRAMES", 10_000),
    );
    let (h, mut nic) = ready();
    let f = frame(nic.mac().0, len);
    let mut buf = vec![0u8; 2048];
    for _ in 0..frames {
        let n = match mode {
            "unchecked" => unchecked(&mut nic, &h, black_box(&f), &mut buf),
            _ => checked(&mut nic, &h, black_box(&f), &mut buf),
        };
        black_box(n);
    }
}

/// Whether a (demangled) function belongs to the simulated NIC: its path, or
/// for `<T as Trait>::f` its type `T`, is under `paranoid_e1000::model` (a
/// driver function instantiated with a model type is the driver's).
fn is_model(function: &str) -> bool {
    let own = match function.strip_prefix('<') {
        Some(rest) => rest.split(" as ").next().unwrap_or(rest),
        None => function,
    };
    own.starts_with("paranoid_e1000::model::")
}

/// Instructions spent in the model, from a callgrind profile written with
/// `--compress-strings=no --compress-pos=no`: the inclusive cost of every call
/// from a function outside the model into one inside it.
fn model_share(profile: &str) -> u64 {
    let (mut caller, mut callee, mut cost_next, mut model) = ("", "", false, 0);
    for line in profile.lines() {
        if let Some(f) = line.strip_prefix("fn=") {
            caller = f;
        } else if let Some(f) = line.strip_prefix("cfn=") {
            callee = f;
        } else if line.starts_with("calls=") {
            cost_next = true;
        } else if cost_next {
            cost_next = false;
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

/// (all, model) instructions of the instruction mode under callgrind, or
/// `None` without valgrind.
fn counted(mode: &str, len: usize, frames: usize) -> Option<(u64, u64)> {
    let exe = std::env::current_exe().ok()?;
    let file = std::env::temp_dir().join(format!(
        "paranoid-e1000-frame-{}-{mode}-{len}-{frames}.callgrind",
        std::process::id()
    ));
    let out = std::process::Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--compress-strings=no",
            "--compress-pos=no",
        ])
        .arg(format!("--callgrind-out-file={}", file.display()))
        .arg(exe)
        .env_remove("E1000_BENCH")
        .env("E1000_BENCH_MODE", mode)
        .env("E1000_BENCH_LEN", len.to_string())
        .env("E1000_BENCH_FRAMES", frames.to_string())
        .output()
        .ok()?;
    let all = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|v| v.trim().parse().ok())?;
    let profile = std::fs::read_to_string(&file).ok()?;
    let _ = std::fs::remove_file(&file);
    Some((all, model_share(&profile)))
}

/// Prints instructions per round trip, all, the model's and the driver's own.
fn instruction_table() {
    const FRAMES: usize = 5_000;
    println!(
        "e1000 frame round trip (send, loop back, receive), simulated NIC, instructions per frame:"
    );
    for len in [60usize, 1514] {
        let per = |mode: &str| -> Option<(f64, f64)> {
            let zero = counted(mode, len, 0)?;
            let n = counted(mode, len, FRAMES)?;
            let d = |a: u64, b: u64| b.saturating_sub(a) as f64 / FRAMES as f64;
            Some((d(zero.0, n.0), d(zero.1, n.1)))
        };
        match (per("checked"), per("unchecked")) {
            (Some((c, cm)), Some((u, um))) => {
                let (cd, ud) = (c - cm, u - um);
                println!(
                    "  {len:>4} B  all        checked {c:>7.0}   unchecked {u:>7.0}   ratio {:.3}",
                    c / u
                );
                println!("  {len:>4} B  model      checked {cm:>7.0}   unchecked {um:>7.0}");
                println!("  {len:>4} B  driver own checked {cd:>7.0}   unchecked {ud:>7.0}   ratio {:.3} ({:+.0} instructions of validation)", cd / ud, cd - ud);
            }
            _ => println!("  {len:>4} B  (valgrind not found: skipped)"),
        }
    }
}

fn main() {
    if let Ok(mode) = std::env::var("E1000_BENCH_MODE") {
        instructions(&mode);
        return;
    }
    if std::env::var("E1000_BENCH").as_deref() == Ok("instructions") {
        instruction_table();
        return;
    }
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    bench(&mut c);
    c.final_summary();
    ab_ratio();
}
