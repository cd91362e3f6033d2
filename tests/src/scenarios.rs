//! The scenario table: every QEMU boot `cargo xtask test` runs.
//!
//! Add a row here (see `tests/README.md`). Each row names a kernel binary of
//! `examples/kernels`, its command line, extra QEMU arguments, and optional
//! host-side hooks. Names must be unique: they are `tests/out/` directories.

use std::time::Duration;

use crate::scenario::Scenario;

/// Seeds per crash point and policy in the chaos campaign of `cargo xtask test`
/// (`PARANOID_CHAOS_SEEDS` overrides: the longer campaign).
pub fn chaos_seeds() -> u64 {
    std::env::var("PARANOID_CHAOS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

/// Two more e1000s on one QEMU hub: what one sends, the other receives.
const E1000_HUB: [&str; 8] = [
    "-netdev",
    "hubport,id=n0,hubid=0",
    "-device",
    "e1000,netdev=n0,romfile=",
    "-netdev",
    "hubport,id=n1,hubid=0",
    "-device",
    "e1000,netdev=n1,romfile=",
];

/// Every scenario, in summary order.
pub fn all() -> Vec<Scenario> {
    let mut all = base();
    all.push(self_checks());
    // The main job: one crash and recovery (what `cargo xtask demo` runs).
    all.push(crate::demo::main_job());
    all.extend(crate::demo::campaign(chaos_seeds()));
    all.push(crate::demo::heartbeat(true));
    all.push(crate::demo::heartbeat(false));
    all.push(crate::demo::drain(true));
    all.push(crate::demo::drain(false));
    all.push(crate::demo::handoff());
    all.push(crate::demo::handoff_fast_first());
    all.push(crate::demo::stream());
    all.extend(crate::demo::dump_scenarios());
    // Every committed machine profile: the main job and a chaos sample.
    match crate::machine::committed() {
        Ok(machines) => {
            // The canaries' negative control runs without an IOMMU.
            match machines.iter().find(|m| m.name == "no-iommu") {
                Some(m) => all.push(crate::demo::canary_stale_dma(m)),
                None => all.push(
                    Scenario::new(crate::demo::CANARY_CONTROL)
                        .check(|_| Err("no machine `no-iommu` in tests/machines.toml".into())),
                ),
            }
            for (i, m) in machines.iter().filter(|m| !m.is_standard()).enumerate() {
                all.extend(profile_runs(m, i));
            }
        }
        // A broken table is a failed scenario, not a silent skip.
        Err(e) => all.push(
            Scenario::new("machine-profiles").check(move |_| Err(format!("machine table: {e}"))),
        ),
    }
    all
}

/// Act 1 of `cargo xtask demo`: the PCI inventory and the HAL self-checks
/// (test-kernel `test=demo`). They check the devices the machine has: the
/// first NVMe controller by class, the first e1000-family NIC, whose checks
/// are skipped (`e1000=absent`) only on a machine without one.
pub fn self_checks() -> Scenario {
    Scenario::new("demo").check(|out| {
        let seen = out.field("e1000").ok_or("no `e1000=` on the result line")?;
        if out.machine.expected_nic() == "up" && seen == "absent" {
            return Err(format!(
                "the machine has a NIC (`{}`) but the self-checks found no e1000",
                out.machine.nic
            ));
        }
        Ok(())
    })
}

/// What `cargo xtask test` runs on a machine profile: act 1 of the demo (its
/// self-checks, a fraction of a second), the main job and two chaos runs (the
/// `i`-th profile gets crash points and policies in turn, so the table as a
/// whole covers each on some machine).
pub fn profile_runs(m: &crate::machine::Machine, i: usize) -> Vec<Scenario> {
    use crate::demo::{CRASH_POINTS, POLICIES};
    let pick = |k: usize| {
        let point = CRASH_POINTS[k % CRASH_POINTS.len()];
        let policy = POLICIES[(k / CRASH_POINTS.len() + k) % POLICIES.len()];
        (point, policy)
    };
    let mut runs = vec![self_checks().on(m), crate::demo::main_job().on(m)];
    for k in [i, i + 2] {
        let (point, policy) = pick(k);
        let seed = 1 + i as u64;
        runs.push(
            crate::demo::scenario(
                &format!("chaos-{point}-{policy}-{seed}"),
                point,
                policy,
                seed,
            )
            .on(m),
        );
    }
    runs
}

/// Scenarios of the standard table named in `names`, on machine `m` (default
/// when no name is given: the main job and a chaos sample).
///
/// # Errors
///
/// The names that match no scenario.
pub fn on_machine(names: &[String], m: &crate::machine::Machine) -> Result<Vec<Scenario>, String> {
    if names.is_empty() {
        return Ok(profile_runs(m, 0));
    }
    let mut base = self::base();
    base.push(self_checks());
    base.push(crate::demo::main_job());
    base.extend(crate::demo::campaign(chaos_seeds()));
    base.push(crate::demo::heartbeat(true));
    base.push(crate::demo::heartbeat(false));
    base.push(crate::demo::drain(true));
    base.push(crate::demo::drain(false));
    base.push(crate::demo::handoff());
    base.push(crate::demo::handoff_fast_first());
    base.push(crate::demo::stream());
    let mut out = Vec::new();
    for n in names {
        match base.iter().find(|s| &s.name == n) {
            Some(s) => out.push(s.clone().on(m)),
            None => return Err(format!("unknown scenario `{n}`")),
        }
    }
    Ok(out)
}

/// On a machine whose named target is absent (a profile expecting a refusal),
/// `nvme-test` must have stopped because no controller had the serial number,
/// before any I/O: `Some(verdict)` then, `None` on other machines.
fn refused_for_serial(out: &crate::scenario::RunOutput) -> Option<Result<(), String>> {
    out.machine.expect.refusal.as_ref()?;
    let reason = out.field("reason").unwrap_or("");
    Some(
        if reason.contains("serial") && out.field("verified_bytes").is_none() {
            Ok(())
        } else {
            Err(format!(
                "expected a refusal by serial number, got reason {reason:?}"
            ))
        },
    )
}

/// `-m` text (`256M`, `3G`, a plain number of MiB) in MiB.
fn mebibytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, scale) = match t.chars().last()? {
        'G' | 'g' => (&t[..t.len() - 1], 1024),
        'M' | 'm' => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

fn base() -> Vec<Scenario> {
    vec![
        // The kernel boots and reports memory map, command line, RSDP, TSC.
        Scenario::new("boot").append("extra=hello").check(|out| {
            // The memory map shows most of `-m` as RAM (the machine's, when a
            // profile sets it): firmware and holes take the rest.
            let given = out.machine.memory.as_deref().unwrap_or("256M");
            let want = mebibytes(given).unwrap_or(256);
            match (out.field("cmdline"), out.field("ram_mib")) {
                (Some("test=boot extra=hello"), Some(mib))
                    if mib
                        .parse::<u64>()
                        .is_ok_and(|m| (want * 3 / 4..=want).contains(&m)) =>
                {
                    Ok(())
                }
                (cmdline, mib) => Err(format!(
                    "kernel saw cmdline {cmdline:?}, {mib:?} MiB of RAM for -m {given}"
                )),
            }
        }),
        // PCI through CF8 and ECAM: e1000 and NVMe with the right ids and BARs.
        Scenario::new("pci-discovery"),
        // A poll on a register that never changes times out, on time.
        Scenario::new("poll-timeout"),
        // An empty slot reads as absent everywhere.
        Scenario::new("missing-device"),
        // MMIO and port I/O on real registers.
        Scenario::new("mmio-selfcheck"),
        // test-kernel loads test-kernel-high (-initrd) and enters it through PVH.
        Scenario::new("pvh-handoff")
            .initrd("test-kernel-high")
            .check(|out| {
                if !out.serial.contains("PARANOID-HANDOFF") {
                    return Err("stage 1 never announced the hand-over".into());
                }
                match out.field("kernel") {
                    Some(k) if k.starts_with("0x4000000..") => Ok(()),
                    other => Err(format!("stage 2 ran at {other:?}")),
                }
            }),
        // VT-d bring-up core (paranoid-vtd, kernel `vtd-test`): a dying kernel
        // leaves translation on with its own tables and an edu DMA armed (it
        // lands 100 ms later); the core adopts (the stale DMA lands in the old
        // buffer), fences (it faults with edu's source-id, classified stale),
        // falls back to fence from a corrupt context table, and survives a
        // fault storm (one record, overflow); NVMe Identify through the
        // recovery window in each.
        Scenario::new("vtd-adopt")
            .kernel("vtd-test")
            .qemu_args(["-device", "edu"])
            .check(|out| vtd_fields(out, &[("outcome", "adopted"), ("stale_landed", "true")])),
        Scenario::new("vtd-fence")
            .kernel("vtd-test")
            .qemu_args(["-device", "edu"])
            .check(|out| {
                vtd_fields(out, &[("outcome", "fenced"), ("stale_landed", "false")])?;
                match (out.field("fault_sid"), out.field("edu_sid")) {
                    (Some(f), Some(e)) if f == e => Ok(()),
                    other => Err(format!("fault source vs edu: {other:?}")),
                }
            }),
        Scenario::new("vtd-fallback")
            .kernel("vtd-test")
            .qemu_args(["-device", "edu"])
            .check(|out| {
                vtd_fields(
                    out,
                    &[
                        ("outcome", "fenced-after-adopt-failed"),
                        ("stale_landed", "false"),
                    ],
                )
            }),
        Scenario::new("vtd-storm")
            .kernel("vtd-test")
            .qemu_args(["-device", "edu"])
            .check(|out| {
                vtd_fields(out, &[("outcome", "fenced"), ("after_overflow", "false")])?;
                match out.field("overflows").and_then(|o| o.parse::<u32>().ok()) {
                    Some(n) if n >= 1 => Ok(()),
                    other => Err(format!("no overflow seen: {other:?}")),
                }
            }),
        // NVMe driver (paranoid-nvme, kernel `nvme-test`) on QEMU's controller:
        // from the firmware state, from live queues with outstanding commands
        // and garbage registers, from CSTS.CFS, and across a clean handoff;
        // blocks verified in the guest and, for nvme-init, in the disk image.
        Scenario::new("nvme-init")
            .kernel("nvme-test")
            .names_target()
            .check(nvme_disk_pattern),
        Scenario::new("nvme-dirty")
            .kernel("nvme-test")
            .names_target()
            .check(|out| {
                if let Some(refused) = refused_for_serial(out) {
                    return refused;
                }
                match out.field("old_memory") {
                    Some("untouched") => Ok(()),
                    other => Err(format!("old memory after init: {other:?}")),
                }
            }),
        Scenario::new("nvme-cfs").kernel("nvme-test").names_target(),
        Scenario::new("nvme-handoff")
            .kernel("nvme-test")
            .names_target(),
        // e1000 (paranoid-e1000, kernel `e1000-test`) on QEMU's real model: init
        // from firmware state; two NICs on one hub exchange frames both ways,
        // contents verified, from firmware state and after the test kernel
        // dirtied them (A receiving into an old ring, transmit posted,
        // interrupts pending, garbage tables: no stale frame sent, no DMA into
        // the old ring after init); shutdown then re-init (clean handoff).
        Scenario::new("e1000-init").kernel("e1000-test"),
        Scenario::new("e1000-pair")
            .kernel("e1000-test")
            .qemu_args(E1000_HUB),
        Scenario::new("e1000-dirty")
            .kernel("e1000-test")
            .qemu_args(E1000_HUB)
            .check(|out| {
                for (k, v) in [
                    ("old_ring_filled", "7"),
                    ("old_bytes_touched", "0"),
                    ("stale_tx_at_b", "0"),
                    ("ims_after", "0x0"),
                    ("mta_entries_set", "0"),
                    ("ra1_valid", "false"),
                ] {
                    if out.field(k) != Some(v) {
                        return Err(format!("{k}={:?}, expected {v}", out.field(k)));
                    }
                }
                Ok(())
            }),
        Scenario::new("e1000-handoff")
            .kernel("e1000-test")
            .qemu_args(E1000_HUB),
        // A kernel that exits with the failure code must be seen as such.
        Scenario::new("unknown-scenario-fails")
            .cmdline("test=no-such-scenario")
            .result_test("no-such-scenario")
            .expect_failure()
            .timeout(Duration::from_secs(20))
            .check(|out| match out.result.as_ref().map(|r| r.passed()) {
                Some(false) if out.field("reason") == Some("unknown-scenario") => Ok(()),
                _ => Err("the kernel did not report the unknown scenario".into()),
            }),
    ]
}

/// The pattern `nvme-test` wrote at LBA 2048 (128 blocks of 512 bytes), read
/// from the disk image: byte `i` of block `lba` is
/// `(lba * 7 ^ i * 13) as u8 ^ 0x5a`.
fn nvme_disk_pattern(out: &crate::scenario::RunOutput) -> Result<(), String> {
    if let Some(refused) = refused_for_serial(out) {
        return refused;
    }
    let disk = std::fs::read(out.disk()).map_err(|e| format!("disk image: {e}"))?;
    for lba in 2048u64..2048 + 128 {
        let at = lba as usize * 512;
        let block = disk
            .get(at..at + 512)
            .ok_or(format!("disk image too small for LBA {lba}"))?;
        for (i, &b) in block.iter().enumerate() {
            let want = ((lba as u32).wrapping_mul(7) ^ (i as u32).wrapping_mul(13)) as u8 ^ 0x5a;
            if b != want {
                return Err(format!(
                    "disk image LBA {lba} byte {i}: {b:#x}, want {want:#x}"
                ));
            }
        }
    }
    Ok(())
}

/// Checks the VT-d scenarios' common fields: the NVMe Identify came through the
/// recovery window, and `expected` key=value pairs.
fn vtd_fields(out: &crate::scenario::RunOutput, expected: &[(&str, &str)]) -> Result<(), String> {
    if out.field("nvme_vid") != Some("0x1b36") {
        return Err(format!(
            "NVMe Identify through the window: {:?}",
            out.field("nvme_vid")
        ));
    }
    for (k, v) in expected {
        if out.field(k) != Some(v) {
            return Err(format!("{k}={:?}, expected {v}", out.field(k)));
        }
    }
    Ok(())
}

/// The scenarios named in `names` (all when empty).
///
/// # Errors
///
/// The names that match no scenario.
pub fn select(names: &[String]) -> Result<Vec<Scenario>, String> {
    let all = all();
    if names.is_empty() {
        return Ok(all);
    }
    let unknown: Vec<_> = names
        .iter()
        .filter(|n| !all.iter().any(|s| &s.name == *n))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        let known: Vec<_> = all.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "unknown scenario(s) {unknown:?}; known: {}",
            known.join(", ")
        ));
    }
    Ok(all
        .into_iter()
        .filter(|s| names.contains(&s.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_selectable() {
        let all = all();
        let mut names: Vec<_> = all.iter().map(|s| s.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert_eq!(select(&["boot".into()]).unwrap().len(), 1);
        assert!(select(&["nope".into()]).is_err());
    }
}
