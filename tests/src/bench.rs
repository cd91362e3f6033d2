//! `cargo xtask dump-bench` (run as `paranoid-harness dump-bench`): the dump's
//! throughput against the raw writer, and the compressor candidates.
//!
//! Throughput: the recovery kernel's dump and the raw writer
//! (`examples/kernels/raw-writer`: the same RAM, namespace, extent, queue
//! depth and transfer size, no format, CRC, zero-page scan or compression),
//! each booted from kernel A's panic path, at 256 MiB and at 2 GiB of guest
//! RAM, alternated (dump, raw, dump, raw, ...) one run at a time, several
//! rounds; the table gives every sample, the medians and the ratio
//! dump / raw of MiB of RAM per second. Both run on the `no-iommu` machine
//! profile: the raw writer does no IOMMU takeover, and the comparison must
//! be on the same machine. Every dump run is verified (`paranoid dump
//! verify` with the RAM layout) before its number counts.
//!
//! Codecs (`--codecs`): the `codec-bench` kernel, booted the same way on the
//! same RAM, runs each compressor candidate over kernel A's memory as the dump
//! sees it (chunks of 256 KiB, zero pages left out) and prints ratio and MiB/s.
//!
//! The host's load average is printed before and after each run: other jobs
//! on the machine move these numbers.

use std::fmt::Write as _;
use std::time::Instant;

use crate::demo::{self, Expect, Memory};
use crate::machine::{self, Machine};
use crate::{kernels, runner, show, RunReport, Scenario};

/// Guest memory sizes measured: label and bytes.
pub const SIZES: [(&str, u64); 2] = [("256m", 256 << 20), ("2g", 2 << 30)];

/// Rounds by default (each: a dump and a raw run per size).
pub const DEFAULT_ROUNDS: usize = 3;

/// The machine the throughput runs use.
pub const MACHINE: &str = "no-iommu";

/// One throughput run: the dump (`raw` false) or the raw writer, `round`-th,
/// at `bytes` of guest RAM.
pub fn rate_scenario(label: &str, bytes: u64, round: usize, raw: bool) -> Scenario {
    let kind = if raw { "raw" } else { "dump" };
    let memory = Memory {
        bytes,
        truth: false,
        layout: true,
        max_below_4g: None,
    };
    let s = demo::scenario_in(
        &format!("bench-{label}-{round}-{kind}"),
        "during-io",
        "adopt",
        1,
        memory,
    );
    if raw {
        let mut s = s.check(|out| {
            if out.field("mib_s").is_none() {
                return Err("no mib_s on the raw writer's result line".into());
            }
            // No checks on its data path, but it keeps to its extent.
            match demo::changed_outside_extent(out)? {
                0 => Ok(()),
                n => Err(format!(
                    "the raw writer changed {n} bytes outside the extent"
                )),
            }
        });
        s.initrd = Some("raw-writer".into());
        s
    } else {
        s.check(move |out| {
            let text = demo::check_dump_of(out, memory, Expect::Verified)?;
            std::fs::write(out.dir.file("bench-verify.txt"), text).map_err(|e| e.to_string())
        })
    }
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// The host's 1-minute load average.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// A sample: MiB/s of RAM from a run's result line.
fn mib_s(r: &RunReport) -> Option<f64> {
    let out = r.output.as_ref()?;
    let bytes: f64 = out.field("dump_bytes")?.parse().ok()?;
    let ms: f64 = out.field("dump_ms")?.parse().ok()?;
    (ms > 0.0).then(|| bytes / f64::from(1 << 20) / (ms / 1000.0))
}

/// Parses `dump-bench` arguments: `--rounds N`, `--codecs` (the codec table
/// only), `--throughput` (the throughput table only).
///
/// # Errors
///
/// An unknown word or a bad count.
pub fn parse_args(args: &[String]) -> Result<(usize, bool, bool), String> {
    let (mut rounds, mut codecs, mut throughput) = (DEFAULT_ROUNDS, true, true);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--rounds needs a count > 0")?;
            }
            "--codecs" => throughput = false,
            "--throughput" => codecs = false,
            other => return Err(format!("dump-bench: unknown argument `{other}`")),
        }
    }
    if !codecs && !throughput {
        return Err("--codecs and --throughput exclude each other".into());
    }
    Ok((rounds, throughput, codecs))
}

