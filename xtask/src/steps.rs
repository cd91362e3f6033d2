//! The steps of `cargo xtask test`, in order.
//!
//! Add a step: a function `fn(&Ctx) -> Result<(), String>` and a row in
//! [`all`]. Names are what `--only` and `--skip` take.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{cargo, harness, repo_root, run};

/// What steps get.
pub struct Ctx {
    /// The repository root.
    pub root: PathBuf,
}

impl Ctx {
    /// A cargo command in the host workspace (the repository root).
    pub fn cargo(&self, args: &[&str]) -> Command {
        let mut c = cargo();
        c.current_dir(&self.root).args(args);
        c
    }
}

/// One step.
pub struct Step {
    /// Short name for `--only` / `--skip`.
    pub name: &'static str,
    /// What it checks.
    pub what: &'static str,
    /// The work.
    pub run: fn(&Ctx) -> Result<(), String>,
}

/// Every step, in the order they run.
pub fn all() -> Vec<Step> {
    vec![
        Step {
            name: "prereqs",
            what: "QEMU, the x86_64-unknown-none target, rustfmt and clippy",
            run: prereqs_step,
        },
        Step {
            name: "fmt",
            what: "cargo fmt --check (host and kernels workspaces)",
            run: fmt,
        },
        Step {
            name: "clippy",
            what: "cargo clippy -D warnings, host workspace, all targets and features",
            run: clippy_host,
        },
        Step {
            name: "clippy-kernels",
            what: "cargo clippy -D warnings, kernels workspace (x86_64-unknown-none)",
            run: clippy_kernels,
        },
        Step {
            name: "lints",
            what: "cargo paranoid -D all (paranoid.toml), host and kernels workspaces",
            run: lints,
        },
        Step {
            name: "lint-corpus",
            what: "cargo paranoid on the labelled driver corpus: precision/recall, SARIF Multitool, cargo_metadata, local registry",
            run: lint_corpus,
        },
        Step {
            name: "test",
            what: "cargo test --release, host workspace, all features (the campaigns in their own step)",
            run: test_host,
        },
        Step {
            name: "doc",
            what: "cargo doc -D warnings (broken and private intra-doc links), host workspace, all features",
            run: doc,
        },
        Step {
            name: "package",
            what: "cargo package (verified) of the published crates: paranoid-hal, paranoid-hal-macros, the drivers, paranoid-result-line, paranoid-dump, paranoid-recovery, paranoid-cli, cargo-paranoid",
            run: package,
        },
        Step {
            name: "campaigns",
            what: "the NVMe and e1000 any-state campaigns (100,000 states each), their fault-class tables printed",
            run: campaigns,
        },
        Step {
            name: "mutants",
            what:
                "every mutant of drivers/*/mutants.toml caught by its check (cargo xtask mutants)",
            run: |ctx| crate::mutants::run(&ctx.root, &[]),
        },
        Step {
            name: "codegen",
            what: "a 32-bit register read/write through the HAL is one mov (objdump)",
            run: codegen_step,
        },
        Step {
            name: "qemu",
            what: "QEMU scenarios (tests/src/scenarios.rs)",
            run: |_| harness(&["qemu"]),
        },
    ]
}

fn prereqs_step(_: &Ctx) -> Result<(), String> {
    harness(&["prereqs"])
}

fn fmt(ctx: &Ctx) -> Result<(), String> {
    run(ctx.cargo(&["fmt", "--all", "--check"]))?;
    let mut k = cargo();
    k.current_dir(ctx.root.join("examples").join("kernels"))
        // Without `--all`: the members only (the HAL, a path dependency, is
        // checked with the host workspace).
        .args(["fmt", "--check"]);
    run(k)
}

fn clippy_host(ctx: &Ctx) -> Result<(), String> {
    run(ctx.cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))
}

fn clippy_kernels(_: &Ctx) -> Result<(), String> {
    harness(&[
        "kernels",
        "clippy",
        "--workspace",
        "--release",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ])
}

