//! Rules for `#[paranoid_init]`: a sane budget, and a body that can neither
//! panic, nor wait without a deadline, nor touch device memory behind the
//! register layer's back.
//!
//! The body is checked syntactically, closures and nested blocks included;
//! nested items (`fn`, `impl`, `mod`) are not the init's code and are skipped.
//! Calls into other functions are not followed: the `cargo paranoid` lints cover
//! whole crates.

use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Expr, Token};

use super::parse::{attr_span, Args, InitFn};
use crate::ctxt::Ctxt;

/// The largest budget accepted: 5 minutes. NVMe's worst CAP.TO is 127.5 s; a
/// recovery kernel that waits longer than this for one device has lost anyway.
pub const MAX_BUDGET_MS: u128 = 300_000;

/// Rule: `budget_ms` is given, non-zero and at most [`MAX_BUDGET_MS`]. Returns
/// the budget to generate (1 ms stands in when the budget is wrong, so the
/// expansion still type-checks and only our error shows).
pub fn budget(cx: &mut Ctxt, args: &Args) -> u64 {
    let Some(b) = &args.budget_ms else {
        if args.budget_seen {
            return 1;
        }
        cx.error_at(
            attr_span(),
            "missing time budget; write `#[paranoid_init(budget_ms = 500)]` with the total time the init may take",
        );
        return 1;
    };
    if b.value == 0 {
        cx.error_spanned_by(
            &b.tokens,
            "a budget of 0 ms gives the init no time at all; give the total time it may take, e.g. `budget_ms = 500`",
        );
        return 1;
    }
    if b.value > MAX_BUDGET_MS {
        cx.error_spanned_by(
            &b.tokens,
            format!(
                "a budget of {} ms is more than 5 minutes, longer than any device may take to come up; use at most `budget_ms = {MAX_BUDGET_MS}`",
                b.value
            ),
        );
        return 1;
    }
    u64::try_from(b.value).unwrap_or(1)
}

/// Rule: no panicking construct, unbounded loop, raw volatile access or `Self`
/// in the body (or in the signature, for `Self`). Returns false when the body
/// cannot become a nested function (it names `Self`).
pub fn body(cx: &mut Ctxt, init: &InitFn) -> bool {
    let mut v = BodyRules {
        cx,
        names_self: false,
    };
    v.visit_signature(&init.item.sig);
    v.visit_block(&init.item.block);
    !v.names_self
}

struct BodyRules<'c> {
    cx: &'c mut Ctxt,
    names_self: bool,
}

/// Macros that panic, and what to write instead.
fn panicking_macro(name: &str) -> Option<&'static str> {
    Some(match name {
        "panic" => "`panic!` in an init body would bring down the recovery kernel; return an error instead (`Err(..)` or `?`)",
        "unreachable" => "`unreachable!` panics when a device proves the case reachable; return an error for the unexpected case",
        "todo" => "`todo!` panics; finish this step or return an error",
        "unimplemented" => "`unimplemented!` panics; finish this step or return an error",
        "assert" => "`assert!` panics when the condition fails; return an error instead (or use `debug_assert!` for a check of your own logic)",
        "assert_eq" => "`assert_eq!` panics when the values differ; return an error instead (or use `debug_assert_eq!` for a check of your own logic)",
        "assert_ne" => "`assert_ne!` panics when the values are equal; return an error instead (or use `debug_assert_ne!` for a check of your own logic)",
        _ => return None,
    })
}

/// Volatile functions and methods that bypass the register layer.
const VOLATILE: &[&str] = &[
    "read_volatile",
    "write_volatile",
    "read_unaligned_volatile",
    "write_unaligned_volatile",
    "volatile_load",
    "volatile_store",
    "volatile_copy_memory",
    "volatile_copy_nonoverlapping_memory",
    "volatile_set_memory",
];

fn volatile_message(name: &str) -> String {
    format!(
        "raw volatile access (`{name}`) in an init body bypasses the register layer; use a `register_block!` accessor or `paranoid::mmio::RegisterIo`, which bound-check every access and return `Untrusted` values"
    )
}

