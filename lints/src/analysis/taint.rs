//! Intra-procedural taint analysis of device-read values.
//!
//! Sources are recognised device reads ([`DeviceCx::classify`]) and the outputs of `asm!`
//! port reads. Taint flows through `let` bindings (including tuple and struct patterns),
//! assignments to locals and fields, arithmetic, casts, conversions (`u64::from`, `from_le`),
//! struct and tuple literals, and into closures (which see the taint of what they capture).
//! It is cleared by a comparison of the value (`if v < n`, `match v { 0..=7 => .. }`,
//! `assert!(v <= MAX)`) — except equality with all-ones, which is a presence check, not a
//! bound — by `min`/`clamp`, `checked_*`, `.get(..)`, and validating calls
//! (`check_range`, `check_not_all_ones`, `validate`, `get_if`, `in_range`, `clamp_to`, and any
//! function or method whose name says `check`, `valid`, `clamp`, `bound`, `sanitize` or
//! `below`: `clamp_max`, `index_below`).
//!
//! The analysis is one pass in source order: a validation anywhere before a use counts,
//! and taint that enters on a later loop iteration is not seen.

use std::collections::{BTreeMap, HashSet};

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{BinOp, Block, Expr, Pat, Stmt, Type};

use crate::analysis::access::{self, AccessKind, DeviceCx};

/// How a device value was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sink {
    /// `a[v]`.
    Index,
    /// `a[..v]`, `split_at(v)`, `from_raw_parts(p, v)`.
    SliceLength,
    /// `x << v`.
    Shift,
    /// `p.add(v)`, `p.offset(v)`, `v as *const T`.
    Address,
    /// `Vec::with_capacity(v)`, `vec![0; v]`, `Layout::from_size_align(v, ..)`.
    Allocation,
    /// `for _ in 0..v`, `while i < v`.
    LoopBound,
    /// `x / v`, `x % v`: a device that reads zero divides by zero.
    Divisor,
}

impl Sink {
    /// How the sink is described in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Index => "an index",
            Self::SliceLength => "a slice length or range",
            Self::Shift => "a shift amount",
            Self::Address => "an address or pointer offset",
            Self::Allocation => "an allocation size",
            Self::LoopBound => "a loop bound",
            Self::Divisor => "a divisor",
        }
    }
}

/// A device value reaching a sink unvalidated.
#[derive(Debug, Clone)]
pub struct Flow {
    /// What kind of use.
    pub sink: Sink,
    /// The use.
    pub span: Span,
    /// The local or field carrying the value, if any.
    pub var: Option<String>,
    /// The device read the value came from.
    pub origin: Span,
}

#[derive(Debug, Clone)]
struct Taint {
    origin: Span,
    var: Option<String>,
}

/// Method and function names that validate a value.
const SANITIZERS: &[&str] = &[
    "min",
    "clamp",
    "check_range",
    "check_not_all_ones",
    "validate",
    "get_if",
    "in_range",
    "clamp_to",
    "get",
    "get_mut",
    "min_by",
    "rem_euclid",
];

/// Words that make a function or method name a validating call (`clamp_max`, `index_below`,
/// `check_bounds`, `validated`, `bounded_by`, `sanitize`).
/// `unchecked` names (`get_unchecked`) never validate.
const VALIDATING_WORDS: &[&str] = &["check", "valid", "clamp", "bound", "sanitize", "below"];

/// Functions that map a physical address for access: `ioremap`, `map_mmio`,
/// `phys_to_virt`, `map_physical_region`, `map_device_memory`.
fn is_mapping_name(name: &str) -> bool {
    let w = access::words(name);
    let has = |x: &str| w.iter().any(|v| v == x);
    has("ioremap")
        || (has("phys") && (has("virt") || has("to")))
        || (has("map")
            && (has("mmio")
                || has("physical")
                || has("phys")
                || has("device")
                || has("bar")
                || has("io")))
}

fn is_validating_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !name.contains("unchecked") && VALIDATING_WORDS.iter().any(|w| name.contains(w))
}

/// Runs the analysis over one function body.
pub fn analyze(cx: &DeviceCx, block: &Block) -> Vec<Flow> {
    let mut a = Analysis {
        cx,
        env: BTreeMap::new(),
        flows: Vec::new(),
        seen: HashSet::new(),
        in_while_cond: false,
        nonzero: HashSet::new(),
        bit_positions: HashSet::new(),
    };
    a.block(block);
    a.flows
}