/// `cargo paranoid` with every lint denied (like clippy's `-D warnings`): the
/// host workspace, then the kernels workspace (its own `cargo metadata`, the
/// root `paranoid.toml`). The linter is built for the host first and run as a
/// program: the kernels' `.cargo/config.toml` targets x86_64-unknown-none.
fn lints(ctx: &Ctx) -> Result<(), String> {
    run(ctx.cargo(&["build", "--release", "--quiet", "-p", "cargo-paranoid"]))?;
    let target = target_dir(ctx);
    let bin = target
        .join("release")
        .join(format!("cargo-paranoid{}", std::env::consts::EXE_SUFFIX));
    let config = ctx.root.join("paranoid.toml");
    for dir in [ctx.root.clone(), ctx.root.join("examples").join("kernels")] {
        let mut c = Command::new(&bin);
        c.current_dir(&dir)
            .arg("paranoid")
            .arg("--config")
            .arg(&config)
            .args(["-D", "all"]);
        run(c)?;
    }
    Ok(())
}

/// `cargo xtask lint-bench [--samples N] [--touch FILE]`: the release `cargo-paranoid`
/// binary against `cargo clippy` on this workspace (`lints/corpus/src/bench.rs`), editing
/// `drivers/nvme/src/lib.rs` unless `--touch` names another file.
pub fn lint_bench(args: &[String]) -> Result<(), String> {
    let ctx = Ctx { root: repo_root() };
    build_linter_and_corpus(&ctx)?;
    let release = target_dir(&ctx).join("release");
    let mut c = Command::new(release.join(format!("lint-bench{}", std::env::consts::EXE_SUFFIX)));
    c.current_dir(&ctx.root)
        .arg(&ctx.root)
        .arg("--bin")
        .arg(release.join(format!("cargo-paranoid{}", std::env::consts::EXE_SUFFIX)));
    if !args.iter().any(|a| a == "--touch") {
        c.args(["--touch", "drivers/nvme/src/lib.rs"]);
    }
    c.args(args);
    run(c)
}

/// The release `cargo-paranoid` and the corpus tools (scorer, lint-bench).
fn build_linter_and_corpus(ctx: &Ctx) -> Result<(), String> {
    run(ctx.cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "cargo-paranoid",
        "-p",
        "paranoid-lint-corpus",
    ]))
}

/// Whether `lint-corpus` enforces the issue-14 thresholds (precision ≥ 0.9 and
/// recall ≥ 0.7 overall, no lint below 0.5 recall); the table is printed either
/// way.
const ENFORCE_LINT_THRESHOLDS: bool = true;

/// The SARIF Multitool's npm package, installed into `target/npm`.
const SARIF_MULTITOOL: &str = "@microsoft/sarif-multitool@5.7.0";

/// The labelled corpus (`lints/corpus`): fetch the pinned crates (the only
/// network use besides npm), build the linter and the scorer, install the SARIF
/// Multitool, then score and check the consumers. The scorer prints the
/// per-lint table, the per-crate noise, every mismatch and what failed.
fn lint_corpus(ctx: &Ctx) -> Result<(), String> {
    let manifest = ctx
        .root
        .join("lints")
        .join("corpus")
        .join("crates")
        .join("Cargo.toml");
    let mut fetch = cargo();
    fetch
        .current_dir(&ctx.root)
        .arg("fetch")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(&manifest);
    run(fetch)?;
    build_linter_and_corpus(ctx)?;
    let target = target_dir(ctx);
    let npm_dir = target.join("npm");
    let exe = npm_dir
        .join("node_modules")
        .join("@microsoft")
        .join("sarif-multitool-linux")
        .join("Sarif.Multitool");
    if !exe.is_file() {
        std::fs::create_dir_all(&npm_dir).map_err(|e| format!("{}: {e}", npm_dir.display()))?;
        let mut npm = Command::new("npm");
        npm.current_dir(&npm_dir).args([
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            ".",
            SARIF_MULTITOOL,
        ]);
        run(npm)?;
    }
    // npm may skip the package's install script (`chmod u+x Sarif.Multitool`).
    let mut chmod = Command::new("chmod");
    chmod.arg("u+x").arg(&exe);
    run(chmod)?;
    let mut score = Command::new(
        target
            .join("release")
            .join(format!("lint-corpus{}", std::env::consts::EXE_SUFFIX)),
    );
    score
        .current_dir(&ctx.root)
        .arg("--bin")
        .arg(
            target
                .join("release")
                .join(format!("cargo-paranoid{}", std::env::consts::EXE_SUFFIX)),
        )
        .arg("--multitool")
        .arg(&exe)
        .arg("--fixtures")
        .arg(ctx.root.join("lints").join("tests").join("ui"))
        .arg("--registry");
    if ENFORCE_LINT_THRESHOLDS {
        score.arg("--check");
    }
    run(score)
}

