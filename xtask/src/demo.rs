//! `cargo xtask demo`: paranoid's main job, on QEMU, for a human.
//!
//! Two acts. First the machine as the HAL sees it (PCI inventory, self-checks).
//! Then the crash → recovery: kernel A turns the IOMMU on, patterns its memory,
//! leaves DMA live (NVMe writes in flight, the NIC receiving, an edu DMA armed,
//! the node watchdog armed) and panics; its panic path jumps to the recovery
//! kernel, which takes the IOMMU over, brings the NIC and the NVMe controller
//! up from whatever state they are in, writes a dump of kernel A's memory to
//! the dump extent, and reports. The host then verifies the dump.

use std::time::Instant;

use paranoid_harness::demo::{self, DUMP_LBA, MAIN_JOB};
use paranoid_harness::{kernels, qemu, runner, summary, Scenario};

/// One act: a title, the scenario it boots, and which serial lines to show.
struct Act {
    title: &'static str,
    scenario: fn() -> Scenario,
}

const ACTS: &[Act] = &[
    Act {
        title: "the machine: PCI inventory and HAL self-checks (test-kernel)",
        scenario: || Scenario::new("demo"),
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

pub fn run() -> Result<(), String> {
    let version = crate::ensure_qemu_prereqs()?;
    println!("building the kernels (examples/kernels, x86_64-unknown-none)...");
    kernels::build()?;
    println!("building the dump reader (examples/dump)...");
    let reader = demo::dump_reader()?;
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
    let out_dir = paranoid_harness::out_dir().join(MAIN_JOB);
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
