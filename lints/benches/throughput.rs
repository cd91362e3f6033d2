//! Throughput: `cargo paranoid` over this workspace (and the registry sources) against
//! `cargo clippy` from clean on the same workspace, in the same run.
//!
//! `cargo bench -p cargo-paranoid --bench throughput` (set `PARANOID_BENCH_SKIP_CLIPPY=1` to
//! skip the clippy half). Reports wall time, MB/s of source, the CPU/wall ratio (how many
//! cores were busy) and the speed-up over clippy.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cargo_paranoid::{cli, lint_package, Config, Session, Stats};

/// User+system CPU seconds of this process, from `/proc/self/stat` (Linux).
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn lint_workspace(root: &Path, session: &Session) -> (Stats, usize) {
    let (_, pkgs) = cli::workspace_packages_in(root).expect("cargo metadata");
    let mut stats = Stats::default();
    let mut n = 0;
    for p in &pkgs {
        let (d, s) = lint_package(session, p);
        stats += s;
        n += d.len();
    }
    (stats, n)
}

fn measure(label: &str, f: impl Fn() -> (Stats, usize)) -> f64 {
    let mut best = f64::MAX;
    let mut last = (Stats::default(), 0);
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    for _ in 0..5 {
        let t = Instant::now();
        last = f();
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
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap_or(root);
    let session = Session::new(Config::with_defaults(), &[]).expect("levels");
    let ours = measure("cargo paranoid, this workspace", || {
        lint_workspace(&root, &session)
    });

    if let Some(reg) = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cargo/registry/src"))
        .filter(|p| p.is_dir())
    {
        let files = cli::rust_files(&reg, &reg);
        let pkg = cargo_paranoid::PackageInput {
            info: std::sync::Arc::new(cargo_paranoid::PackageInfo {
                name: "registry".into(),
                ..Default::default()
            }),
            files,
        };
        measure("cargo paranoid, registry sources", || {
            let (d, s) = lint_package(&session, &pkg);
            (s, d.len())
        });
    }

    if std::env::var_os("PARANOID_BENCH_SKIP_CLIPPY").is_some() {
        return;
    }
    let target = std::env::temp_dir().join(format!("paranoid-bench-clippy-{}", std::process::id()));
    let t = Instant::now();
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&root)
            .args(["clippy", "--workspace", "--quiet"])
            .env("CARGO_TARGET_DIR", &target)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    let clippy = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&target);
    match status {
        Ok(s) => println!(
            "cargo clippy --workspace from clean: {clippy:.1} s (exit {s}); cargo paranoid is {:.0}x faster",
            clippy / ours
        ),
        Err(e) => println!("cargo clippy could not run: {e}"),
    }
}
