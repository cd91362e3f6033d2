//! `cargo xtask mutants`: every deliberate bug in `drivers/*/mutants.toml` must
//! be caught by the check its row names.
//!
//! A table row is
//!
//! ```toml
//! [[mutant]]
//! name = "always fence"
//! cfg = 'paranoid_mutant="nvme_always_fence"'
//! kill = "PARANOID_CAMPAIGN_CASES=5000 cargo test --release -q -p paranoid-nvme --features model --test campaign"
//! reason = "why the check catches it"
//! ```
//!
//! Every `kill` runs under `sh -c` from the repository root with
//! `PARANOID_MUTANTS=all` in its environment: the driver crates' build scripts
//! then compile every deliberate bug in (`--cfg paranoid_mutants`), each off
//! until `PARANOID_MUTANT=<id>` in the environment of the test process selects
//! it (`drivers/*/src/mutant.rs`). So each check is built once, not once per
//! mutant. First every distinct `kill` command runs once with no mutant
//! selected and must pass (a check that fails anyway proves nothing; it is
//! also the build). Then, per row, `kill` runs again with `PARANOID_MUTANT=<id>`
//! (the cfg's value) and must FAIL: same binaries, only the selection differs.
//!
//! `--separate` does it the slow way instead: each mutant in a build of its
//! own (`PARANOID_MUTANT=<id>` at build time, turned by build.rs into
//! `--cfg paranoid_mutant="<id>"`, the bug compiled in and nothing else), the
//! baseline a normal build. Either way only the driver crates and their tests
//! are rebuilt, where RUSTFLAGS would rebuild every dependency. Builds go to
//! `target/mutants` (under `CARGO_TARGET_DIR` when set), so the main build
//! cache is left alone; each run's output is kept in `target/mutants/logs/`.
//!
//! A command still running after `PARANOID_MUTANT_TIMEOUT` seconds (default
//! 600) is killed: for a mutant that counts as caught (`timeout`), for a
//! baseline run as a failure.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One row of a `mutants.toml`.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// The table it came from.
    pub table: PathBuf,
    /// Its id: the value of the cfg, what `PARANOID_MUTANT` is set to.
    pub id: String,
    /// Its name (a short description, or the id again).
    pub name: String,
    /// The cfg the code tests, `paranoid_mutant="<id>"`.
    pub cfg: String,
    /// The command that must fail with the mutant in.
    pub kill: String,
    /// The bug, and why the check catches it.
    pub reason: String,
}

/// How one command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Passed,
    Failed(ExitStatus),
    TimedOut,
}

/// Every `drivers/*/mutants.toml` under `root`, rows in table order.
///
/// # Errors
///
/// A table that cannot be read or parsed, a row without a field, a cfg that
/// is not `paranoid_mutant="<name>"`, or two rows with one name.
pub fn load(root: &Path) -> Result<Vec<Mutant>, String> {
    let drivers = root.join("drivers");
    let mut tables: Vec<PathBuf> = fs::read_dir(&drivers)
        .map_err(|e| format!("{}: {e}", drivers.display()))?
        .filter_map(|e| e.ok().map(|e| e.path().join("mutants.toml")))
        .filter(|p| p.is_file())
        .collect();
    tables.sort();
    let mut all = Vec::new();
    let mut seen = BTreeSet::new();
    for table in tables {
        let text = fs::read_to_string(&table).map_err(|e| format!("{}: {e}", table.display()))?;
        let doc: toml::Table = text
            .parse()
            .map_err(|e| format!("{}: {e}", table.display()))?;
        let rows = doc
            .get("mutant")
            .and_then(toml::Value::as_array)
            .ok_or_else(|| format!("{}: no [[mutant]] rows", table.display()))?;
        for (i, row) in rows.iter().enumerate() {
            let field = |key: &str| {
                row.get(key)
                    .and_then(toml::Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("{}: row {}: no `{key}`", table.display(), i + 1))
            };
            let cfg = field("cfg")?;
            let id = cfg_value(&cfg).ok_or_else(|| {
                format!(
                    "{}: row {}: cfg must be `paranoid_mutant=\"<id>\"`, not `{cfg}`",
                    table.display(),
                    i + 1
                )
            })?;
            let m = Mutant {
                table: table.clone(),
                id,
                name: field("name")?,
                cfg,
                kill: field("kill")?,
                reason: field("reason")?,
            };
            // One mutant may be caught by several checks (a row each); the
            // same mutant and check twice is a mistake.
            if !seen.insert((m.id.clone(), m.kill.clone())) {
                return Err(format!(
                    "{}: mutant `{}` with check `{}` is declared twice",
                    table.display(),
                    m.id,
                    m.kill
                ));
            }
            all.push(m);
        }
    }
    Ok(all)
}

/// The `<id>` of `paranoid_mutant="<id>"` (spaces around `=` allowed).
fn cfg_value(cfg: &str) -> Option<String> {
    let (key, value) = cfg.split_once('=')?;
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    let ok = key.trim() == "paranoid_mutant"
        && !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then(|| value.to_string())
}

fn target_dir(root: &Path) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    base.join("mutants")
}

