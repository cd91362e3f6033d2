//! The readable summary table.

use std::fmt::Write;
use std::time::Duration;

use crate::runner::{RunReport, Verdict};

/// Formats a duration as seconds with two decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// The summary: a header line (QEMU version, accelerator, parallelism), one row
/// per scenario (name, verdict, time, exit status, accelerator, detail), and a
/// closing `N passed, N failed` line.
pub fn render(reports: &[RunReport], qemu_version: &str, jobs: usize, wall: Duration) -> String {
    let mut s = String::new();
    let accel = reports.first().map_or("tcg", |r| r.accel);
    let _ = writeln!(
        s,
        "QEMU scenarios: {} on {}, accelerator {accel}, {jobs} in parallel, {} wall",
        reports.len(),
        qemu_version,
        secs(wall)
    );
    let width = reports
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        s,
        "  {:<width$}  {:<7}  {:>7}  {:>4}  {:<5}  detail",
        "scenario", "verdict", "time", "exit", "accel"
    );
    let _ = writeln!(s, "  {}", "-".repeat(width + 40));
    for r in reports {
        let exit = r.exit.map_or("-".to_string(), |c| c.to_string());
        let detail = match &r.verdict {
            Verdict::Pass => r
                .output
                .as_ref()
                .and_then(|o| o.result.as_ref())
                .map(|l| {
                    l.fields
                        .iter()
                        .filter(|(k, _)| k != "test" && k != "verdict")
                        .take(4)
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
            Verdict::Fail(why) | Verdict::Error(why) | Verdict::Inconclusive(why) => why.clone(),
            Verdict::Timeout => "killed at the timeout".to_string(),
        };
        let detail = if r.attempts > 1 {
            format!(
                "[run {} of {}] {detail}",
                r.attempts,
                crate::runner::ATTEMPTS
            )
        } else {
            detail
        };
        let _ = writeln!(
            s,
            "  {:<width$}  {:<7}  {:>7}  {:>4}  {:<5}  {}",
            r.name,
            r.verdict.label(),
            secs(r.time),
            exit,
            r.accel,
            truncate(&detail, 100)
        );
    }
    s.push_str(&profiles(reports));
    let passed = reports.iter().filter(|r| r.verdict.passed()).count();
    let _ = writeln!(s, "  logs and disk images: tests/out/<scenario>/");
    let _ = writeln!(
        s,
        "qemu: {passed} passed, {} failed",
        reports.len() - passed
    );
    s
}

/// The name of the main job (`crash-recovery`, on the standard machine).
const MAIN_JOB: &str = "crash-recovery";

/// The machine-profile table: one row per profile whose main job ran
/// (`crash-recovery` is the standard machine, `crash-recovery@NAME` profile
/// NAME), with its verdict, wall time, what the recovery kernel reported
/// (IOMMU, NIC, target block size, or the typed refusal) and how many of the
/// profile's other scenarios (its chaos sample) passed. Markdown, so the
/// README's table is this output. Empty when no main job ran.
pub fn profiles(reports: &[RunReport]) -> String {
    let profile_of = |name: &str| -> Option<String> {
        match name.split_once('@') {
            None if name == MAIN_JOB => Some("standard".to_string()),
            Some((job, m)) if job == MAIN_JOB => Some(m.to_string()),
            _ => None,
        }
    };
    let rows: Vec<(String, &RunReport)> = reports
        .iter()
        .filter_map(|r| profile_of(&r.name).map(|p| (p, r)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    let _ = writeln!(s, "machine profiles (main job per profile):");
    let _ = writeln!(
        s,
        "| profile | main job | time | recovery kernel saw | others on the profile |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for (profile, r) in rows {
        let field = |k: &str| {
            r.output
                .as_ref()
                .and_then(|o| o.result.as_ref())
                .and_then(|l| l.fields.iter().find(|(key, _)| key == k))
                .map(|(_, v)| v.clone())
        };
        let saw = match field("dump_refused") {
            Some(why) => format!("dump refused: {why}"),
            None => ["iommu", "nic", "block_size"]
                .iter()
                .filter_map(|k| field(k).map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let suffix = format!("@{profile}");
        let others: Vec<&RunReport> = reports
            .iter()
            .filter(|o| o.name != r.name)
            .filter(|o| {
                if profile == "standard" {
                    o.name.starts_with("chaos-") && !o.name.contains('@')
                } else {
                    o.name.ends_with(&suffix)
                }
            })
            .collect();
        let passed = others.iter().filter(|o| o.verdict.passed()).count();
        let _ = writeln!(
            s,
            "| {profile} | {} | {} | {} | {passed}/{} passed |",
            r.verdict.label(),
            secs(r.time),
            truncate(&saw, 60),
            others.len()
        );
    }
    s
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_scenario_and_a_count_line() {
        let reports = vec![
            RunReport {
                name: "boot".into(),
                verdict: Verdict::Pass,
                time: Duration::from_millis(120),
                exit: Some(33),
                accel: "tcg",
                output: None,
                attempts: 1,
            },
            RunReport {
                name: "pci-discovery".into(),
                verdict: Verdict::Fail("no e1000".into()),
                time: Duration::from_millis(90),
                exit: Some(35),
                accel: "tcg",
                output: None,
                attempts: 1,
            },
            RunReport {
                name: "hang".into(),
                verdict: Verdict::Timeout,
                time: Duration::from_secs(30),
                exit: None,
                accel: "tcg",
                output: None,
                attempts: 1,
            },
        ];
        let t = render(&reports, "7.2.19", 2, Duration::from_secs(31));
        assert!(t.contains("7.2.19"));
        assert!(t.contains("boot") && t.contains("pass") && t.contains("0.12s"));
        assert!(t.contains("FAIL") && t.contains("no e1000"));
        assert!(t.contains("TIMEOUT"));
        assert!(t.trim_end().ends_with("qemu: 1 passed, 2 failed"));
        assert!(!t.contains("machine profiles"), "no main job ran");
    }

    fn main_job(name: &str, verdict: Verdict, fields: &[(&str, &str)]) -> RunReport {
        let line = fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        RunReport {
            name: name.into(),
            verdict,
            time: Duration::from_millis(9_870),
            exit: Some(33),
            accel: "tcg",
            output: Some(crate::scenario::RunOutput {
                dir: crate::scenario::RunDir {
                    dir: std::path::PathBuf::from("/nonexistent"),
                },
                serial: String::new(),
                result: crate::result_line::parse(&format!(
                    "{} test=crash-recovery verdict=pass {line}",
                    crate::result_line::MARKER
                )),
                exit: Some(33),
                machine: crate::machine::Machine::standard(),
            }),
            attempts: 1,
        }
    }

    #[test]
    fn profile_table_has_a_row_per_main_job_with_its_outcome() {
        let reports = vec![
            main_job(
                "crash-recovery",
                Verdict::Pass,
                &[("iommu", "vtd"), ("nic", "up"), ("block_size", "512")],
            ),
            main_job("chaos-early-fence-1", Verdict::Pass, &[]),
            main_job(
                "crash-recovery@no-target",
                Verdict::Pass,
                &[("dump_refused", "absent")],
            ),
            main_job(
                "chaos-early-adopt-2@no-target",
                Verdict::Fail("x".into()),
                &[],
            ),
            main_job(
                "crash-recovery@nvme-4k",
                Verdict::Fail("no dump".into()),
                &[],
            ),
        ];
        let t = profiles(&reports);
        assert!(
            t.contains(
                "| standard | pass | 9.87s | iommu=vtd nic=up block_size=512 | 1/1 passed |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| no-target | pass | 9.87s | dump refused: absent | 0/1 passed |"),
            "{t}"
        );
        assert!(
            t.contains("| nvme-4k | FAIL | 9.87s |  | 0/0 passed |"),
            "{t}"
        );
        assert_eq!(t.lines().count(), 6, "{t}");
    }
}
