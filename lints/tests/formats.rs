//! Shape tests of the JSON (cargo `compiler-message`) and SARIF 2.1.0 output.

use cargo_paranoid::render;
use cargo_paranoid::{lint_text, Config, Level, Session};
use serde_json::Value;

const SRC: &str = "use paranoid::Untrusted;\npub fn init(regs: &Regs, ring: &[u8]) -> u8 {\n    let i = regs.read32(0x10) as usize;\n    while regs.read32(0x1c) & 1 == 0 {}\n    ring[i]\n}\n";

fn diags() -> Vec<cargo_paranoid::Diagnostic> {
    let s = Session::new(Config::with_defaults(), &[]).unwrap();
    lint_text(&s, "src/lib.rs", SRC)
}

#[test]
fn json_lines_are_cargo_compiler_messages() {
    let d = diags();
    assert!(d.len() >= 3, "{d:#?}");
    let out = render::json::render(&d);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid json"))
        .collect();
    assert_eq!(lines.len(), d.len() + 1);
    for v in &lines[..d.len()] {
        assert_eq!(v["reason"], "compiler-message");
        assert!(v["package_id"].is_string());
        assert!(v["manifest_path"].is_string());
        assert!(v["target"]["kind"].is_array());
        let m = &v["message"];
        assert_eq!(m["$message_type"], "diagnostic");
        assert!(m["message"].as_str().is_some_and(|s| !s.is_empty()));
        let code = m["code"]["code"].as_str().unwrap();
        assert!(code.starts_with("paranoid::"), "{code}");
        assert!(m["code"]["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("### What it does")));
        assert!(matches!(m["level"].as_str(), Some("warning" | "error")));
        let spans = m["spans"].as_array().unwrap();
        assert_eq!(spans.iter().filter(|s| s["is_primary"] == true).count(), 1);
        for s in spans {
            for k in [
                "file_name",
                "byte_start",
                "byte_end",
                "line_start",
                "line_end",
                "column_start",
                "column_end",
                "text",
                "label",
                "suggested_replacement",
                "suggestion_applicability",
                "expansion",
            ] {
                assert!(s.get(k).is_some(), "span lacks {k}");
            }
            let (bs, be) = (
                s["byte_start"].as_u64().unwrap() as usize,
                s["byte_end"].as_u64().unwrap() as usize,
            );
            assert!(bs <= be && be <= SRC.len());
            assert_eq!(s["file_name"], "src/lib.rs");
        }
        assert!(m["children"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["level"] == "help"));
        assert!(m["rendered"].as_str().unwrap().contains(code));
    }
    let last = lines.last().unwrap();
    assert_eq!(last["reason"], "build-finished");
    assert_eq!(last["success"], false, "deny-level lints fired");
    // The suggestion of missing_paranoid_init is machine-readable.
    assert!(
        out.contains("\"suggested_replacement\":\"#[paranoid_init]\\n\""),
        "{out}"
    );
}

#[test]
fn sarif_is_valid_for_code_scanning() {
    let d = diags();
    let v: Value = serde_json::from_str(&render::sarif::render(&d)).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &v["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "cargo-paranoid");
    assert!(driver["informationUri"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules.len(), cargo_paranoid::lints::LINTS.len());
    for r in rules {
        assert!(r["id"].as_str().unwrap().starts_with("paranoid::"));
        for k in ["shortDescription", "fullDescription", "help"] {
            assert!(
                r[k]["text"].as_str().is_some_and(|t| !t.is_empty()),
                "rule lacks {k}"
            );
        }
        assert!(matches!(
            r["defaultConfiguration"]["level"].as_str(),
            Some("warning" | "error" | "note")
        ));
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), d.len());
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        assert!(matches!(r["level"].as_str(), Some("warning" | "error")));
        assert!(!r["message"]["text"].as_str().unwrap().is_empty());
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "src/lib.rs");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        let reg = &loc["region"];
        for k in ["startLine", "startColumn", "endLine", "endColumn"] {
            assert!(reg[k].as_u64().is_some_and(|n| n >= 1), "region lacks {k}");
        }
    }
}

#[test]
fn levels_change_rendering() {
    let s = Session::new(Config::with_defaults(), &[("all".into(), Level::Warn)]).unwrap();
    let d = lint_text(&s, "src/lib.rs", SRC);
    let human = render::human::render(&d, false);
    assert!(
        human.contains("warning[paranoid::unbounded_poll]"),
        "{human}"
    );
    assert!(!human.contains("error["));
    assert!(render::json::render(&d)
        .trim_end()
        .ends_with("{\"reason\":\"build-finished\",\"success\":true}"));
}
