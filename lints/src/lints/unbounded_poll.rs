//! `unbounded_poll`: a loop waiting on the device with no deadline or iteration bound.

use proc_macro2::Span as Span2;
use syn::visit::Visit;
use syn::Expr;

use super::{declare_lint, LintCx};
use crate::analysis::access::{self, AccessKind, DeviceCx};
use crate::analysis::callgraph::for_each_fn;
use crate::diagnostic::Finding;

declare_lint! {
    /// ### What it does
    /// Flags a `loop` or `while` loop that reads the device (a register, port, volatile
    /// location or device reader function) and can only end when the device answers, with
    /// no deadline, timeout or iteration bound in the loop. A `loop` without any `break`,
    /// `return` or `?` is not a wait and is not flagged; `for` loops are bounded.
    ///
    /// Bounds recognised: identifiers mentioning a deadline, timeout, budget, retries,
    /// attempts, tries, iterations, spins, elapsed or remaining time, `Instant::now()`, and a
    /// counter that is both stepped (`n += 1`, `n -= 1`) and compared in the loop.
    ///
    /// ### Why is this bad?
    /// After a crash the device can be wedged, reset-pending or gone (reading all-ones): the
    /// bit never flips and the recovery kernel hangs forever instead of fencing the device
    /// and going on.
    ///
    /// ### Example
    /// ```rust,ignore
    /// while regs.csts().read() & CSTS_RDY == 0 {}
    /// ```
    ///
    /// ### Use instead
    /// ```rust,ignore
    /// let deadline = Deadline::after(cap.timeout());
    /// poll(deadline, || regs.csts().read().check_not_all_ones().map(|v| v & CSTS_RDY != 0))?;
    /// ```
    pub UNBOUNDED_POLL, "unbounded_poll", Deny, "a loop waiting on a device read with no deadline or iteration bound", Some(check)
}

/// A loop that waits on the device without a bound.
#[derive(Debug)]
pub struct UnboundedLoop {
    /// The `loop`/`while` keyword.
    pub keyword: Span2,
    /// Which keyword.
    pub kind: &'static str,
    /// The first device read in the loop.
    pub read: Span2,
    /// What the read is.
    pub what: String,
}

const BOUND_WORDS: &[&str] = &[
    "deadline",
    "timeout",
    "timeouts",
    "budget",
    "retries",
    "retry",
    "attempts",
    "attempt",
    "tries",
    "iterations",
    "iteration",
    "iters",
    "iter",
    "spins",
    "elapsed",
    "expired",
    "remaining",
    "limit",
    "countdown",
    "instant",
    "expiry",
    "expires",
    // Clock sources re-read in the loop (`end = rdtsc(); if end - start > MAX { .. }`).
    "rdtsc",
    "now",
    "jiffies",
];

fn check(cx: &LintCx<'_>) -> Vec<Finding> {
    find(cx).into_iter().map(|m| report(cx, m)).collect()
}

/// Matches unbounded polling loops in one file, including the functions written in its
/// `macro_rules!` bodies (one implementation per peripheral, as HALs write them).
pub fn find(cx: &LintCx<'_>) -> Vec<UnboundedLoop> {
    let mut out = Vec::new();
    find_in(cx, cx.ast, &mut out);
    for body in crate::analysis::macro_body::macro_bodies(cx.ast) {
        find_in(cx, &body, &mut out);
    }
    out
}

fn find_in(cx: &LintCx<'_>, file: &syn::File, out: &mut Vec<UnboundedLoop>) {
    for_each_fn(file, |f| {
        let dcx = cx.device_for(&f);
        let me = f.name();
        let names = |set: &'_ std::collections::HashSet<String>| -> Vec<String> {
            set.iter().filter(|n| n.as_str() != me).cloned().collect()
        };
        let direct = names(&cx.krate.reading_fns);
        let answering = names(&cx.krate.answering_fns);
        let helpers = Helpers {
            direct: direct.iter().map(String::as_str).collect(),
            answering: answering.iter().map(String::as_str).collect(),
        };
        super::walk_exprs(f.block, &mut |e| {
            if let Some(m) = examine(&dcx, &helpers, e) {
                out.push(m);
            }
        });
    });
}

/// The crate's functions that read the device: directly (`reading_fns`), or through
/// another of them (`answering_fns`, matched only as free calls or methods of `self`: a
/// `peek()` or `lock()` on some other value is most likely another type's method).
pub(crate) struct Helpers<'a> {
    direct: Vec<&'a str>,
    answering: Vec<&'a str>,
}