fn timeout() -> Duration {
    let secs = std::env::var("PARANOID_MUTANT_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// How mutants get in: one build per check with every mutant compiled in and
/// selected at run time, or one build per mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    OneBuild,
    Separate,
}

/// Runs `kill` under `sh -c` from `root`, with `mutant` (or none) selected,
/// output into `log`.
fn run_kill(
    root: &Path,
    kill: &str,
    mode: Mode,
    mutant: Option<&str>,
    log: &Path,
) -> Result<Ended, String> {
    let out = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(kill)
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target_dir(root))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group, so a timeout can end cargo and the tests too.
        .process_group(0);
    match mode {
        Mode::OneBuild => c.env("PARANOID_MUTANTS", "all"),
        Mode::Separate => c.env_remove("PARANOID_MUTANTS"),
    };
    match mutant {
        Some(name) => c.env("PARANOID_MUTANT", name),
        None => c.env_remove("PARANOID_MUTANT"),
    };
    let mut child = c.spawn().map_err(|e| format!("cannot run sh: {e}"))?;
    let deadline = Instant::now() + timeout();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| format!("waiting for sh: {e}"))?
        {
            return Ok(if status.success() {
                Ended::Passed
            } else {
                Ended::Failed(status)
            });
        }
        if Instant::now() >= deadline {
            // The group id is the child's pid (process_group(0) above).
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            return Ok(Ended::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The kill command, shortened for the table.
fn short(kill: &str) -> String {
    kill.replace("cargo test --release -q ", "")
        .replace("PARANOID_CAMPAIGN_CASES=", "cases=")
}

fn tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `cargo xtask mutants [--only NAME]... [--list] [--no-baseline] [--separate]`.
///
/// # Errors
///
/// A bad table, a baseline check that fails, or a mutant not caught.
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let mut only = Vec::new();
    let mut baseline = true;
    let mut list = false;
    let mut mode = Mode::OneBuild;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--only" => only.push(it.next().ok_or("--only needs a mutant name")?.clone()),
            "--no-baseline" => baseline = false,
            "--list" => list = true,
            "--separate" => mode = Mode::Separate,
            other => {
                return Err(format!(
                    "unknown argument `{other}` (try --only, --list, --no-baseline, --separate)"
                ))
            }
        }
    }
    let mut mutants = load(root)?;
    for name in &only {
        if !mutants.iter().any(|m| &m.id == name) {
            return Err(format!("no mutant `{name}` in drivers/*/mutants.toml"));
        }
    }
    if !only.is_empty() {
        mutants.retain(|m| only.contains(&m.id));
    }
    if list {
        for m in &mutants {
            let table = m.table.strip_prefix(root).unwrap_or(&m.table);
            println!(
                "{:<36} {} [{}]  {}: {}",
                m.id,
                table.display(),
                m.cfg,
                m.name,
                m.reason
            );
        }
        return Ok(());
    }
    let logs = target_dir(root).join("logs");
    fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let started = Instant::now();
    if baseline {
        let commands: BTreeSet<&str> = mutants.iter().map(|m| m.kill.as_str()).collect();
        for (i, kill) in commands.into_iter().enumerate() {
            let log = logs.join(format!("baseline-{i}.log"));
            println!("mutants: baseline (no mutant selected): {kill}");
            let t = Instant::now();
            let ended = run_kill(root, kill, mode, None, &log)?;
            if ended != Ended::Passed {
                return Err(format!(
                    "without a mutant the check fails ({ended:?}, {:.1}s): {kill}\n{}\n(log: {})",
                    t.elapsed().as_secs_f64(),
                    tail(&log, 30),
                    log.display()
                ));
            }
            println!(
                "mutants: baseline passes ({:.1}s)",
                t.elapsed().as_secs_f64()
            );
        }
    }
    let mut rows = Vec::new();
    for m in &mutants {
        let log = logs.join(format!("{}-{}.log", safe(&m.id), rows.len()));
        println!("mutants: {} ({}) ...", m.id, m.name);
        let t = Instant::now();
        let ended = run_kill(root, &m.kill, mode, Some(&m.id), &log)?;
        let took = t.elapsed();
        let caught = match ended {
            Ended::Passed => "NO",
            Ended::Failed(_) => "yes",
            Ended::TimedOut => "yes (timeout)",
        };
        if ended == Ended::Passed {
            println!("{}\n(log: {})", tail(&log, 15), log.display());
        }
        rows.push((m, caught, took));
    }
    println!();
    println!("{:<32} {:<14} {:>8}  check", "mutant", "caught", "time");
    for (m, caught, took) in &rows {
        println!(
            "{:<32} {:<14} {:>7.1}s  {}",
            m.id,
            caught,
            took.as_secs_f64(),
            short(&m.kill)
        );
    }
    let survivors: Vec<&str> = rows
        .iter()
        .filter(|(_, c, _)| *c == "NO")
        .map(|(m, _, _)| m.id.as_str())
        .collect();
    println!(
        "mutants: {} of {} caught ({:.1}s in all, logs in {})",
        rows.len() - survivors.len(),
        rows.len(),
        started.elapsed().as_secs_f64(),
        logs.display()
    );
    if survivors.is_empty() {
        Ok(())
    } else {
        Err(format!("mutants not caught: {}", survivors.join(", ")))
    }
}
