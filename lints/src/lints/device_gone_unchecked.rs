//! `device_gone_unchecked`: register reads used without any all-ones check in the function.

use std::collections::HashSet;

use proc_macro2::Span as Span2;
use syn::visit::Visit;
use syn::{Expr, Stmt};

use super::{declare_lint, LintCx};
use crate::analysis::access::{self, AccessKind};
use crate::analysis::callgraph::for_each_fn;
use crate::analysis::taint::is_all_ones;
use crate::diagnostic::Finding;

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
    let checkers = all_ones_checkers(cx.ast, &ones);
    let path = cx.file.path.to_string_lossy();
    for_each_fn(cx.ast, |f| {
        let name = f.name();
        // Only recovery code meets devices in any state.
        if cx.krate.recovery_of(&f, &path, cx.file.aux).is_none() {
            return;
        }
        let dcx = cx.device_for(&f);
        if is_wrapper(&dcx, f.block) {
            return;
        }
        let discarded = discarded_spans(f.block);
        let reads: Vec<(Span2, String)> = access::accesses_in_block(&dcx, f.block)
            .into_iter()
            .filter(|a| a.kind == AccessKind::Read)
            .filter(|a| !discarded.contains(&key(a.span)))
            .map(|a| (a.span, a.what))
            .collect();
        if reads.is_empty() {
            return;
        }
        let predicate = match &f.sig.output {
            syn::ReturnType::Type(_, ty) => {
                let mut ids = Vec::new();
                access::idents(quote::ToTokens::to_token_stream(ty), &mut ids);
                ids.iter().any(|i| i == "bool")
            }
            syn::ReturnType::Default => false,
        };
        let reads = decisive_unchecked(f.block, reads, &ones, &checkers, predicate);
        if reads.is_empty() {
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
fn is_wrapper(dcx: &access::DeviceCx, block: &syn::Block) -> bool {
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
                Stmt::Macro(m) => access::asm_outputs(&m.mac).contains(&id),
                Stmt::Expr(Expr::Unsafe(u), _) => u.block.stmts.iter().any(|s| match s {
                    Stmt::Macro(m) => access::asm_outputs(&m.mac).contains(&id),
                    Stmt::Expr(Expr::Macro(m), _) => access::asm_outputs(&m.mac).contains(&id),
                    _ => false,
                }),
                _ => false,
            })
        }
        _ => false,
    }
}

/// A line and column.
type Pos = (usize, usize);

fn pos(l: proc_macro2::LineColumn) -> Pos {
    (l.line, l.column)
}

/// Line/column containment of `inner` in `outer`.
fn within(inner: Span2, outer: Span2) -> bool {
    let (is, ie, os, oe) = (inner.start(), inner.end(), outer.start(), outer.end());
    (os.line, os.column) <= (is.line, is.column) && (ie.line, ie.column) <= (oe.line, oe.column)
}