impl Helpers<'_> {
    /// Whether a call of `name` (a method when `receiver` is given) reads the device;
    /// with `self_only`, a method of another value than `self` never does.
    fn matches(&self, name: &str, receiver: Option<&Expr>, self_only: bool) -> bool {
        let of_self = receiver.is_none_or(rooted_at_self);
        (self.direct.contains(&name) && (of_self || !self_only))
            || (self.answering.contains(&name) && of_self)
    }
}

/// `self`, `self.a.b`, `self.a().b`: a receiver chain that starts at `self`.
fn rooted_at_self(e: &Expr) -> bool {
    match e {
        Expr::Path(p) => p.path.is_ident("self"),
        Expr::Field(f) => rooted_at_self(&f.base),
        Expr::MethodCall(m) => rooted_at_self(&m.receiver),
        Expr::Paren(p) => rooted_at_self(&p.expr),
        Expr::Reference(r) => rooted_at_self(&r.expr),
        _ => false,
    }
}

fn examine(dcx: &DeviceCx, helpers: &Helpers<'_>, e: &Expr) -> Option<UnboundedLoop> {
    let (keyword, kind, body, cond) = match e {
        Expr::Loop(l) => (l.loop_token.span, "loop", &l.body, None),
        Expr::While(w) => (w.while_token.span, "while", &w.body, Some(&*w.cond)),
        // `for _ in 0..`, `for x in ring.iter().cycle()`: as long as `loop`.
        Expr::ForLoop(f) if is_endless_iter(&f.expr) => (f.for_token.span, "for", &f.body, None),
        Expr::MethodCall(m) => return examine_search(dcx, m),
        _ => return None,
    };
    if cond.is_none() && !has_exit(body) {
        return None;
    }
    let mut reads = Vec::new();
    if let Some(c) = cond {
        reads.extend(access::accesses_in_expr(dcx, c));
    }
    reads.extend(direct_accesses(dcx, body));
    let read = match reads.into_iter().find(|a| a.kind != AccessKind::Write) {
        Some(r) => r,
        // `while !self.ready() {}` where `ready` is a helper of this crate that reads the device,
        // or `while speed == 0 { speed = self.link_speed(); }`: the state the loop tests is
        // read again from the device in the body.
        None => helper_call(helpers, cond, body, false)
            .or_else(|| state_read(dcx, helpers, cond, body))?,
    };
    (!bounded(cond, body)).then_some(UnboundedLoop {
        keyword,
        kind,
        read: read.span,
        what: read.what,
    })
}

/// A call in the loop condition (or in the condition of an `if` of the body that leaves the
/// loop) to a helper of the crate that reads the device.
fn helper_call(
    helpers: &Helpers<'_>,
    cond: Option<&Expr>,
    body: &syn::Block,
    self_only: bool,
) -> Option<access::Access> {
    struct V<'h, 'a>(&'h Helpers<'a>, Option<access::Access>, bool);
    impl<'ast> Visit<'ast> for V<'_, '_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            if self.1.is_some()
                || matches!(
                    e,
                    Expr::Closure(_) | Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_)
                )
            {
                return;
            }
            let called = match e {
                Expr::Call(c) => {
                    access::callee_name(&c.func).map(|n| (n, syn::spanned::Spanned::span(e), None))
                }
                Expr::MethodCall(m) => Some((
                    m.method.to_string(),
                    syn::spanned::Spanned::span(e),
                    Some(&*m.receiver),
                )),
                _ => None,
            };
            if let Some((n, span, receiver)) = called {
                if self.0.matches(&n, receiver, self.2) {
                    self.1 = Some(access::Access {
                        kind: AccessKind::Read,
                        form: access::Form::Function,
                        span,
                        what: format!("{n}()"),
                    });
                    return;
                }
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut v = V(helpers, None, self_only);
    if let Some(c) = cond {
        v.visit_expr(c);
    }
    // `loop { if self.ready() { break } }`: the condition of an `if` that leaves the loop.
    for s in &body.stmts {
        if v.1.is_some() {
            break;
        }
        if let syn::Stmt::Expr(Expr::If(i), _) = s {
            if has_exit(&i.then_branch) {
                v.visit_expr(&i.cond);
            }
        }
    }
    v.1
}

