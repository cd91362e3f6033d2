//! `panic_in_recovery`: panicking constructs in recovery code.

use std::collections::HashMap;

use proc_macro2::Span as Span2;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::Expr;

use super::{declare_lint, reach_note, LintCx};
use crate::analysis::callgraph::{for_each_fn, FnRef, Reach};
use crate::diagnostic::Finding;

declare_lint! {
    /// ### What it does
    /// Flags `panic!`, `unreachable!`, `todo!`, `unimplemented!`, `assert!`, `assert_eq!`,
    /// `assert_ne!`, `.unwrap()`, `.expect(..)`, `.unwrap_err()`, `.expect_err(..)` and
    /// indexing (`a[i]`, `&a[i..j]`) in recovery code: functions marked `#[paranoid_init]`,
    /// functions named under `[recovery] functions` in `paranoid.toml`, in a crate that does
    /// not depend on the toolkit every bring-up entry point by name that touches the device
    /// (`init`, `probe`, `reset`, `recover`, `quiesce`, `attach`, `restart`, `setup`,
    /// `bring_up` as a word: `init_queues`, `reset_controller`), and every function of the
    /// same crate they call (calls resolved by type and module; the note prints the chain).
    /// `debug_assert!` is
    /// not flagged.
    ///
    /// Indexing a fixed-size array with a constant in bounds (`self.dw[3]` where the field is
    /// `dw: [u32; 16]`, `kinds[1]` where `let kinds = [a, b]`, `buf[0..4]` on `[u8; 64]`) is
    /// not flagged: it cannot panic (rustc rejects a constant out-of-bounds array index). The
    /// length must be visible in the same file (a literal, or a `const` with a literal value).
    /// Nor is indexing a collection with the variable of a loop over its own indices
    /// (`for i in 0..ring.len() { ring[i] .. }`, `for (i, _) in ring.iter().enumerate()`) when
    /// the loop body does not shrink it; another collection indexed with that variable
    /// (`buffers[i]`) still is.
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
    /// Why the function is recovery code.
    pub reach: Reach,
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
    let arrays = ArrayLens::of_file(cx.ast);
    for_each_fn(cx.ast, |f| {
        let name = f.name();
        let Some(reach) = cx
            .krate
            .recovery_of(&f, &cx.file.path.to_string_lossy(), cx.file.aux)
        else {
            return;
        };
        let mut v = V {
            out: &mut out,
            function: &name,
            reach,
            arrays: arrays.with_locals(&f),
            own_indices: Vec::new(),
        };
        v.visit_block(f.block);
    });
    out
}

struct V<'a> {
    out: &'a mut Vec<PanicSite>,
    function: &'a str,
    reach: &'a Reach,
    arrays: ArrayLens,
    /// (loop variable, collection) of the enclosing loops over a collection's own indices.
    own_indices: Vec<(String, String)>,
}

/// `for i in 0..xs.len()` or `for (i, _) in xs.iter().enumerate()` (also `iter_mut`):
/// the loop variable and the collection's place, when the body does not shrink the
/// collection (`pop`, `truncate`, `remove`, `clear`, `drain`, `retain`, assigning it).
fn own_index_loop(f: &syn::ExprForLoop) -> Option<(String, String)> {
    let (var, coll) = match (&*f.pat, &*f.expr) {
        (syn::Pat::Ident(i), Expr::Range(r))
            if r.start.as_deref().and_then(int_lit) == Some(0)
                && matches!(r.limits, syn::RangeLimits::HalfOpen(_)) =>
        {
            let Some(Expr::MethodCall(m)) = r.end.as_deref() else {
                return None;
            };
            if m.method != "len" || !m.args.is_empty() {
                return None;
            }
            (
                i.ident.to_string(),
                crate::analysis::taint::place(&m.receiver)?,
            )
        }
        (syn::Pat::Tuple(t), Expr::MethodCall(m)) if m.method == "enumerate" => {
            let Some(syn::Pat::Ident(i)) = t.elems.first() else {
                return None;
            };
            let Expr::MethodCall(it) = &*m.receiver else {
                return None;
            };
            if !matches!(it.method.to_string().as_str(), "iter" | "iter_mut") {
                return None;
            }
            (
                i.ident.to_string(),
                crate::analysis::taint::place(&it.receiver)?,
            )
        }
        _ => return None,
    };
    struct Shrinks<'c>(&'c str, bool);
    impl<'ast> Visit<'ast> for Shrinks<'_> {
        fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
            let shrinking = matches!(
                m.method.to_string().as_str(),
                "pop"
                    | "truncate"
                    | "remove"
                    | "swap_remove"
                    | "clear"
                    | "drain"
                    | "retain"
                    | "split_off"
                    | "resize"
            );
            if shrinking && crate::analysis::taint::place(&m.receiver).as_deref() == Some(self.0) {
                self.1 = true;
            }
            syn::visit::visit_expr_method_call(self, m);
        }
        fn visit_expr_assign(&mut self, a: &'ast syn::ExprAssign) {
            if matches!(&*a.left, Expr::Path(_) | Expr::Field(_))
                && crate::analysis::taint::place(&a.left).as_deref() == Some(self.0)
            {
                self.1 = true;
            }
            syn::visit::visit_expr_assign(self, a);
        }
    }
    let mut s = Shrinks(&coll, false);
    s.visit_block(&f.body);
    (!s.1).then_some((var, coll))
}

