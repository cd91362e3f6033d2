//! `device_gone_unchecked`: register reads used without any all-ones check in the function.

use std::collections::HashSet;

use proc_macro2::Span as Span2;
use syn::visit::Visit;
use syn::{Expr, Stmt};

use super::{declare_lint, LintCx};
use crate::callgraph::for_each_fn;
use crate::device::{self, AccessKind};
use crate::diagnostic::Finding;
use crate::taint::is_all_ones;

declare_lint! {
    /// ### What it does
    /// Flags a function that reads device registers and uses the values (binds, compares,
    /// computes with or returns them) but never checks for the all-ones pattern a removed or
    /// dead device returns: no `0xFFFF_FFFF`/`!0`/`u32::MAX`/`ALL_ONES` comparison and no
    /// `check_not_all_ones()`/`is_all_ones()`/`validate()`/`check_range()`/`in_range()`/
    /// `index_below()` call or exact `.is(CONSTANT)` comparison anywhere in the function. Reads whose value
    /// is discarded are ignored, and so are reader wrappers (functions that only return the
    /// value they read: their callers are checked instead).
    ///
    /// ### Why is this bad?
    /// A device that fell off the bus, is in reset, or was surprise-removed reads back all
    /// ones: every status bit looks set, every count looks huge. Code that does not
    /// recognise it will report "ready", loop on "busy", or index with garbage.
    ///
    /// ### Example
    /// ```rust,ignore
    /// let csts = regs.read32(CSTS);
    /// if csts & CSTS_RDY != 0 { return Ok(()); }
    /// ```
    ///
    /// ### Use instead
    /// ```rust,ignore
    /// let csts = regs.read32(CSTS);
    /// if csts == u32::MAX { return Err(Error::DeviceGone { register: "CSTS" }); }
    /// if csts & CSTS_RDY != 0 { return Ok(()); }
    /// ```
    pub DEVICE_GONE_UNCHECKED, "device_gone_unchecked", Warn, "a device register read whose result is used without an all-ones (device gone) check", Some(check)
}

/// A function using register reads without an all-ones check.
#[derive(Debug)]
pub struct Unchecked {
    /// The function name.
    pub function: String,
    /// Used reads, in order.
    pub reads: Vec<(Span2, String)>,
}

fn check(cx: &LintCx<'_>) -> Vec<Finding> {
    find(cx).into_iter().map(|m| report(cx, m)).collect()
}

/// Matches functions that use device reads without an all-ones check.
pub fn find(cx: &LintCx<'_>) -> Vec<Unchecked> {
    let mut out = Vec::new();
    let ones = all_ones_consts(cx.ast);
    for_each_fn(cx.ast, |f| {
        let name = f.name();
        let dcx = cx.device_for(&f);
        if is_wrapper(&dcx, f.block) {
            return;
        }
        let discarded = discarded_spans(f.block);
        let reads: Vec<(Span2, String)> = device::accesses_in_block(&dcx, f.block)
            .into_iter()
            .filter(|a| a.kind == AccessKind::Read)
            .filter(|a| !discarded.contains(&key(a.span)))
            .map(|a| (a.span, a.what))
            .collect();
        if reads.is_empty() || checks_all_ones(f.block, &ones) {
            return;
        }
        out.push(Unchecked {
            function: name,
            reads,
        });
    });
    out
}

fn key(s: Span2) -> (usize, usize, usize, usize) {
    (
        s.start().line,
        s.start().column,
        s.end().line,
        s.end().column,
    )
}

/// A function whose body only returns a device read (possibly in `unsafe`): a reader wrapper.
fn is_wrapper(dcx: &device::DeviceCx, block: &syn::Block) -> bool {
    match block.stmts.as_slice() {
        [Stmt::Expr(Expr::Unsafe(u), None)] => is_wrapper(dcx, &u.block),
        [Stmt::Expr(e, None)] => {
            let mut e = e;
            while let Expr::Cast(c) = e {
                e = &c.expr;
            }
            dcx.classify(e).is_some_and(|a| a.kind == AccessKind::Read)
        }
        // `let v; asm!("in …", out("al") v, …); v` or `let v = read(..); v`.
        [.., Stmt::Expr(Expr::Path(p), None)] if block.stmts.len() <= 4 => {
            let Some(id) = p.path.get_ident().map(|i| i.to_string()) else {
                return false;
            };
            block.stmts.iter().any(|s| match s {
                Stmt::Local(l) => {
                    matches!(&l.pat, syn::Pat::Ident(pi) if pi.ident == id)
                        && l.init.as_ref().is_some_and(|i| {
                            dcx.classify(&i.expr)
                                .is_some_and(|a| a.kind == AccessKind::Read)
                        })
                }
                Stmt::Macro(m) => device::asm_outputs(&m.mac).contains(&id),
                Stmt::Expr(Expr::Unsafe(u), _) => u.block.stmts.iter().any(|s| match s {
                    Stmt::Macro(m) => device::asm_outputs(&m.mac).contains(&id),
                    Stmt::Expr(Expr::Macro(m), _) => device::asm_outputs(&m.mac).contains(&id),
                    _ => false,
                }),
                _ => false,
            })
        }
        _ => false,
    }
}

