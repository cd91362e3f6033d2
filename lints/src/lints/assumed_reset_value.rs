//! `assumed_reset_value`: relying on a register's documented reset value right after a reset.

use std::collections::HashSet;

use proc_macro2::Span as Span2;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{BinOp, Expr};

use super::{declare_lint, idents_of, is_reset_name, is_wait_name, mentions_reset_bit, LintCx};
use crate::analysis::access::{self, AccessKind, DeviceCx};
use crate::analysis::callgraph::for_each_fn;
use crate::diagnostic::Finding;

declare_lint! {
    /// ### What it does
    /// After a reset step in a function (a call whose name says `reset`, `quiesce`, `flr`,
    /// `disable`, or a device write of a `RST`/`RESET` bit) and before any wait (a `loop` or
    /// `while`, or a call whose name says `poll`, `wait`, `sleep`, `delay`, `spin`, `deadline`,
    /// `timeout`), flags:
    /// - a device read compared for equality (`==`, `!=`, `assert_eq!`) — directly or through
    ///   a local bound to the read — as if it already held its documented reset value;
    /// - a read-modify-write of a register (`.modify(..)`, `.update(..)`, or a write whose value
    ///   uses a local read after the reset), which assumes the other fields hold their reset
    ///   defaults.
    ///
    /// Tests (`#[test]`, `#[cfg(test)]`, test and bench targets, `[files] auxiliary`) run on no
    /// device and are not checked; examples are.
    ///
    /// ### Why is this bad?
    /// Reset completes asynchronously: until the device reports it done (NVMe CSTS.RDY = 0,
    /// e1000 CTRL.RST self-clearing, FLR's 100 ms) registers still hold the dead kernel's
    /// values, or all-ones. Comparing with the datasheet's reset value, or merging new bits
    /// into what is read back, programs the device from the old state.
    ///
    /// ### Example
    /// ```rust,ignore
    /// regs.write32(CTRL, CTRL_RST);
    /// let ctrl = regs.read32(CTRL);
    /// regs.write32(CTRL, ctrl | CTRL_SLU);
    /// ```
    ///
    /// ### Use instead
    /// ```rust,ignore
    /// regs.write32(CTRL, CTRL_RST);
    /// poll(deadline, || regs.read32(CTRL).check_not_all_ones().map(|c| c & CTRL_RST == 0))?;
    /// regs.write32(CTRL, CTRL_SLU | CTRL_ASDE);
    /// ```
    pub ASSUMED_RESET_VALUE, "assumed_reset_value", Warn, "a register read right after reset, used as if it held its reset value", Some(check)
}

/// A use of a register right after reset, before any wait.
#[derive(Debug)]
pub struct Assumed {
    /// The offending use.
    pub span: Span2,
    /// The reset it follows.
    pub reset: Span2,
    /// Comparison (`true`) or read-modify-write (`false`).
    pub compare: bool,
}

fn check(cx: &LintCx<'_>) -> Vec<Finding> {
    find(cx).into_iter().map(|m| report(cx, m)).collect()
}

/// Matches uses of registers right after reset in one file.
pub fn find(cx: &LintCx<'_>) -> Vec<Assumed> {
    let mut out = Vec::new();
    // Tests run on no device: a "reset" there is of a value in ordinary memory.
    let path = cx.file.path.to_string_lossy().replace('\\', "/");
    let test_target = cx.file.aux && !path.starts_with("examples/") && !path.contains("/examples/");
    for_each_fn(cx.ast, |f| {
        if test_target || f.test_only || f.has_attr("test") {
            return;
        }
        let dcx = cx.device_for(&f);
        let mut v = Walker {
            dcx: &dcx,
            reset: None,
            read_locals: HashSet::new(),
            out: &mut out,
        };
        v.visit_block(f.block);
    });
    out
}

struct Walker<'a> {
    dcx: &'a DeviceCx,
    reset: Option<Span2>,
    read_locals: HashSet<String>,
    out: &'a mut Vec<Assumed>,
}