/// Lengths of fixed-size arrays known from the syntax of one file: struct fields (by field
/// name, the shortest when several structs use the name; unknown when one of them is not an
/// array) and, per function, locals and parameters.
#[derive(Clone, Default)]
struct ArrayLens {
    consts: HashMap<String, u128>,
    /// Field name → shortest array length, `None` when some declaration is not an array.
    fields: HashMap<String, Option<u128>>,
    /// (struct, field) → array length (for `self.field` in that struct's `impl`).
    struct_fields: HashMap<(String, String), Option<u128>>,
    locals: HashMap<String, Option<u128>>,
    /// Function name → length of the array it returns (`fn mac(&self) -> [u8; 6]`), `None`
    /// when a namesake returns something else.
    returns: HashMap<String, Option<u128>>,
    /// The `impl` type of the function being checked.
    owner: Option<String>,
}

impl ArrayLens {
    fn of_file(file: &syn::File) -> Self {
        struct C<'a>(&'a mut HashMap<String, u128>);
        impl<'ast> Visit<'ast> for C<'_> {
            fn visit_item_const(&mut self, c: &'ast syn::ItemConst) {
                if let Some(n) = int_lit(&c.expr) {
                    self.0.insert(c.ident.to_string(), n);
                }
            }
        }
        let mut me = Self::default();
        C(&mut me.consts).visit_file(file);
        struct F<'a>(&'a mut ArrayLens, Option<String>);
        impl<'ast> Visit<'ast> for F<'_> {
            fn visit_item_struct(&mut self, s: &'ast syn::ItemStruct) {
                let outer = self.1.replace(s.ident.to_string());
                syn::visit::visit_item_struct(self, s);
                self.1 = outer;
            }
            fn visit_field(&mut self, f: &'ast syn::Field) {
                if let Some(id) = &f.ident {
                    let len = self.0.type_len(&f.ty);
                    let e = self.0.fields.entry(id.to_string()).or_insert(len);
                    *e = match (*e, len) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        _ => None,
                    };
                    if let Some(st) = &self.1 {
                        self.0
                            .struct_fields
                            .insert((st.clone(), id.to_string()), len);
                    }
                }
                syn::visit::visit_field(self, f);
            }
        }
        F(&mut me, None).visit_file(file);
        let mut returns: HashMap<String, Option<u128>> = HashMap::new();
        crate::analysis::callgraph::for_each_fn(file, |f| {
            let len = match &f.sig.output {
                syn::ReturnType::Type(_, ty) => me.type_len(ty),
                syn::ReturnType::Default => None,
            };
            let e = returns.entry(f.name()).or_insert(len);
            *e = match (*e, len) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
        });
        me.returns = returns;
        me
    }

    /// The array length of a call's value: `self.read_masks()`, `mac_of(x)`, in `unsafe`.
    fn call_len(&self, e: &Expr) -> Option<u128> {
        let name = match e {
            Expr::Call(c) => match &*c.func {
                Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
                _ => None,
            },
            Expr::MethodCall(m) => Some(m.method.to_string()),
            Expr::Paren(p) => return self.call_len(&p.expr),
            Expr::Unsafe(u) => {
                return match u.block.stmts.as_slice() {
                    [syn::Stmt::Expr(x, None)] => self.call_len(x),
                    _ => None,
                }
            }
            _ => None,
        }?;
        self.returns.get(&name).copied().flatten()
    }

    fn len_expr(&self, e: &Expr) -> Option<u128> {
        int_lit(e).or_else(|| match e {
            Expr::Path(p) => p
                .path
                .get_ident()
                .and_then(|i| self.consts.get(&i.to_string()).copied()),
            _ => None,
        })
    }

    fn type_len(&self, ty: &syn::Type) -> Option<u128> {
        match ty {
            syn::Type::Array(a) => self.len_expr(&a.len),
            syn::Type::Paren(p) => self.type_len(&p.elem),
            syn::Type::Reference(r) => self.type_len(&r.elem),
            syn::Type::Group(g) => self.type_len(&g.elem),
            _ => None,
        }
    }

    /// This file's lengths plus the locals and parameters of one function.
    fn with_locals(&self, f: &FnRef<'_>) -> Self {
        let (sig, block) = (f.sig, f.block);
        let mut me = self.clone();
        me.owner = f.owner.map(ToString::to_string);
        let mut bind = |me: &mut Self, pat: &syn::Pat, len: Option<u128>| {
            if let syn::Pat::Ident(i) = pat {
                let e = me.locals.entry(i.ident.to_string()).or_insert(len);
                // A name bound twice keeps a length only when both bindings agree on one.
                *e = match (*e, len) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    _ => None,
                };
            }
        };
        for input in &sig.inputs {
            if let syn::FnArg::Typed(t) = input {
                let len = me.type_len(&t.ty);
                bind(&mut me, &t.pat, len);
            }
        }
        struct L<'a, B>(&'a mut ArrayLens, B);
        impl<'ast, B: FnMut(&mut ArrayLens, &syn::Pat, Option<u128>)> Visit<'ast> for L<'_, B> {
            fn visit_local(&mut self, l: &'ast syn::Local) {
                let (pat, ty_len) = match &l.pat {
                    syn::Pat::Type(t) => (&*t.pat, self.0.type_len(&t.ty)),
                    p => (p, None),
                };
                let init_len = l.init.as_ref().and_then(|i| match &*i.expr {
                    Expr::Repeat(r) => self.0.len_expr(&r.len),
                    Expr::Array(a) => Some(a.elems.len() as u128),
                    e => self.0.call_len(e),
                });
                let len = match (ty_len, init_len) {
                    (Some(t), _) => Some(t),
                    (None, i) if matches!(l.pat, syn::Pat::Ident(_)) => i,
                    _ => None,
                };
                (self.1)(self.0, pat, len);
                syn::visit::visit_local(self, l);
            }
            fn visit_item(&mut self, _: &'ast syn::Item) {}
        }
        L(&mut me, &mut bind).visit_block(block);
        me
    }

    /// Whether `base[index]` provably stays in bounds.
    fn in_bounds(&self, base: &Expr, index: &Expr) -> bool {
        let len = match base {
            Expr::Field(f) => match &f.member {
                syn::Member::Named(n) => {
                    let on_self = matches!(&*f.base, Expr::Path(p) if p.path.is_ident("self"));
                    let own = self
                        .owner
                        .as_ref()
                        .filter(|_| on_self)
                        .and_then(|o| self.struct_fields.get(&(o.clone(), n.to_string())));
                    match own {
                        Some(len) => *len,
                        None => self.fields.get(&n.to_string()).copied().flatten(),
                    }
                }
                syn::Member::Unnamed(_) => None,
            },
            Expr::Path(p) => p
                .path
                .get_ident()
                .and_then(|i| self.locals.get(&i.to_string()).copied().flatten()),
            Expr::Paren(p) => return self.in_bounds(&p.expr, index),
            _ => None,
        };
        let Some(len) = len else {
            return false;
        };
        match index {
            Expr::Range(r) => {
                let start = match &r.start {
                    Some(s) => self.len_expr(s),
                    None => Some(0),
                };
                let end = match (&r.end, &r.limits) {
                    (None, _) => Some(len),
                    (Some(e), syn::RangeLimits::HalfOpen(_)) => self.len_expr(e),
                    (Some(e), syn::RangeLimits::Closed(_)) => {
                        self.len_expr(e).and_then(|v| v.checked_add(1))
                    }
                };
                matches!((start, end), (Some(s), Some(e)) if s <= e && e <= len)
            }
            i => self.len_expr(i).is_some_and(|i| i < len),
        }
    }
}

