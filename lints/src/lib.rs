//! `cargo-paranoid`: a stable, `syn`-based lint suite for device drivers that must survive
//! devices in any state (the recovery-kernel case: after a panic, every device is as the dead
//! kernel left it).
//!
//! The engine reads each package's sources in parallel (rayon), parses each file once and
//! summarises it
//! (functions, calls, register fields, reader wrappers), builds a per-crate view
//! ([`analysis::callgraph::CrateInfo`]: recovery code, panic path), then runs every lint of
//! [`lints::LINTS`] on every file, applies suppressions ([`suppress`]) and levels, and
//! returns [`Diagnostic`]s that [`render`] prints as rustc-style text, cargo JSON or SARIF.
//! A file that does not parse yields a `parse_error` diagnostic; the linter never panics
//! (each file is analysed under `catch_unwind`, and a failure there is reported as well).

pub mod analysis;
pub mod cache;
pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod lints;
pub mod render;
pub mod source;
pub mod suppress;
pub mod workspace;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, OnceLock};

use rayon::prelude::*;

pub use config::Config;
pub use diagnostic::{Diagnostic, Finding, Level, PackageInfo};
pub use source::SourceFile;

use analysis::access::DeviceCx;
use analysis::callgraph::{self, CrateInfo};
use lints::LintCx;

/// Configuration and effective lint levels for a run.
#[derive(Debug, Clone)]
pub struct Session {
    /// The merged configuration.
    pub config: Config,
    levels: HashMap<&'static str, Level>,
}

impl Session {
    /// Builds a session: default levels, then the configuration's, then `overrides` in order.
    ///
    /// # Errors
    ///
    /// When a level names an unknown lint.
    pub fn new(config: Config, overrides: &[(String, Level)]) -> Result<Self, String> {
        let mut levels: HashMap<&'static str, Level> = lints::LINTS
            .iter()
            .map(|l| (l.name, l.default_level))
            .collect();
        for (name, level) in config.levels.iter().chain(overrides) {
            let name = name.trim_start_matches("paranoid::");
            if name == "all" {
                for l in lints::LINTS {
                    levels.insert(l.name, *level);
                }
            } else {
                let lint = lints::find(name).ok_or_else(|| {
                    format!("unknown lint `{name}` (see `cargo paranoid --list`)")
                })?;
                levels.insert(lint.name, *level);
            }
        }
        Ok(Self { config, levels })
    }

    /// Every input of a run besides the files: the configuration and the effective levels,
    /// in a deterministic order (the cache key's session part, [`cache`]).
    pub fn fingerprint(&self) -> String {
        let mut levels: Vec<(&&str, &Level)> = self.levels.iter().collect();
        levels.sort();
        format!("{:?}\n{levels:?}", self.config)
    }

    /// The effective level of `lint`.
    pub fn level(&self, lint: &str) -> Level {
        self.levels.get(lint).copied().unwrap_or(Level::Warn)
    }
}

/// A package to lint: its metadata and its files.
#[derive(Debug, Clone)]
pub struct PackageInput {
    /// Package metadata for JSON output.
    pub info: Arc<PackageInfo>,
    /// Files: path as displayed, path on disk.
    pub files: Vec<(PathBuf, PathBuf)>,
}

/// Counters of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Files read.
    pub files: usize,
    /// Bytes of source read.
    pub bytes: usize,
    /// Files that did not parse.
    pub parse_errors: usize,
    /// Packages whose diagnostics came from the cache.
    pub cached: usize,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Self) {
        self.files += o.files;
        self.bytes += o.bytes;
        self.parse_errors += o.parse_errors;
        self.cached += o.cached;
    }
}

/// The thread pool: both cores, and a large stack so deeply nested code cannot overflow it.
pub(crate) fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .stack_size(256 << 20)
            .thread_name(|i| format!("paranoid-{i}"))
            .build()
            .unwrap_or_else(|_| {
                // Fall back to the defaults; building a default pool cannot fail twice in practice.
                rayon::ThreadPoolBuilder::new()
                    .build()
                    .unwrap_or_else(|e| panic!("cannot start threads: {e}"))
            })
    })
}

/// Lints one package.
pub fn lint_package(session: &Session, pkg: &PackageInput) -> (Vec<Diagnostic>, Stats) {
    lint_package_cached(session, pkg, None)
}

