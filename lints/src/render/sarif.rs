//! SARIF 2.1.0 for GitHub code scanning.

use serde_json::{json, Value};

use crate::diagnostic::{Diagnostic, Level};
use crate::lints::{self, LINTS};

fn sarif_level(l: Level) -> &'static str {
    match l {
        Level::Deny => "error",
        Level::Warn => "warning",
        Level::Allow => "none",
    }
}

/// The SARIF document for `diags`.
pub fn document(diags: &[Diagnostic]) -> Value {
    let rules: Vec<Value> = LINTS
        .iter()
        .map(|l| {
            json!({
                "id": format!("paranoid::{}", l.name),
                "name": l.name,
                "shortDescription": {"text": l.summary},
                "fullDescription": {"text": l.summary},
                "help": {"text": l.explanation_text(), "markdown": l.explanation_text()},
                "helpUri": format!("https://github.com/paranoid-rs/paranoid/blob/main/lints/README.md#{}", l.name),
                "defaultConfiguration": {"level": sarif_level(l.default_level)},
            })
        })
        .collect();
    let mut occurrences: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let results: Vec<Value> = diags
        .iter()
        .map(|d| {
            let key = fingerprint_key(d);
            let n = occurrences.entry(key).or_insert(0);
            *n += 1;
            let fingerprint = format!("{key:016x}:{n}");
            let index = LINTS.iter().position(|l| l.name == d.lint).unwrap_or(0);
            let uri = d.file.path.display().to_string().replace('\\', "/");
            let locations: Vec<Value> = d
                .primary()
                .filter(|p| p.span.line_start > 0)
                .map(|p| {
                    vec![json!({"physicalLocation": {
                        "artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                        "region": {
                            "startLine": p.span.line_start,
                            "startColumn": p.span.column_start,
                            "endLine": p.span.line_end,
                            "endColumn": p.span.column_end,
                        }
                    }})]
                })
                .unwrap_or_else(|| vec![json!({"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"}}})]);
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str(&format!("\nhelp: {h}"));
            }
            json!({
                "ruleId": d.code(),
                "ruleIndex": index,
                "level": sarif_level(d.level),
                "message": {"text": text},
                "locations": locations,
                "partialFingerprints": {"paranoidFingerprint/v1": fingerprint},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "cargo-paranoid",
                "informationUri": "https://github.com/paranoid-rs/paranoid",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }]
    })
}

/// FNV-1a, 64 bits: a hash that is the same in every run, build and version of Rust.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// What identifies a result independently of where it sits in the file: the rule, the file,
/// the message and the text of the flagged lines with whitespace collapsed. Lines added or
/// removed above it do not change it; the `:n` suffix tells identical results of a file apart.
fn fingerprint_key(d: &Diagnostic) -> u64 {
    let uri = d.file.path.display().to_string().replace('\\', "/");
    let lines = d
        .primary()
        .filter(|p| p.span.line_start > 0)
        .map(|p| {
            (p.span.line_start..=p.span.line_end.max(p.span.line_start))
                .map(|l| d.file.line_text(l))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let text: Vec<&str> = lines.split_whitespace().collect();
    fnv1a(&[d.lint, &uri, &d.message, &text.join(" ")])
}

/// The SARIF document as pretty JSON text.
pub fn render(diags: &[Diagnostic]) -> String {
    let mut s = serde_json::to_string_pretty(&document(diags)).unwrap_or_default();
    s.push('\n');
    s
}

/// The explanation of `lint`, for tools that only know the rule id.
pub fn rule_help(lint: &str) -> Option<String> {
    lints::find(lint.trim_start_matches("paranoid::")).map(|l| l.explanation_text())
}