impl Walker<'_> {
    fn is_read(&self, e: &Expr) -> bool {
        if let Some(p) = crate::analysis::taint::place(e) {
            if self.read_locals.contains(&p) {
                return true;
            }
        }
        let e = match e {
            Expr::Paren(p) => &*p.expr,
            Expr::Cast(c) => &*c.expr,
            Expr::Unsafe(u) => match u.block.stmts.last() {
                Some(syn::Stmt::Expr(x, None)) => x,
                _ => e,
            },
            e => e,
        };
        self.dcx
            .classify(e)
            .is_some_and(|a| a.kind == AccessKind::Read)
    }

    fn uses_read_local(&self, e: &Expr) -> bool {
        idents_of(e).iter().any(|i| self.read_locals.contains(i))
    }
}

impl<'ast> Visit<'ast> for Walker<'_> {
    fn visit_expr(&mut self, e: &'ast Expr) {
        match e {
            Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_) => {
                self.reset = None;
                self.read_locals.clear();
                return;
            }
            Expr::Call(_) | Expr::MethodCall(_) => {
                let name = match e {
                    Expr::Call(c) => access::callee_name(&c.func).unwrap_or_default(),
                    Expr::MethodCall(m) => m.method.to_string(),
                    _ => String::new(),
                };
                if is_wait_name(&name) {
                    self.reset = None;
                    self.read_locals.clear();
                    return;
                }
                if let Some(acc) = self.dcx.classify(e) {
                    let args: Vec<&Expr> = match e {
                        Expr::Call(c) => c.args.iter().collect(),
                        Expr::MethodCall(m) => m.args.iter().collect(),
                        _ => Vec::new(),
                    };
                    if acc.kind != AccessKind::Read {
                        let ids: Vec<String> = args.iter().flat_map(|a| idents_of(a)).collect();
                        if let Some(reset) = self.reset {
                            if acc.kind == AccessKind::Modify
                                || args.last().is_some_and(|v| self.uses_read_local(v))
                            {
                                self.out.push(Assumed {
                                    span: e.span(),
                                    reset,
                                    compare: false,
                                });
                            }
                        }
                        if mentions_reset_bit(&ids) {
                            self.reset = Some(e.span());
                            self.read_locals.clear();
                        }
                        return;
                    }
                } else if is_reset_name(&name) {
                    syn::visit::visit_expr(self, e);
                    self.reset = Some(e.span());
                    self.read_locals.clear();
                    return;
                }
            }
            Expr::Binary(b) if matches!(b.op, BinOp::Eq(_) | BinOp::Ne(_)) => {
                if let Some(reset) = self.reset {
                    if self.is_read(&b.left) || self.is_read(&b.right) {
                        self.out.push(Assumed {
                            span: e.span(),
                            reset,
                            compare: true,
                        });
                    }
                }
            }
            _ => {}
        }
        syn::visit::visit_expr(self, e);
    }

    fn visit_local(&mut self, l: &'ast syn::Local) {
        syn::visit::visit_local(self, l);
        if self.reset.is_some() {
            if let (syn::Pat::Ident(p), Some(init)) = (&l.pat, &l.init) {
                if self.is_read(&init.expr) {
                    self.read_locals.insert(p.ident.to_string());
                }
            }
        }
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        let name = m
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        let parser = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
        let Ok(args) = syn::parse::Parser::parse2(parser, m.tokens.clone()) else {
            return;
        };
        if matches!(name.as_str(), "assert_eq" | "assert_ne" | "debug_assert_eq") {
            if let Some(reset) = self.reset {
                if args.iter().take(2).any(|a| self.is_read(a)) {
                    self.out.push(Assumed {
                        span: m.span(),
                        reset,
                        compare: true,
                    });
                    return;
                }
            }
        }
        for a in &args {
            self.visit_expr(a);
        }
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

fn report(cx: &LintCx<'_>, m: Assumed) -> Finding {
    let (message, label, help) = if m.compare {
        (
            "register compared with an assumed reset value before the reset completed",
            "read right after reset, before any wait",
            "poll for reset completion (with a deadline) before relying on reset values",
        )
    } else {
        (
            "read-modify-write right after reset assumes the other fields hold their reset values",
            "merges new bits into whatever the register holds",
            "wait for reset completion, then write the whole register value explicitly",
        )
    };
    Finding::new("assumed_reset_value", message.to_string(), cx.span(m.span), label)
        .with_secondary(cx.span(m.reset), "reset started here")
        .with_help(help)
        .with_note("reset completes asynchronously: until the device reports it done, registers may hold the dead kernel's values or all-ones")
}
