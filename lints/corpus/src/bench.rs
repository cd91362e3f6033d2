//! `lint-bench`: `cargo paranoid` against `cargo clippy` on the same real
//! multi-crate workspace, in one run, both timed as processes end to end.
//!
//! ```text
//! cargo run --release -p paranoid-lint-corpus --bin lint-bench -- WORKSPACE [--samples N] [--touch FILE]
//! ```
//!
//! Four cases, taken in turn for each sample (so load on the machine falls on
//! all of them alike), at least 5 samples each:
//! - `paranoid cold`: a fresh `cargo-paranoid paranoid` process in WORKSPACE
//!   (workspace discovery included; OS file caches warm);
//! - `paranoid touched`: the same after `touch`ing one file;
//! - `clippy clean`: `cargo clippy --workspace` after removing its target
//!   directory (dependencies fetched beforehand, compiled again every time);
//! - `clippy touched`: `cargo clippy --workspace` after touching the same file.
//!
//! Prints each case's median, minimum and maximum wall time, and the ratios of
//! the medians (clippy / paranoid). Clippy uses its own target directory under
//! the system temp dir so the workspace's own `target/` is left alone.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Instant, SystemTime};

struct Options {
    workspace: PathBuf,
    samples: usize,
    touch: Option<PathBuf>,
    bin: PathBuf,
}

fn options() -> Result<Options, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let mut o = Options {
        workspace: PathBuf::new(),
        samples: 5,
        touch: None,
        bin: target
            .join("release")
            .join(format!("cargo-paranoid{}", std::env::consts::EXE_SUFFIX)),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--samples" => o.samples = value()?.parse().map_err(|e| format!("--samples: {e}"))?,
            "--touch" => o.touch = Some(value()?.into()),
            "--bin" => o.bin = value()?.into(),
            w if !w.starts_with('-') && o.workspace.as_os_str().is_empty() => {
                o.workspace = w.into()
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if o.workspace.as_os_str().is_empty() {
        return Err(
            "usage: lint-bench WORKSPACE [--samples N] [--touch FILE] [--bin CARGO_PARANOID]"
                .into(),
        );
    }
    if o.samples < 5 {
        return Err("at least 5 samples".into());
    }
    o.workspace = o
        .workspace
        .canonicalize()
        .map_err(|e| format!("{}: {e}", o.workspace.display()))?;
    Ok(o)
}

/// The first `src/lib.rs` of a member, in directory order: the file touched.
fn default_touch(ws: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(ws)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|d| d.join("src").join("lib.rs"))
        .find(|p| p.is_file())
}

fn touch(file: &Path) -> Result<(), String> {
    let f = std::fs::File::options()
        .append(true)
        .open(file)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    f.set_modified(SystemTime::now())
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// Runs `c` to completion and returns its wall time; a failure is an error.
fn time(mut c: Command, what: &str) -> Result<f64, String> {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let out = c.output().map_err(|e| format!("{what}: {e}"))?;
    let s = t.elapsed().as_secs_f64();
    // cargo-paranoid exits 1 when a denied lint fires: still a complete run.
    if !matches!(out.status.code(), Some(0 | 1)) {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{what}: {} {}",
            out.status,
            err.lines().last().unwrap_or("")
        ));
    }
    Ok(s)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn run(o: &Options) -> Result<(), String> {
    let touched = match &o.touch {
        Some(t) => o.workspace.join(t),
        None => default_touch(&o.workspace).ok_or("no member with src/lib.rs: pass --touch")?,
    };
    let clippy_target =
        std::env::temp_dir().join(format!("lint-bench-clippy-{}", std::process::id()));
    let paranoid = || {
        let mut c = Command::new(&o.bin);
        c.current_dir(&o.workspace).arg("paranoid");
        c
    };
    let clippy = || {
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c.current_dir(&o.workspace)
            .env("CARGO_TARGET_DIR", &clippy_target)
            .args(["clippy", "--workspace", "--offline", "--quiet"]);
        c
    };
    // Fetch once (not timed) so "from clean" measures compiling, not the network.
    let mut f = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    f.current_dir(&o.workspace).args(["fetch", "--quiet"]);
    time(f, "cargo fetch")?;
    println!(
        "workspace {} ({}), touching {}, {} samples per case, alternating",
        o.workspace.display(),
        o.bin.display(),
        touched.display(),
        o.samples
    );
    let names = [
        "paranoid cold",
        "paranoid touched",
        "clippy clean",
        "clippy touched",
    ];
    let mut t: [Vec<f64>; 4] = Default::default();
    for i in 0..o.samples {
        let _ = std::fs::remove_dir_all(&clippy_target);
        t[2].push(time(clippy(), "clippy clean")?);
        t[0].push(time(paranoid(), "paranoid")?);
        touch(&touched)?;
        t[3].push(time(clippy(), "clippy touched")?);
        touch(&touched)?;
        t[1].push(time(paranoid(), "paranoid touched")?);
        println!(
            "sample {}: paranoid {:.3} s, touched {:.3} s; clippy clean {:.2} s, touched {:.2} s",
            i + 1,
            t[0][i],
            t[1][i],
            t[2][i],
            t[3][i]
        );
    }
    let _ = std::fs::remove_dir_all(&clippy_target);
    println!();
    println!(
        "{:<18} {:>9} {:>9} {:>9}",
        "case", "median s", "min s", "max s"
    );
    for (n, v) in names.iter().zip(&t) {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        println!("{n:<18} {:>9.3} {min:>9.3} {max:>9.3}", median(v));
    }
    let m: Vec<f64> = t.iter().map(|v| median(v)).collect();
    println!();
    println!(
        "clippy from clean / paranoid cold: {:.0}x (target 50x)",
        m[2] / m[0].max(1e-9)
    );
    println!(
        "clippy after a one-file change / paranoid after the same change: {:.0}x (target 20x)",
        m[3] / m[1].max(1e-9)
    );
    Ok(())
}

fn main() -> ExitCode {
    match options().and_then(|o| run(&o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lint-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
