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
            Verdict::Fail(why) | Verdict::Error(why) => why.clone(),
            Verdict::Timeout => "killed at the timeout".to_string(),
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
    let passed = reports.iter().filter(|r| r.verdict.passed()).count();
    let _ = writeln!(s, "  logs and disk images: tests/out/<scenario>/");
    let _ = writeln!(
        s,
        "qemu: {passed} passed, {} failed",
        reports.len() - passed
    );
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
            },
            RunReport {
                name: "pci-discovery".into(),
                verdict: Verdict::Fail("no e1000".into()),
                time: Duration::from_millis(90),
                exit: Some(35),
                accel: "tcg",
                output: None,
            },
            RunReport {
                name: "hang".into(),
                verdict: Verdict::Timeout,
                time: Duration::from_secs(30),
                exit: None,
                accel: "tcg",
                output: None,
            },
        ];
        let t = render(&reports, "7.2.19", 2, Duration::from_secs(31));
        assert!(t.contains("7.2.19"));
        assert!(t.contains("boot") && t.contains("pass") && t.contains("0.12s"));
        assert!(t.contains("FAIL") && t.contains("no e1000"));
        assert!(t.contains("TIMEOUT"));
        assert!(t.trim_end().ends_with("qemu: 1 passed, 2 failed"));
    }
}