/// A local the loop tests (in the `while` condition, or for a `loop` in the condition of
/// an `if` that leaves it) and sets in its body from a device read or a reading helper:
/// `speed = self.get_link_speed()`, `let sr1 = self.check_flags()?;`. The first such read.
fn state_read(
    dcx: &DeviceCx,
    helpers: &Helpers<'_>,
    cond: Option<&Expr>,
    body: &syn::Block,
) -> Option<access::Access> {
    /// Assignments and `let`s of the body (not in nested loops, closures or items), with
    /// what they read.
    struct Sets<'a, 'h> {
        dcx: &'a DeviceCx,
        helpers: &'a Helpers<'h>,
        out: Vec<(String, access::Access)>,
    }
    impl Sets<'_, '_> {
        fn read_in(&self, e: &Expr) -> Option<access::Access> {
            access::accesses_in_expr(self.dcx, e)
                .into_iter()
                .find(|a| a.kind != AccessKind::Write)
                .or_else(|| {
                    let wrapped = syn::Block {
                        brace_token: Default::default(),
                        stmts: Vec::new(),
                    };
                    helper_call(self.helpers, Some(e), &wrapped, true)
                })
        }
    }
    impl<'ast> Visit<'ast> for Sets<'_, '_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            if matches!(
                e,
                Expr::Closure(_) | Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_)
            ) {
                return;
            }
            if let Expr::Assign(a) = e {
                if let (Some(p), Some(r)) = (
                    crate::analysis::taint::place(&a.left),
                    self.read_in(&a.right),
                ) {
                    self.out.push((p, r));
                }
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_local(&mut self, l: &'ast syn::Local) {
            if let Some(init) = &l.init {
                if let Some(r) = self.read_in(&init.expr) {
                    let mut names = Vec::new();
                    pat_names(&l.pat, &mut names);
                    for n in names {
                        self.out.push((n, r.clone()));
                    }
                }
            }
            syn::visit::visit_local(self, l);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    fn pat_names(p: &syn::Pat, out: &mut Vec<String>) {
        match p {
            syn::Pat::Ident(i) => out.push(i.ident.to_string()),
            syn::Pat::Type(t) => pat_names(&t.pat, out),
            syn::Pat::Tuple(t) => t.elems.iter().for_each(|e| pat_names(e, out)),
            _ => {}
        }
    }
    let mut sets = Sets {
        dcx,
        helpers,
        out: Vec::new(),
    };
    sets.visit_block(body);
    if sets.out.is_empty() {
        return None;
    }
    // What decides whether the loop goes on.
    let mut tested: Vec<String> = cond.map(super::idents_of).unwrap_or_default();
    struct Exits<'t>(&'t mut Vec<String>);
    impl<'ast> Visit<'ast> for Exits<'_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            match e {
                Expr::If(i) => {
                    let leaves = if_leaves(i);
                    if leaves {
                        self.0.extend(super::idents_of(&i.cond));
                    }
                }
                Expr::Closure(_) | Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_) => return,
                _ => {}
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    // A `while` goes on by its condition alone: state its body re-reads and tests to
    // `return` early (`if let Ok(info) = probe(..) { return Some(info) }` in a scan) is not
    // what the loop waits on. A `loop` waits on what its exits test.
    if cond.is_none() {
        Exits(&mut tested).visit_block(body);
    }
    sets.out
        .into_iter()
        .find(|(name, _)| tested.contains(name))
        .map(|(_, r)| r)
}

/// An iterator that never ends by itself: `a..` (no end), `.cycle()`, `iter::repeat(..)`,
/// `repeat_with(..)`, `from_fn(..)`, unless `.take(n)` bounds it.
fn is_endless_iter(e: &Expr) -> bool {
    match e {
        Expr::Range(r) => r.end.is_none() && r.start.is_some(),
        Expr::Paren(p) => is_endless_iter(&p.expr),
        Expr::MethodCall(m) => match m.method.to_string().as_str() {
            "cycle" => true,
            "take" | "take_while" | "zip" => false,
            _ => is_endless_iter(&m.receiver),
        },
        Expr::Call(c) => matches!(
            access::callee_name(&c.func).as_deref(),
            Some("repeat" | "repeat_with" | "from_fn")
        ),
        _ => false,
    }
}

