//! Command line: `cargo paranoid [PATH…] [--message-format F] [-W/-D/-A LINT] [--config FILE] [--list] [--explain LINT]`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostic::{Level, PackageInfo};
use crate::lints::LINTS;
use crate::render::{self, Format};
use rayon::prelude::*;

use crate::cache::Cache;
use crate::{lint_package_cached, Config, Diagnostic, PackageInput, Session, Stats};

/// Parsed command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Paths to lint (empty: the current workspace).
    pub paths: Vec<PathBuf>,
    /// Output format.
    pub format: Format,
    /// Level overrides in order.
    pub levels: Vec<(String, Level)>,
    /// Configuration file.
    pub config: Option<PathBuf>,
    /// Print the lints and exit.
    pub list: bool,
    /// Print a lint's explanation and exit.
    pub explain: Option<String>,
    /// Print usage and exit.
    pub help: bool,
    /// Print statistics (files, bytes, time) on stderr.
    pub stats: bool,
    /// Do not read or write the result cache (`target/paranoid/cache`).
    pub no_cache: bool,
}

/// Usage text.
pub const USAGE: &str = "\
Checks Rust driver code for patterns that break when a device is in a perverse state

Usage: cargo paranoid [OPTIONS] [PATH]...

Arguments:
  [PATH]...  files or directories to check (default: the packages of the current workspace)

Options:
      --message-format <FMT>  human (default), json (cargo compiler-message lines) or sarif
  -W, --warn <LINT>           set LINT (or `all`) to warn
  -D, --deny <LINT>           set LINT (or `all`) to deny: exit status 1 when it fires
  -A, --allow <LINT>          set LINT (or `all`) to allow
      --config <FILE>         configuration (default: paranoid.toml at the workspace root)
      --list                  list the lints with their default levels
      --explain <LINT>        print a lint's documentation
      --stats                 print files, bytes and time on stderr
      --no-cache              analyse every package (do not read or write target/paranoid/cache)
  -h, --help                  print this help

Exit status: 0 clean (warnings allowed), 1 a denied lint fired, 2 usage or internal error.
";

/// Parses arguments (without the program name; a leading `paranoid` from cargo is skipped).
///
/// # Errors
///
/// A message for unknown options, missing values and unknown formats or levels.
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        paths: Vec::new(),
        format: Format::Human,
        levels: Vec::new(),
        config: None,
        list: false,
        explain: None,
        help: false,
        stats: false,
        no_cache: false,
    };
    let mut it = args.iter().peekable();
    if it.peek().is_some_and(|a| *a == "paranoid") {
        it.next();
    }
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match flag {
            "-h" | "--help" => o.help = true,
            "--list" => o.list = true,
            "--stats" => o.stats = true,
            "--no-cache" => o.no_cache = true,
            "--explain" => o.explain = Some(value("--explain")?),
            "--config" => o.config = Some(PathBuf::from(value("--config")?)),
            "--message-format" => {
                o.format = match value("--message-format")?.as_str() {
                    "human" | "short" => Format::Human,
                    "json" | "json-diagnostic-rendered-ansi" => Format::Json,
                    "sarif" => Format::Sarif,
                    other => {
                        return Err(format!(
                            "unknown message format `{other}` (use human, json or sarif)"
                        ))
                    }
                }
            }
            "-W" | "--warn" => o.levels.push((value("-W")?, Level::Warn)),
            "-D" | "--deny" => o.levels.push((value("-D")?, Level::Deny)),
            "-A" | "--allow" => o.levels.push((value("-A")?, Level::Allow)),
            f if f.starts_with("-W") && f.len() > 2 => {
                o.levels.push((f[2..].to_string(), Level::Warn))
            }
            f if f.starts_with("-D") && f.len() > 2 => {
                o.levels.push((f[2..].to_string(), Level::Deny))
            }
            f if f.starts_with("-A") && f.len() > 2 => {
                o.levels.push((f[2..].to_string(), Level::Allow))
            }
            f if f.starts_with('-') => return Err(format!("unknown option `{f}`")),
            p => o.paths.push(PathBuf::from(p)),
        }
    }
    Ok(o)
}

/// `--list` output.
pub fn list() -> String {
    let mut s = String::from("lint                        default  summary\n");
    for l in LINTS {
        s.push_str(&format!(
            "{:<27} {:<8} {}\n",
            l.name,
            l.default_level.as_str(),
            l.summary
        ));
    }
    s
}

