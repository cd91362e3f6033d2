//! `lint-corpus`: scores `cargo paranoid` on the labelled corpus of published
//! driver crates, and checks its output with real consumers.
//!
//! ```text
//! cargo fetch --manifest-path lints/corpus/crates/Cargo.toml
//! cargo build --release -p cargo-paranoid
//! cargo run --release -p paranoid-lint-corpus -- [--check] [--multitool EXE] [--registry]
//! ```
//!
//! For each crate of `labels.toml` (found unpacked in `$CARGO_HOME/registry/src`)
//! it runs the CLI (`cargo-paranoid paranoid . -W all`) once with
//! `--message-format json`, read through `cargo_metadata`'s stream parser, and
//! twice with `--message-format sarif`, then matches diagnostics to labels
//! (same file and lint, line within `--tolerance`, default 2) and prints the
//! per-lint precision and recall, the per-crate noise (diagnostics per 1,000
//! lines) and every mismatch. It fails (exit 1) on a stale label anchor, an
//! internal error of the CLI, a JSON line the consumer rejects, SARIF without
//! stable `partialFingerprints` (two runs, and a line inserted above each
//! finding), and, with `--multitool`, an error-level result of the SARIF
//! Multitool on any log or a doctored log it accepts. `--check` adds the
//! thresholds of issue 14 (precision ≥ 0.9, recall ≥ 0.7 overall, no lint
//! below 0.5 recall). `--registry` also runs the CLI on every crate unpacked in
//! the local registry and fails on an internal error there.

mod labels;
mod run;
mod sarif;
mod score;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde_json::Value;

/// Command-line options.
struct Options {
    bin: PathBuf,
    labels: PathBuf,
    out: PathBuf,
    tolerance: usize,
    check: bool,
    multitool: Option<PathBuf>,
    registry: bool,
    fixtures: Option<PathBuf>,
}

const USAGE: &str = "usage: lint-corpus [--bin CARGO_PARANOID] [--labels FILE] [--out DIR] \
[--tolerance N] [--check] [--multitool SARIF_MULTITOOL] [--registry] [--fixtures DIR]";

fn options() -> Result<Options, String> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("..").join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let mut o = Options {
        bin: target
            .join("release")
            .join(format!("cargo-paranoid{}", std::env::consts::EXE_SUFFIX)),
        labels: here.join("labels.toml"),
        out: target.join("lint-corpus"),
        tolerance: 2,
        check: false,
        multitool: None,
        registry: false,
        fixtures: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--bin" => o.bin = value()?.into(),
            "--labels" => o.labels = value()?.into(),
            "--out" => o.out = value()?.into(),
            "--tolerance" => {
                o.tolerance = value()?.parse().map_err(|e| format!("--tolerance: {e}"))?;
            }
            "--multitool" => o.multitool = Some(value()?.into()),
            "--check" => o.check = true,
            "--registry" => o.registry = true,
            "--fixtures" => o.fixtures = Some(value()?.into()),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    match options().and_then(|o| run_all(&o)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("lint-corpus: {e}");
            ExitCode::from(2)
        }
    }
}

