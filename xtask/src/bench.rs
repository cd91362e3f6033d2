//! `cargo xtask bench-qemu [--runs N]`: the QEMU timings of the README, each
//! from N boots (default 10) in alternating order, as median and spread.
//!
//! Round `i` runs the `handoff` scenario and the main job (`crash-recovery`),
//! handoff first in even rounds and the main job first in odd ones, one QEMU
//! at a time (`PARANOID_QEMU_JOBS=1`), so neither always gets the warmer host.
//! From each run's result line (`tests/out/<scenario>/serial.log`):
//!
//! - `handoff`: the same NVMe controller brought up from enabled with queues
//!   live (the any-state path, `nvme_any_state_us`) and, after an orderly
//!   shutdown, from quiet (`nvme_fast_us`), and their ratio per run. Inside one
//!   boot the order alternates too: `handoff` measures the any-state path
//!   first, `handoff-fast-first` the fast path first (rounds take them in
//!   turn, and every four rounds cover each order of scenarios and of paths);
//! - `crash-recovery`: crash to dump complete (`crash_to_dump_ms`) and the dump
//!   rate (`mib_s`).
//!
//! Every run must pass its scenario's checks; a failed run stops the bench.

use std::fs;
use std::path::Path;

/// The handoff scenarios: the any-state path first, and the fast path first.
const HANDOFFS: [&str; 2] = ["handoff", "handoff-fast-first"];
/// The main job.
const MAIN_JOB: &str = "crash-recovery";

/// The scenarios of round `round`: the handoff of that round's path order,
/// then the main job, or the other way round (every four rounds hold each
/// combination once).
fn round_order(round: usize) -> [&'static str; 2] {
    let handoff = HANDOFFS[round % 2];
    if round % 4 < 2 {
        [handoff, MAIN_JOB]
    } else {
        [MAIN_JOB, handoff]
    }
}

/// The values of `keys` on the `PARANOID-RESULT` line of a serial log (read
/// with the schema the kernels write it with).
fn fields(serial: &str, keys: &[&str]) -> Result<Vec<f64>, String> {
    let line = serial
        .lines()
        .find(|l| paranoid_result_line::body(l).is_some())
        .ok_or("no result line")?;
    let line = paranoid_result_line::parse(line).map_err(|e| format!("result line: {e}"))?;
    keys.iter()
        .map(|k| {
            line.value::<f64>(k)
                .map_err(|e| format!("no numeric {k}= on the result line ({e})"))
        })
        .collect()
}

/// Median, minimum and maximum of `v` (not empty).
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (median, s[0], s[n - 1])
}

fn row(what: &str, unit: &str, v: &[f64]) {
    let (median, min, max) = stats(v);
    let samples: Vec<String> = v.iter().map(|x| format!("{x:.2}")).collect();
    println!(
        "  {what:<34} median {median:>9.2} {unit:<5} min {min:>9.2}  max {max:>9.2}  (n={}: {})",
        v.len(),
        samples.join(" ")
    );
}

/// Runs the bench.
///
/// # Errors
///
/// A bad argument, a scenario that fails, a result line without the numbers.
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let mut runs = 10usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--runs needs a number > 0")?
            }
            other => return Err(format!("unknown argument `{other}` (try --runs N)")),
        }
    }
    let (mut any, mut fast, mut ratio, mut dump_ms, mut mib_s) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut ratio_by_order: [Vec<f64>; 2] = [vec![], vec![]];
    for round in 0..runs {
        for name in round_order(round) {
            println!("bench-qemu: round {}/{runs}: {name}", round + 1);
            let mut c = crate::harness_command(&["qemu", name]);
            c.env("PARANOID_QEMU_JOBS", "1");
            crate::run(c)?;
            let serial = root.join("tests").join("out").join(name).join("serial.log");
            let text =
                fs::read_to_string(&serial).map_err(|e| format!("{}: {e}", serial.display()))?;
            if let Some(k) = HANDOFFS.iter().position(|h| *h == name) {
                let v = fields(&text, &["nvme_any_state_us", "nvme_fast_us"])?;
                any.push(v[0] / 1000.0);
                fast.push(v[1] / 1000.0);
                ratio.push(v[0] / v[1]);
                ratio_by_order[k].push(v[0] / v[1]);
            } else {
                let v = fields(&text, &["crash_to_dump_ms", "mib_s"])?;
                dump_ms.push(v[0] / 1000.0);
                mib_s.push(v[1]);
            }
        }
    }
    println!();
    println!("bench-qemu: {runs} rounds, order alternating (QEMU TCG, one run at a time)");
    row("handoff: NVMe any-state init", "ms", &any);
    row("handoff: NVMe init after shutdown", "ms", &fast);
    row("handoff: ratio any-state / fast", "", &ratio);
    for (k, order) in ["any-state first", "fast first"].iter().enumerate() {
        if !ratio_by_order[k].is_empty() {
            row(&format!("  ratio, {order}"), "", &ratio_by_order[k]);
        }
    }
    row("crash-recovery: crash to dump done", "s", &dump_ms);
    row("crash-recovery: dump rate", "MiB/s", &mib_s);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_medians() {
        let log = "x\nPARANOID-RESULT test=recovery verdict=pass nvme_any_state_us=1890 nvme_fast_us=1360\n";
        assert_eq!(
            fields(log, &["nvme_any_state_us", "nvme_fast_us"]).unwrap(),
            vec![1890.0, 1360.0]
        );
        assert!(fields(log, &["mib_s"]).is_err());
        assert!(fields("no line", &["mib_s"]).is_err());
        assert_eq!(stats(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }

    #[test]
    fn four_rounds_cover_every_order() {
        let rounds: Vec<_> = (0..4).map(round_order).collect();
        for handoff in HANDOFFS {
            assert!(rounds.contains(&[handoff, MAIN_JOB]));
            assert!(rounds.contains(&[MAIN_JOB, handoff]));
        }
    }
}