/// Runs the command; returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return 2;
        }
    };
    if opts.help {
        print!("{USAGE}");
        return 0;
    }
    if opts.list {
        print!("{}", list());
        return 0;
    }
    if let Some(name) = &opts.explain {
        return match crate::lints::find(name.trim_start_matches("paranoid::")) {
            Some(l) => {
                println!(
                    "# `paranoid::{}` ({} by default)\n\n{}\n\n{}",
                    l.name,
                    l.default_level.as_str(),
                    l.summary,
                    l.explanation_text()
                );
                0
            }
            None => {
                eprintln!("error: unknown lint `{name}` (see `cargo paranoid --list`)");
                2
            }
        };
    }
    match run_lints(&opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn run_lints(opts: &Options) -> Result<i32, String> {
    let start = std::time::Instant::now();
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let (root, packages) = if opts.paths.is_empty() {
        workspace_packages_in(&cwd)?
    } else {
        (cwd.clone(), path_packages(&cwd, &opts.paths)?)
    };
    let mut config = Config::with_defaults();
    let known = |l: &str| crate::lints::find(l).is_some();
    match &opts.config {
        Some(p) => config.merge_file(p, known)?,
        None => {
            let p = root.join("paranoid.toml");
            if p.is_file() {
                config.merge_file(&p, known)?;
            }
        }
    }
    let session = Session::new(config, &opts.levels)?;
    // The cache serves workspace runs (explicit paths are linted afresh): an unchanged
    // package is not analysed again (see `crate::cache`).
    let cache = (opts.paths.is_empty()
        && !opts.no_cache
        && std::env::var_os("PARANOID_NO_CACHE").is_none())
    .then(|| Cache::new(Cache::dir_for(&root), &session));
    // Packages in parallel as well as files: a small package does not leave a core idle.
    let results: Vec<(Vec<Diagnostic>, Stats)> = crate::pool().install(|| {
        packages
            .par_iter()
            .map(|pkg| lint_package_cached(&session, pkg, cache.as_ref()))
            .collect()
    });
    let mut diags = Vec::new();
    let mut stats = Stats::default();
    for (d, s) in results {
        diags.extend(d);
        stats += s;
    }
    let out = match opts.format {
        Format::Human => {
            let color = std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var("CARGO_TERM_COLOR")
                    .map(|v| v != "never")
                    .unwrap_or(true);
            eprint!("{}", render::human::render(&diags, color));
            String::new()
        }
        Format::Json => render::json::render(&diags),
        Format::Sarif => render::sarif::render(&diags),
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    if opts.stats {
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "paranoid: {} packages, {} files, {:.1} MB, {} unparsable, {} diagnostics in {:.3} s ({:.1} MB/s), {} packages from the cache",
            packages.len(),
            stats.files,
            stats.bytes as f64 / 1e6,
            stats.parse_errors,
            diags.len(),
            secs,
            stats.bytes as f64 / 1e6 / secs.max(1e-9),
            stats.cached
        );
    }
    Ok(if diags.iter().any(|d| d.level == Level::Deny) {
        1
    } else {
        0
    })
}

/// The workspace root and packages of the workspace containing `dir`.
///
/// The manifests are read directly ([`crate::workspace`]); `cargo metadata --no-deps` is
/// only a fallback when they name no package, and is skipped when a toolchain file applies
/// (rustup could try to install the toolchain it names).
///
/// # Errors
///
/// When neither the manifests nor `cargo metadata` name a package.
pub fn workspace_packages_in(dir: &Path) -> Result<(PathBuf, Vec<PackageInput>), String> {
    if let Some(root_manifest) = crate::workspace::find_root(dir) {
        let root = root_manifest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.to_path_buf());
        let pkgs = crate::workspace::packages_of_manifest(&root_manifest).unwrap_or_default();
        if !pkgs.is_empty() {
            let inputs = pkgs
                .iter()
                .map(|p| crate::workspace::input_of(p, &root))
                .collect();
            return Ok((root, inputs));
        }
    }
    if crate::workspace::has_toolchain_file(dir) {
        return Err(format!(
            "no package found from the manifests in or above `{}` (and `cargo metadata` is not \
             run where a rust-toolchain file applies)",
            dir.display()
        ));
    }
    cargo_metadata_packages(dir)
}