/// True for an index that is a compile-time constant (literal, `CONST`,
/// `CONST.len()`, or arithmetic and ranges of those): out of bounds it fails to build or is a
/// plain logic bug, not a device-controlled panic.
fn constant_index(e: &Expr) -> bool {
    match e {
        Expr::Lit(l) => matches!(l.lit, syn::Lit::Int(_)),
        Expr::Path(p) => {
            p.qself.is_none()
                && p.path.segments.last().is_some_and(|s| {
                    let n = s.ident.to_string();
                    n.chars().any(|c| c.is_ascii_uppercase())
                        && !n.chars().any(|c| c.is_ascii_lowercase())
                })
        }
        Expr::Paren(p) => constant_index(&p.expr),
        Expr::Group(g) => constant_index(&g.expr),
        Expr::Cast(c) => constant_index(&c.expr),
        Expr::Binary(b) => constant_index(&b.left) && constant_index(&b.right),
        Expr::MethodCall(m) => {
            m.method == "len" && m.args.is_empty() && constant_index(&m.receiver)
        }
        Expr::Range(r) => {
            r.start.as_deref().is_none_or(constant_index)
                && r.end.as_deref().is_none_or(constant_index)
        }
        _ => false,
    }
}

impl<'ast> Visit<'ast> for BodyRules<'_> {
    fn visit_item(&mut self, _: &'ast syn::Item) {
        // A nested item is not part of the init sequence.
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let Some(last) = mac.path.segments.last() else {
            return;
        };
        let name = last.ident.to_string();
        if let Some(msg) = panicking_macro(&name) {
            self.cx.error_spanned_by(&mac.path, msg);
            return;
        }
        if name.starts_with("debug_assert") {
            return;
        }
        // Look inside macros whose arguments are expressions (`format!`,
        // `write!`, `matches!`'s scrutinee...); others are opaque.
        if let Ok(args) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            for e in &args {
                self.visit_expr(e);
            }
        }
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let name = call.method.to_string();
        match name.as_str() {
            "unwrap" => self.cx.error_spanned_by(
                &call.method,
                "`.unwrap()` panics on `None`/`Err`; handle the failure with `?`, `.ok_or(..)?` or a `match`",
            ),
            "expect" => self.cx.error_spanned_by(
                &call.method,
                "`.expect(..)` panics on `None`/`Err`; handle the failure with `?`, `.ok_or(..)?` or a `match`",
            ),
            n if VOLATILE.contains(&n) => {
                self.cx.error_spanned_by(&call.method, volatile_message(n))
            }
            _ => {}
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        let segs = &p.path.segments;
        if let Some(last) = segs.last() {
            let name = last.ident.to_string();
            if VOLATILE.contains(&name.as_str()) {
                self.cx.error_spanned_by(&p.path, volatile_message(&name));
            } else if (name == "unwrap" || name == "expect")
                && (segs.len() > 1 || p.qself.is_some())
            {
                self.cx.error_spanned_by(
                    &p.path,
                    format!("`{name}` panics on `None`/`Err`; handle the failure with `?`, `.ok_or(..)?` or a `match`"),
                );
            }
        }
        visit::visit_expr_path(self, p);
    }

    fn visit_expr_index(&mut self, e: &'ast syn::ExprIndex) {
        if !constant_index(&e.index) {
            self.cx.error_spanned_by(
                &e.index,
                "indexing with a non-constant index panics when it is out of bounds; use `.get(i)` and handle `None` (check device values with `Untrusted::index_below` first)",
            );
        }
        visit::visit_expr_index(self, e);
    }

    fn visit_expr_loop(&mut self, e: &'ast syn::ExprLoop) {
        self.cx.error_spanned_by(
            e.loop_token,
            "unbounded `loop` in an init body; wait on the device with `paranoid::poll::poll(&clock, deadline, read, done)` so the wait ends at a deadline",
        );
        visit::visit_expr_loop(self, e);
    }

    fn visit_expr_while(&mut self, e: &'ast syn::ExprWhile) {
        self.cx.error_spanned_by(
            e.while_token,
            "unbounded `while` loop in an init body; wait on the device with `paranoid::poll::poll(&clock, deadline, read, done)`, or count with `for` over a range",
        );
        visit::visit_expr_while(self, e);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        for seg in &p.segments {
            if seg.ident == "Self" {
                self.names_self = true;
                self.cx.error_spanned_by(
                    &seg.ident,
                    "`Self` cannot be used in a `#[paranoid_init]` function (its body becomes a nested function); name the type instead",
                );
            }
        }
        visit::visit_path(self, p);
    }
}
