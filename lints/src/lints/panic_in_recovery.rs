//! `panic_in_recovery`: panicking constructs in recovery code.

use proc_macro2::Span as Span2;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::Expr;

use super::{declare_lint, reach_note, LintCx};
use crate::callgraph::for_each_fn;
use crate::diagnostic::Finding;

declare_lint! {
    /// ### What it does
    /// Flags `panic!`, `unreachable!`, `todo!`, `unimplemented!`, `assert!`, `assert_eq!`,
    /// `assert_ne!`, `.unwrap()`, `.expect(..)`, `.unwrap_err()`, `.expect_err(..)` and
    /// indexing (`a[i]`, `&a[i..j]`) in recovery code: functions marked `#[paranoid_init]`,
    /// functions named under `[recovery] functions` in `paranoid.toml`, and every function
    /// of the same crate they call (the call graph is built by name). `debug_assert!` is
    /// not flagged.
    ///
    /// ### Why is this bad?
    /// Recovery code runs after the first kernel already panicked. A second panic loses the
    /// crash dump and the node; a device in a bad state must end in a typed error and a
    /// fenced device, never in a panic.
    ///
    /// ### Example
    /// ```rust,ignore
    /// #[paranoid_init(budget_ms = 500)]
    /// fn init(dev: Device<Unknown>) -> Result<Nvme, Error> {
    ///     let q = queues[qid];
    ///     let cap = read_cap(&dev).unwrap();
    ///     ...
    /// }
    /// ```
    ///
    /// ### Use instead
    /// ```rust,ignore
    /// let q = queues.get(qid).ok_or(Error::BadQueue { qid })?;
    /// let cap = read_cap(&dev)?;
    /// ```
    pub PANIC_IN_RECOVERY, "panic_in_recovery", Deny, "a panicking construct (`unwrap`, `panic!`, indexing, …) in recovery code", Some(check)
}

/// A panicking construct in a recovery function.
#[derive(Debug)]
pub struct PanicSite {
    /// The construct.
    pub span: Span2,
    /// How to name it.
    pub what: String,
    /// The function.
    pub function: String,
}

const PANIC_MACROS: &[&str] = &[
    "panic",
    "unreachable",
    "todo",
    "unimplemented",
    "assert",
    "assert_eq",
    "assert_ne",
];
const PANIC_METHODS: &[&str] = &["unwrap", "expect", "unwrap_err", "expect_err"];

fn check(cx: &LintCx<'_>) -> Vec<Finding> {
    find(cx).into_iter().map(|m| report(cx, m)).collect()
}

/// Matches panicking constructs in the recovery functions of one file.
pub fn find(cx: &LintCx<'_>) -> Vec<PanicSite> {
    let mut out = Vec::new();
    for_each_fn(cx.ast, |f| {
        let name = f.name();
        if !cx.krate.recovery.contains_key(&name) {
            return;
        }
        let mut v = V {
            out: &mut out,
            function: &name,
        };
        v.visit_block(f.block);
    });
    out
}

struct V<'a> {
    out: &'a mut Vec<PanicSite>,
    function: &'a str,
}

impl V<'_> {
    fn push(&mut self, span: Span2, what: String) {
        self.out.push(PanicSite {
            span,
            what,
            function: self.function.to_string(),
        });
    }
}

impl<'ast> Visit<'ast> for V<'_> {
    fn visit_expr(&mut self, e: &'ast Expr) {
        match e {
            Expr::MethodCall(m) if PANIC_METHODS.contains(&m.method.to_string().as_str()) => {
                let span = m
                    .method
                    .span()
                    .join(m.paren_token.span.close())
                    .unwrap_or(m.method.span());
                self.push(span, format!("`.{}()`", m.method));
            }
            Expr::Index(_) => self.push(e.span(), "indexing".to_string()),
            _ => {}
        }
        syn::visit::visit_expr(self, e);
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if let Some(s) = m.path.segments.last() {
            let n = s.ident.to_string();
            if PANIC_MACROS.contains(&n.as_str()) {
                let span = m
                    .path
                    .span()
                    .join(m.bang_token.span)
                    .unwrap_or(m.path.span());
                self.push(span, format!("`{n}!`"));
            }
        }
        // Panics inside macro arguments (`println!("{}", a[i])`) count too.
        let parser = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
        if let Ok(args) = syn::parse::Parser::parse2(parser, m.tokens.clone()) {
            for a in &args {
                self.visit_expr(a);
            }
        }
    }
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

fn report(cx: &LintCx<'_>, m: PanicSite) -> Finding {
    let mut f = Finding::new(
        "panic_in_recovery",
        format!("{} can panic in recovery code", m.what),
        cx.span(m.span),
        "may panic",
    )
    .with_help(match m.what.as_str() {
        "indexing" => "use `.get(..)` and turn `None` into a typed error",
        w if w.starts_with("`.") => "propagate the error with `?` or handle the `None`/`Err` case",
        _ => "return a typed error instead of panicking",
    });
    if let Some(r) = cx.krate.recovery.get(&m.function) {
        f = f.with_note(reach_note("recovery code", &m.function, r));
    }
    f
}