/// The workspace root and packages from `cargo metadata --no-deps` run in `dir`.
fn cargo_metadata_packages(dir: &Path) -> Result<(PathBuf, Vec<PackageInput>), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(dir)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .output()
        .map_err(|e| format!("cannot run `cargo metadata`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo metadata` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("bad `cargo metadata` output: {e}"))?;
    let root = PathBuf::from(meta["workspace_root"].as_str().unwrap_or("."));
    let mut pkgs = Vec::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
        let dir = manifest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| root.clone());
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        let target = targets
            .iter()
            .find(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "lib"))
            })
            .or_else(|| targets.first())
            .cloned()
            .unwrap_or(Value::Null);
        let info =
            PackageInfo {
                name: p["name"].as_str().unwrap_or_default().to_string(),
                id: p["id"].as_str().unwrap_or_default().to_string(),
                manifest_path: manifest.display().to_string(),
                target_name: target["name"].as_str().unwrap_or_default().to_string(),
                target_kind: target["kind"]
                    .as_array()
                    .map(|k| {
                        k.iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                target_src_path: target["src_path"].as_str().unwrap_or_default().to_string(),
                edition: p["edition"].as_str().unwrap_or("2021").to_string(),
                toolkit: Some(
                    p["dependencies"].as_array().into_iter().flatten().any(|d| {
                        d["name"] == crate::workspace::TOOLKIT_PACKAGE && d["kind"] != "dev"
                    }),
                ),
            };
        pkgs.push(PackageInput {
            info: Arc::new(info),
            files: rust_files(&dir, &root),
        });
    }
    Ok((root, pkgs))
}

/// Packages for explicit paths: each directory or file is a crate of its own.
fn path_packages(cwd: &Path, paths: &[PathBuf]) -> Result<Vec<PackageInput>, String> {
    let mut out = Vec::new();
    for p in paths {
        let abs = cwd.join(p);
        if !abs.exists() {
            return Err(format!("no such file or directory: `{}`", p.display()));
        }
        if abs.is_dir() {
            if let Some(pkgs) = crate::workspace::discover(&abs) {
                out.extend(pkgs.iter().map(|p| crate::workspace::input_of(p, cwd)));
                continue;
            }
        }
        let (dir, files) = if abs.is_dir() {
            (abs.clone(), rust_files(&abs, cwd))
        } else {
            let shown = abs
                .strip_prefix(cwd)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| abs.clone());
            (
                abs.parent().map(Path::to_path_buf).unwrap_or_default(),
                vec![(shown, abs.clone())],
            )
        };
        let manifest = dir
            .ancestors()
            .map(|d| d.join("Cargo.toml"))
            .find(|m| m.is_file());
        let table = manifest
            .as_ref()
            .and_then(|m| std::fs::read_to_string(m).ok())
            .and_then(|t| t.parse::<toml::Table>().ok());
        let toolkit = table
            .as_ref()
            .filter(|t| t.contains_key("package"))
            .map(|t| crate::workspace::depends_on(t, crate::workspace::TOOLKIT_PACKAGE));
        let name = table
            .as_ref()
            .and_then(|t| t.get("package")?.get("name")?.as_str().map(String::from))
            .unwrap_or_else(|| {
                abs.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
        let manifest_path = manifest
            .map(|m| m.display().to_string())
            .unwrap_or_default();
        let info = PackageInfo {
            id: format!("path+file://{}#{name}", dir.display()),
            name: name.clone(),
            manifest_path,
            target_name: name.replace('-', "_"),
            target_kind: vec!["lib".into()],
            target_src_path: abs.display().to_string(),
            edition: "2021".into(),
            toolkit,
        };
        out.push(PackageInput {
            info: Arc::new(info),
            files,
        });
    }
    Ok(out)
}

/// Every `.rs` file under `dir`, skipping `target`, hidden directories and nested packages.
pub fn rust_files(dir: &Path, shown_from: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out: Vec<(PathBuf, PathBuf)> = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            if e.depth() == 0 {
                return true;
            }
            if e.file_type().is_dir() {
                return !(name.starts_with('.')
                    || name == "target"
                    || e.path().join("Cargo.toml").is_file());
            }
            true
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| {
            let abs = e.path().to_path_buf();
            let shown = abs
                .strip_prefix(shown_from)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| abs.clone());
            (shown, abs)
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_options() {
        let o = parse(&args("paranoid src --message-format=json -D all -A raw_mmio -Wunbounded_poll --config p.toml")).unwrap();
        assert_eq!(o.paths, [PathBuf::from("src")]);
        assert_eq!(o.format, Format::Json);
        assert_eq!(
            o.levels,
            [
                ("all".into(), Level::Deny),
                ("raw_mmio".into(), Level::Allow),
                ("unbounded_poll".into(), Level::Warn)
            ]
        );
        assert_eq!(o.config, Some(PathBuf::from("p.toml")));
        assert!(parse(&args("--message-format xml")).is_err());
        assert!(parse(&args("--bogus")).is_err());
        assert!(parse(&args("-D")).is_err());
        assert!(parse(&args("--list")).unwrap().list);
    }

    #[test]
    fn list_names_every_lint() {
        let l = list();
        for lint in LINTS {
            assert!(l.contains(lint.name), "{}", lint.name);
        }
    }
}
