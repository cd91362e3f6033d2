//! Rules for `#[paranoid_init]`: a sane budget, and a body that can neither
//! panic, nor wait without a deadline, nor touch device memory behind the
//! register layer's back.
//!
//! The body is checked syntactically, closures, nested blocks and the
//! arguments of known std macros included (`matches!`, `debug_assert*!`,
//! `write!`, `format_args!`, `vec!`...). Compile-time code (`const { .. }`
//! blocks, nested `const` items) is skipped: a panic there fails the build.
//! Nested items (`fn`, `impl`, `mod`) are not the init's code and are skipped,
//! except `use` items, whose imports are checked (an aliased
//! `read_volatile as r` would hide raw access from the name rules).
//!
//! Calls into other functions, same-crate helpers included, are **not**
//! followed: an attribute macro sees only the function it is on. Helpers are
//! left to `cargo paranoid`, whose `panic_in_recovery`, `unbounded_poll` and
//! `raw_mmio` lints check every function of a driver crate.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::ParseStream;
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

/// Rule: no panicking construct, unbounded loop or iterator, raw volatile
/// access or `unsafe` block in the body.
pub fn body(cx: &mut Ctxt, init: &InitFn) {
    let mut v = BodyRules { cx };
    v.visit_block(&init.item.block);
}

struct BodyRules<'c> {
    cx: &'c mut Ctxt,
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

/// Methods (and `Type::method` paths) that panic on `None`/`Err`/`Ok`.
fn panicking_method(name: &str) -> Option<&'static str> {
    Some(match name {
        "unwrap" => "`.unwrap()` panics on `None`/`Err`; handle the failure with `?`, `.ok_or(..)?` or a `match`",
        "expect" => "`.expect(..)` panics on `None`/`Err`; handle the failure with `?`, `.ok_or(..)?` or a `match`",
        "unwrap_err" => "`.unwrap_err()` panics on `Ok`; look at the error with `if let Err(e) = ..` or a `match`",
        "expect_err" => "`.expect_err(..)` panics on `Ok`; look at the error with `if let Err(e) = ..` or a `match`",
        _ => return None,
    })
}

/// True for a name of volatile access: `read_volatile`, `write_volatile`,
/// `core::intrinsics::volatile_load`, `volatile_set_memory`,
/// `unaligned_volatile_store`... any name containing `volatile`.
fn is_volatile(name: &str) -> bool {
    name.contains("volatile")
}

fn volatile_message(name: &str) -> String {
    format!(
        "raw volatile access (`{name}`) in an init body bypasses the register layer; use a `register_block!` accessor or `paranoid::mmio::RegisterIo`, which bound-check every access and return `Untrusted` values"
    )
}

/// True for a path that names a constant: a `SCREAMING_CASE` name, or a
/// `Type::Variant`/`Type::CONST` path (two or more segments, the last
/// capitalised: a unit enum variant or an associated constant; a local
/// variable is never such a path).
fn constant_path(p: &syn::ExprPath) -> bool {
    if p.qself.is_some() {
        return false;
    }
    let segs = &p.path.segments;
    let Some(last) = segs.last() else {
        return false;
    };
    let n = last.ident.to_string();
    let screaming =
        n.chars().any(|c| c.is_ascii_uppercase()) && !n.chars().any(|c| c.is_ascii_lowercase());
    let qualified = segs.len() > 1 && n.starts_with(|c: char| c.is_ascii_uppercase());
    screaming || qualified
}

