//! UI tests: each `tests/ui/<lint>.rs` fixture is linted with only its lint enabled; the
//! `//~ LINT` markers must match the diagnostics line for line, and the rendered output must
//! match the blessed `tests/ui/<lint>.stderr` (human) and `.json`/`.sarif` snapshots.
//! Re-bless with `PARANOID_BLESS=1 cargo test -p cargo-paranoid --test ui`.

use std::path::{Path, PathBuf};

use cargo_paranoid::lints::{self, LINTS};
use cargo_paranoid::render;
use cargo_paranoid::{lint_text, Config, Level, Session};

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

fn session_for(enabled: &[&str]) -> Session {
    let mut levels = vec![("all".to_string(), Level::Allow)];
    for l in enabled {
        let lint = lints::find(l).unwrap_or_else(|| panic!("unknown lint {l}"));
        levels.push((l.to_string(), lint.default_level));
    }
    Session::new(Config::with_defaults(), &levels).expect("valid levels")
}

fn markers(src: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        if let Some(pos) = line.find("//~ ") {
            for name in line[pos + 4..].split_whitespace() {
                out.push((i + 1, name.to_string()));
            }
        }
    }
    out
}

fn check_snapshot(path: &Path, actual: &str, failures: &mut Vec<String>) {
    let bless = std::env::var_os("PARANOID_BLESS").is_some();
    if bless {
        std::fs::write(path, actual).expect("write snapshot");
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => failures.push(format!(
            "{} differs (re-bless with PARANOID_BLESS=1)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        )),
        Err(_) => failures.push(format!("{} is missing (bless with PARANOID_BLESS=1)", path.display())),
    }
}

fn fixture_lints(stem: &str) -> Vec<&'static str> {
    if stem == "suppressions" {
        vec![
            "raw_mmio",
            "unused_suppression",
            "suppression_without_reason",
        ]
    } else {
        vec![lints::find(stem)
            .map(|l| l.name)
            .unwrap_or_else(|| panic!("fixture {stem} names no lint"))]
    }
}

#[test]
fn ui_fixtures() {
    let mut failures = Vec::new();
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(ui_dir())
        .expect("tests/ui")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    fixtures.sort();
    // One fixture per lint, plus the suppressions fixture.
    for l in LINTS.iter().filter(|l| l.check.is_some()) {
        assert!(
            fixtures
                .iter()
                .any(|f| f.file_stem().is_some_and(|s| s == l.name)),
            "no fixture for {}",
            l.name
        );
    }
    for f in &fixtures {
        let stem = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let src = std::fs::read_to_string(f).expect("read fixture");
        let shown = format!("tests/ui/{stem}.rs");
        let diags = lint_text(&session_for(&fixture_lints(&stem)), &shown, &src);
        let mut actual: Vec<(usize, String)> = diags
            .iter()
            .map(|d| {
                (
                    d.primary().map(|p| p.span.line_start).unwrap_or(0),
                    d.lint.to_string(),
                )
            })
            .collect();
        actual.sort();
        let mut expected = markers(&src);
        expected.sort();
        if actual != expected {
            failures.push(format!(
                "{shown}: markers do not match\n expected {expected:?}\n actual   {actual:?}"
            ));
        }
        check_snapshot(
            &f.with_extension("stderr"),
            &render::human::render(&diags, false),
            &mut failures,
        );
        check_snapshot(
            &f.with_extension("json"),
            &render::json::render(&diags),
            &mut failures,
        );
        check_snapshot(
            &f.with_extension("sarif"),
            &render::sarif::render(&diags),
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
