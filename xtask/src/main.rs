//! `cargo xtask`: the project's commands.
//!
//! - `cargo xtask demo`: boot the demo kernel and show what paranoid does;
//! - `cargo xtask test [--only STEP]... [--skip STEP]... [--list]`: every check
//!   (prerequisites, fmt, clippy, host tests, codegen, QEMU scenarios), with a
//!   summary of steps and timings; nonzero exit when any step fails;
//! - `cargo xtask qemu [SCENARIO...]`: build the kernels and run QEMU scenarios;
//! - `cargo xtask counts [--at REV]`: unsafe blocks per folder, `duplicates`
//!   pairs, the largest files and functions (issue 16's numbers), of the working
//!   tree or of commit `REV`;
//! - `cargo xtask dump-bench [--rounds N] [--codecs|--throughput]`: the dump's
//!   throughput against the raw writer, and the compressor candidates;
//! - `cargo xtask bench-qemu [--runs N]`: the QEMU timings, median and spread;
//! - `cargo xtask soak [--runs N] [SCENARIO]`: one scenario again and again,
//!   the first failing run's directory kept;
//! - `cargo xtask mutants [--only NAME]... [--list] [--separate]`: every deliberate bug in
//!   `drivers/*/mutants.toml` must be caught by its check;
//! - `cargo xtask mutation-score [DIR]`: a cargo-mutants run's score per file.

mod bench;
mod counts;
mod mutants;
mod mutation_score;
mod soak;
mod steps;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo [MACHINE OPTIONS]    the main job under QEMU: a kernel with live DMA panics,
                            the recovery kernel takes over and saves a verified dump
  test [--only STEP]... [--skip STEP]... [--list]
                            everything CI runs; steps run in order, a summary follows
  qemu [MACHINE OPTIONS] [SCENARIO...]
                            build the kernels and run QEMU scenarios (all by default)
  machines                  the machine profiles (tests/machines.toml)
  counts [--at REV]         unsafe blocks per folder, duplicates pairs, largest
                            files and functions (of commit REV's tree with --at)
  dump-bench [--rounds N] [--codecs|--throughput]
                            the dump against the raw-writer kernel at 256 MiB and
                            2 GiB (alternated, medians), and the compressor table
  mutants [--only NAME]... [--list] [--no-baseline] [--separate]
                            every deliberate bug of drivers/*/mutants.toml must make
                            its check fail (and the check pass without it); each check
                            is built once with every bug in, selected at run time
                            (--separate: one build per bug)
  mutation-score [DIR]      a cargo-mutants run's caught / missed / timeout /
                            unviable per file and its score, from the outcome lists
                            in DIR (default drivers/mutation, the last run's lists)
  bench-qemu [--runs N]     the QEMU timings (handoff, crash to dump): N rounds
                            (default 10) in alternating order, median, min, max
  soak [--runs N] [MACHINE OPTIONS] [SCENARIO]
                            one scenario (default crash-recovery) N times in a row
                            (default 20); the first failing run's directory is moved
                            to tests/out/soak-failure/
  lint-bench [--samples N] [--touch FILE]
                            cargo paranoid vs cargo clippy on this workspace, cold
                            and after a one-file edit (alternating, medians)
  help                      this text

machine options (demo, qemu):
  --machine NAME            a profile of tests/machines.toml (default: standard)
  --machine-file FILE       a profile file of your own (same form; its first
                            profile, or the one --machine names)
  --machine-args 'ARGS'     raw QEMU options added to the machine (a bus, a device)

environment:
  PARANOID_QEMU=path        QEMU binary (default qemu-system-x86_64)
  PARANOID_QEMU_ACCEL=kvm   allow KVM (default: TCG, faster on this machine kind)
  PARANOID_QEMU_JOBS=N      parallel QEMU runs (default: number of cores)
  PARANOID_CHAOS_SEEDS=N    seeds per crash point and policy (default 4)
  PARANOID_MUTANT_TIMEOUT=S seconds one mutant's check may run (default 600)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        "demo" => harness_with("demo", rest),
        "test" => steps::run_test(rest),
        "qemu" => harness_with("qemu", rest),
        "machines" => harness(&["machines"]),
        "counts" => counts::run(&repo_root(), rest),
        "dump-bench" => harness_with("dump-bench", rest),
        "mutants" => mutants::run(&repo_root(), rest),
        "mutation-score" => mutation_score::run(&rest.first().map_or_else(
            || repo_root().join("drivers").join("mutation"),
            std::path::PathBuf::from,
        )),
        "bench-qemu" => bench::run(&repo_root(), rest),
        "soak" => soak::run(&repo_root(), rest),
        "lint-bench" => steps::lint_bench(rest),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map_or(here.clone(), PathBuf::from)
}

/// The cargo that runs us.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()));
    c.current_dir(repo_root());
    c
}

/// Runs a command, inheriting output.
///
/// # Errors
///
/// The command and its exit status.
pub fn run(mut cmd: Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Err(format!(
            "{} {} failed: {status}",
            cmd.get_program().to_string_lossy(),
            args.join(" ")
        ))
    }
}

/// Runs the QEMU harness (`tests/`, package `paranoid-harness`) with `args`.
///
/// # Errors
///
/// Its failure.
pub fn harness(args: &[&str]) -> Result<(), String> {
    run(harness_command(args))
}

/// The command that runs the QEMU harness with `args` (for a caller that
/// adds to its environment first).
pub fn harness_command(args: &[&str]) -> Command {
    let mut c = cargo();
    c.args([
        "run",
        "--quiet",
        "-p",
        "paranoid-harness",
        "--bin",
        "paranoid-harness",
        "--",
    ])
    .args(args);
    c
}

/// [`harness`] with a subcommand and more arguments.
///
/// # Errors
///
/// Its failure.
pub fn harness_with(cmd: &str, rest: &[String]) -> Result<(), String> {
    let mut args = vec![cmd];
    args.extend(rest.iter().map(String::as_str));
    harness(&args)
}