fn int_lit(e: &Expr) -> Option<u128> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse().ok(),
        Expr::Paren(p) => int_lit(&p.expr),
        Expr::Group(g) => int_lit(&g.expr),
        _ => None,
    }
}

impl V<'_> {
    /// `xs[i]` inside `for i in 0..xs.len()` (see [`own_index_loop`]).
    fn own_index(&self, i: &syn::ExprIndex) -> bool {
        let Expr::Path(p) = &*i.index else {
            return false;
        };
        let (Some(var), Some(coll)) = (p.path.get_ident(), crate::analysis::taint::place(&i.expr))
        else {
            return false;
        };
        self.own_indices
            .iter()
            .any(|(v, c)| var == v.as_str() && *c == coll)
    }

    fn push(&mut self, span: Span2, what: String) {
        self.out.push(PanicSite {
            span,
            what,
            function: self.function.to_string(),
            reach: self.reach.clone(),
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
            Expr::Index(i) if !self.arrays.in_bounds(&i.expr, &i.index) && !self.own_index(i) => {
                self.push(e.span(), "indexing".to_string());
            }
            Expr::ForLoop(f) => {
                if let Some(pair) = own_index_loop(f) {
                    self.visit_expr(&f.expr);
                    self.own_indices.push(pair);
                    self.visit_block(&f.body);
                    self.own_indices.pop();
                    return;
                }
            }
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
    let f = Finding::new(
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
    f.with_note(reach_note("recovery code", &m.function, &m.reach))
}
