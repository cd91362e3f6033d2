//! Running scenarios: in parallel, bounded by the cores, each judged on exit
//! status, result line and host-side check.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::qemu::{self, Ended};
use crate::result_line;
use crate::scenario::{RunOutput, Scenario};

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Expected exit status, a passing result line, host check passed.
    Pass,
    /// It ran, and something was wrong: the reason.
    Fail(String),
    /// It did not finish in time.
    Timeout,
    /// It could not run (QEMU missing, kernel not built, hook failed).
    Error(String),
    /// Every check passed, but the run could not test what it is for: the
    /// host lost a timing race the scenario needs (see [`INCONCLUSIVE_FILE`]).
    /// Run again ([`run_all`] does); not a pass.
    Inconclusive(String),
}

/// A host check that passes a run which could not test its property writes
/// why into this file of the run directory; the runner turns the pass into
/// [`Verdict::Inconclusive`] and runs the scenario again.
pub const INCONCLUSIVE_FILE: &str = "inconclusive.txt";

/// How many times an inconclusive scenario runs in all (the retries run one
/// at a time, after the others, so the host is quieter).
pub const ATTEMPTS: usize = 3;

/// QEMU arguments of the last attempt: virtual time from the instruction
/// count (one instruction a nanosecond, no sleeping), so how long the guest
/// takes no longer depends on the host's load. Slower (about 7x), so only
/// for a run that was inconclusive twice.
pub const DETERMINISTIC_TIME: [&str; 2] = ["-icount", "shift=0,align=off,sleep=off"];

impl Verdict {
    /// True for [`Verdict::Pass`].
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// A one-word label.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "FAIL",
            Verdict::Timeout => "TIMEOUT",
            Verdict::Error(_) => "ERROR",
            Verdict::Inconclusive(_) => "INCONCL",
        }
    }
}

/// The outcome of one scenario.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Scenario name.
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Wall time of the QEMU run.
    pub time: Duration,
    /// QEMU's exit status (`None`: killed or never started).
    pub exit: Option<i32>,
    /// The accelerator used.
    pub accel: &'static str,
    /// The run's output (when QEMU ran).
    pub output: Option<RunOutput>,
    /// Runs it took (more than one: the first ones were inconclusive).
    pub attempts: usize,
}

/// Runs one scenario and judges it.
pub fn run_one(s: &Scenario, accel: &'static str) -> RunReport {
    let dir = s.run_dir(&crate::out_dir());
    let mut report = RunReport {
        name: s.name.clone(),
        verdict: Verdict::Pass,
        time: Duration::ZERO,
        exit: None,
        accel,
        output: None,
        attempts: 1,
    };
    let (ended, time) = match qemu::run(s, &dir, accel) {
        Ok(r) => r,
        Err(e) => {
            report.verdict = Verdict::Error(e);
            return report;
        }
    };
    report.time = time;
    let serial = qemu::read_lossy(&dir.serial());
    let exit = match ended {
        Ended::Exited(st) => st.code(),
        Ended::TimedOut => None,
    };
    report.exit = exit;
    let output = RunOutput {
        dir: dir.clone(),
        result: result_line::find(&serial, &s.result_test),
        serial,
        exit,
        machine: s.machine.clone(),
    };
    report.verdict = judge(s, &ended, &output);
    if report.verdict.passed() {
        // Whatever the scenario: no namespace but the target may change.
        if let Err(e) = crate::machine::check_untouched(&s.images(&dir)) {
            report.verdict = Verdict::Fail(format!("cluster safety: {e}"));
        }
    }
    if report.verdict.passed() {
        if let Ok(why) = std::fs::read_to_string(dir.file(INCONCLUSIVE_FILE)) {
            report.verdict = Verdict::Inconclusive(why.trim().to_string());
        }
    }
    report.output = Some(output);
    report
}

