//! `cargo xtask`: the project's commands.
//!
//! - `cargo xtask demo`: boot the demo kernel and show what paranoid does;
//! - `cargo xtask test [--only STEP]... [--skip STEP]... [--list]`: every check
//!   (prerequisites, fmt, clippy, host tests, codegen, QEMU scenarios), with a
//!   summary of steps and timings; nonzero exit when any step fails;
//! - `cargo xtask qemu [SCENARIO...]`: build the kernels and run QEMU scenarios.

mod demo;
mod steps;

use std::process::ExitCode;
use std::time::Instant;

use paranoid_harness::{kernels, prereqs, qemu, runner, scenarios, summary};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo                      boot the demo kernel: PCI inventory and HAL self-checks
  test [--only STEP]... [--skip STEP]... [--list]
                            everything CI runs; steps run in order, a summary follows
  qemu [SCENARIO...]        build the kernels and run QEMU scenarios (all by default)
  help                      this text

environment:
  PARANOID_QEMU=path        QEMU binary (default qemu-system-x86_64)
  PARANOID_QEMU_ACCEL=kvm   allow KVM (default: TCG, faster on this machine kind)
  PARANOID_QEMU_JOBS=N      parallel QEMU runs (default: number of cores)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    let result = match cmd {
        "demo" => demo::run(),
        "test" => steps::run_test(rest),
        "qemu" => run_qemu(rest),
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

/// Parallel QEMU runs.
pub fn jobs() -> usize {
    std::env::var("PARANOID_QEMU_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(runner::default_jobs)
}

/// QEMU present (installed if needed), the target added: returns QEMU's version.
pub fn ensure_qemu_prereqs() -> Result<String, String> {
    prereqs::ensure_target()?;
    prereqs::ensure_qemu()
}

/// `cargo xtask qemu [SCENARIO...]`, also the `qemu` step of `cargo xtask test`.
pub fn run_qemu(names: &[String]) -> Result<(), String> {
    let selected = scenarios::select(names)?;
    let version = ensure_qemu_prereqs()?;
    kernels::build()?;
    let jobs = jobs();
    let started = Instant::now();
    let reports = runner::run_all(&selected, jobs);
    print!(
        "{}",
        summary::render(
            &reports,
            &qemu::short_version(&version),
            jobs,
            started.elapsed()
        )
    );
    let failed = reports.iter().filter(|r| !r.verdict.passed()).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failed} QEMU scenario(s) failed; see tests/out/<scenario>/serial.log"
        ))
    }
}