/// Runs the benchmark and prints its tables (also kept in
/// `tests/out/dump-bench.txt`).
///
/// # Errors
///
/// Missing prerequisites, a failed build, a failed run.
pub fn run(args: &[String]) -> Result<(), String> {
    let (rounds, throughput, codecs) = parse_args(args)?;
    let m = machine::select(Some(MACHINE), None, &[])?;
    show::ensure_qemu_prereqs()?;
    kernels::build()?;
    let started = Instant::now();
    let mut text = String::new();
    if throughput {
        text.push_str(&throughput_table(&m, rounds)?);
    }
    if codecs {
        text.push_str(&codec_table(&m, rounds)?);
    }
    let _ = writeln!(
        text,
        "\n(all runs one at a time on machine `{MACHINE}`, {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(crate::out_dir()).map_err(|e| e.to_string())?;
    std::fs::write(crate::out_dir().join("dump-bench.txt"), &text).map_err(|e| e.to_string())?;
    Ok(())
}

fn throughput_table(m: &Machine, rounds: usize) -> Result<String, String> {
    let accel = crate::qemu::accelerator();
    let mut samples: Vec<(usize, bool, f64)> = Vec::new();
    let mut text = String::new();
    let say = |text: &mut String, line: String| {
        println!("{line}");
        text.push_str(&line);
        text.push('\n');
    };
    say(
        &mut text,
        "dump vs raw writer: MiB/s of guest RAM (run, kind, memory, MiB/s, load before -> after)"
            .into(),
    );
    let mut zero_lines = Vec::new();
    for round in 1..=rounds {
        for (i, (label, bytes)) in SIZES.iter().enumerate() {
            for raw in [false, true] {
                let s = rate_scenario(label, *bytes, round, raw).on(m);
                let before = load();
                let r = runner::run_one(&s, accel);
                let after = load();
                if !r.verdict.passed() {
                    return Err(format!(
                        "{}: {:?} (see tests/out/{}/serial.log)",
                        s.name, r.verdict, s.name
                    ));
                }
                let v = mib_s(&r).ok_or(format!("{}: no dump_bytes/dump_ms", s.name))?;
                samples.push((i, raw, v));
                say(
                    &mut text,
                    format!(
                        "  {round} {:<4} {label:<5} {v:>8.1}   load {before} -> {after}",
                        if raw { "raw" } else { "dump" }
                    ),
                );
                if !raw && round == 1 {
                    if let Some(out) = &r.output {
                        let verify = std::fs::read_to_string(out.dir.file("bench-verify.txt"))
                            .unwrap_or_default();
                        for l in verify.lines().filter(|l| {
                            l.contains("compression :")
                                || l.contains("non-zero    :")
                                || l.contains("zero pages  :")
                        }) {
                            zero_lines.push(format!("  {label}: {}", l.trim()));
                        }
                    }
                }
            }
        }
    }
    say(
        &mut text,
        format!("\nmedians of {rounds} ({MACHINE}, queue depth 8):"),
    );
    say(
        &mut text,
        "  memory   dump MiB/s   raw MiB/s   dump/raw".into(),
    );
    for (i, (label, _)) in SIZES.iter().enumerate() {
        let pick = |raw: bool| -> Vec<f64> {
            samples
                .iter()
                .filter(|(j, r, _)| *j == i && *r == raw)
                .map(|(_, _, v)| *v)
                .collect()
        };
        let (d, r) = (median(&pick(false)), median(&pick(true)));
        let ratio = match (d, r) {
            (Some(d), Some(r)) if r > 0.0 => format!("{:.2}", d / r),
            _ => "?".into(),
        };
        say(
            &mut text,
            format!(
                "  {label:<8} {:>10.1}   {:>9.1}   {ratio:>8}",
                d.unwrap_or(f64::NAN),
                r.unwrap_or(f64::NAN)
            ),
        );
    }
    if !zero_lines.is_empty() {
        say(
            &mut text,
            "\nthe dump's encoding (round 1, from `paranoid dump verify`):".into(),
        );
        for l in zero_lines {
            say(&mut text, l);
        }
    }
    Ok(text)
}

/// The compressor candidates: result-line prefix and name.
pub const CODECS: [(&str, &str); 3] = [
    ("lz4", "lz4_flex 0.14 (block)"),
    ("deflate1", "miniz_oxide 0.9 (DEFLATE level 1)"),
    ("zstd1", "ruzstd 0.9 (zstd Fastest)"),
];

/// One codec-bench run at 256 MiB: the `codec-bench` kernel in the recovery
/// kernel's place.
pub fn codec_scenario(round: usize) -> Scenario {
    let memory = Memory {
        bytes: 256 << 20,
        truth: false,
        layout: false,
        max_below_4g: None,
    };
    let mut s = demo::scenario_in(
        &format!("bench-codecs-{round}"),
        "during-io",
        "adopt",
        1,
        memory,
    )
    .check(|out| match out.field("ram_bytes") {
        Some(_) => Ok(()),
        None => Err("no ram_bytes on the codec bench's result line".into()),
    });
    s.initrd = Some("codec-bench".into());
    s
}

/// A codec row from one run: (ratio of non-zero bytes, ratio of all RAM
/// with zero pages recorded, MiB/s of non-zero input).
pub fn codec_row(field: impl Fn(&str) -> Option<u64>, codec: &str) -> Option<(f64, f64, f64)> {
    let ram = field("ram_bytes")? as f64;
    let nonzero = field("nonzero_bytes")? as f64;
    let out = field(&format!("{codec}_out"))? as f64;
    let ns = field(&format!("{codec}_ns"))? as f64;
    if out <= 0.0 || ns <= 0.0 {
        return None;
    }
    let mib = f64::from(1 << 20);
    Some((nonzero / out, ram / out, nonzero / mib / (ns / 1e9)))
}

fn codec_table(m: &Machine, rounds: usize) -> Result<String, String> {
    let accel = crate::qemu::accelerator();
    let mut text = String::new();
    let mut say = |line: String| {
        println!("{line}");
        text.push_str(&line);
        text.push('\n');
    };
    say(format!(
        "\ncompressors in the recovery kernel's place (codec-bench kernel, 256 MiB, {rounds} runs, candidates alternated chunk by chunk):"
    ));
    let mut rows: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); CODECS.len()];
    let mut sizes = String::new();
    for round in 1..=rounds {
        let s = codec_scenario(round).on(m);
        let before = load();
        let r = runner::run_one(&s, accel);
        let after = load();
        if !r.verdict.passed() {
            return Err(format!(
                "{}: {:?} (see tests/out/{}/serial.log)",
                s.name, r.verdict, s.name
            ));
        }
        let out = r.output.as_ref().ok_or("no output")?;
        let field = |k: &str| out.field(k).and_then(|v| v.parse::<u64>().ok());
        say(format!("  run {round}: load {before} -> {after}"));
        if round == 1 {
            sizes = format!(
                "  RAM {:.1} MiB, non-zero pages {:.1} MiB",
                field("ram_bytes").unwrap_or(0) as f64 / f64::from(1 << 20),
                field("nonzero_bytes").unwrap_or(0) as f64 / f64::from(1 << 20)
            );
        }
        for (i, (codec, _)) in CODECS.iter().enumerate() {
            let row = codec_row(field, codec).ok_or(format!("{}: no {codec} fields", s.name))?;
            rows[i].push(row);
        }
    }
    say(sizes);
    say(
        "  codec                               ratio non-zero  ratio RAM  MiB/s (non-zero input)"
            .into(),
    );
    for (i, (_, name)) in CODECS.iter().enumerate() {
        let col = |f: fn(&(f64, f64, f64)) -> f64| {
            median(&rows[i].iter().map(f).collect::<Vec<_>>()).unwrap_or(f64::NAN)
        };
        say(format!(
            "  {name:<36} {:>14.3} {:>10.2} {:>15.1}",
            col(|r| r.0),
            col(|r| r.1),
            col(|r| r.2)
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args(&[]).unwrap(), (3, true, true));
        assert_eq!(
            parse_args(&["--rounds".into(), "5".into(), "--throughput".into()]).unwrap(),
            (5, true, false)
        );
        assert!(parse_args(&["--rounds".into(), "0".into()]).is_err());
        assert!(parse_args(&["--codecs".into(), "--throughput".into()]).is_err());
        assert!(parse_args(&["--nope".into()]).is_err());
    }

    #[test]
    fn the_raw_run_boots_the_raw_writer_and_the_dump_the_recovery_kernel() {
        let raw = rate_scenario("256m", 256 << 20, 1, true);
        let dump = rate_scenario("256m", 256 << 20, 1, false);
        assert_eq!(raw.initrd.as_deref(), Some("raw-writer"));
        assert_eq!(dump.initrd.as_deref(), Some("recovery-kernel"));
        assert_eq!(raw.cmdline, dump.cmdline);
        assert_eq!(raw.memory, dump.memory);
        assert_eq!(codec_scenario(1).initrd.as_deref(), Some("codec-bench"));
    }

    #[test]
    fn codec_rows_from_result_fields() {
        let fields = [
            ("ram_bytes", 200u64 << 20),
            ("nonzero_bytes", 40 << 20),
            ("gather_ns", 1_000_000_000),
            ("lz4_out", 20 << 20),
            ("lz4_ns", 1_000_000_000),
        ];
        let field = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        assert_eq!(codec_row(field, "lz4"), Some((2.0, 10.0, 40.0)));
        assert!(codec_row(field, "zstd1").is_none());
    }
}