/// `(0..).find(|_| ready(regs))`, `iter::repeat(()).position(..)`: a search over an endless
/// iterator whose predicate reads the device.
fn examine_search(dcx: &DeviceCx, m: &syn::ExprMethodCall) -> Option<UnboundedLoop> {
    let searches = matches!(
        m.method.to_string().as_str(),
        "find"
            | "find_map"
            | "position"
            | "any"
            | "all"
            | "take_while"
            | "skip_while"
            | "try_for_each"
    );
    if !searches || !is_endless_iter(&m.receiver) {
        return None;
    }
    let read = m
        .args
        .iter()
        .flat_map(|a| access::accesses_in_expr(dcx, a))
        .find(|a| a.kind != AccessKind::Write)?;
    let mut ids = Vec::new();
    for a in &m.args {
        ids.extend(super::idents_of(a));
    }
    if ids.iter().any(|i| is_bound_ident(i)) {
        return None;
    }
    Some(UnboundedLoop {
        keyword: m.method.span(),
        kind: "search",
        read: read.span,
        what: read.what,
    })
}

fn is_bound_ident(i: &str) -> bool {
    access::words(i)
        .iter()
        .any(|w| BOUND_WORDS.contains(&w.as_str()))
}

/// Whether the loop is bounded: a bound (a deadline, timeout, retry count…) is tested where
/// it can end the loop — in the `while` condition, in the condition of an `if` (or `match`
/// guard) whose branch leaves the loop, or in a `?`-checked call — or a counter is stepped and
/// compared. A bound word elsewhere (`iterations_logged += 1`, a log line) bounds nothing.
pub(crate) fn bounded(cond: Option<&Expr>, body: &syn::Block) -> bool {
    // Locals the loop sets from a clock or a bound (`end = rdtsc()`) are bounds too.
    struct Set(Vec<String>);
    impl<'ast> Visit<'ast> for Set {
        fn visit_expr_assign(&mut self, a: &'ast syn::ExprAssign) {
            if super::idents_of(&a.right).iter().any(|i| is_bound_ident(i)) {
                if let Some(p) = crate::analysis::taint::place(&a.left) {
                    self.0.push(p);
                }
            }
            syn::visit::visit_expr_assign(self, a);
        }
        fn visit_local(&mut self, l: &'ast syn::Local) {
            if let (syn::Pat::Ident(pi), Some(init)) = (&l.pat, &l.init) {
                if super::idents_of(&init.expr)
                    .iter()
                    .any(|i| is_bound_ident(i))
                {
                    self.0.push(pi.ident.to_string());
                }
            }
            syn::visit::visit_local(self, l);
        }
    }
    let mut set = Set(Vec::new());
    set.visit_block(body);
    let clocks = set.0;
    let is_bound = |e: &Expr| {
        super::idents_of(e)
            .iter()
            .any(|i| is_bound_ident(i) || clocks.contains(i))
    };
    if cond.is_some_and(is_bound) {
        return true;
    }
    struct V<'f>(bool, &'f dyn Fn(&Expr) -> bool);
    impl<'ast> Visit<'ast> for V<'_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            match e {
                Expr::If(i) => {
                    let leaves = if_leaves(i);
                    if leaves && (self.1)(&i.cond) {
                        self.0 = true;
                    }
                }
                Expr::Try(t) if (self.1)(&t.expr) => self.0 = true,
                Expr::Match(m) => {
                    let arms_leave = m.arms.iter().any(|a| {
                        let mut x = ExitIn(false);
                        x.visit_expr(&a.body);
                        x.0
                    });
                    if arms_leave && (self.1)(&m.expr) {
                        self.0 = true;
                    }
                }
                Expr::Closure(_) | Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_) => return,
                _ => {}
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_local(&mut self, l: &'ast syn::Local) {
            // `let Some(left) = budget.checked_sub(1) else { return Err(..) };`
            if let Some(init) = &l.init {
                if init.diverge.is_some() && (self.1)(&init.expr) {
                    self.0 = true;
                }
            }
            syn::visit::visit_local(self, l);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
        fn visit_macro(&mut self, _: &'ast syn::Macro) {}
    }
    struct ExitIn(bool);
    impl<'ast> Visit<'ast> for ExitIn {
        fn visit_expr(&mut self, e: &'ast Expr) {
            if matches!(e, Expr::Break(_) | Expr::Return(_)) {
                self.0 = true;
            }
            syn::visit::visit_expr(self, e);
        }
    }
    let mut v = V(false, &is_bound);
    v.visit_block(body);
    v.0 || has_counter(cond, body)
}

