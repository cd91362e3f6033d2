//! `lint-bench`: the `cargo paranoid` binary against `cargo clippy` on the same real
//! multi-crate workspace, in one run, both timed as processes end to end.
//!
//! ```text
//! cargo xtask lint-bench [--samples N] [--touch FILE]       # our workspace, drivers/nvme/src/lib.rs
//! cargo run --release -p paranoid-lint-corpus --bin lint-bench -- WORKSPACE [--samples N] [--touch FILE] [--bin CARGO_PARANOID]
//! ```
//!
//! Four cases per sample, at least 5 samples each; within a sample the two tools take
//! turns going first (clippy first in odd samples, paranoid first in even ones), so load
//! on the machine falls on both alike:
//! - `paranoid cold`: a fresh `cargo-paranoid paranoid` process in WORKSPACE with its
//!   cache directory removed (workspace discovery included; OS file caches warm);
//! - `paranoid 1-file edit`: the same after editing one file (a comment appended: new
//!   content, new size, new mtime), with the cache of the previous run in place;
//! - `clippy clean`: `cargo clippy --workspace --all-targets` after removing its target
//!   directory (dependencies fetched beforehand, compiled again every time);
//! - `clippy 1-file edit`: the same after the same kind of edit to the same file.
//!
//! Prints each case's median, minimum and maximum wall time, the ratios of the medians
//! (clippy / paranoid) and the load average (`/proc/loadavg`) before and after. Both tools
//! get target directories of their own under the system temp dir (the workspace's `target/`
//! is left alone), and the edited file is restored at the end, also when a run fails.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

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

/// Restores the edited file's original bytes when dropped.
struct Restore {
    file: PathBuf,
    original: Vec<u8>,
}

impl Restore {
    fn new(file: &Path) -> Result<Self, String> {
        let original = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(Self {
            file: file.to_path_buf(),
            original,
        })
    }

    /// A one-file change: the original with a comment naming `what` appended.
    fn edit(&self, what: &str) -> Result<(), String> {
        let mut bytes = self.original.clone();
        bytes.extend_from_slice(format!("\n// lint-bench edit: {what}\n").as_bytes());
        std::fs::write(&self.file, bytes).map_err(|e| format!("{}: {e}", self.file.display()))
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(&self.file, &self.original) {
            eprintln!("lint-bench: cannot restore {}: {e}", self.file.display());
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
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
    let tmp = std::env::temp_dir().join(format!("lint-bench-{}", std::process::id()));
    let clippy_target = tmp.join("clippy");
    let paranoid_target = tmp.join("paranoid");
    let paranoid = || {
        let mut c = Command::new(&o.bin);
        c.current_dir(&o.workspace)
            .env("CARGO_TARGET_DIR", &paranoid_target)
            .env_remove("PARANOID_NO_CACHE")
            .arg("paranoid");
        c
    };
    let clippy = || {
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c.current_dir(&o.workspace)
            .env("CARGO_TARGET_DIR", &clippy_target)
            .args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--offline",
                "--quiet",
            ]);
        c
    };
    // Fetch once (not timed) so "from clean" measures compiling, not the network.
    let mut f = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    f.current_dir(&o.workspace).args(["fetch", "--quiet"]);
    time(f, "cargo fetch")?;
    let restore = Restore::new(&touched)?;
    let load_before = loadavg();
    println!(
        "workspace {} ({}), editing {}, {} samples per case, order alternating",
        o.workspace.display(),
        o.bin.display(),
        touched.display(),
        o.samples
    );
    println!("load average before: {load_before} (`uptime`; 2 cores here)");
    let names = [
        "paranoid cold",
        "paranoid 1-file edit",
        "clippy clean",
        "clippy 1-file edit",
    ];
    let mut t: [Vec<f64>; 4] = Default::default();
    for i in 0..o.samples {
        let clippy_sample = |t: &mut [Vec<f64>; 4]| -> Result<(), String> {
            let _ = std::fs::remove_dir_all(&clippy_target);
            restore.edit(&format!("{i} clippy base"))?;
            t[2].push(time(clippy(), "clippy clean")?);
            restore.edit(&format!("{i} clippy"))?;
            t[3].push(time(clippy(), "clippy 1-file edit")?);
            Ok(())
        };
        let paranoid_sample = |t: &mut [Vec<f64>; 4]| -> Result<(), String> {
            let _ = std::fs::remove_dir_all(&paranoid_target);
            restore.edit(&format!("{i} paranoid base"))?;
            t[0].push(time(paranoid(), "paranoid cold")?);
            restore.edit(&format!("{i} paranoid"))?;
            t[1].push(time(paranoid(), "paranoid 1-file edit")?);
            Ok(())
        };
        if i % 2 == 0 {
            clippy_sample(&mut t)?;
            paranoid_sample(&mut t)?;
        } else {
            paranoid_sample(&mut t)?;
            clippy_sample(&mut t)?;
        }
        println!(
            "sample {}: paranoid cold {:.3} s, 1-file edit {:.3} s; clippy clean {:.2} s, 1-file edit {:.2} s",
            i + 1,
            t[0][i],
            t[1][i],
            t[2][i],
            t[3][i]
        );
    }
    drop(restore);
    let _ = std::fs::remove_dir_all(&tmp);
    println!();
    println!(
        "| {:<20} | {:>9} | {:>9} | {:>9} |",
        "case", "median s", "min s", "max s"
    );
    println!("| {:-<20} | {:->9} | {:->9} | {:->9} |", "", "", "", "");
    for (n, v) in names.iter().zip(&t) {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        println!("| {n:<20} | {:>9.3} | {min:>9.3} | {max:>9.3} |", median(v));
    }
    let m: Vec<f64> = t.iter().map(|v| median(v)).collect();
    println!();
    println!(
        "clippy from clean / paranoid cold: {:.0}x (target 50x)",
        m[2] / m[0].max(1e-9)
    );
    println!(
        "clippy after a one-file edit / paranoid after the same edit: {:.0}x (target 20x)",
        m[3] / m[1].max(1e-9)
    );
    println!("load average before: {load_before}, after: {}", loadavg());
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