/// Lints one package, taking its diagnostics from `cache` when none of its inputs changed
/// (and storing them there otherwise).
pub fn lint_package_cached(
    session: &Session,
    pkg: &PackageInput,
    cache: Option<&cache::Cache>,
) -> (Vec<Diagnostic>, Stats) {
    let files: Vec<(PathBuf, PathBuf)> = pkg
        .files
        .iter()
        .filter(|(shown, _)| !session.config.is_excluded(shown))
        .cloned()
        .collect();
    let mut diags = Vec::new();
    let pkg_dir = std::path::Path::new(&pkg.info.manifest_path).parent();
    type Read = Result<(Arc<SourceFile>, Option<cache::FileStamp>), Box<Diagnostic>>;
    let sources: Vec<Read> = pool().install(|| {
        files
            .par_iter()
            .map(|(shown, disk)| match std::fs::read(disk) {
                Ok(bytes) => {
                    let stamp = cache.map(|_| cache::FileStamp::new(shown, disk, &bytes));
                    let text = String::from_utf8(bytes)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    let file = SourceFile::new(shown.clone(), text).with_aux(
                        session.config.is_auxiliary(shown)
                            || pkg_dir.is_some_and(|d| is_aux_target(d, disk)),
                    );
                    Ok((Arc::new(file), stamp))
                }
                Err(e) => Err(Box::new(
                    Finding::new(
                        "parse_error",
                        format!("cannot read file: {e}"),
                        source::Span::default(),
                        "",
                    )
                    .into_diagnostic(
                        session.level("parse_error"),
                        Arc::new(SourceFile::new(shown.clone(), String::new())),
                        pkg.info.clone(),
                    ),
                )),
            })
            .collect()
    });
    let mut ok = Vec::new();
    let mut stamps = Vec::new();
    for s in sources {
        match s {
            Ok((s, stamp)) => {
                ok.push(s);
                stamps.extend(stamp);
            }
            Err(d) => diags.push(*d),
        }
    }
    // Only a package whose every file was read is cached (a read error is not a result).
    let cache = cache.filter(|_| diags.is_empty());
    if let Some(c) = cache {
        if let Some(hit) = c.load(&pkg.info, &stamps, &ok) {
            return hit;
        }
    }
    let (mut d, stats) = lint_sources(session, pkg.info.clone(), ok.clone());
    d.retain(|d| d.level != Level::Allow);
    if let Some(c) = cache {
        c.store(&pkg.info, &stamps, &ok, &d, stats);
    }
    diags.append(&mut d);
    diags.retain(|d| d.level != Level::Allow);
    (diags, stats)
}

/// Whether `file` belongs to an auto-discovered test, bench or example target of the package
/// in `pkg_dir` (`tests/`, `benches/`, `examples/` next to its `Cargo.toml`).
pub fn is_aux_target(pkg_dir: &std::path::Path, file: &std::path::Path) -> bool {
    file.strip_prefix(pkg_dir)
        .ok()
        .and_then(|rel| rel.components().next())
        .is_some_and(|c| {
            matches!(
                c.as_os_str().to_str(),
                Some("tests" | "benches" | "examples")
            )
        })
}

/// Lints in-memory files that form one crate.
///
/// Each file is parsed once. `syn`'s trees hold `proc-macro2` tokens, which may not cross
/// threads, so the files are split into shards of about equal size and each shard stays on
/// one thread for both passes: parse and summarise, then (once every summary is in and the
/// crate view is built) run the lints on the trees it kept.
pub fn lint_sources(
    session: &Session,
    info: Arc<PackageInfo>,
    files: Vec<Arc<SourceFile>>,
) -> (Vec<Diagnostic>, Stats) {
    let results = pool().install(|| two_passes(session, &info, &files));
    let mut stats = Stats {
        files: files.len(),
        bytes: files.iter().map(|f| f.text.len()).sum(),
        ..Stats::default()
    };
    let mut diags = Vec::new();
    for (d, failed) in results {
        stats.parse_errors += usize::from(failed);
        diags.extend(d);
    }
    diags.retain(|d| d.level != Level::Allow);
    diags.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    (diags, stats)
}

