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
    let results: Vec<Value> = diags
        .iter()
        .map(|d| {
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
