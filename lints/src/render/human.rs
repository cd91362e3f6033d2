//! rustc-style text rendered with `annotate-snippets`.

use annotate_snippets::{AnnotationKind, Group, Level as ALevel, Patch, Renderer, Snippet};

use crate::diagnostic::{Diagnostic, Level};

/// Renders one diagnostic (no trailing newline).
pub fn render_one(d: &Diagnostic, color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let level = match d.level {
        Level::Deny => ALevel::ERROR,
        _ => ALevel::WARNING,
    };
    let code = d.code();
    let path = d.file.path.display().to_string();
    let text = d.file.text.as_str();
    let has_span = d.labels.iter().any(|l| l.span.line_start > 0);
    let mut title = level.primary_title(d.message.as_str()).id(code.as_str());
    if !has_span {
        let mut g =
            Group::with_title(title).element(annotate_snippets::Origin::path(path.as_str()));
        if let Some(h) = &d.help {
            g = g.element(ALevel::HELP.message(h.as_str()));
        }
        for n in &d.notes {
            g = g.element(ALevel::NOTE.message(n.as_str()));
        }
        return renderer.render(&[g]);
    }
    title = title.id(code.as_str());
    let mut snippet = Snippet::source(text).path(path.as_str()).fold(true);
    for l in &d.labels {
        let kind = if l.primary {
            AnnotationKind::Primary
        } else {
            AnnotationKind::Context
        };
        let range = clamp(text, l.span.byte_start, l.span.byte_end);
        let mut a = kind.span(range);
        if !l.text.is_empty() {
            a = a.label(l.text.as_str());
        }
        snippet = snippet.annotation(a);
    }
    let mut g = title.element(snippet);
    if let Some(h) = &d.help {
        g = g.element(ALevel::HELP.message(h.as_str()));
    }
    for n in &d.notes {
        g = g.element(ALevel::NOTE.message(n.as_str()));
    }
    let mut groups = vec![g];
    if let Some(s) = &d.suggestion {
        let range = clamp(text, s.span.byte_start, s.span.byte_end);
        groups.push(
            ALevel::HELP.secondary_title(s.message.as_str()).element(
                Snippet::source(text)
                    .path(path.as_str())
                    .patch(Patch::new(range, s.replacement.as_str())),
            ),
        );
    }
    renderer.render(&groups)
}

fn clamp(text: &str, start: usize, end: usize) -> std::ops::Range<usize> {
    let mut s = start.min(text.len());
    while !text.is_char_boundary(s) {
        s -= 1;
    }
    let mut e = end.clamp(s, text.len());
    while !text.is_char_boundary(e) {
        e += 1;
    }
    s..e
}

/// Renders all diagnostics, each followed by a blank line, then a summary line.
pub fn render(diags: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&render_one(d, color));
        out.push_str("\n\n");
    }
    out.push_str(&summary(diags));
    out
}

/// `warning: 3 warnings emitted` / `error: aborting due to 1 previous error; 2 warnings emitted`.
pub fn summary(diags: &[Diagnostic]) -> String {
    let errors = diags.iter().filter(|d| d.level == Level::Deny).count();
    let warnings = diags.iter().filter(|d| d.level == Level::Warn).count();
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => String::new(),
        (0, w) => format!("warning: {} emitted\n", plural(w, "warning")),
        (e, 0) => format!(
            "error: could not pass `cargo paranoid` due to {}\n",
            plural(e, "previous error")
        ),
        (e, w) => format!(
            "error: could not pass `cargo paranoid` due to {}; {} emitted\n",
            plural(e, "previous error"),
            plural(w, "warning")
        ),
    }
}