/// Lints one in-memory file as a crate of its own (for tests, fuzzing and editors).
pub fn lint_text(session: &Session, path: &str, text: &str) -> Vec<Diagnostic> {
    let info = Arc::new(PackageInfo {
        name: "input".into(),
        ..PackageInfo::default()
    });
    lint_sources(
        session,
        info,
        vec![Arc::new(SourceFile::new(path, text.to_string()))],
    )
    .0
}

/// The stack of each linting thread: deeply nested code must not overflow it.
const STACK_BYTES: usize = 256 << 20;

/// A file after the first pass, kept on the thread that parsed it.
enum Parsed {
    /// The syntax tree.
    Tree(syn::File),
    /// Why it did not parse.
    Error(syn::Error),
    /// Parsing or summarising it panicked.
    Crashed,
}

/// A shard's first pass: parse and summarise each file, sending the summaries on.
fn first_pass(
    shard: &[usize],
    files: &[Arc<SourceFile>],
    base: &DeviceCx,
    summaries: &mpsc::Sender<(usize, Option<callgraph::FileSummary>)>,
) -> Vec<(usize, Parsed)> {
    shard
        .iter()
        .map(|&i| {
            let f = &files[i];
            let (parsed, summary) =
                catch_unwind(AssertUnwindSafe(|| match syn::parse_file(&f.text) {
                    Ok(ast) => {
                        let sum =
                            callgraph::summarize(&ast, &f.path.to_string_lossy(), base, f.aux);
                        (Parsed::Tree(ast), Some(sum))
                    }
                    Err(e) => (Parsed::Error(e), None),
                }))
                .unwrap_or((Parsed::Crashed, None));
            // The receiver lives until every shard's first pass is done.
            let _ = summaries.send((i, summary));
            (i, parsed)
        })
        .collect()
}

/// A shard's second pass: lint each kept tree.
fn second_pass(
    session: &Session,
    krate: &CrateInfo,
    info: &Arc<PackageInfo>,
    files: &[Arc<SourceFile>],
    parsed: Vec<(usize, Parsed)>,
) -> Vec<(usize, (Vec<Diagnostic>, bool))> {
    parsed
        .into_iter()
        .map(|(i, p)| {
            let f = &files[i];
            let out = catch_unwind(AssertUnwindSafe(|| lint_file(session, krate, info, f, p)))
                .unwrap_or_else(|_| internal_error(f, info));
            (i, out)
        })
        .collect()
}

/// The diagnostic for a file whose analysis panicked.
fn internal_error(file: &Arc<SourceFile>, info: &Arc<PackageInfo>) -> (Vec<Diagnostic>, bool) {
    let d = Finding::new(
        "parse_error",
        "internal error while linting this file (please report it)".to_string(),
        source::Span::default(),
        "",
    )
    .into_diagnostic(Level::Deny, file.clone(), info.clone());
    (vec![d], true)
}

/// Splits file indices into at most `n` shards of about equal bytes (largest file first,
/// each to the lightest shard).
fn shards(files: &[Arc<SourceFile>], n: usize) -> Vec<Vec<usize>> {
    let n = n.clamp(1, files.len().max(1));
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(files[i].text.len()));
    let mut out: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); n];
    for i in order {
        if let Some(lightest) = out.iter_mut().min_by_key(|(bytes, _)| *bytes) {
            lightest.0 += files[i].text.len();
            lightest.1.push(i);
        }
    }
    out.into_iter()
        .map(|(_, s)| s)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Both passes over a crate's files; the result for each file, in file order.