/// Device accesses in a loop body, not counting nested loops (they are judged on their own).
fn direct_accesses(dcx: &DeviceCx, body: &syn::Block) -> Vec<access::Access> {
    struct V<'a> {
        dcx: &'a DeviceCx,
        out: Vec<access::Access>,
    }
    impl<'ast> Visit<'ast> for V<'_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            if matches!(
                e,
                Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_) | Expr::Closure(_)
            ) {
                return;
            }
            if let Some(a) = self.dcx.classify(e) {
                self.out.push(a);
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_stmt_macro(&mut self, m: &'ast syn::StmtMacro) {
            if let Some(a) = self.dcx.classify_macro(&m.mac) {
                self.out.push(a);
            }
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut v = V {
        dcx,
        out: Vec::new(),
    };
    v.visit_block(body);
    v.out
}

/// Whether either branch of `i` leaves the loop (an `else if` chain counts
/// only through its block branches).
fn if_leaves(i: &syn::ExprIf) -> bool {
    has_exit(&i.then_branch)
        || i.else_branch.as_ref().is_some_and(|(_, e)| match &**e {
            Expr::Block(b) => has_exit(&b.block),
            _ => false,
        })
}

/// Whether the loop body can leave the loop (`break`, `return`, `?`), outside nested loops and closures.
fn has_exit(body: &syn::Block) -> bool {
    struct V(bool);
    impl<'ast> Visit<'ast> for V {
        fn visit_expr(&mut self, e: &'ast Expr) {
            match e {
                Expr::Break(b) if b.label.is_none() => self.0 = true,
                Expr::Break(_) | Expr::Return(_) | Expr::Try(_) => self.0 = true,
                Expr::Closure(_) | Expr::Async(_) => return,
                Expr::Loop(l) => {
                    // A labelled break or a return inside a nested loop still leaves this one.
                    let mut labelled = LabelledExit(false);
                    labelled.visit_block(&l.body);
                    self.0 |= labelled.0;
                    return;
                }
                _ => {}
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
        fn visit_macro(&mut self, m: &'ast syn::Macro) {
            if m.path
                .segments
                .last()
                .is_some_and(|s| s.ident == "panic" || s.ident == "bail")
            {
                self.0 = true;
            }
        }
    }
    struct LabelledExit(bool);
    impl<'ast> Visit<'ast> for LabelledExit {
        fn visit_expr(&mut self, e: &'ast Expr) {
            match e {
                Expr::Break(b) if b.label.is_some() => self.0 = true,
                Expr::Return(_) | Expr::Try(_) => self.0 = true,
                Expr::Closure(_) => return,
                _ => {}
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut v = V(false);
    v.visit_block(body);
    v.0
}

/// Whether some local is stepped (`n += 1`) and compared in the loop.
fn has_counter(cond: Option<&Expr>, body: &syn::Block) -> bool {
    struct V {
        stepped: Vec<String>,
        compared: Vec<String>,
    }
    impl<'ast> Visit<'ast> for V {
        fn visit_expr_binary(&mut self, b: &'ast syn::ExprBinary) {
            use syn::BinOp::*;
            match b.op {
                AddAssign(_) | SubAssign(_) => {
                    if let Some(p) = crate::analysis::taint::place(&b.left) {
                        self.stepped.push(p);
                    }
                }
                Lt(_) | Le(_) | Gt(_) | Ge(_) | Eq(_) | Ne(_) => {
                    for side in [&b.left, &b.right] {
                        if let Some(p) = crate::analysis::taint::place(side) {
                            self.compared.push(p);
                        }
                    }
                }
                _ => {}
            }
            syn::visit::visit_expr_binary(self, b);
        }
        fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
            if m.method.to_string().starts_with("checked_sub")
                || m.method.to_string().starts_with("checked_add")
            {
                if let Some(p) = crate::analysis::taint::place(&m.receiver) {
                    self.stepped.push(p.clone());
                    self.compared.push(p);
                }
            }
            syn::visit::visit_expr_method_call(self, m);
        }
    }
    let mut v = V {
        stepped: Vec::new(),
        compared: Vec::new(),
    };
    if let Some(c) = cond {
        v.visit_expr(c);
    }
    v.visit_block(body);
    v.stepped.iter().any(|s| v.compared.contains(s))
}

fn report(cx: &LintCx<'_>, m: UnboundedLoop) -> Finding {
    Finding::new(
        "unbounded_poll",
        format!("unbounded poll: this `{}` waits on the device with no deadline", m.kind),
        cx.span(m.keyword),
        "loops until the device answers, however long that takes",
    )
    .with_secondary(cx.span(m.read), format!("device read (`{}`) polled here", m.what))
    .with_help("bound the wait: `poll(deadline, …)` with a deadline from the spec, or an iteration limit")
    .with_note("a wedged or removed device (reading all-ones) may never change this condition, and the recovery kernel would hang")
}