/// Spans of expressions in statement position whose value is thrown away (`x.read();`).
fn discarded_spans(block: &syn::Block) -> HashSet<(usize, usize, usize, usize)> {
    struct V(HashSet<(usize, usize, usize, usize)>);
    impl<'ast> Visit<'ast> for V {
        fn visit_stmt(&mut self, s: &'ast Stmt) {
            if let Stmt::Expr(e, Some(_)) = s {
                let mut inner = e;
                while let Expr::Unsafe(u) = inner {
                    match u.block.stmts.last() {
                        Some(Stmt::Expr(x, _)) => inner = x,
                        _ => break,
                    }
                }
                self.0.insert(key(syn::spanned::Spanned::span(inner)));
            }
            if let Stmt::Local(l) = s {
                if let syn::Pat::Wild(_) = l.pat {
                    if let Some(init) = &l.init {
                        self.0.insert(key(syn::spanned::Spanned::span(&*init.expr)));
                    }
                }
            }
            syn::visit::visit_stmt(self, s);
        }
    }
    let mut v = V(HashSet::new());
    v.visit_block(block);
    v.0
}

/// Constants of the file defined as all-ones (`const INVALID_READ: u32 = 0xffff_ffff;`).
fn all_ones_consts(file: &syn::File) -> HashSet<String> {
    struct C(HashSet<String>);
    impl<'ast> Visit<'ast> for C {
        fn visit_item_const(&mut self, c: &'ast syn::ItemConst) {
            if is_all_ones(&c.expr) {
                self.0.insert(c.ident.to_string());
            }
        }
        fn visit_impl_item_const(&mut self, c: &'ast syn::ImplItemConst) {
            if is_all_ones(&c.expr) {
                self.0.insert(c.ident.to_string());
            }
        }
    }
    let mut c = C(HashSet::new());
    c.visit_file(file);
    c.0
}

/// Whether the body checks for all-ones anywhere (`ones`: the file's all-ones constants).
pub fn checks_all_ones(block: &syn::Block, ones: &HashSet<String>) -> bool {
    struct V<'a>(bool, &'a HashSet<String>);
    impl<'ast> Visit<'ast> for V<'_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            if is_all_ones(e) {
                self.0 = true;
            }
            if let Expr::Path(p) = e {
                if p.path
                    .segments
                    .last()
                    .is_some_and(|s| self.1.contains(&s.ident.to_string()))
                {
                    self.0 = true;
                }
            }
            if let Expr::MethodCall(m) = e {
                let n = m.method.to_string();
                // Range checks below the maximum and exact comparisons with a constant
                // (`Untrusted::in_range`, `index_below`, `.is(0x0001_0400)`) reject all-ones too.
                // A masked field matches all-ones only against its own maximum: `.is(0)`
                // always rejects it, `.field(..).is(3)` may not.
                let exact = n == "is"
                    && m.args.len() == 1
                    && m.args.first().is_some_and(|a| match a {
                        Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Int(i),
                            ..
                        }) => {
                            i.base10_parse::<u128>().is_ok_and(|v| v == 0)
                                || !matches!(&*m.receiver, Expr::MethodCall(r) if r.method == "field")
                        }
                        _ => false,
                    });
                if n.contains("all_ones")
                    || n.contains("gone")
                    || n == "validate"
                    || n == "check_range"
                    || n == "in_range"
                    || n == "index_below"
                    || exact
                {
                    self.0 = true;
                }
            }
            if let Expr::Path(p) = e {
                if p.path.segments.iter().any(|s| {
                    let i = s.ident.to_string().to_ascii_lowercase();
                    i.contains("all_ones") || i.contains("allones") || i.contains("gone")
                }) {
                    self.0 = true;
                }
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_macro(&mut self, m: &'ast syn::Macro) {
            let parser = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
            if let Ok(args) = syn::parse::Parser::parse2(parser, m.tokens.clone()) {
                for a in &args {
                    self.visit_expr(a);
                }
            }
        }
    }
    let mut v = V(false, ones);
    v.visit_block(block);
    v.0
}

fn report(cx: &LintCx<'_>, m: Unchecked) -> Finding {
    let (first, what) = &m.reads[0];
    let mut f = Finding::new(
        "device_gone_unchecked",
        format!(
            "`{}` uses device reads without checking for all-ones (device gone)",
            m.function
        ),
        cx.span(*first),
        format!("`{what}` may return all-ones if the device is gone"),
    );
    for (s, what) in m.reads.iter().skip(1).take(2) {
        f = f.with_secondary(cx.span(*s), format!("`{what}` is not checked either"));
    }
    f.with_help("compare the value with all-ones (`u32::MAX`, `!0`) or call `check_not_all_ones()` before using it")
        .with_note("a removed, reset or dead device reads back all-ones: every bit set, every count huge")
}