struct Analysis<'a> {
    cx: &'a DeviceCx,
    env: BTreeMap<String, Taint>,
    flows: Vec<Flow>,
    seen: HashSet<(usize, usize, usize, usize)>,
    in_while_cond: bool,
    /// Places compared with zero (`v != 0`, `v > 0`): safe divisors, still unbounded.
    nonzero: HashSet<String>,
    /// Locals bound to the position of a set bit of a value compared with zero
    /// (`let ep = pending.trailing_zeros()` under `while pending != 0`): below the value's
    /// width, a safe shift amount (`1 << ep`), still no bound for an index.
    bit_positions: HashSet<String>,
}

/// The pointer of a dereference `*p` (through parentheses) whose reference names a block
/// of memory rather than one integer: not `&*(addr as *const u32)`, which is kept a read of
/// that register (the reference is the register's value in all but name).
fn deref_operand(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Paren(p) => deref_operand(&p.expr),
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => {
            (!casts_to_int_pointer(&u.expr)).then_some(&*u.expr)
        }
        _ => None,
    }
}

/// `x as *const u32`, `(x as *mut u8)`: a cast to a pointer to a primitive integer.
fn casts_to_int_pointer(e: &Expr) -> bool {
    match e {
        Expr::Paren(p) => casts_to_int_pointer(&p.expr),
        Expr::Cast(c) => match &*c.ty {
            Type::Ptr(p) => {
                matches!(&*p.elem, Type::Path(tp) if tp.path.get_ident().is_some_and(|i| {
                    matches!(
                        i.to_string().as_str(),
                        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128" | "isize"
                    )
                }))
            }
            _ => false,
        },
        _ => false,
    }
}

/// `x.trailing_zeros()` / `leading_zeros()` (also through casts and parentheses): the
/// receiver's place.
fn bit_position_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Paren(p) => bit_position_of(&p.expr),
        Expr::Cast(c) => bit_position_of(&c.expr),
        Expr::MethodCall(m)
            if m.args.is_empty()
                && matches!(
                    m.method.to_string().as_str(),
                    "trailing_zeros" | "leading_zeros"
                ) =>
        {
            place(&m.receiver)
        }
        _ => None,
    }
}

/// A literal `0` or `1`: comparing with it bounds nothing from above.
fn is_small_literal(e: &Expr) -> bool {
    match e {
        Expr::Lit(l) => {
            matches!(&l.lit, syn::Lit::Int(i) if i.base10_parse::<u128>().is_ok_and(|v| v <= 1))
        }
        Expr::Paren(p) => is_small_literal(&p.expr),
        Expr::Cast(c) => is_small_literal(&c.expr),
        _ => false,
    }
}

/// A literal mask of at most 16 bits (`v & 0x7f` into a table); wider masks (address
/// alignment masks like `0xFFFF_F000`) bound nothing useful.
fn is_small_mask(e: &Expr) -> bool {
    match e {
        Expr::Lit(l) => {
            matches!(&l.lit, syn::Lit::Int(i) if i.base10_parse::<u128>().is_ok_and(|v| v <= 0xffff))
        }
        Expr::Paren(p) => is_small_mask(&p.expr),
        _ => false,
    }
}

/// `a`, `a.b`, `self.x.0` — the place an expression names, if it is one.
pub fn place(e: &Expr) -> Option<String> {
    match e {
        Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            Some(p.path.segments[0].ident.to_string())
        }
        Expr::Field(f) => {
            let base = place(&f.base)?;
            Some(match &f.member {
                syn::Member::Named(n) => format!("{base}.{n}"),
                syn::Member::Unnamed(i) => format!("{base}.{}", i.index),
            })
        }
        Expr::Paren(p) => place(&p.expr),
        Expr::Group(g) => place(&g.expr),
        Expr::Reference(r) => place(&r.expr),
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => place(&u.expr),
        Expr::Cast(c) => place(&c.expr),
        Expr::MethodCall(m)
            if m.args.is_empty()
                && matches!(m.method.to_string().as_str(), "into" | "clone" | "to_owned") =>
        {
            place(&m.receiver)
        }
        _ => None,
    }
}