/// The verdict from how QEMU ended, the result line and the host check.
pub fn judge(s: &Scenario, ended: &Ended, out: &RunOutput) -> Verdict {
    if let Some(msg) = result_line::panic_message(&out.serial) {
        return Verdict::Fail(format!("kernel panic: {msg}"));
    }
    if matches!(ended, Ended::TimedOut) {
        return Verdict::Timeout;
    }
    // Exactly one result line per run: `fail` then `pass` is not a pass, and
    // two kernels both claiming a verdict is a harness or kernel bug.
    let lines = result_line::all(&out.serial).len();
    if lines > 1 {
        return Verdict::Fail(format!(
            "{lines} result lines in the serial log; exactly one expected"
        ));
    }
    if s.expect_reset {
        return match (&out.result, out.exit) {
            (None, Some(0)) => match &s.check {
                Some(check) => check(out).map_or_else(
                    |e| Verdict::Fail(format!("host check: {e}")),
                    |()| Verdict::Pass,
                ),
                None => Verdict::Pass,
            },
            (Some(_), _) => {
                Verdict::Fail("a result line where a machine reset was expected".into())
            }
            (None, exit) => Verdict::Fail(format!(
                "exit status {exit:?} where a machine reset (0) was expected"
            )),
        };
    }
    let Some(result) = &out.result else {
        let stderr = qemu::read_lossy(&out.dir.stderr());
        let hint = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        // With `-no-reboot` a machine reset ends QEMU with status 0: a triple
        // fault, or a watchdog run with its default action.
        let reset = if out.exit == Some(0) {
            " (a machine reset: triple fault or watchdog)"
        } else {
            ""
        };
        // Another kernel of the run that failed first (kernel A before it
        // could crash) says why in its own line.
        let earlier = result_line::all(&out.serial)
            .into_iter()
            .find(|l| !l.passed() && l.test() != Some(s.result_test.as_str()))
            .map(|l| {
                format!(
                    "; {} failed first: {} {}",
                    l.test().unwrap_or("a kernel"),
                    l.get("reason").unwrap_or("?"),
                    l.get("error").unwrap_or("")
                )
            })
            .unwrap_or_default();
        return Verdict::Fail(format!(
            "no result line for test={} (exit {:?}){reset}{earlier}{}",
            s.result_test,
            out.exit,
            if hint.is_empty() {
                String::new()
            } else {
                format!("; qemu: {hint}")
            }
        ));
    };
    if result.passed() != s.expect_pass {
        let reason = match (s.expect_pass, result.get("reason")) {
            (true, Some(reason)) => reason.to_string(),
            (true, None) => "verdict is not pass".to_string(),
            (false, _) => "verdict=pass where a failure was expected".to_string(),
        };
        return Verdict::Fail(reason);
    }
    // A pass is read strictly: a line cut short, truncated by the kernel or
    // with a key twice does not say what passed.
    if result.passed() {
        if let Err(e) = result.check() {
            return Verdict::Fail(format!("malformed result line: {e}"));
        }
    }
    if out.exit != Some(s.expected_exit) {
        return Verdict::Fail(format!(
            "exit status {:?}, expected {}",
            out.exit, s.expected_exit
        ));
    }
    if let Some(check) = &s.check {
        if let Err(e) = check(out) {
            return Verdict::Fail(format!("host check: {e}"));
        }
    }
    Verdict::Pass
}