/// The host workspace's target directory (`CARGO_TARGET_DIR` or `target/`).
fn target_dir(ctx: &Ctx) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { ctx.root.join(t) })
        .unwrap_or_else(|| ctx.root.join("target"))
}

fn doc(ctx: &Ctx) -> Result<(), String> {
    let mut c = ctx.cargo(&[
        "doc",
        "--no-deps",
        "--workspace",
        "--all-features",
        "--quiet",
    ]);
    c.env("RUSTDOCFLAGS", "-D warnings");
    run(c)
}

/// The host tests but the any-state campaigns, which the `campaigns` step runs
/// from the same build with their output shown.
fn test_host(ctx: &Ctx) -> Result<(), String> {
    let mut args = HOST_TESTS.to_vec();
    args.extend(["--", "--skip", CAMPAIGN_TEST]);
    run(ctx.cargo(&args))
}

/// `cargo test` over the host workspace as the `test` step builds it.
const HOST_TESTS: [&str; 4] = ["test", "--workspace", "--all-features", "--release"];

/// The name of each driver's any-state campaign test (`tests/campaign.rs`).
const CAMPAIGN_TEST: &str = "any_state_campaign";

/// The crates meant for crates.io.
const PUBLISHED: &[&str] = &[
    "paranoid-hal",
    "paranoid-hal-macros",
    "paranoid-nvme",
    "paranoid-e1000",
    "paranoid-vtd",
    "paranoid-i6300esb",
    "paranoid-result-line",
    "paranoid-dump",
    "paranoid-recovery",
    "paranoid-cli",
    "cargo-paranoid",
];

/// One `cargo package` of every published crate: cargo packages them in
/// dependency order and verifies each (builds it from its `.crate`) against a
/// temporary local registry holding the others, so unpublished path
/// dependencies are checked as crates.io would see them. `--allow-dirty`: a
/// local run with uncommitted edits checks those edits.
///
/// Cargo unpacks each `.crate` it verifies under
/// `$CARGO_HOME/registry/src/<hash of the temporary registry's path>/` and
/// reuses an unpacked name and version it finds there, so a second run from
/// the same clone would verify against the first run's sources of our own
/// crates (same version, older code). Those unpacked copies are removed first,
/// and so are the fingerprints of what the verification built from them:
/// cargo takes a registry crate of a name and version it built before as
/// unchanged, so a second run would link the first run's build of our crates.
fn package(ctx: &Ctx) -> Result<(), String> {
    forget_unpacked_own_crates();
    forget_registry_builds_of_own_crates(&target_dir(ctx).join("debug"));
    let mut args = vec!["package", "--allow-dirty", "--quiet"];
    for c in PUBLISHED {
        args.extend(["-p", c]);
    }
    run(ctx.cargo(&args))
}

/// Removes `$CARGO_HOME/registry/src/*/<published crate>-<version>/` (see
/// [`package`]); registries' other crates are left alone.
fn forget_unpacked_own_crates() {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return;
    };
    for registry in registries.flatten() {
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for unpacked in crates.flatten() {
            let name = unpacked.file_name().to_string_lossy().into_owned();
            let own = PUBLISHED.iter().any(|c| {
                name.strip_prefix(c)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|v| v.starts_with(|ch: char| ch.is_ascii_digit()))
            });
            if own {
                let _ = std::fs::remove_dir_all(unpacked.path());
            }
        }
    }
}