/// True for an index that is a compile-time constant (literal, `CONST`,
/// `Queue::Admin`, `CONST.len()`, `const { .. }`, and casts, arithmetic and
/// ranges of those): out of bounds it fails to build (rustc's
/// `unconditional_panic` on arrays) or is a plain logic bug fixed in the
/// program, not a panic a device value can trigger.
fn constant_index(e: &Expr) -> bool {
    match e {
        Expr::Lit(l) => matches!(l.lit, syn::Lit::Int(_)),
        Expr::Path(p) => constant_path(p),
        Expr::Const(_) => true,
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

/// An iterator that never ends by itself, and where it comes from.
struct Endless {
    /// The token that makes it endless (`0..`, `cycle`, `repeat`...).
    at: TokenStream,
    /// What it is, for the message.
    what: &'static str,
}

/// Adapters that keep an endless iterator endless.
const PASSTHROUGH: &[&str] = &[
    "map",
    "filter",
    "filter_map",
    "enumerate",
    "skip",
    "skip_while",
    "take_while",
    "map_while",
    "step_by",
    "inspect",
    "peekable",
    "fuse",
    "flat_map",
    "flatten",
    "scan",
    "copied",
    "cloned",
    "by_ref",
    "into_iter",
    "iter",
    "chain",
];

/// Methods that run an iterator until it ends (or until a match that may
/// never come).
const CONSUMERS: &[&str] = &[
    "find",
    "find_map",
    "position",
    "any",
    "all",
    "for_each",
    "try_for_each",
    "count",
    "last",
    "fold",
    "try_fold",
    "reduce",
    "sum",
    "product",
    "max",
    "min",
    "max_by",
    "max_by_key",
    "min_by",
    "min_by_key",
    "collect",
    "partition",
    "unzip",
    "cmp",
    "partial_cmp",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "is_sorted",
    "is_sorted_by",
    "is_sorted_by_key",
];

/// The last identifier of a call's function path, and whether the path names
/// the `iter` module (`core::iter::repeat`, `iter::from_fn`).
fn call_name(call: &syn::ExprCall) -> Option<(String, bool, TokenStream)> {
    let Expr::Path(p) = &*call.func else {
        return None;
    };
    let segs: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let last = segs.last()?.clone();
    let in_iter = segs.len() >= 2 && segs.get(segs.len() - 2).is_some_and(|s| s == "iter");
    Some((last, in_iter || segs.len() == 1, p.path.to_token_stream()))
}

/// `Some` when `e` is an iterator that never ends unless something bounds it:
/// `a..`, `.cycle()`, `iter::repeat(..)`, `repeat_with`, `successors`,
/// `iter::from_fn` (the last two end only when their closure says so), and
/// adapters of those; `.take(n)` bounds any of them, `.zip(x)` when `x` ends.
fn endless(e: &Expr) -> Option<Endless> {
    match e {
        Expr::Paren(p) => endless(&p.expr),
        Expr::Group(g) => endless(&g.expr),
        Expr::Reference(r) => endless(&r.expr),
        Expr::Range(r) if r.end.is_none() && r.start.is_some() => Some(Endless {
            at: r.to_token_stream(),
            what: "a range with no end",
        }),
        Expr::Call(call) => {
            let (name, plausible, at) = call_name(call)?;
            if !plausible {
                return None;
            }
            let what = match name.as_str() {
                "repeat" => "`iter::repeat` (it repeats forever)",
                "repeat_with" => "`iter::repeat_with` (it repeats forever)",
                "successors" => "`iter::successors` (it ends only when its closure returns `None`)",
                "from_fn" => "`iter::from_fn` (it ends only when its closure returns `None`; for `core::array::from_fn`, write that path)",
                _ => return None,
            };
            Some(Endless { at, what })
        }
        Expr::MethodCall(m) => {
            let name = m.method.to_string();
            match name.as_str() {
                "cycle" => Some(Endless {
                    at: m.method.to_token_stream(),
                    what: "`.cycle()` (it starts over forever)",
                }),
                "take" => None,
                "zip" => {
                    let first = endless(&m.receiver)?;
                    m.args.first().and_then(endless).map(|_| first)
                }
                "chain" => endless(&m.receiver).or_else(|| m.args.first().and_then(endless)),
                n if PASSTHROUGH.contains(&n) => endless(&m.receiver),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Parses `matches!(expr, pattern [if guard] [,])`, returning the expressions.
fn matches_args(input: ParseStream) -> syn::Result<Vec<Expr>> {
    let scrutinee: Expr = input.parse()?;
    input.parse::<Token![,]>()?;
    syn::Pat::parse_multi_with_leading_vert(input)?;
    let mut out = vec![scrutinee];
    if input.peek(Token![if]) {
        input.parse::<Token![if]>()?;
        out.push(input.parse()?);
    }
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
    }
    Ok(out)
}

/// Parses `vec![elem; n]`.
fn repeat_args(input: ParseStream) -> syn::Result<Vec<Expr>> {
    let elem: Expr = input.parse()?;
    input.parse::<Token![;]>()?;
    let n: Expr = input.parse()?;
    Ok(vec![elem, n])
}

/// Parses a comma-separated list of expressions (`write!`, `format_args!`,
/// `debug_assert!`, `vec![a, b]`...).
fn expr_list(input: ParseStream) -> syn::Result<Vec<Expr>> {
    Ok(Punctuated::<Expr, Token![,]>::parse_terminated(input)?
        .into_iter()
        .collect())
}

impl BodyRules<'_> {
    /// Reports an endless iterator consumed by `how`.
    fn endless_use(&mut self, it: Endless, how: &str) {
        self.cx.error_spanned_by(
            it.at,
            format!(
                "{how} {}, so it can run forever in an init body; bound it with `.take(N)` or iterate over a range with an end (`0..N`), and wait on the device with `paranoid::poll::poll` and a deadline",
                it.what
            ),
        );
    }

    /// Checks the leaves of a `use` tree for volatile functions.
    fn use_tree(&mut self, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => self.use_tree(&p.tree),
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.use_tree(t)),
            syn::UseTree::Name(n) if is_volatile(&n.ident.to_string()) => {
                self.cx
                    .error_spanned_by(&n.ident, volatile_message(&n.ident.to_string()));
            }
            syn::UseTree::Rename(r) if is_volatile(&r.ident.to_string()) => {
                self.cx.error_spanned_by(
                    &r.ident,
                    format!(
                        "importing `{}` as `{}` hides raw volatile access from this check; {}",
                        r.ident,
                        r.rename,
                        "use a `register_block!` accessor or `paranoid::mmio::RegisterIo` instead"
                    ),
                );
            }
            _ => {}
        }
    }
}

impl<'ast> Visit<'ast> for BodyRules<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        // A nested item is not part of the init sequence, but an import can
        // rename a volatile function past the name rules.
        if let syn::Item::Use(u) = item {
            self.use_tree(&u.tree);
        }
    }

    fn visit_expr_const(&mut self, _: &'ast syn::ExprConst) {
        // Evaluated at compile time: `const { assert!(..) }` fails the build,
        // not the recovery kernel.
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
        // Look inside macros whose arguments are expressions; others are
        // opaque (their own expansion is not ours to see).
        let parsed = match name.as_str() {
            "matches" => mac.parse_body_with(matches_args),
            "vec" => mac
                .parse_body_with(repeat_args)
                .or_else(|_| mac.parse_body_with(expr_list)),
            _ => mac.parse_body_with(expr_list),
        };
        if let Ok(args) = parsed {
            for e in &args {
                self.visit_expr(e);
            }
        }
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let name = call.method.to_string();
        if let Some(msg) = panicking_method(&name) {
            self.cx.error_spanned_by(&call.method, msg);
        } else if is_volatile(&name) {
            self.cx
                .error_spanned_by(&call.method, volatile_message(&name));
        } else if CONSUMERS.contains(&name.as_str()) {
            if let Some(it) = endless(&call.receiver) {
                let args = if call.args.is_empty() { "" } else { ".." };
                self.endless_use(it, &format!("`.{name}({args})` runs over"));
            }
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_expr_for_loop(&mut self, e: &'ast syn::ExprForLoop) {
        if let Some(it) = endless(&e.expr) {
            self.endless_use(it, "this `for` loop runs over");
        }
        visit::visit_expr_for_loop(self, e);
    }

    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        let segs = &p.path.segments;
        if let Some(last) = segs.last() {
            let name = last.ident.to_string();
            if is_volatile(&name) {
                self.cx.error_spanned_by(&p.path, volatile_message(&name));
            } else if panicking_method(&name).is_some() && (segs.len() > 1 || p.qself.is_some()) {
                let msg = if name.ends_with("_err") {
                    format!("`{name}` panics on `Ok`; look at the error with `if let Err(e) = ..` or a `match`")
                } else {
                    format!("`{name}` panics on `None`/`Err`; handle the failure with `?`, `.ok_or(..)?` or a `match`")
                };
                self.cx.error_spanned_by(&p.path, msg);
            }
        }
        visit::visit_expr_path(self, p);
    }

    fn visit_expr_unsafe(&mut self, e: &'ast syn::ExprUnsafe) {
        let before = self.cx.len();
        visit::visit_expr_unsafe(self, e);
        // Already explained by a volatile error inside: one message is enough.
        if self.cx.len() == before {
            self.cx.error_spanned_by(
                e.unsafe_token,
                "`unsafe` in an init body: raw pointer or device access (a volatile read under another name included) bypasses the register layer; keep unsafe code in the HAL and use a `register_block!` accessor or `paranoid::mmio::RegisterIo`",
            );
        }
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
}
