//! Cargo-compatible JSON: one `compiler-message` per line, then `build-finished`.

use serde_json::{json, Value};

use crate::diagnostic::{Diagnostic, Label, Level};
use crate::lints;
use crate::source::{SourceFile, Span};

fn span_json(
    file: &SourceFile,
    span: &Span,
    label: Option<&str>,
    primary: bool,
    replacement: Option<&str>,
) -> Value {
    let text: Vec<Value> = (span.line_start..=span.line_end.max(span.line_start))
        .filter(|&l| l > 0)
        .map(|l| {
            let t = file.line_text(l);
            let n = t.chars().count() + 1;
            let hs = if l == span.line_start {
                span.column_start
            } else {
                1
            };
            let he = if l == span.line_end {
                span.column_end
            } else {
                n
            };
            json!({"text": t, "highlight_start": hs, "highlight_end": he})
        })
        .collect();
    json!({
        "file_name": file.path.display().to_string().replace('\\', "/"),
        "byte_start": span.byte_start,
        "byte_end": span.byte_end,
        "line_start": span.line_start,
        "line_end": span.line_end,
        "column_start": span.column_start,
        "column_end": span.column_end,
        "is_primary": primary,
        "text": text,
        "label": label,
        "suggested_replacement": replacement,
        "suggestion_applicability": replacement.map(|_| "MaybeIncorrect"),
        "expansion": null,
    })
}

fn child(level: &str, message: &str, spans: Vec<Value>) -> Value {
    json!({"message": message, "code": null, "level": level, "spans": spans, "children": [], "rendered": null})
}

/// The `message` object of a diagnostic (rustc's JSON diagnostic).
pub fn message(d: &Diagnostic) -> Value {
    let spans: Vec<Value> = d
        .labels
        .iter()
        .filter(|l: &&Label| l.span.line_start > 0)
        .map(|l| {
            span_json(
                &d.file,
                &l.span,
                (!l.text.is_empty()).then_some(l.text.as_str()),
                l.primary,
                None,
            )
        })
        .collect();
    let mut children = Vec::new();
    if let Some(h) = &d.help {
        children.push(child("help", h, Vec::new()));
    }
    for n in &d.notes {
        children.push(child("note", n, Vec::new()));
    }
    if let Some(s) = &d.suggestion {
        children.push(child(
            "help",
            &s.message,
            vec![span_json(
                &d.file,
                &s.span,
                None,
                true,
                Some(&s.replacement),
            )],
        ));
    }
    let explanation = lints::find(d.lint).map(|l| l.explanation_text());
    json!({
        "$message_type": "diagnostic",
        "message": d.message,
        "code": {"code": d.code(), "explanation": explanation},
        "level": d.level.rustc_level(),
        "spans": spans,
        "children": children,
        "rendered": format!("{}\n\n", super::human::render_one(d, false)),
    })
}

/// One `compiler-message` line.
pub fn line(d: &Diagnostic) -> String {
    let p = &d.package;
    let v = json!({
        "reason": "compiler-message",
        "package_id": p.id,
        "manifest_path": p.manifest_path,
        "target": {
            "kind": p.target_kind,
            "crate_types": p.target_kind,
            "name": p.target_name,
            "src_path": p.target_src_path,
            "edition": p.edition,
            "doc": true,
            "doctest": p.target_kind.iter().any(|k| k == "lib"),
            "test": true,
        },
        "message": message(d),
    });
    v.to_string()
}

/// All lines, ending with `build-finished`.
pub fn render(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&line(d));
        out.push('\n');
    }
    let success = !diags.iter().any(|d| d.level == Level::Deny);
    out.push_str(&json!({"reason": "build-finished", "success": success}).to_string());
    out.push('\n');
    out
}