/// Whether `e` spells all-ones (`!0`, `0xFFFF_FFFF`, `u32::MAX`, `ALL_ONES`).
pub fn is_all_ones(e: &Expr) -> bool {
    match e {
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Not(_)) => {
            matches!(&*u.expr, Expr::Lit(l) if matches!(&l.lit, syn::Lit::Int(i) if i.base10_digits() == "0"))
        }
        Expr::Lit(l) => match &l.lit {
            syn::Lit::Int(i) => {
                let t = i.token().to_string().to_ascii_lowercase().replace('_', "");
                let digits = t.trim_start_matches("0x");
                let digits = digits.split(['u', 'i']).next().unwrap_or("");
                t.starts_with("0x") && digits.len() >= 2 && digits.chars().all(|c| c == 'f')
            }
            _ => false,
        },
        Expr::Path(p) => p.path.segments.last().is_some_and(|s| {
            let n = s.ident.to_string();
            n == "MAX" || n.to_ascii_uppercase().contains("ALL_ONES")
        }),
        Expr::Paren(p) => is_all_ones(&p.expr),
        Expr::Cast(c) => is_all_ones(&c.expr),
        _ => false,
    }
}

fn pat_names(p: &Pat, out: &mut Vec<String>) {
    match p {
        Pat::Ident(i) => {
            out.push(i.ident.to_string());
            if let Some((_, sub)) = &i.subpat {
                pat_names(sub, out);
            }
        }
        Pat::Type(t) => pat_names(&t.pat, out),
        Pat::Tuple(t) => t.elems.iter().for_each(|e| pat_names(e, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|e| pat_names(e, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| pat_names(&f.pat, out)),
        Pat::Reference(r) => pat_names(&r.pat, out),
        Pat::Slice(s) => s.elems.iter().for_each(|e| pat_names(e, out)),
        Pat::Or(o) => o.cases.iter().for_each(|e| pat_names(e, out)),
        Pat::Paren(p) => pat_names(&p.pat, out),
        _ => {}
    }
}

/// Whether a pattern constrains the value (literals or ranges).
fn pat_validates(p: &Pat) -> bool {
    match p {
        Pat::Lit(_) | Pat::Range(_) => true,
        Pat::Or(o) => o.cases.iter().any(pat_validates),
        Pat::Ident(i) => i.subpat.as_ref().is_some_and(|(_, s)| pat_validates(s)),
        Pat::Paren(p) => pat_validates(&p.pat),
        _ => false,
    }
}

impl Analysis<'_> {
    fn lookup(&self, place: &str) -> Option<Taint> {
        if let Some(t) = self.env.get(place) {
            return Some(t.clone());
        }
        // A whole tainted value taints its fields.
        let mut base = place;
        while let Some((b, _)) = base.rsplit_once('.') {
            if let Some(t) = self.env.get(b) {
                return Some(Taint {
                    origin: t.origin,
                    var: Some(place.to_string()),
                });
            }
            base = b;
        }
        None
    }

    fn set(&mut self, place: String, t: Option<Taint>) {
        self.bit_positions.remove(&place);
        let prefix = format!("{place}.");
        self.env.retain(|k, _| !k.starts_with(&prefix));
        match t {
            Some(t) => {
                self.env.insert(
                    place.clone(),
                    Taint {
                        origin: t.origin,
                        var: Some(place),
                    },
                );
            }
            None => {
                self.env.remove(&place);
            }
        }
    }

    /// Records that `e` was compared with zero (`other` is a zero literal).
    fn note_nonzero(&mut self, e: &Expr, other: &Expr) {
        if is_small_literal(other) {
            if let Some(p) = place(e) {
                self.nonzero.insert(p);
            }
        }
    }

    fn sanitize(&mut self, e: &Expr) {
        if let Some(p) = place(e) {
            if self.lookup(&p).is_some() {
                self.set(p, None);
            }
        }
    }

    fn sink(&mut self, sink: Sink, at: Span, t: &Option<Taint>) {
        let Some(t) = t else { return };
        let (s, e) = (at.start(), at.end());
        if self.seen.insert((s.line, s.column, e.line, e.column)) {
            self.flows.push(Flow {
                sink,
                span: at,
                var: t.var.clone(),
                origin: t.origin,
            });
        }
    }

    fn block(&mut self, b: &Block) -> Option<Taint> {
        let mut last = None;
        for (i, s) in b.stmts.iter().enumerate() {
            let t = self.stmt(s);
            if i + 1 == b.stmts.len() {
                last = t;
            }
        }
        last
    }

    fn stmt(&mut self, s: &Stmt) -> Option<Taint> {
        match s {
            Stmt::Local(l) => {
                if let Some(init) = &l.init {
                    self.bind(&l.pat, Some(&init.expr));
                    if let Some((_, div)) = &init.diverge {
                        self.expr(div);
                    }
                } else {
                    let mut names = Vec::new();
                    pat_names(&l.pat, &mut names);
                    for n in names {
                        self.set(n, None);
                    }
                }
                None
            }
            Stmt::Expr(e, semi) => {
                let t = self.expr(e);
                if semi.is_none() {
                    t
                } else {
                    None
                }
            }
            Stmt::Macro(m) => self.mac(&m.mac, m.mac.span()),
            Stmt::Item(_) => None,
        }
    }

    fn bind(&mut self, pat: &Pat, init: Option<&Expr>) {
        let pat = match pat {
            Pat::Type(t) => &*t.pat,
            p => p,
        };
        match (pat, init) {
            (Pat::Tuple(pt), Some(Expr::Tuple(et))) if pt.elems.len() == et.elems.len() => {
                for (p, e) in pt.elems.iter().zip(et.elems.iter()) {
                    self.bind(p, Some(e));
                }
            }
            (Pat::Ident(pi), Some(Expr::Struct(s))) => {
                let name = pi.ident.to_string();
                self.set(name.clone(), None);
                for f in &s.fields {
                    let t = self.expr(&f.expr);
                    let member = match &f.member {
                        syn::Member::Named(n) => n.to_string(),
                        syn::Member::Unnamed(i) => i.index.to_string(),
                    };
                    self.set(format!("{name}.{member}"), t);
                }
                if let Some(rest) = &s.rest {
                    self.expr(rest);
                }
            }
            (Pat::Ident(pi), Some(Expr::Tuple(et))) => {
                let name = pi.ident.to_string();
                self.set(name.clone(), None);
                for (i, e) in et.elems.iter().enumerate() {
                    let t = self.expr(e);
                    self.set(format!("{name}.{i}"), t);
                }
            }
            _ => {
                let t = init.and_then(|e| self.expr(e));
                let mut names = Vec::new();
                pat_names(pat, &mut names);
                for n in names {
                    self.set(n, t.clone());
                }
                if let (Pat::Ident(pi), Some(e)) = (pat, init) {
                    if self.is_bit_position(e) {
                        self.bit_positions.insert(pi.ident.to_string());
                    }
                }
            }
        }
    }

    /// Whether `e` is the position of a set bit of a value known nonzero (or a local bound
    /// to one): smaller than the value's width.
    fn is_bit_position(&self, e: &Expr) -> bool {
        if let Some(recv) = bit_position_of(e) {
            return self.nonzero.contains(&recv);
        }
        match e {
            Expr::Paren(p) => self.is_bit_position(&p.expr),
            Expr::Cast(c) => self.is_bit_position(&c.expr),
            Expr::Path(_) => place(e).is_some_and(|p| self.bit_positions.contains(&p)),
            _ => false,
        }
    }

    fn mac(&mut self, mac: &syn::Macro, span: Span) -> Option<Taint> {
        if let Some(kind) = access::asm_port_kind(mac) {
            if kind == AccessKind::Read {
                for out in access::asm_outputs(mac) {
                    self.set(
                        out.clone(),
                        Some(Taint {
                            origin: span,
                            var: Some(out),
                        }),
                    );
                }
            }
            return None;
        }
        let name = mac
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        if name == "vec" {
            // `vec![elem; len]`
            let toks: Vec<_> = mac.tokens.clone().into_iter().collect();
            if let Some(pos) = toks
                .iter()
                .position(|t| matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == ';'))
            {
                let len: proc_macro2::TokenStream = toks[pos + 1..].iter().cloned().collect();
                let elem: proc_macro2::TokenStream = toks[..pos].iter().cloned().collect();
                if let Ok(e) = syn::parse2::<Expr>(elem) {
                    self.expr(&e);
                }
                if let Ok(e) = syn::parse2::<Expr>(len) {
                    let t = self.expr(&e);
                    self.sink(Sink::Allocation, e.span(), &t);
                }
                return None;
            }
        }
        let parser = Punctuated::<Expr, syn::Token![,]>::parse_terminated;
        if let Ok(args) = syn::parse::Parser::parse2(parser, mac.tokens.clone()) {
            for a in &args {
                self.expr(a);
            }
        }
        None
    }

    fn union(a: Option<Taint>, b: Option<Taint>) -> Option<Taint> {
        a.or(b)
    }

    fn expr(&mut self, e: &Expr) -> Option<Taint> {
        if let Expr::Macro(m) = e {
            return self.mac(&m.mac, e.span());
        }
        if let Some(acc) = self.cx.classify(e) {
            // Still look inside the access (arguments may misuse other values).
            self.children(e);
            return (acc.kind != AccessKind::Write).then_some(Taint {
                origin: acc.span,
                var: None,
            });
        }
        match e {
            Expr::Path(_) | Expr::Field(_) => {
                if let Expr::Field(f) = e {
                    self.expr(&f.base);
                }
                place(e).and_then(|p| self.lookup(&p))
            }
            Expr::Lit(_) => None,
            Expr::Binary(b) => self.binary(b),
            Expr::Unary(u) => self.expr(&u.expr),
            Expr::Cast(c) => {
                let t = self.expr(&c.expr);
                if matches!(&*c.ty, Type::Ptr(_)) {
                    self.sink(Sink::Address, e.span(), &t);
                }
                t
            }
            Expr::Index(i) => {
                let base = self.expr(&i.expr);
                match &*i.index {
                    Expr::Range(r) => {
                        let s = r.start.as_ref().and_then(|x| self.expr(x));
                        let en = r.end.as_ref().and_then(|x| self.expr(x));
                        self.sink(Sink::SliceLength, i.index.span(), &Self::union(s, en));
                    }
                    idx => {
                        let t = self.expr(idx);
                        self.sink(Sink::Index, idx.span(), &t);
                    }
                }
                base
            }
            Expr::Range(r) => {
                let s = r.start.as_ref().and_then(|x| self.expr(x));
                let en = r.end.as_ref().and_then(|x| self.expr(x));
                Self::union(en, s)
            }
            Expr::MethodCall(m) => self.method(m),
            Expr::Call(c) => self.call(c),
            Expr::Macro(m) => self.mac(&m.mac, e.span()),
            Expr::Assign(a) => {
                let t = self.expr(&a.right);
                match place(&a.left) {
                    Some(p) if !matches!(&*a.left, Expr::Unary(_)) => self.set(p, t),
                    _ => {
                        self.expr(&a.left);
                    }
                }
                None
            }
            Expr::Block(b) => self.block(&b.block),
            Expr::Unsafe(b) => self.block(&b.block),
            Expr::Const(b) => self.block(&b.block),
            Expr::If(i) => {
                self.expr(&i.cond);
                let a = self.block(&i.then_branch);
                let b = i.else_branch.as_ref().and_then(|(_, e)| self.expr(e));
                Self::union(a, b)
            }
            Expr::Let(l) => {
                self.bind(&l.pat, Some(&l.expr));
                None
            }
            Expr::Match(m) => {
                let t = self.expr(&m.expr);
                let validated = m.arms.iter().any(|a| pat_validates(&a.pat));
                if validated {
                    self.sanitize(&m.expr);
                }
                let mut out = None;
                for arm in &m.arms {
                    if !validated {
                        let mut names = Vec::new();
                        pat_names(&arm.pat, &mut names);
                        for n in names {
                            self.set(n, t.clone());
                        }
                    }
                    if let Some((_, g)) = &arm.guard {
                        self.expr(g);
                    }
                    let r = self.expr(&arm.body);
                    out = Self::union(out, r);
                }
                out
            }
            Expr::While(w) => {
                let prev = std::mem::replace(&mut self.in_while_cond, true);
                self.expr(&w.cond);
                self.in_while_cond = prev;
                self.block(&w.body);
                None
            }
            Expr::ForLoop(f) => {
                if let Expr::Range(r) = &*f.expr {
                    let t = r.end.as_ref().and_then(|x| self.expr(x));
                    self.sink(Sink::LoopBound, f.expr.span(), &t);
                    if let Some(s) = &r.start {
                        self.expr(s);
                    }
                } else {
                    self.expr(&f.expr);
                }
                let mut names = Vec::new();
                pat_names(&f.pat, &mut names);
                for n in names {
                    self.set(n, None);
                }
                self.block(&f.body);
                None
            }
            Expr::Loop(l) => {
                self.block(&l.body);
                None
            }
            Expr::Closure(c) => self.expr(&c.body),
            Expr::Struct(s) => {
                let mut out = None;
                for f in &s.fields {
                    let t = self.expr(&f.expr);
                    out = Self::union(out, t);
                }
                out
            }
            Expr::Tuple(t) => {
                let mut out = None;
                for x in &t.elems {
                    let r = self.expr(x);
                    out = Self::union(out, r);
                }
                out
            }
            Expr::Array(a) => {
                let mut out = None;
                for x in &a.elems {
                    let r = self.expr(x);
                    out = Self::union(out, r);
                }
                out
            }
            Expr::Paren(p) => self.expr(&p.expr),
            Expr::Group(g) => self.expr(&g.expr),
            // `&mut *(base as *mut Regs)`, `&*ptr`: a reference to the memory, no load of it
            // (the register block's fields are read later, through the reference).
            Expr::Reference(r) if deref_operand(&r.expr).is_some() => {
                if let Some(p) = deref_operand(&r.expr) {
                    self.expr(p);
                }
                None
            }
            Expr::Reference(r) => self.expr(&r.expr),
            Expr::Try(t) => self.expr(&t.expr),
            Expr::Await(a) => self.expr(&a.base),
            Expr::Return(r) => {
                if let Some(x) = &r.expr {
                    self.expr(x);
                }
                None
            }
            Expr::Break(b) => b.expr.as_ref().and_then(|x| self.expr(x)),
            Expr::Repeat(r) => self.expr(&r.expr),
            _ => {
                self.children(e);
                None
            }
        }
    }

    /// Visits sub-expressions of `e` for their sinks, ignoring their taint.
    fn children(&mut self, e: &Expr) {
        match e {
            Expr::Call(c) => c.args.iter().for_each(|a| {
                self.expr(a);
            }),
            Expr::MethodCall(m) => {
                self.expr(&m.receiver);
                m.args.iter().for_each(|a| {
                    self.expr(a);
                });
            }
            Expr::Assign(a) => {
                self.expr(&a.right);
            }
            Expr::Unary(u) => {
                self.expr(&u.expr);
            }
            _ => {}
        }
    }

    fn binary(&mut self, b: &syn::ExprBinary) -> Option<Taint> {
        use BinOp::*;
        let l = self.expr(&b.left);
        let r = self.expr(&b.right);
        match b.op {
            Lt(_) | Le(_) | Gt(_) | Ge(_) => {
                if self.in_while_cond {
                    let (t, at) = if r.is_some() {
                        (r, b.right.span())
                    } else {
                        (l, b.left.span())
                    };
                    self.sink(Sink::LoopBound, at, &t);
                } else {
                    // A bound must bound the value: a comparison with zero or one (`i > 0`)
                    // only rules out zero, and one device value does not bound another.
                    let small = |e: &Expr| is_small_literal(e);
                    if !small(&b.right) && r.is_none() {
                        self.sanitize(&b.left);
                    }
                    if !small(&b.left) && l.is_none() {
                        self.sanitize(&b.right);
                    }
                    self.note_nonzero(&b.left, &b.right);
                    self.note_nonzero(&b.right, &b.left);
                }
                None
            }
            Eq(_) => {
                // `v == 5` pins the value; `v == u32::MAX` only says the device is there.
                if !self.in_while_cond && !is_all_ones(&b.left) && !is_all_ones(&b.right) {
                    if r.is_none() {
                        self.sanitize(&b.left);
                    }
                    if l.is_none() {
                        self.sanitize(&b.right);
                    }
                }
                None
            }
            Ne(_) => {
                // `v != 0` rules out one value: a safe divisor, not a bounded index.
                self.note_nonzero(&b.left, &b.right);
                self.note_nonzero(&b.right, &b.left);
                None
            }
            Div(_) | Rem(_) if r.is_some() => {
                let safe = place(&b.right).is_some_and(|p| self.nonzero.contains(&p));
                if !safe {
                    self.sink(Sink::Divisor, b.right.span(), &r);
                }
                Self::union(l, r)
            }
            DivAssign(_) | RemAssign(_) if r.is_some() => {
                let safe = place(&b.right).is_some_and(|p| self.nonzero.contains(&p));
                if !safe {
                    self.sink(Sink::Divisor, b.right.span(), &r);
                }
                None
            }
            And(_) | Or(_) => None,
            Shl(_) | Shr(_) => {
                if !self.is_bit_position(&b.right) {
                    self.sink(Sink::Shift, b.right.span(), &r);
                }
                Self::union(l, r)
            }
            ShlAssign(_) | ShrAssign(_) => {
                if !self.is_bit_position(&b.right) {
                    self.sink(Sink::Shift, b.right.span(), &r);
                }
                None
            }
            AddAssign(_) | SubAssign(_) | MulAssign(_) | DivAssign(_) | RemAssign(_)
            | BitXorAssign(_) | BitAndAssign(_) | BitOrAssign(_) => {
                if let Some(p) = place(&b.left) {
                    if r.is_some() && l.is_none() {
                        self.set(p, r);
                    }
                }
                None
            }
            // `v & MASK` with a constant mask bounds the value: not a sanitizer we trust for
            // indexing in general, but a literal mask smaller than the table is the idiom.
            // A large mask (`bar & 0xFFFF_FFF0`) keeps an address unbounded.
            BitAnd(_) if is_small_mask(&b.right) || is_small_mask(&b.left) => None,
            Rem(_) if r.is_none() => None,
            _ => Self::union(l, r),
        }
    }

    fn method(&mut self, m: &syn::ExprMethodCall) -> Option<Taint> {
        let name = m.method.to_string();
        let recv = self.expr(&m.receiver);
        let args: Vec<Option<Taint>> = m.args.iter().map(|a| self.expr(a)).collect();
        let first = args.first().cloned().flatten();
        if SANITIZERS.contains(&name.as_str())
            || name.starts_with("checked_")
            || is_validating_name(&name)
        {
            return None;
        }
        match name.as_str() {
            "add" | "offset" | "sub" | "byte_add" | "byte_offset" | "byte_sub"
            | "wrapping_offset" => {
                if let Some(a) = m.args.first() {
                    self.sink(Sink::Address, a.span(), &first);
                }
            }
            "reserve" | "reserve_exact" | "resize" | "with_capacity" => {
                if let Some(a) = m.args.first() {
                    self.sink(Sink::Allocation, a.span(), &first);
                }
            }
            "split_at" | "split_at_mut" | "truncate" | "copy_within" | "swap" => {
                if let Some(a) = m.args.first() {
                    self.sink(Sink::SliceLength, a.span(), &first);
                }
            }
            _ => {}
        }
        if recv.is_some() {
            return recv;
        }
        let arith = name.starts_with("wrapping_")
            || name.starts_with("saturating_")
            || name.starts_with("overflowing_")
            || matches!(name.as_str(), "max" | "pow" | "add" | "mul" | "sub");
        if arith {
            return args.into_iter().flatten().next();
        }
        None
    }

    fn call(&mut self, c: &syn::ExprCall) -> Option<Taint> {
        let path = access::callee_path(&c.func);
        let name = path.last().cloned().unwrap_or_default();
        let args: Vec<Option<Taint>> = c.args.iter().map(|a| self.expr(a)).collect();
        let arg = |i: usize| args.get(i).cloned().flatten();
        let span = |i: usize| c.args.iter().nth(i).map(|a| a.span());
        let lname = name.to_ascii_lowercase();
        if SANITIZERS.contains(&name.as_str()) || is_validating_name(&lname) {
            return None;
        }
        match name.as_str() {
            "with_capacity"
            | "from_size_align"
            | "from_size_align_unchecked"
            | "array"
            | "alloc"
            | "alloc_zeroed"
            | "repeat" => {
                if let Some(s) = span(0) {
                    self.sink(Sink::Allocation, s, &arg(0));
                }
            }
            "from_raw_parts"
            | "from_raw_parts_mut"
            | "slice_from_raw_parts"
            | "slice_from_raw_parts_mut" => {
                if let Some(s) = span(0) {
                    self.sink(Sink::Address, s, &arg(0));
                }
                if let Some(s) = span(1) {
                    self.sink(Sink::SliceLength, s, &arg(1));
                }
            }
            "with_exposed_provenance"
            | "with_exposed_provenance_mut"
            | "from_exposed_addr"
            | "from_exposed_addr_mut"
            | "without_provenance"
            | "invalid"
            | "invalid_mut" => {
                if let Some(s) = span(0) {
                    self.sink(Sink::Address, s, &arg(0));
                }
            }
            // Mapping a physical address (a BAR read from config space) for access.
            n if is_mapping_name(n) => {
                if let Some(s) = span(0) {
                    self.sink(Sink::Address, s, &arg(0));
                }
            }
            _ => {}
        }
        let conversion = name.starts_with("from")
            || name.starts_with("to_")
            || matches!(
                name.as_str(),
                "Some" | "Ok" | "Wrapping" | "swap_bytes" | "max"
            )
            || name.chars().next().is_some_and(|ch| ch.is_uppercase());
        if conversion {
            return args.into_iter().flatten().next();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flows(body: &str) -> Vec<(Sink, Option<String>)> {
        let block: Block = syn::parse_str(&format!("{{ {body} }}")).unwrap();
        let cx = DeviceCx::new(&[], &[]);
        analyze(&cx.for_block(&block), &block)
            .into_iter()
            .map(|f| (f.sink, f.var))
            .collect()
    }

    #[test]
    fn flows_through_locals_fields_and_arithmetic() {
        assert_eq!(
            flows("let v = regs.read32(0x10); buf[v as usize]"),
            [(Sink::Index, Some("v".into()))]
        );
        assert_eq!(
            flows("let v = regs.read32(0x10); let n = v * 4 + 1; let x = 1u64 << n;"),
            [(Sink::Shift, Some("n".into()))]
        );
        assert_eq!(
            flows("let s = S { len: regs.read32(4) }; Vec::with_capacity(s.len as usize)"),
            [(Sink::Allocation, Some("s.len".into()))]
        );
        assert_eq!(
            flows("let (a, b) = (1, regs.read32(4)); for _ in 0..b {}"),
            [(Sink::LoopBound, Some("b".into()))]
        );
        assert_eq!(
            flows(
                "let mut st = St::default(); st.head = regs.read32(4); &ring[..st.head as usize]"
            ),
            [(Sink::SliceLength, Some("st.head".into()))]
        );
        assert_eq!(
            flows("let v = regs.read32(4); let f = || base.add(v as usize); f()"),
            [(Sink::Address, Some("v".into()))]
        );
        assert_eq!(flows("let mut v: u32; asm!(\"in eax, dx\", out(\"eax\") v, in(\"dx\") 0xcfc); tbl[v as usize]"), [(Sink::Index, Some("v".into()))]);
    }

    #[test]
    fn cleared_by_validation() {
        assert!(flows("let v = regs.read32(0x10); if v < 8 { buf[v as usize] }").is_empty());
        assert!(
            flows("let v = regs.read32(0x10); if v >= 8 { return Err(E) } buf[v as usize]")
                .is_empty()
        );
        assert!(flows("let v = regs.read32(0x10).min(7); buf[v as usize]").is_empty());
        assert!(flows("let v = regs.read32(0x10); buf.get(v as usize)").is_empty());
        assert!(flows("let v = regs.read32(0x10).check_range(0..8)?; buf[v as usize]").is_empty());
        assert!(
            flows("let v = regs.read32(0x10); match v { 0..=7 => buf[v as usize], _ => 0 }")
                .is_empty()
        );
        assert!(flows("let v = regs.read32(0x10); let i = v.checked_mul(4)?; buf[i]").is_empty());
        assert!(flows("let v = 3; buf[v]").is_empty());
    }

    #[test]
    fn all_ones_check_is_not_a_bound() {
        assert_eq!(
            flows("let v = regs.read32(0x10); if v == 0xFFFF_FFFF { return } buf[v as usize]")
                .len(),
            1
        );
        assert_eq!(
            flows("let v = regs.read32(0x10); let mut i = 0; while i < v { i += 1; }").len(),
            1
        );
    }

    #[test]
    fn all_ones_spellings() {
        for s in ["!0", "0xFFFF_FFFF", "0xffffffffu32", "u32::MAX", "ALL_ONES"] {
            assert!(is_all_ones(&syn::parse_str(s).unwrap()), "{s}");
        }
        for s in ["0", "0xFFFF_FFFE", "0xF"] {
            assert!(!is_all_ones(&syn::parse_str(s).unwrap()), "{s}");
        }
    }
}