/// The reads of `reads` that drive a decision or are kept, and whose value is never
/// compared with all-ones.
///
/// A read *drives a decision* when it (or a local bound from it) appears in an `if`, `while`
/// or `match` condition, an index, a `for` range, a `return` or the tail value of a function
/// returning `bool` (a predicate; other returned values are judged in the callers), or
/// is stored (assigned to a field, element or dereference, or put in a struct literal). A read
/// only passed back to the device (read-modify-write) or logged decides nothing. A condition
/// that *fails safe* on all-ones decides nothing either: a `while` that keeps waiting while a
/// bit is set (`while s & BUSY != 0`), and an `if` that leaves with an error or stops the loop
/// when a bit is set or clear in the safe direction (`if s & ERR != 0 { return Err(..) }`,
/// `if s & BUSY == 0 { break }`).
///
/// A read is *checked* when an `==`/`!=` comparison with an all-ones value (`0xFFFF_FFFF`,
/// `!0`, `u32::MAX`, a constant of the file defined so) has the read or its local on the other
/// side, or a validator (`check_not_all_ones`, `validate`, `check_range`, `in_range`,
/// `index_below`, `is(CONST)`) is called on it; a comparison elsewhere in the function does
/// not count, and neither does a mask (`& 0xff`).
fn decisive_unchecked(
    block: &syn::Block,
    reads: Vec<(Span2, String)>,
    ones: &HashSet<String>,
    checkers: &HashSet<String>,
    predicate: bool,
) -> Vec<(Span2, String)> {
    use std::collections::HashMap;
    // Locals bound (or assigned) from reads, in source order.
    struct Locals<'r> {
        reads: &'r [(Span2, String)],
        /// The reads' (start, end, index), sorted: `of_expr` finds the reads inside an
        /// expression by binary search (one scan per local made a function of thousands of
        /// reads quadratic, each span position itself a lookup).
        by_pos: Vec<(Pos, Pos, usize)>,
        taint: HashMap<String, HashSet<usize>>,
        /// Locals bound from a computed value (`read() & 0xff`, `read() >> 8`).
        derived: HashSet<String>,
    }
    impl Locals<'_> {
        fn of_expr(&self, e: &Expr) -> HashSet<usize> {
            let span = syn::spanned::Spanned::span(e);
            let (os, oe) = (pos(span.start()), pos(span.end()));
            let first = self.by_pos.partition_point(|(s, _, _)| *s < os);
            let mut out: HashSet<usize> = self.by_pos[first..]
                .iter()
                .take_while(|(s, _, _)| *s <= oe)
                .filter(|(_, e, _)| *e <= oe)
                .map(|(_, _, i)| *i)
                .collect();
            for id in super::idents_of(e) {
                if let Some(t) = self.taint.get(&id) {
                    out.extend(t.iter().copied());
                }
            }
            out
        }
    }
    impl<'ast> Visit<'ast> for Locals<'_> {
        fn visit_local(&mut self, l: &'ast syn::Local) {
            syn::visit::visit_local(self, l);
            if let Some(init) = &l.init {
                let t = self.of_expr(&init.expr);
                let mut names = HashSet::new();
                pat_names(&l.pat, &mut names);
                let computed = !matches!(
                    strip(&init.expr),
                    Expr::Path(_) | Expr::MethodCall(_) | Expr::Call(_) | Expr::Try(_)
                );
                for n in names {
                    if computed {
                        self.derived.insert(n.clone());
                    } else {
                        self.derived.remove(&n);
                    }
                    if t.is_empty() {
                        self.taint.remove(&n);
                    } else {
                        self.taint.insert(n, t.clone());
                    }
                }
            }
        }
        fn visit_expr_for_loop(&mut self, f: &'ast syn::ExprForLoop) {
            // `for (at, saved) in [(BAR0, bar0)]`: the pattern takes the values iterated.
            let t = self.of_expr(&f.expr);
            if !t.is_empty() {
                let mut names = HashSet::new();
                pat_names(&f.pat, &mut names);
                for n in names {
                    self.taint.insert(n, t.clone());
                }
            }
            syn::visit::visit_expr_for_loop(self, f);
        }
        fn visit_expr_assign(&mut self, a: &'ast syn::ExprAssign) {
            syn::visit::visit_expr_assign(self, a);
            if let Expr::Path(p) = &*a.left {
                if let Some(id) = p.path.get_ident() {
                    let t = self.of_expr(&a.right);
                    if !t.is_empty() {
                        self.taint.entry(id.to_string()).or_default().extend(t);
                    }
                }
            }
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut by_pos: Vec<(Pos, Pos, usize)> = reads
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (pos(s.start()), pos(s.end()), i))
        .collect();
    by_pos.sort_unstable();
    let mut locals = Locals {
        reads: &reads,
        by_pos,
        taint: HashMap::new(),
        derived: HashSet::new(),
    };
    locals.visit_block(block);

    struct Uses<'l, 'r> {
        locals: &'l Locals<'r>,
        ones: &'l HashSet<String>,
        checkers: &'l HashSet<String>,
        decisive: HashSet<usize>,
        checked: HashSet<usize>,
        /// For each enclosing loop, whether it is bounded (only a bounded wait fails safe).
        loops: Vec<bool>,
        /// Whether the function returns a `bool` (its returned value is a decision).
        predicate: bool,
    }
    impl Uses<'_, '_> {
        fn decide(&mut self, e: &Expr) {
            let mut t = self.locals.of_expr(e);
            // A read inside a closure decides only through the closure's own conditions.
            let closures = closure_spans(e);
            t.retain(|i| {
                self.locals
                    .reads
                    .get(*i)
                    .is_none_or(|(s, _)| !closures.iter().any(|c| within(*s, *c)))
            });
            self.decisive.extend(t);
        }
        /// Whether one of `args` is a closure that tests for all-ones.
        fn sibling_checks<'e>(&self, mut args: impl Iterator<Item = &'e Expr>) -> bool {
            args.any(|a| match a {
                Expr::Closure(c) => {
                    struct C<'o>(bool, &'o HashSet<String>, &'o HashSet<String>);
                    impl<'ast> Visit<'ast> for C<'_> {
                        fn visit_expr(&mut self, e: &'ast Expr) {
                            match e {
                                Expr::MethodCall(m) if is_validator(m) => self.0 = true,
                                Expr::Call(c) if calls_checker(c, self.2) => self.0 = true,
                                Expr::Binary(b)
                                    if matches!(b.op, syn::BinOp::Eq(_) | syn::BinOp::Ne(_))
                                        && [&b.left, &b.right].iter().any(|x| {
                                            is_all_ones(x)
                                                || matches!(&***x, Expr::Path(p) if p.path.segments.last().is_some_and(|s| self.1.contains(&s.ident.to_string())))
                                        }) =>
                                {
                                    self.0 = true
                                }
                                _ => {}
                            }
                            syn::visit::visit_expr(self, e);
                        }
                    }
                    let mut v = C(false, self.ones, self.checkers);
                    v.visit_expr(&c.body);
                    v.0
                }
                _ => false,
            })
        }
        fn is_ones(&self, e: &Expr) -> bool {
            is_all_ones(e)
                || matches!(e, Expr::Path(p) if p.path.segments.last().is_some_and(|s| self.ones.contains(&s.ident.to_string())))
        }
    }
    impl<'ast> Visit<'ast> for Uses<'_, '_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            match e {
                Expr::Binary(b) if matches!(b.op, syn::BinOp::Eq(_) | syn::BinOp::Ne(_)) => {
                    if self.is_ones(&b.right) {
                        let t = self.locals.of_expr(&b.left);
                        self.checked.extend(t);
                    } else if self.is_ones(&b.left) {
                        let t = self.locals.of_expr(&b.right);
                        self.checked.extend(t);
                    } else if let Some(side) = exact_match(&b.left, &b.right)
                        .filter(|x| !matches!(strip(x), Expr::Path(p) if p.path.get_ident().is_some_and(|i| self.locals.derived.contains(&i.to_string()))))
                    {
                        // `if id == 0x100e_8086`: the whole value matched against a non-zero
                        // id that is not all-ones; a gone device never matches.
                        let t = self.locals.of_expr(side);
                        self.checked.extend(t);
                    }
                }
                Expr::MethodCall(m) if is_validator(m) => {
                    let t = self.locals.of_expr(&m.receiver);
                    self.checked.extend(t);
                }
                // `if gone(value) { .. }`: a helper of the file that tests its argument.
                Expr::Call(c) if calls_checker(c, self.checkers) => {
                    for a in &c.args {
                        let t = self.locals.of_expr(a);
                        self.checked.extend(t);
                    }
                }
                // `poll(deadline, || read(), |s| s.is_all_ones() || ..)`: a predicate beside
                // the reading closure that tests for all-ones checks what the closure reads.
                Expr::Call(c) if self.sibling_checks(c.args.iter()) => {
                    let t = self.locals.of_expr(e);
                    self.checked.extend(t);
                }
                Expr::MethodCall(m) if self.sibling_checks(m.args.iter()) => {
                    let t = self.locals.of_expr(e);
                    self.checked.extend(t);
                }
                Expr::If(i)
                    if !(self.loops.last() == Some(&true) && fails_safe_if(i)
                        || fails_safe_error(i)) =>
                {
                    self.decide(&i.cond);
                }
                Expr::While(w) => {
                    let bounded = super::unbounded_poll::bounded(Some(&w.cond), &w.body);
                    if !(bounded && waits_while_set(&w.cond)) {
                        self.decide(&w.cond);
                    }
                    self.visit_expr(&w.cond);
                    self.loops.push(bounded);
                    self.visit_block(&w.body);
                    self.loops.pop();
                    return;
                }
                Expr::Loop(l) => {
                    // A `loop` without a bound that waits on a bit never fails safe: all-ones
                    // keeps it waiting for ever.
                    self.loops
                        .push(super::unbounded_poll::bounded(None, &l.body));
                    self.visit_block(&l.body);
                    self.loops.pop();
                    return;
                }
                Expr::ForLoop(f) => {
                    // The end of a range sizes the loop; iterating values decides nothing.
                    if let Expr::Range(r) = &*f.expr {
                        if let Some(end) = &r.end {
                            self.decide(end);
                        }
                    }
                    self.visit_expr(&f.expr);
                    self.loops.push(true);
                    self.visit_block(&f.body);
                    self.loops.pop();
                    return;
                }
                Expr::Match(m) => self.decide(&m.expr),
                Expr::Index(i) => self.decide(&i.index),
                Expr::Assign(a) if !matches!(&*a.left, Expr::Path(_)) => self.decide(&a.right),
                Expr::Struct(s) => {
                    for f in &s.fields {
                        self.decide(&f.expr);
                    }
                }
                Expr::Return(r) if self.predicate => {
                    if let Some(v) = &r.expr {
                        self.decide(v);
                    }
                }
                _ => {}
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut uses = Uses {
        locals: &locals,
        ones,
        checkers,
        decisive: HashSet::new(),
        checked: HashSet::new(),
        loops: Vec::new(),
        predicate,
    };
    uses.visit_block(block);
    // A predicate's value (`-> bool`) is the decision: all-ones reads as "ready". Any other
    // value the function only returns is judged where it is used: the function is a reader
    // for its callers (their calls count as reads).
    if predicate {
        if let Some(Stmt::Expr(tail, None)) = block.stmts.last() {
            let mut tail = tail;
            while let Expr::Unsafe(u) = tail {
                match u.block.stmts.last() {
                    Some(Stmt::Expr(x, None)) => tail = x,
                    _ => break,
                }
            }
            if !matches!(
                tail,
                Expr::If(_) | Expr::Match(_) | Expr::Loop(_) | Expr::While(_)
            ) {
                uses.decide(tail);
            }
        }
    }
    let (decisive, checked) = (uses.decisive, uses.checked);
    reads
        .into_iter()
        .enumerate()
        .filter(|(i, _)| decisive.contains(i) && !checked.contains(i))
        .map(|(_, r)| r)
        .collect()
}