/// Everything; `Ok(false)` when a check failed (already printed).
fn run_all(o: &Options) -> Result<bool, String> {
    let labels = labels::load(&o.labels)?;
    std::fs::create_dir_all(&o.out).map_err(|e| format!("{}: {e}", o.out.display()))?;
    let mut failures: Vec<String> = Vec::new();
    let mut per: BTreeMap<String, score::Counts> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut noise = Vec::new();
    let mut sarif_files = Vec::new();
    let t0 = Instant::now();
    for krate in &labels.crates {
        let name = krate.dir_name();
        let Some(root) = run::find_crate(&name) else {
            return Err(format!(
                "{name} is not unpacked in the registry: \
                 cargo fetch --manifest-path lints/corpus/crates/Cargo.toml"
            ));
        };
        failures.extend(labels::stale_anchors(krate, &root));
        let json = match run::run_cli(&o.bin, &root, "json") {
            Ok(j) => j,
            Err(e) => {
                failures.push(format!("internal error: {e}"));
                continue;
            }
        };
        let parsed = run::parse_json(&json, &root);
        failures.extend(
            parsed
                .rejected
                .iter()
                .map(|r| format!("{name}: cargo_metadata rejects the JSON: {r}")),
        );
        let (c, m) = score::score_crate(krate, &parsed.diags, o.tolerance);
        score::merge(&mut per, &c);
        misses.extend(m);
        let lines = run::rust_lines(&root);
        noise.push((name.clone(), lines, parsed.diags.len()));
        let (path, errors) = check_sarif(o, &name, &root);
        sarif_files.extend(path);
        failures.extend(errors);
    }
    if let Some(dir) = &o.fixtures {
        match fixtures_sarif(o, dir) {
            Ok((path, errors)) => {
                sarif_files.push(path);
                failures.extend(errors);
            }
            Err(e) => failures.extend(e),
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();

    println!(
        "cargo paranoid on the labelled corpus ({} crates, {elapsed:.1} s)",
        labels.crates.len()
    );
    println!();
    print!("{}", score::table(&per));
    println!("(FP: a `silent` label reported; FP?: a diagnostic on no label, counted as false)");
    println!();
    println!(
        "{:<28} {:>7} {:>11} {:>10}",
        "crate", "lines", "diagnostics", "per 1,000"
    );
    for (name, lines, n) in &noise {
        let k = if *lines == 0 {
            0.0
        } else {
            *n as f64 * 1000.0 / *lines as f64
        };
        println!("{name:<28} {lines:>7} {n:>11} {k:>10.2}");
    }
    if !misses.is_empty() {
        println!();
        println!("mismatches:");
        for m in &misses {
            println!("  {:<3} {:<24} {}  ({})", m.kind, m.lint, m.site, m.why);
        }
    }

    if let Some(exe) = &o.multitool {
        failures.extend(validate(
            &sarif::Multitool { exe: exe.clone() },
            &sarif_files,
            &o.out,
        ));
    }
    if o.registry {
        failures.extend(registry(o));
    }
    if o.check {
        failures.extend(score::threshold_failures(&per));
    } else {
        let t = score::threshold_failures(&per);
        if !t.is_empty() {
            println!();
            println!(
                "thresholds not met (not enforced without --check): {}",
                t.join("; ")
            );
        }
    }
    println!();
    if failures.is_empty() {
        println!("lint-corpus: ok");
        Ok(true)
    } else {
        println!("lint-corpus: {} failure(s)", failures.len());
        for f in &failures {
            println!("  {f}");
        }
        Ok(false)
    }
}

/// SARIF of one crate: written to `OUT/NAME.sarif`; fingerprints present, the
/// same in a second run, and the same after a line is inserted above every
/// finding (on a copy of the crate under `OUT/shifted/`).
fn check_sarif(o: &Options, name: &str, root: &Path) -> (Option<PathBuf>, Vec<String>) {
    let mut path = None;
    let errors = match sarif_checks(o, name, root, &mut path) {
        Ok(()) => Vec::new(),
        Err(e) => e,
    };
    (path, errors)
}

/// The checks of [`check_sarif`]; `written` is set once the first log is on disk.
fn sarif_checks(
    o: &Options,
    name: &str,
    root: &Path,
    written: &mut Option<PathBuf>,
) -> Result<(), Vec<String>> {
    let read = |dir: &Path| -> Result<Value, Vec<String>> {
        let bytes =
            run::run_cli(&o.bin, dir, "sarif").map_err(|e| vec![format!("internal error: {e}")])?;
        serde_json::from_slice(&bytes).map_err(|e| vec![format!("{name}: SARIF is not JSON: {e}")])
    };
    let first = read(root)?;
    let path = o.out.join(format!("{name}.sarif"));
    std::fs::write(&path, first.to_string())
        .map_err(|e| vec![format!("{}: {e}", path.display())])?;
    *written = Some(path);
    let fp1 = sarif::fingerprints(&first).map_err(|e| prefixed(name, e))?;
    let fp2 = sarif::fingerprints(&read(root)?).map_err(|e| prefixed(name, e))?;
    if fp1 != fp2 {
        return Err(vec![format!(
            "{name}: partialFingerprints differ between two runs"
        )]);
    }
    let copy = o.out.join("shifted").join(name);
    sarif::copy_tree(root, &copy).map_err(|e| vec![e])?;
    sarif::shift_down(&copy, &sarif::files_with_results(&first)).map_err(|e| vec![e])?;
    let fp3 = sarif::fingerprints(&read(&copy)?).map_err(|e| prefixed(name, e))?;
    let _ = std::fs::remove_dir_all(&copy);
    if fp1 != fp3 {
        return Err(vec![format!(
            "{name}: partialFingerprints change when a line is inserted above the findings"
        )]);
    }
    Ok(())
}

/// SARIF of the UI fixtures (`DIR/*.rs`, named on the command line: files under
/// `tests/ui/` are skipped when a directory is linted), with fingerprints on
/// every result; written to `OUT/fixtures.sarif` for the Multitool.
fn fixtures_sarif(o: &Options, dir: &Path) -> Result<(PathBuf, Vec<String>), Vec<String>> {
    let dir = &dir
        .canonicalize()
        .map_err(|e| vec![format!("{}: {e}", dir.display())])?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| vec![format!("{}: {e}", dir.display())])?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    let out = std::process::Command::new(&o.bin)
        .current_dir(dir)
        .args(["paranoid", "-W", "all", "--message-format", "sarif"])
        .args(&files)
        .output()
        .map_err(|e| vec![format!("{}: {e}", o.bin.display())])?;
    // The fixtures contain findings at deny level on purpose: 1 is expected.
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(vec![format!(
            "internal error on the fixtures: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
        )]);
    }
    let log: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| vec![format!("fixtures: SARIF is not JSON: {e}")])?;
    let path = o.out.join("fixtures.sarif");
    std::fs::write(&path, log.to_string()).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    println!(
        "fixtures: {} files, SARIF in {}",
        files.len(),
        path.display()
    );
    let errors = sarif::fingerprints(&log)
        .err()
        .map(|e| prefixed("fixtures", e))
        .unwrap_or_default();
    Ok((path, errors))
}

