//! `cargo xtask soak [--runs N] [MACHINE OPTIONS] [SCENARIO]`: one scenario
//! (the main job by default) run again and again, one run at a time, to find
//! a failure that shows once in many runs. The first failing run's directory
//! (serial log, QEMU's stderr, disk images, command line) is moved to
//! `tests/out/soak-failure/` before anything can overwrite it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// The scenario soaked when none is named.
const DEFAULT_SCENARIO: &str = "crash-recovery";

/// Where the first failing run's directory is kept.
const KEPT: &str = "soak-failure";

/// What to soak.
#[derive(Debug, PartialEq, Eq)]
struct Soak {
    runs: usize,
    scenario: String,
    machine: Vec<String>,
}

fn parse(args: &[String]) -> Result<Soak, String> {
    let mut soak = Soak {
        runs: 20,
        scenario: DEFAULT_SCENARIO.to_string(),
        machine: vec![],
    };
    let mut named = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                soak.runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--runs needs a number > 0")?;
            }
            "--machine" | "--machine-file" | "--machine-args" => {
                let value = it.next().ok_or(format!("{a} needs a value"))?;
                soak.machine.extend([a.clone(), value.clone()]);
            }
            flag if flag.starts_with('-') => {
                return Err(format!(
                    "unknown option `{flag}` (--runs N, --machine NAME, --machine-file FILE, --machine-args 'ARGS')"
                ))
            }
            name if !named => {
                soak.scenario = name.to_string();
                named = true;
            }
            extra => return Err(format!("one scenario at a time (`{extra}` is a second)")),
        }
    }
    Ok(soak)
}

/// Runs the soak.
///
/// # Errors
///
/// A bad argument, or the first run that fails (its directory kept).
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let soak = parse(args)?;
    let out = root.join("tests").join("out");
    let started = Instant::now();
    for i in 1..=soak.runs {
        let since = SystemTime::now();
        let mut args: Vec<&str> = vec!["qemu"];
        args.extend(soak.machine.iter().map(String::as_str));
        args.push(&soak.scenario);
        let mut c = crate::harness_command(&args);
        c.env("PARANOID_QEMU_JOBS", "1");
        let t = Instant::now();
        let result = crate::run(c);
        let secs = t.elapsed().as_secs_f64();
        match result {
            Ok(()) => println!("soak: run {i}/{}: pass ({secs:.1} s)", soak.runs),
            Err(e) => {
                println!("soak: run {i}/{}: FAIL ({secs:.1} s)", soak.runs);
                let kept = keep(&out, &soak.scenario, since)?;
                return Err(format!(
                    "{}: run {i} of {} failed ({e}); its directory is kept in {}",
                    soak.scenario,
                    soak.runs,
                    kept.display()
                ));
            }
        }
    }
    println!(
        "soak: {}: {} of {} runs passed in {:.0} s",
        soak.scenario,
        soak.runs,
        soak.runs,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Moves the run directory of `scenario` written since `since` (on a machine
/// profile it is `<scenario>@<profile>`) to `out/soak-failure`.
fn keep(out: &Path, scenario: &str, since: SystemTime) -> Result<PathBuf, String> {
    let dirs = fs::read_dir(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let newest = dirs
        .flatten()
        .filter(|d| {
            let name = d.file_name().to_string_lossy().into_owned();
            name == scenario || name.starts_with(&format!("{scenario}@"))
        })
        .filter_map(|d| Some((d.metadata().ok()?.modified().ok()?, d.path())))
        .filter(|(modified, _)| *modified >= since)
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path)
        .ok_or(format!(
            "no run directory of `{scenario}` written by the failing run"
        ))?;
    let kept = out.join(KEPT);
    let _ = fs::remove_dir_all(&kept);
    fs::rename(&newest, &kept).map_err(|e| format!("keeping {}: {e}", newest.display()))?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn arguments_name_the_runs_the_machine_and_one_scenario() {
        assert_eq!(
            parse(&[]).unwrap(),
            Soak {
                runs: 20,
                scenario: DEFAULT_SCENARIO.into(),
                machine: vec![]
            }
        );
        let s = parse(&args(&[
            "--runs",
            "5",
            "--machine",
            "mem-2g",
            "heartbeat-on",
        ]))
        .unwrap();
        assert_eq!(s.runs, 5);
        assert_eq!(s.scenario, "heartbeat-on");
        assert_eq!(s.machine, args(&["--machine", "mem-2g"]));
        assert!(parse(&args(&["--runs", "0"])).is_err());
        assert!(parse(&args(&["a", "b"])).is_err());
        assert!(parse(&args(&["--nope"])).is_err());
        assert!(parse(&args(&["--machine"])).is_err());
    }

    #[test]
    fn the_failing_runs_directory_is_moved_aside() {
        let out = std::env::temp_dir().join(format!("paranoid-soak-{}", std::process::id()));
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(out.join("crash-recovery@mem-2g")).unwrap();
        fs::write(out.join("crash-recovery@mem-2g").join("serial.log"), "x").unwrap();
        let since = SystemTime::now() - std::time::Duration::from_secs(60);
        let kept = keep(&out, "crash-recovery", since).unwrap();
        assert_eq!(fs::read_to_string(kept.join("serial.log")).unwrap(), "x");
        assert!(!out.join("crash-recovery@mem-2g").exists());
        // Nothing written since: nothing to keep.
        assert!(keep(
            &out,
            "crash-recovery",
            SystemTime::now() + std::time::Duration::from_secs(60)
        )
        .is_err());
        fs::remove_dir_all(&out).unwrap();
    }
}