/// Spans of the closures in `e`.
fn closure_spans(e: &Expr) -> Vec<Span2> {
    struct V(Vec<Span2>);
    impl<'ast> Visit<'ast> for V {
        fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
            self.0.push(syn::spanned::Spanned::span(c));
        }
    }
    let mut v = V(Vec::new());
    v.visit_expr(e);
    v.0
}

fn pat_names(p: &syn::Pat, out: &mut HashSet<String>) {
    struct P<'b>(&'b mut HashSet<String>);
    impl<'ast> Visit<'ast> for P<'_> {
        fn visit_pat_ident(&mut self, i: &'ast syn::PatIdent) {
            self.0.insert(i.ident.to_string());
            syn::visit::visit_pat_ident(self, i);
        }
    }
    P(out).visit_pat(p);
}

/// Validating calls of an `Untrusted` value (they reject all-ones as well).
fn is_validator(m: &syn::ExprMethodCall) -> bool {
    let n = m.method.to_string();
    let exact = n == "is"
        && m.args.len() == 1
        && m.args.first().is_some_and(|a| match a {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(i),
                ..
            }) => {
                // A masked field matches all-ones only against its own maximum: `.is(0)`
                // always rejects it, `.field(..).is(3)` may not.
                i.base10_parse::<u128>().is_ok_and(|v| v == 0)
                    || !matches!(&*m.receiver, Expr::MethodCall(r) if r.method == "field")
            }
            _ => false,
        });
    n.contains("all_ones")
        || n.contains("gone")
        || n == "validate"
        || n == "check_range"
        || n == "in_range"
        || n == "index_below"
        || exact
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        Expr::Unsafe(u) => match u.block.stmts.as_slice() {
            [Stmt::Expr(x, None)] => strip(x),
            _ => e,
        },
        _ => e,
    }
}