/// Removes the fingerprints of our published crates built from a registry
/// source (the verification's, see [`package`]) under the profile directory
/// `profile`: each `deps/<crate>-<hash>.d` naming `registry/src` marks the
/// `.fingerprint/<package>-<hash>` to remove. Path builds are left alone.
fn forget_registry_builds_of_own_crates(profile: &std::path::Path) {
    let Ok(deps) = std::fs::read_dir(profile.join("deps")) else {
        return;
    };
    for dep in deps.flatten() {
        let file = dep.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".d") else {
            continue;
        };
        let Some((krate, hash)) = stem.rsplit_once('-') else {
            continue;
        };
        let Some(package) = PUBLISHED
            .iter()
            .find(|p| p.replace('-', "_") == krate || lib_names(p).contains(&krate))
        else {
            continue;
        };
        let from_registry =
            std::fs::read_to_string(dep.path()).is_ok_and(|d| d.contains("registry/src"));
        if from_registry {
            let _ = std::fs::remove_dir_all(
                profile
                    .join(".fingerprint")
                    .join(format!("{package}-{hash}")),
            );
        }
    }
}

/// The library names of a published package that differ from its name.
fn lib_names(package: &str) -> &'static [&'static str] {
    match package {
        "paranoid-hal" => &["paranoid"],
        "paranoid-hal-macros" => &["paranoid_macros"],
        _ => &[],
    }
}

/// Every driver's `campaign` test target, built as the `test` step built it
/// (same flags, so nothing is compiled again), with `--nocapture`: each prints
/// its seed, its case count and the table of what every injected fault class
/// led to.
fn campaigns(ctx: &Ctx) -> Result<(), String> {
    let mut args = HOST_TESTS.to_vec();
    args.extend([
        "--quiet",
        "--test",
        "campaign",
        "--",
        "--exact",
        CAMPAIGN_TEST,
        "--nocapture",
    ]);
    run(ctx.cargo(&args))
}

fn codegen_step(_: &Ctx) -> Result<(), String> {
    harness(&["codegen"])
}

/// A step's name, its outcome (`None`: skipped) and how long it took.
type StepResult = (&'static str, Option<Result<(), String>>, Duration);

/// `cargo xtask test` with its flags.
pub fn run_test(args: &[String]) -> Result<(), String> {
    let steps = all();
    let mut only = Vec::new();
    let mut skip = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--only" => only.push(it.next().ok_or("--only needs a step name")?.clone()),
            "--skip" => skip.push(it.next().ok_or("--skip needs a step name")?.clone()),
            "--list" => {
                for s in &steps {
                    println!("{:<16} {}", s.name, s.what);
                }
                return Ok(());
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}` (try --only, --skip, --list)"
                ))
            }
        }
    }
    for name in only.iter().chain(&skip) {
        if !steps.iter().any(|s| s.name == name) {
            let known: Vec<_> = steps.iter().map(|s| s.name).collect();
            return Err(format!(
                "unknown step `{name}`; steps: {}",
                known.join(", ")
            ));
        }
    }
    let ctx = Ctx { root: repo_root() };
    let total = Instant::now();
    let mut results: Vec<StepResult> = Vec::new();
    for step in &steps {
        let selected = (only.is_empty() || only.iter().any(|o| o == step.name))
            && !skip.iter().any(|s| s == step.name);
        if !selected {
            results.push((step.name, None, Duration::ZERO));
            continue;
        }
        println!("==> {}: {}", step.name, step.what);
        let t = Instant::now();
        let r = (step.run)(&ctx);
        let took = t.elapsed();
        match &r {
            Ok(()) => println!("==> {} ok ({:.1}s)", step.name, took.as_secs_f64()),
            Err(e) => println!("==> {} FAILED ({:.1}s): {e}", step.name, took.as_secs_f64()),
        }
        results.push((step.name, Some(r), took));
    }
    println!();
    println!("cargo xtask test: summary");
    let (mut passed, mut failed) = (0, 0);
    for (name, r, took) in &results {
        let (label, detail) = match r {
            None => ("skipped", String::new()),
            Some(Ok(())) => {
                passed += 1;
                ("ok", String::new())
            }
            Some(Err(e)) => {
                failed += 1;
                ("FAILED", e.lines().next().unwrap_or("").to_string())
            }
        };
        println!(
            "  {name:<16} {label:<8} {:>7.1}s  {detail}",
            took.as_secs_f64()
        );
    }
    println!("  total {:.1}s", total.elapsed().as_secs_f64());
    println!("steps: {passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} step(s) failed"))
    }
}
