//! Robustness and precision on real code: every `.rs` file under the local cargo registry
//! sources (a deterministic sample in the default suite, all of them with `--ignored`).
//!
//! The linter must never panic: each file is linted under `catch_unwind` and an internal
//! error diagnostic (the engine's own `catch_unwind`) fails the test as well.
//! Set `PARANOID_CORPUS_REPORT=FILE` to write every finding (for precision review).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cargo_paranoid::{lint_text, Config, Level, Session};
use rayon::prelude::*;

fn registry_src() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let dir = home.join("registry/src");
    dir.is_dir().then_some(dir)
}

fn corpus(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files
}

struct Outcome {
    files: usize,
    bytes: usize,
    unparsable: usize,
    per_lint: BTreeMap<&'static str, usize>,
    secs: f64,
}

fn run(files: &[PathBuf], report: Option<&Path>) -> Outcome {
    let session =
        Session::new(Config::with_defaults(), &[("all".into(), Level::Warn)]).expect("levels");
    let start = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(256 << 20)
        .thread_name(|i| format!("corpus-{i}"))
        .build()
        .expect("thread pool");
    let results: Vec<(usize, bool, Vec<String>, Vec<&'static str>)> = pool.install(|| {
        files
            .par_iter()
            .map(|f| {
                let bytes = std::fs::read(f).unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let shown = f.display().to_string();
                let r = catch_unwind(AssertUnwindSafe(|| lint_text(&session, &shown, &text)));
                let diags = r.unwrap_or_else(|_| panic!("linter panicked on {shown}"));
                let mut unparsable = false;
                let mut lines = Vec::new();
                let mut lints = Vec::new();
                for d in &diags {
                    assert!(
                        !d.message.contains("internal error"),
                        "internal error on {shown}: {}",
                        d.message
                    );
                    if d.lint == "parse_error" {
                        unparsable = true;
                        continue;
                    }
                    lints.push(d.lint);
                    if report.is_some() {
                        let p = d.primary().map(|p| p.span.line_start).unwrap_or(0);
                        lines.push(format!(
                            "{}\t{}:{}\t{}\t{}",
                            d.lint,
                            shown,
                            p,
                            d.message,
                            d.file.line_text(p).trim()
                        ));
                    }
                }
                (text.len(), unparsable, lines, lints)
            })
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let mut out = Outcome {
        files: files.len(),
        bytes: 0,
        unparsable: 0,
        per_lint: BTreeMap::new(),
        secs,
    };
    let mut all_lines = Vec::new();
    for (b, u, lines, lints) in results {
        out.bytes += b;
        out.unparsable += usize::from(u);
        for l in lints {
            *out.per_lint.entry(l).or_default() += 1;
        }
        all_lines.extend(lines);
    }
    if let Some(p) = report {
        std::fs::write(p, all_lines.join("\n")).expect("write report");
    }
    println!(
        "corpus: {} files, {:.1} MB, {} unparsable, {:.2} s ({:.1} MB/s); findings per lint: {:?}",
        out.files,
        out.bytes as f64 / 1e6,
        out.unparsable,
        out.secs,
        out.bytes as f64 / 1e6 / out.secs.max(1e-9),
        out.per_lint
    );
    out
}

/// Minimum number of files a present registry must hold for the test to count.
const MIN_FILES: usize = 500;

#[test]
fn registry_sample_never_panics() {
    let Some(dir) = registry_src() else {
        println!("notice: no cargo registry sources at ~/.cargo/registry/src; corpus test skipped");
        return;
    };
    let all = corpus(&dir);
    assert!(
        all.len() >= MIN_FILES,
        "only {} files under {}: fetch the workspace's dependencies first",
        all.len(),
        dir.display()
    );
    // Deterministic sample: files up to 256 KiB, about 6 MB in all (debug builds parse slowly).
    let small: Vec<PathBuf> = all
        .into_iter()
        .filter(|f| {
            std::fs::metadata(f)
                .map(|m| m.len() <= 256 * 1024)
                .unwrap_or(false)
        })
        .collect();
    let total: u64 = small
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let step = ((total / 6_000_000) as usize).max(1);
    let sample: Vec<PathBuf> = small.into_iter().step_by(step).collect();
    assert!(
        sample.len() >= MIN_FILES / step.max(1) / 2,
        "sample too small: {}",
        sample.len()
    );
    let o = run(
        &sample,
        std::env::var_os("PARANOID_CORPUS_REPORT")
            .as_deref()
            .map(Path::new),
    );
    assert_eq!(o.files, sample.len());
    assert!(
        o.unparsable * 10 < o.files,
        "too many unparsable files: {}",
        o.unparsable
    );
}

#[test]
#[ignore = "full registry corpus; run with --release -- --ignored"]
fn registry_full_never_panics() {
    let Some(dir) = registry_src() else {
        println!("notice: no cargo registry sources; skipped");
        return;
    };
    let all = corpus(&dir);
    assert!(all.len() >= MIN_FILES, "only {} files", all.len());
    let o = run(
        &all,
        std::env::var_os("PARANOID_CORPUS_REPORT")
            .as_deref()
            .map(Path::new),
    );
    assert_eq!(o.files, all.len());
}