/// In `a == b` (or `!=`), the side compared whole (a local or a read, not masked or
/// shifted) when the other side is an integer literal that is neither zero nor all-ones (an
/// id or a magic number).
fn exact_match<'e>(a: &'e Expr, b: &'e Expr) -> Option<&'e Expr> {
    let id_lit = |e: &Expr| {
        matches!(strip(e), Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. })
            if i.base10_parse::<u128>().is_ok_and(|v| v != 0) && !is_all_ones(e))
    };
    let whole = |e: &Expr| {
        matches!(
            strip(e),
            Expr::Path(_) | Expr::MethodCall(_) | Expr::Call(_)
        )
    };
    if id_lit(b) && whole(a) {
        Some(a)
    } else if id_lit(a) && whole(b) {
        Some(b)
    } else {
        None
    }
}

fn is_zero(e: &Expr) -> bool {
    matches!(strip(e), Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) if i.base10_parse::<u128>().is_ok_and(|v| v == 0))
}

/// `Some(true)` when `cond` holds while a bit is set (`x & M != 0`, `x.is_set(..)`,
/// `x.contains(..)`), `Some(false)` when it holds while a bit is clear (`x & M == 0`,
/// `!x.is_set(..)`): all-ones sets every bit.
fn bit_set_sense(cond: &Expr) -> Option<bool> {
    match strip(cond) {
        Expr::Binary(b) if !matches!(b.op, syn::BinOp::And(_)) => {
            let masked = |e: &Expr| matches!(strip(e), Expr::Binary(x) if matches!(x.op, syn::BinOp::BitAnd(_)));
            let (m, z) = (
                masked(&b.left) || masked(&b.right),
                is_zero(&b.left) || is_zero(&b.right),
            );
            match b.op {
                syn::BinOp::Ne(_) if m && z => Some(true),
                syn::BinOp::Eq(_) if m && z => Some(false),
                _ => None,
            }
        }
        Expr::MethodCall(m)
            if matches!(
                m.method.to_string().as_str(),
                "is_set" | "contains" | "bit" | "get_bit" | "intersects"
            ) =>
        {
            Some(true)
        }
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Not(_)) => bit_set_sense(&u.expr).map(|s| !s),
        // `busy && tries < N`: all-ones keeps the waiting operand true.
        Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
            match (bit_set_sense(&b.left), bit_set_sense(&b.right)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A `while` that keeps waiting while a bit is set: all-ones keeps it waiting (until its
/// bound, which `unbounded_poll` checks), it never reports a false "done".
fn waits_while_set(cond: &Expr) -> bool {
    bit_set_sense(cond) == Some(true)
}

/// Whether a block leaves with an error (`return Err(..)`, `Err(..)?`, `break Err(..)`).
fn leaves_with_error(b: &syn::Block) -> bool {
    let toks = quote::ToTokens::to_token_stream(b).to_string();
    b.stmts.first().is_some_and(|s| {
        matches!(
            s,
            Stmt::Expr(Expr::Return(_) | Expr::Break(_), _) | Stmt::Expr(Expr::Macro(_), _)
        )
    }) && toks.contains("Err")
}

/// An `if` inside a loop that stops waiting when a bit clears (`if s & BUSY == 0 { break }`):
/// all-ones keeps the loop waiting.
fn fails_safe_if(i: &syn::ExprIf) -> bool {
    let leaves = i
        .then_branch
        .stmts
        .iter()
        .any(|s| matches!(s, Stmt::Expr(Expr::Break(_) | Expr::Return(_), _)));
    leaves && bit_set_sense(&i.cond) == Some(false) && !leaves_with_error(&i.then_branch)
}

/// An `if` that turns a set bit into an error (`if s & ERR != 0 { return Err(..) }`):
/// all-ones becomes the error.
fn fails_safe_error(i: &syn::ExprIf) -> bool {
    bit_set_sense(&i.cond) == Some(true) && leaves_with_error(&i.then_branch)
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

/// Functions of the file that are all-ones predicates: they take arguments and their short
/// body (at most three statements) tests for all-ones, e.g.
/// `fn gone(v: Untrusted<u32>) -> bool { v.is_all_ones() }`. A call to one with a read as
/// its argument checks that read.
fn all_ones_checkers(file: &syn::File, ones: &HashSet<String>) -> HashSet<String> {
    struct C<'o>(HashSet<String>, &'o HashSet<String>);
    impl C<'_> {
        fn consider(&mut self, sig: &syn::Signature, block: &syn::Block) {
            if !sig.inputs.is_empty() && block.stmts.len() <= 3 && checks_all_ones(block, self.1) {
                self.0.insert(sig.ident.to_string());
            }
        }
    }
    impl<'ast> Visit<'ast> for C<'_> {
        fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
            self.consider(&f.sig, &f.block);
            syn::visit::visit_item_fn(self, f);
        }
        fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
            self.consider(&f.sig, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
    let mut c = C(HashSet::new(), ones);
    c.visit_file(file);
    c.0
}

/// Whether `c` calls one of the file's all-ones predicates (`gone(v)`, `Self::gone(v)`).
fn calls_checker(c: &syn::ExprCall, checkers: &HashSet<String>) -> bool {
    matches!(&*c.func, Expr::Path(p)
        if p.path.segments.last().is_some_and(|s| checkers.contains(&s.ident.to_string())))
        && !c.args.is_empty()
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