fn two_passes(
    session: &Session,
    info: &Arc<PackageInfo>,
    files: &[Arc<SourceFile>],
) -> Vec<(Vec<Diagnostic>, bool)> {
    let base = DeviceCx::new(&session.config.readers, &session.config.writers);
    let mut shards = shards(files, pool().current_num_threads()).into_iter();
    // This thread takes the first shard (and any a thread could not be started for).
    let mut own: Vec<usize> = shards.next().unwrap_or_default();
    let (sum_tx, sum_rx) = mpsc::channel();
    let mut results: Vec<Option<(Vec<Diagnostic>, bool)>> =
        (0..files.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let mut workers = Vec::new();
        for shard in shards {
            let (krate_tx, krate_rx) = mpsc::channel::<Arc<CrateInfo>>();
            let sum_tx = sum_tx.clone();
            let base = &base;
            let spawned = std::thread::Builder::new()
                .stack_size(STACK_BYTES)
                .name("paranoid-shard".into())
                .spawn_scoped(scope, {
                    let shard = shard.clone();
                    move || {
                        let parsed = first_pass(&shard, files, base, &sum_tx);
                        drop(sum_tx);
                        match krate_rx.recv() {
                            Ok(krate) => second_pass(session, &krate, info, files, parsed),
                            Err(_) => Vec::new(),
                        }
                    }
                });
            match spawned {
                Ok(handle) => workers.push((krate_tx, handle)),
                Err(_) => own.extend(shard),
            }
        }
        let mine = first_pass(&own, files, &base, &sum_tx);
        drop(sum_tx);
        let mut summaries: Vec<Option<callgraph::FileSummary>> =
            (0..files.len()).map(|_| None).collect();
        for (i, s) in sum_rx {
            summaries[i] = s;
        }
        let flat: Vec<callgraph::FileSummary> = summaries.into_iter().flatten().collect();
        let krate = Arc::new(crate_view(session, info, &base, &flat));
        for (krate_tx, _) in &workers {
            // A worker that is gone has panicked; its files are reported below.
            let _ = krate_tx.send(krate.clone());
        }
        for (i, r) in second_pass(session, &krate, info, files, mine) {
            results[i] = Some(r);
        }
        for (_, handle) in workers {
            for (i, r) in handle.join().unwrap_or_default() {
                results[i] = Some(r);
            }
        }
    });
    results
        .into_iter()
        .zip(files)
        .map(|(r, f)| r.unwrap_or_else(|| internal_error(f, info)))
        .collect()
}

/// The crate view (call graph, recovery code, panic path) from every file's summary.
fn crate_view(
    session: &Session,
    info: &PackageInfo,
    base: &DeviceCx,
    summaries: &[callgraph::FileSummary],
) -> CrateInfo {
    CrateInfo::build(
        &info.name,
        base.clone(),
        summaries,
        &callgraph::Roots {
            recovery: &session.config.recovery,
            not: &session.config.recovery_not,
            panic: &session.config.panic_path,
            // The toolkit (and configured HAL crates) mark their own recovery code.
            toolkit: if info.name == workspace::TOOLKIT_PACKAGE
                || session.config.hal_crates.contains(&info.name)
            {
                Some(true)
            } else {
                info.toolkit
            },
            by_name: session.config.recovery_by_name.unwrap_or(true),
        },
    )
}

/// Runs every lint and applies suppressions to one parsed file; `true` when it did not parse.
fn lint_file(
    session: &Session,
    krate: &CrateInfo,
    info: &Arc<PackageInfo>,
    file: &Arc<SourceFile>,
    parsed: Parsed,
) -> (Vec<Diagnostic>, bool) {
    let ast = match parsed {
        Parsed::Tree(ast) => ast,
        Parsed::Crashed => return internal_error(file, info),
        Parsed::Error(e) => {
            let span = file.span(e.span());
            let d = Finding::new(
                "parse_error",
                format!(
                    "cannot parse this file: {}",
                    e.to_string().trim_end_matches('.')
                ),
                span,
                "parsing stopped here",
            )
            .with_note("the file was skipped; other files are still checked")
            .into_diagnostic(session.level("parse_error"), file.clone(), info.clone());
            return (vec![d], true);
        }
    };
    let is_hal = session.config.is_hal(&krate.name, &file.path);
    let cx = LintCx {
        file,
        ast: &ast,
        krate,
        config: &session.config,
        is_hal,
    };
    let mut findings = Vec::new();
    for lint in lints::LINTS {
        if let Some(check) = lint.check {
            findings.extend(check(&cx));
        }
    }
    let mut supps = suppress::collect(file, Some(&ast));
    let mut out = Vec::new();
    for f in findings {
        let line = f.primary.0.line_start;
        if let Some(s) = supps.iter_mut().find(|s| s.covers(f.lint, line)) {
            s.used += 1;
            continue;
        }
        out.push(f);
    }
    for s in &supps {
        if s.reason.is_none() {
            out.push(
                Finding::new(
                    "suppression_without_reason",
                    "suppression without a reason".to_string(),
                    s.span,
                    "add `reason = \"…\"` (or `: reason` after a comment suppression)",
                )
                .with_help("say why the suppressed code is safe, so that review can check it"),
            );
        }
        let unknown: Vec<&String> = s
            .lints
            .iter()
            .filter(|l| *l != "all" && lints::find(l).is_none())
            .collect();
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(|u| format!("`{u}`")).collect();
            out.push(
                Finding::new(
                    "unused_suppression",
                    format!("suppression names unknown lint {}", names.join(", ")),
                    s.span,
                    "unknown lint",
                )
                .with_help("see `cargo paranoid --list` for lint names"),
            );
        } else if s.used == 0 {
            out.push(
                Finding::new(
                    "unused_suppression",
                    "unused suppression".to_string(),
                    s.span,
                    "silences nothing",
                )
                .with_help("remove it, or move it to the line or item it is meant for"),
            );
        }
    }
    let diags = out
        .into_iter()
        .map(|f| {
            let level = session.level(f.lint);
            f.into_diagnostic(level, file.clone(), info.clone())
        })
        .collect();
    (diags, false)
}

