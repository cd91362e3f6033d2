//! `cargo xtask demo`: what paranoid does, on QEMU, for a human.
//!
//! The demo is a list of acts; each boots a scenario and shows its serial
//! output. Today one act: the PCI inventory and the HAL self-checks. The
//! crash → recovery demo adds acts (kernel A with live DMA panics and hands
//! over to the recovery kernel) to [`ACTS`].

use std::time::Instant;

use paranoid_harness::{kernels, qemu, runner, summary, Scenario};

/// One act: a title, and the scenario it boots.
struct Act {
    title: &'static str,
    scenario: fn() -> Scenario,
}

const ACTS: &[Act] = &[Act {
    title: "PCI inventory and HAL self-checks (test-kernel, test=demo)",
    scenario: || Scenario::new("demo"),
}];

/// Serial lines not worth showing a human.
fn shown(line: &str) -> bool {
    !line.starts_with("PARANOID-BOOT") && !line.trim_start().starts_with("memmap ")
}

pub fn run() -> Result<(), String> {
    let version = crate::ensure_qemu_prereqs()?;
    println!("building the kernels (examples/kernels, x86_64-unknown-none)...");
    kernels::build()?;
    let accel = qemu::accelerator();
    let mut reports = Vec::new();
    let started = Instant::now();
    for (i, act) in ACTS.iter().enumerate() {
        println!();
        println!("=== act {}: {} ===", i + 1, act.title);
        let scenario = (act.scenario)();
        let report = runner::run_one(&scenario, accel);
        if let Some(out) = &report.output {
            for line in out.serial.lines().filter(|l| shown(l)) {
                println!("{line}");
            }
        }
        reports.push(report);
    }
    println!();
    print!(
        "{}",
        summary::render(
            &reports,
            &qemu::short_version(&version),
            1,
            started.elapsed()
        )
    );
    if reports.iter().all(|r| r.verdict.passed()) {
        Ok(())
    } else {
        Err("the demo failed; see tests/out/<scenario>/serial.log".into())
    }
}
