//! `missing_paranoid_init`: a public bring-up function touching the device without `#[paranoid_init]`.

use proc_macro2::Span as Span2;

use super::{declare_lint, LintCx};
use crate::analysis::access;
use crate::analysis::callgraph::for_each_fn;
use crate::diagnostic::{Finding, Suggestion};

declare_lint! {
    /// ### What it does
    /// Flags a public function named like a bring-up entry point — `init`, `probe`,
    /// `bring_up`, `attach`, or a name starting or ending with one of them
    /// (`init_controller`, `nvme_probe`) — that accesses device registers directly but lacks
    /// `#[paranoid_init]`.
    ///
    /// ### Why is this bad?
    /// `#[paranoid_init]` is what gives an init path its total time budget, its init trace and
    /// its escalation ladder (controller reset, function-level reset, secondary bus reset,
    /// fence), and what makes its body subject to the compile-time checks and to
    /// `panic_in_recovery`. A bring-up path without it fails silently or hangs.
    ///
    /// ### Example
    /// ```rust,ignore
    /// pub fn init(regs: &Regs) -> Result<(), Error> {
    ///     regs.cc().write(0);
    ///     ...
    /// }
    /// ```
    ///
    /// ### Use instead
    /// ```rust,ignore
    /// #[paranoid_init(budget_ms = 2000)]
    /// pub fn init(regs: &Regs) -> Result<(), Error> { ... }
    /// ```
    pub MISSING_PARANOID_INIT, "missing_paranoid_init", Warn, "a public init/probe/bring_up/attach function touching device registers without `#[paranoid_init]`", Some(check)
}

/// A bring-up function without the attribute.
#[derive(Debug)]
pub struct MissingInit {
    /// The function name.
    pub name: String,
    /// Its name token.
    pub ident: Span2,
    /// The first device access in it.
    pub access: Span2,
}

fn is_entry_name(name: &str) -> bool {
    const ROOTS: &[&str] = &["init", "probe", "bring_up", "attach"];
    ROOTS.iter().any(|r| {
        name == *r || name.starts_with(&format!("{r}_")) || name.ends_with(&format!("_{r}"))
    })
}

fn check(cx: &LintCx<'_>) -> Vec<Finding> {
    find(cx).into_iter().map(|m| report(cx, m)).collect()
}

/// Matches public bring-up functions without `#[paranoid_init]`.
pub fn find(cx: &LintCx<'_>) -> Vec<MissingInit> {
    let mut out = Vec::new();
    // Only crates that use the toolkit can add the attribute.
    if !cx.krate.toolkit {
        return out;
    }
    for_each_fn(cx.ast, |f| {
        let name = f.name();
        if !f.is_pub || !is_entry_name(&name) || f.has_attr("paranoid_init") {
            return;
        }
        let dcx = cx.device_for(&f);
        if let Some(a) = access::accesses_in_block(&dcx, f.block).first() {
            out.push(MissingInit {
                name,
                ident: f.sig.ident.span(),
                access: a.span,
            });
        }
    });
    out
}

fn report(cx: &LintCx<'_>, m: MissingInit) -> Finding {
    let ident = cx.span(m.ident);
    // Insert the attribute on its own line before the item, at the item's indentation.
    let line = cx.file.line_text(ident.line_start);
    let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
    let mut at = cx.file.line_span(ident.line_start);
    at.byte_start += indent.len();
    at.column_start += indent.chars().count();
    at.byte_end = at.byte_start;
    at.line_end = at.line_start;
    at.column_end = at.column_start;
    let mut f = Finding::new(
        "missing_paranoid_init",
        format!("`{}` brings up a device without `#[paranoid_init]`", m.name),
        ident,
        "bring-up entry point",
    )
    .with_secondary(cx.span(m.access), "touches device registers here")
    .with_help(
        "add `#[paranoid_init]` to get a time budget, an init trace and the escalation ladder",
    )
    .with_note(
        "`#[paranoid_init]` also makes the body subject to the no-panic, bounded-wait checks",
    );
    f.suggestion = Some(Suggestion {
        span: at,
        replacement: format!("#[paranoid_init]\n{indent}"),
        message: "add the attribute".to_string(),
    });
    f
}