/// How many QEMU runs at once: the number of cores (at least 1).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs every scenario, `jobs` at a time; reports come back in table order.
pub fn run_all(scenarios: &[Scenario], jobs: usize) -> Vec<RunReport> {
    let accel = qemu::accelerator();
    let next = AtomicUsize::new(0);
    let reports: Mutex<Vec<Option<RunReport>>> = Mutex::new(vec![None; scenarios.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, scenarios.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(s) = scenarios.get(i) else { break };
                let r = run_one(s, accel);
                if let Ok(mut all) = reports.lock() {
                    if let Some(slot) = all.get_mut(i) {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut reports: Vec<RunReport> = reports
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    retry_inconclusive(scenarios, &mut reports, |s| run_one(s, accel));
    reports
}

/// Runs each inconclusive scenario again, one at a time: up to [`ATTEMPTS`]
/// runs in all, the last one with [`DETERMINISTIC_TIME`]. A scenario still
/// inconclusive after that stays so (and is not a pass).
fn retry_inconclusive(
    scenarios: &[Scenario],
    reports: &mut [RunReport],
    mut run: impl FnMut(&Scenario) -> RunReport,
) {
    for (s, report) in scenarios.iter().zip(reports.iter_mut()) {
        let mut why = Vec::new();
        while let Verdict::Inconclusive(reason) = &report.verdict {
            why.push(reason.clone());
            let attempt = report.attempts + 1;
            if attempt > ATTEMPTS {
                report.verdict = Verdict::Inconclusive(format!(
                    "inconclusive in all {ATTEMPTS} runs: {}",
                    why.join("; ")
                ));
                break;
            }
            let mut again = s.clone();
            if attempt == ATTEMPTS {
                again.qemu_args.extend(DETERMINISTIC_TIME.map(String::from));
            }
            eprintln!(
                "qemu: {} inconclusive ({reason}); run {attempt} of {ATTEMPTS}",
                s.name
            );
            *report = RunReport {
                attempts: attempt,
                ..run(&again)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::RunDir;
    use std::path::PathBuf;

    fn out(serial: &str, exit: Option<i32>) -> RunOutput {
        RunOutput {
            dir: RunDir {
                dir: PathBuf::from("/nonexistent"),
            },
            result: result_line::find(serial, "boot"),
            serial: serial.to_string(),
            exit,
            machine: crate::machine::Machine::standard(),
        }
    }

    #[cfg(unix)]
    fn exited(code: i32) -> Ended {
        use std::os::unix::process::ExitStatusExt;
        Ended::Exited(std::process::ExitStatus::from_raw(code << 8))
    }

    #[test]
    fn requires_both_status_and_result_line() {
        let s = Scenario::new("boot");
        let pass = "PARANOID-RESULT test=boot verdict=pass\n";
        assert_eq!(judge(&s, &exited(33), &out(pass, Some(33))), Verdict::Pass);
        // Triple fault: status 0, nothing printed.
        assert!(matches!(
            judge(&s, &exited(0), &out("", Some(0))),
            Verdict::Fail(_)
        ));
        // Result line but wrong status.
        assert!(matches!(
            judge(&s, &exited(0), &out(pass, Some(0))),
            Verdict::Fail(_)
        ));
        // Right status, failing verdict.
        let fail = "PARANOID-RESULT test=boot verdict=fail reason=x\n";
        assert_eq!(
            judge(&s, &exited(33), &out(fail, Some(33))),
            Verdict::Fail("x".into())
        );
        // Another test's line does not count.
        let other = "PARANOID-RESULT test=pci verdict=pass\n";
        assert!(matches!(
            judge(&s, &exited(33), &out(other, Some(33))),
            Verdict::Fail(_)
        ));
        assert_eq!(
            judge(&s, &Ended::TimedOut, &out(pass, None)),
            Verdict::Timeout
        );
        // A failure followed by a pass is not a pass.
        let twice = "PARANOID-RESULT test=boot verdict=fail reason=x\nPARANOID-RESULT test=boot verdict=pass\n";
        assert!(
            matches!(judge(&s, &exited(33), &out(twice, Some(33))), Verdict::Fail(m) if m.contains("2 result lines"))
        );
        // The kernel before it failed first: its reason is in the verdict.
        let first =
            "PARANOID-RESULT test=kernel-a verdict=fail reason=\"ram size\" error=\"128 MiB\"\n";
        assert!(
            matches!(judge(&s, &exited(35), &out(first, Some(35))), Verdict::Fail(m) if m.contains("kernel-a failed first: ram size 128 MiB"))
        );
        let panic = "PARANOID-PANIC boom\nPARANOID-RESULT test=boot verdict=pass\n";
        assert!(
            matches!(judge(&s, &exited(35), &out(panic, Some(35))), Verdict::Fail(m) if m.contains("boom"))
        );
    }

    #[test]
    fn expected_failures_must_fail() {
        let s = Scenario::new("boot").expect_failure();
        let fail = "PARANOID-RESULT test=boot verdict=fail reason=x\n";
        let pass = "PARANOID-RESULT test=boot verdict=pass\n";
        assert_eq!(judge(&s, &exited(35), &out(fail, Some(35))), Verdict::Pass);
        assert!(matches!(
            judge(&s, &exited(33), &out(pass, Some(33))),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge(&s, &exited(33), &out(fail, Some(33))),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn host_check_can_fail_a_run() {
        let s = Scenario::new("boot").check(|o| match o.field("n") {
            Some("3") => Ok(()),
            other => Err(format!("n = {other:?}")),
        });
        let good = "PARANOID-RESULT test=boot verdict=pass n=3\n";
        let bad = "PARANOID-RESULT test=boot verdict=pass n=4\n";
        assert_eq!(judge(&s, &exited(33), &out(good, Some(33))), Verdict::Pass);
        assert!(
            matches!(judge(&s, &exited(33), &out(bad, Some(33))), Verdict::Fail(m) if m.contains("n = Some"))
        );
    }

    #[test]
    fn inconclusive_runs_are_retried_and_the_last_with_deterministic_time() {
        let report = |verdict: Verdict| RunReport {
            name: "chaos".into(),
            verdict,
            time: Duration::ZERO,
            exit: Some(33),
            accel: "tcg",
            output: None,
            attempts: 1,
        };
        let scenarios = [Scenario::new("chaos"), Scenario::new("boot")];
        let icount = |s: &Scenario| s.qemu_args.iter().any(|a| a == DETERMINISTIC_TIME[0]);
        // Inconclusive twice more, then a pass on the deterministic run.
        let mut runs = Vec::new();
        let mut reports = [
            report(Verdict::Inconclusive("slow".into())),
            report(Verdict::Pass),
        ];
        retry_inconclusive(&scenarios, &mut reports, |s| {
            runs.push((s.name.clone(), icount(s)));
            report(if icount(s) {
                Verdict::Pass
            } else {
                Verdict::Inconclusive("slow again".into())
            })
        });
        assert_eq!(runs, [("chaos".into(), false), ("chaos".into(), true)]);
        assert_eq!(reports[0].verdict, Verdict::Pass);
        assert_eq!(reports[0].attempts, ATTEMPTS);
        assert_eq!(reports[1].attempts, 1, "a pass is not run again");
        // Inconclusive every time: it stays so, and is not a pass.
        let mut reports = [report(Verdict::Inconclusive("slow".into()))];
        retry_inconclusive(&scenarios[..1], &mut reports, |_| {
            report(Verdict::Inconclusive("slow".into()))
        });
        assert!(!reports[0].verdict.passed());
        assert!(
            matches!(&reports[0].verdict, Verdict::Inconclusive(w) if w.contains("all 3 runs"))
        );
        // A failure on a retry is a failure.
        let mut reports = [report(Verdict::Inconclusive("slow".into()))];
        retry_inconclusive(&scenarios[..1], &mut reports, |_| {
            report(Verdict::Fail("dump".into()))
        });
        assert_eq!(reports[0].verdict, Verdict::Fail("dump".into()));
    }

    #[test]
    fn expected_reset_needs_exit_zero_and_no_result_line() {
        let s = Scenario::new("boot").expect_reset();
        assert_eq!(
            judge(&s, &exited(0), &out("recovery: entered\n", Some(0))),
            Verdict::Pass
        );
        let finished = "PARANOID-RESULT test=boot verdict=pass\n";
        assert!(matches!(
            judge(&s, &exited(33), &out(finished, Some(33))),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            judge(&s, &exited(35), &out("", Some(35))),
            Verdict::Fail(_)
        ));
        assert_eq!(
            judge(&s, &Ended::TimedOut, &out("", None)),
            Verdict::Timeout
        );
    }
}