/// Number of worker threads the linter uses (one per core).
pub fn threads() -> usize {
    pool().current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(Config::with_defaults(), &[]).unwrap()
    }

    #[test]
    fn unparsable_file_is_a_diagnostic() {
        let d = lint_text(&session(), "bad.rs", "fn main( {");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].lint, "parse_error");
    }

    #[test]
    fn suppressions_silence_and_are_checked() {
        let src = "fn f(p: *mut u32) {\n    // paranoid:allow(raw_mmio): audited shim\n    unsafe { core::ptr::write_volatile(0x1000 as *mut u32, 1) };\n    // paranoid:allow(raw_mmio)\n    let x = 1;\n    // paranoid:allow(no_such_lint): why\n    let y = 2;\n}\n";
        let d = lint_text(&session(), "a.rs", src);
        let lints: Vec<&str> = d.iter().map(|d| d.lint).collect();
        assert_eq!(
            lints,
            [
                "suppression_without_reason",
                "unused_suppression",
                "unused_suppression"
            ],
            "{d:#?}"
        );
    }

    #[test]
    fn levels_apply_in_order() {
        let s = Session::new(
            Config::with_defaults(),
            &[
                ("all".into(), Level::Allow),
                ("raw_mmio".into(), Level::Deny),
            ],
        )
        .unwrap();
        assert_eq!(s.level("raw_mmio"), Level::Deny);
        assert_eq!(s.level("unbounded_poll"), Level::Allow);
        assert!(Session::new(Config::default(), &[("nope".into(), Level::Deny)]).is_err());
    }

    #[test]
    fn shards_cover_every_file_once_and_balance_bytes() {
        let files: Vec<Arc<SourceFile>> = [900, 10, 500, 400, 20, 30, 0]
            .iter()
            .enumerate()
            .map(|(i, n)| Arc::new(SourceFile::new(format!("f{i}.rs"), "x".repeat(*n))))
            .collect();
        let s = shards(&files, 2);
        let mut all: Vec<usize> = s.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..files.len()).collect::<Vec<_>>());
        let bytes: Vec<usize> = s
            .iter()
            .map(|sh| sh.iter().map(|&i| files[i].text.len()).sum())
            .collect();
        assert_eq!(bytes, vec![930, 930]);
        assert_eq!(shards(&files, 64).len(), files.len());
        assert!(shards(&[], 2).is_empty());
    }

    #[test]
    fn a_file_that_does_not_parse_is_reported_beside_the_others() {
        let s = Session::new(Config::default(), &[]).unwrap_or_else(|e| panic!("{e}"));
        let info = Arc::new(PackageInfo::default());
        let files = vec![
            Arc::new(SourceFile::new("ok.rs", "fn f() {}".to_string())),
            Arc::new(SourceFile::new("bad.rs", "fn (".to_string())),
        ];
        let (d, stats) = lint_sources(&s, info, files);
        assert_eq!(stats.parse_errors, 1);
        assert!(d.iter().any(|d| d.lint == "parse_error"));
    }
}