fn prefixed(name: &str, e: Vec<String>) -> Vec<String> {
    let n = e.len();
    let mut v: Vec<String> = e
        .into_iter()
        .take(3)
        .map(|m| format!("{name}: {m}"))
        .collect();
    if n > 3 {
        v.push(format!(
            "{name}: … {} more without partialFingerprints",
            n - 3
        ));
    }
    v
}

/// The Multitool on every log (no error-level result allowed), then on a
/// doctored copy of the first (at least one required).
fn validate(tool: &sarif::Multitool, files: &[PathBuf], out: &Path) -> Vec<String> {
    let mut f = Vec::new();
    let mut errors = 0;
    match tool.errors(files, &out.join("all.validation.sarif")) {
        Ok(e) => {
            errors += e.len();
            f.extend(e.into_iter().map(|m| format!("Multitool: {m}")));
        }
        Err(e) => f.push(e),
    }
    println!();
    println!(
        "SARIF Multitool (Sarif;Ghas): {} logs, {errors} error-level results",
        files.len()
    );
    let Some(first) = files.first() else {
        return f;
    };
    let doctored = std::fs::read_to_string(first)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map(|v| sarif::doctored(&v));
    let Some(doctored) = doctored else {
        f.push(format!("{}: unreadable", first.display()));
        return f;
    };
    let bad = out.join("doctored.sarif");
    if let Err(e) = std::fs::write(&bad, doctored.to_string()) {
        f.push(format!("{}: {e}", bad.display()));
        return f;
    }
    match tool.errors(
        std::slice::from_ref(&bad),
        &out.join("doctored.validation.sarif"),
    ) {
        Ok(e) if e.is_empty() => {
            f.push("negative control: the Multitool accepts a doctored log".into())
        }
        Ok(e) => println!("negative control: doctored log rejected ({})", e.join("; ")),
        Err(e) => f.push(e),
    }
    f
}

/// The CLI on every crate unpacked in the local registry, in one process (path
/// mode, every crate directory an argument): no internal error, and JSON the
/// consumer accepts.
fn registry(o: &Options) -> Vec<String> {
    let t = Instant::now();
    let mut crates: Vec<PathBuf> = run::registry_src_dirs()
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    let out = std::process::Command::new(&o.bin)
        .args(["paranoid", "-W", "all", "--message-format", "json"])
        .args(&crates)
        .stdin(std::process::Stdio::null())
        .output();
    let mut f = Vec::new();
    let mut diags = 0;
    match out {
        Err(e) => f.push(format!("{}: {e}", o.bin.display())),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() || stderr.contains("panicked at") {
                f.push(format!(
                    "internal error on the local registry: {} {}",
                    out.status,
                    stderr.lines().take(5).collect::<Vec<_>>().join(" | ")
                ));
            }
            let p = run::parse_json(&out.stdout, Path::new("/"));
            diags = p.diags.len();
            f.extend(
                p.rejected
                    .iter()
                    .take(5)
                    .map(|r| format!("local registry: {r}")),
            );
        }
    }
    println!();
    println!(
        "local registry: {} crates in one run, {diags} diagnostics, {} internal errors or rejected lines ({:.1} s)",
        crates.len(),
        f.len(),
        t.elapsed().as_secs_f64()
    );
    f
}
