//! `cargo xtask demo` (run as `paranoid-harness demo`): paranoid's main job,
//! on QEMU, for a human.
//!
//! Two acts. First the machine as the HAL sees it (PCI inventory, self-checks).
//! Then the crash → recovery: kernel A turns the IOMMU on, patterns its memory,
//! leaves DMA live (NVMe writes in flight, the NIC receiving, an edu DMA armed,
//! the node watchdog armed) and panics; its panic path jumps to the recovery
//! kernel, which takes the IOMMU over, brings the NIC and the NVMe controller
//! up from whatever state they are in, writes a dump of kernel A's memory to
//! the dump extent, and reports. The host then verifies the dump.

use std::time::Instant;

use crate::demo::{self, DUMP_LBA};
use crate::machine::Machine;
use crate::{kernels, machine, prereqs, qemu, runner, scenarios, summary, Scenario};

/// One act: a title, the scenario it boots, and which serial lines to show.
struct Act {
    title: &'static str,
    scenario: fn() -> Scenario,
}

const ACTS: &[Act] = &[
    Act {
        title: "the machine: PCI inventory and HAL self-checks (test-kernel)",
        scenario: scenarios::self_checks,
    },
    Act {
        title: "crash -> recovery: kernel A panics with DMA live; the recovery kernel takes over and dumps",
        scenario: demo::main_job,
    },
];

/// Serial lines not worth showing a human.
fn shown(line: &str) -> bool {
    !line.starts_with("PARANOID-BOOT")
        && !line.trim_start().starts_with("memmap ")
        && !line.starts_with("PARANOID-RESULT")
}

/// Runs the demo's acts on `machine` (default: the standard machine) and
/// verifies the dump.
///
/// # Errors
///
/// A failed act, or missing prerequisites.
pub fn demo(machine: Option<&Machine>) -> Result<(), String> {
    let machine = machine.cloned().unwrap_or_default();
    println!("machine: {} ({})", machine.name, machine.about);
    let version = ensure_qemu_prereqs()?;
    println!("building the kernels (examples/kernels, x86_64-unknown-none)...");
    kernels::build()?;
    println!("building the dump reader (cli/, the `paranoid` command)...");
    let reader = demo::dump_reader()?;
    let accel = qemu::accelerator();
    let mut reports = Vec::new();
    let started = Instant::now();
    for (i, act) in ACTS.iter().enumerate() {
        println!();
        println!("=== act {}: {} ===", i + 1, act.title);
        let scenario = (act.scenario)().on(&machine);
        let report = runner::run_one(&scenario, accel);
        if let Some(out) = &report.output {
            for line in out.serial.lines().filter(|l| shown(l)) {
                println!("{line}");
            }
        }
        reports.push(report);
    }
    let out_dir = crate::out_dir().join(demo::main_job().on(&machine).name);
    let disk = out_dir.join("nvme.img");
    println!();
    println!("=== the dump, verified on the host ===");
    match demo::verify_dump(&disk) {
        Ok(text) => print!("{text}"),
        Err(e) => println!("{e}"),
    }
    println!();
    println!("where it is and how to look at it:");
    println!("  disk image : {}", disk.display());
    println!("  dump extent: blocks {DUMP_LBA}.. (512-byte blocks; 1 MiB in)");
    println!("  serial log : {}", out_dir.join("serial.log").display());
    println!(
        "  cluster    : {} (what a second NIC on the hub saw: heartbeats)",
        out_dir.join("hub.pcap").display()
    );
    println!(
        "  verify     : {} dump verify {} --lba {DUMP_LBA}",
        reader.display(),
        disk.display()
    );
    println!(
        "  extract    : {} dump extract {} --lba {DUMP_LBA} --out /tmp/kernel-a.core && readelf -l /tmp/kernel-a.core",
        reader.display(),
        disk.display()
    );
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

/// QEMU present (installed if needed), the target added: returns QEMU's version.
///
/// # Errors
///
/// What is missing and how to install it.
pub fn ensure_qemu_prereqs() -> Result<String, String> {
    prereqs::ensure_target()?;
    prereqs::ensure_qemu()
}

/// Every prerequisite of `cargo xtask test`: rustfmt and clippy, the target,
/// QEMU, objdump.
///
/// # Errors
///
/// What is missing and how to install it.
pub fn all_prereqs() -> Result<(), String> {
    prereqs::ensure_components()?;
    let version = ensure_qemu_prereqs()?;
    println!("  {version}");
    if !prereqs::has_objdump() {
        return Err("objdump not found: install binutils (apt-get install -y binutils)".into());
    }
    Ok(())
}

/// Parallel QEMU runs (`PARANOID_QEMU_JOBS`, default the number of cores).
pub fn jobs() -> usize {
    std::env::var("PARANOID_QEMU_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(runner::default_jobs)
}

/// Builds the kernels and runs the QEMU scenarios named (all when empty),
/// on `machine` when one is given (then the names are of standard-machine
/// scenarios, default: the main job and a chaos sample).
///
/// # Errors
///
/// Unknown names, missing prerequisites, a failed build, failed scenarios.
pub fn qemu(names: &[String], machine: Option<&Machine>) -> Result<(), String> {
    let selected = match machine {
        None => scenarios::select(names)?,
        Some(m) => scenarios::on_machine(names, m)?,
    };
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

/// The codegen check: a 32-bit register read/write through the HAL is one `mov`.
///
/// # Errors
///
/// What the disassembly showed instead.
pub fn codegen() -> Result<(), String> {
    for line in crate::codegen::build_and_check()? {
        println!("  {line}");
    }
    println!("  each 32-bit register read/write through the HAL is a single mov");
    Ok(())
}

/// Prints the machine profiles of `tests/machines.toml`.
///
/// # Errors
///
/// When the table cannot be read.
pub fn machines() -> Result<(), String> {
    for m in machine::committed()? {
        println!("{:<24} {}", m.name, m.about);
    }
    Ok(())
}
