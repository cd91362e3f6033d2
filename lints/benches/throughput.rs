//! Throughput: `cargo paranoid` over this workspace (and the registry sources) against
//! `cargo clippy` from clean on the same workspace, in the same run.
//!
//! `cargo bench -p cargo-paranoid --bench throughput` (set `PARANOID_BENCH_SKIP_CLIPPY=1` to
//! skip the clippy half; `PARANOID_BENCH_ROOT=DIR` to measure another workspace). Reports wall
//! time, MB/s of source, the CPU/wall ratio (how many cores were busy) and the speed-up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cargo_paranoid::{cli, lint_package, Config, PackageInfo, PackageInput, Session, Stats};

/// User+system CPU seconds of this process, from `/proc/self/stat` (Linux).
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn lint_all(pkgs: &[PackageInput], session: &Session) -> (Stats, usize) {
    let mut stats = Stats::default();
    let mut n = 0;
    for p in pkgs {
        let (d, s) = lint_package(session, p);
        stats += s;
        n += d.len();
    }
    (stats, n)
}

fn measure(label: &str, pkgs: &[PackageInput], session: &Session) -> f64 {
    let mut best = f64::MAX;
    let mut last = (Stats::default(), 0);
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    for _ in 0..5 {
        let t = Instant::now();
        last = lint_all(pkgs, session);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let wall = t0.elapsed().as_secs_f64();
    let cores = cpu_secs().zip(cpu0).map(|(a, b)| (a - b) / wall);
    println!(
        "{label}: {} files, {:.2} MB, {} diagnostics, best of 5 {:.3} s = {:.1} MB/s on {} threads (cpu/wall {})",
        last.0.files,
        last.0.bytes as f64 / 1e6,
        last.1,
        best,
        last.0.bytes as f64 / 1e6 / best,
        cargo_paranoid::threads(),
        cores.map(|c| format!("{c:.2}")).unwrap_or_else(|| "n/a".into()),
    );
    best
}

fn main() {
    let root = std::env::var_os("PARANOID_BENCH_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    let root = root.canonicalize().unwrap_or(root);
    let session = Session::new(Config::with_defaults(), &[]).expect("levels");
    let t = Instant::now();
    let (_, pkgs) = cli::workspace_packages_in(&root).expect("cargo metadata");
    println!(
        "cargo metadata: {:.3} s ({} packages; once, not in the timings below)",
        t.elapsed().as_secs_f64(),
        pkgs.len()
    );
    let ours = measure("cargo paranoid, workspace", &pkgs, &session);

    if let Some(reg) = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cargo/registry/src"))
        .filter(|p| p.is_dir())
    {
        let files: Vec<(PathBuf, PathBuf)> = walkdir::WalkDir::new(&reg)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "rs"))
            .map(|e| (e.path().to_path_buf(), e.path().to_path_buf()))
            .collect();
        let pkg = PackageInput {
            info: Arc::new(PackageInfo {
                name: "registry".into(),
                ..Default::default()
            }),
            files,
        };
        measure("cargo paranoid, registry sources", &[pkg], &session);
    }

    if std::env::var_os("PARANOID_BENCH_SKIP_CLIPPY").is_some() {
        return;
    }
    let target = std::env::temp_dir().join(format!("paranoid-bench-clippy-{}", std::process::id()));
    let t = Instant::now();
    let out = std::process::Command::new("cargo")
        .current_dir(&root)
        .args(["clippy", "--workspace", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output();
    let clippy = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&target);
    match out {
        Ok(o) if o.status.success() => println!(
            "cargo clippy --workspace from clean: {clippy:.1} s; cargo paranoid is {:.0}x faster",
            clippy / ours
        ),
        Ok(o) => println!(
            "cargo clippy failed ({}) after {clippy:.1} s:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .take(8)
                .collect::<Vec<_>>()
                .join("\n")
        ),
        Err(e) => println!("cargo clippy could not run: {e}"),
    }
}
