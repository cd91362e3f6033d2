//! Suppressions with a required reason.
//!
//! Three spellings are accepted:
//! - `#[paranoid::allow(lint, reason = "…")]` on an item (needs a crate providing the
//!   attribute to compile; the `cfg_attr` form below compiles everywhere);
//! - `#[cfg_attr(any(), paranoid::allow(lint, reason = "…"))]` wherever an attribute may go
//!   (items, statements, expressions, fields, match arms; `#![…]` at the top covers the file);
//! - `// paranoid:allow(lint): reason` on the line before the flagged line.
//!
//! A suppression covers the lines of the node it is attached to. One that suppresses nothing,
//! names an unknown lint or gives no reason is itself reported.

use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::{Attribute, Expr, Meta};

use crate::source::{SourceFile, Span};

/// One suppression found in a file.
#[derive(Debug, Clone)]
pub struct Suppression {
    /// Lint names it silences.
    pub lints: Vec<String>,
    /// The reason given, if any.
    pub reason: Option<String>,
    /// First and last line covered (1-based, inclusive).
    pub lines: (usize, usize),
    /// Where the suppression is written.
    pub span: Span,
    /// How many findings it silenced.
    pub used: usize,
}

impl Suppression {
    /// Whether it silences `lint` at `line`.
    pub fn covers(&self, lint: &str, line: usize) -> bool {
        (self.lines.0..=self.lines.1).contains(&line)
            && self.lints.iter().any(|l| l == lint || l == "all")
    }
}

/// Collects comment and attribute suppressions.
pub fn collect(file: &SourceFile, ast: Option<&syn::File>) -> Vec<Suppression> {
    let mut out = comments(file);
    if let Some(ast) = ast {
        let mut v = AttrVisitor {
            file,
            out: &mut out,
        };
        for a in &ast.attrs {
            v.attr(a, (1, file.line_count()));
        }
        v.visit_file(ast);
    }
    out
}

/// Byte ranges of the string literals of `file` (when it lexes): `//` inside one is text,
/// not a comment.
fn string_literals(file: &SourceFile) -> Vec<(usize, usize)> {
    fn walk(ts: proc_macro2::TokenStream, file: &SourceFile, out: &mut Vec<(usize, usize)>) {
        for t in ts {
            match t {
                proc_macro2::TokenTree::Group(g) => walk(g.stream(), file, out),
                proc_macro2::TokenTree::Literal(l) => {
                    let text = l.to_string();
                    if text.contains('"') {
                        let s = file.span(l.span());
                        out.push((s.byte_start, s.byte_end));
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(ts) = file.text.parse::<proc_macro2::TokenStream>() {
        walk(ts, file, &mut out);
    }
    out
}

fn comments(file: &SourceFile) -> Vec<Suppression> {
    let mut out = Vec::new();
    let mut literals: Option<Vec<(usize, usize)>> = None;
    for line in 1..=file.line_count() {
        let text = file.line_text(line);
        let Some(pos) = text.find("paranoid:allow(") else {
            continue;
        };
        let before = &text[..pos];
        // Only a plain `//` comment counts: not doc comments (`///`, `//!`) quoting the syntax.
        let Some(start) = text.find("//") else {
            continue;
        };
        if start >= pos || text[start..].starts_with("///") || text[start..].starts_with("//!") {
            continue;
        }
        // Not inside a string literal (a test quoting the syntax); lexed once, when needed.
        let at = file.line_span(line).byte_start + start;
        if literals
            .get_or_insert_with(|| string_literals(file))
            .iter()
            .any(|&(a, b)| a < at && at < b)
        {
            continue;
        }
        let rest = &text[pos + "paranoid:allow(".len()..];
        let Some(close) = rest.find(')') else {
            continue;
        };
        let lints = rest[..close]
            .split(',')
            .map(|s| s.trim().trim_start_matches("paranoid::").to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let reason = rest[close + 1..]
            .trim_start()
            .strip_prefix(':')
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        // The next line that is not blank or a comment is covered.
        let mut target = line + 1;
        while target <= file.line_count() {
            let t = file.line_text(target).trim();
            if t.is_empty() || t.starts_with("//") {
                target += 1;
            } else {
                break;
            }
        }
        let mut span = file.line_span(line);
        let col = start;
        span.byte_start += col;
        span.column_start += before[..col].chars().count();
        out.push(Suppression {
            lints,
            reason,
            lines: (target, target),
            span,
            used: 0,
        });
    }
    out
}

struct AttrVisitor<'a> {
    file: &'a SourceFile,
    out: &'a mut Vec<Suppression>,
}

fn is_allow_path(p: &syn::Path) -> bool {
    let mut segs = p.segments.iter();
    matches!(
        (segs.next(), segs.next(), segs.next()),
        (Some(a), Some(b), None) if a.ident == "paranoid" && b.ident == "allow"
    )
}

impl AttrVisitor<'_> {
    /// The suppressions among `attrs`, covering the lines of `node`. The node's span is
    /// computed (from all its tokens) only when an attribute can suppress.
    fn attrs<N: syn::spanned::Spanned>(&mut self, attrs: &[Attribute], node: &N) {
        if !attrs
            .iter()
            .any(|a| is_allow_path(a.path()) || a.path().is_ident("cfg_attr"))
        {
            return;
        }
        let node = node.span();
        let (s, e) = (node.start(), node.end());
        for a in attrs {
            self.attr(a, (s.line, e.line.max(s.line)));
        }
    }

    fn attr(&mut self, a: &Attribute, lines: (usize, usize)) {
        let span = self.file.span(syn::spanned::Spanned::span(a));
        if is_allow_path(a.path()) {
            if let Meta::List(l) = &a.meta {
                self.allow(&l.tokens, lines, span);
            }
        } else if a.path().is_ident("cfg_attr") {
            let Meta::List(l) = &a.meta else { return };
            let parser = Punctuated::<Meta, syn::Token![,]>::parse_terminated;
            let Ok(metas) = syn::parse::Parser::parse2(parser, l.tokens.clone()) else {
                return;
            };
            for m in metas.iter().skip(1) {
                if let Meta::List(inner) = m {
                    if is_allow_path(&inner.path) {
                        self.allow(&inner.tokens, lines, span);
                    }
                }
            }
        }
    }

    fn allow(&mut self, tokens: &proc_macro2::TokenStream, lines: (usize, usize), span: Span) {
        let parser = Punctuated::<Meta, syn::Token![,]>::parse_terminated;
        let Ok(metas) = syn::parse::Parser::parse2(parser, tokens.clone()) else {
            self.out.push(Suppression {
                lints: Vec::new(),
                reason: None,
                lines,
                span,
                used: 0,
            });
            return;
        };
        let mut lints = Vec::new();
        let mut reason = None;
        for m in metas {
            match m {
                Meta::Path(p) => {
                    if let Some(s) = p.segments.last() {
                        lints.push(s.ident.to_string());
                    }
                }
                Meta::NameValue(nv) if nv.path.is_ident("reason") => {
                    if let Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) = &nv.value
                    {
                        let v = s.value();
                        if !v.trim().is_empty() {
                            reason = Some(v);
                        }
                    }
                }
                _ => {}
            }
        }
        self.out.push(Suppression {
            lints,
            reason,
            lines,
            span,
            used: 0,
        });
    }
}

macro_rules! expr_attrs {
    ($e:expr, $($v:ident),*) => {
        match $e {
            $(Expr::$v(x) => &x.attrs[..],)*
            _ => &[],
        }
    };
}

fn attrs_of_expr(e: &Expr) -> &[Attribute] {
    expr_attrs!(
        e, Array, Assign, Async, Await, Binary, Block, Break, Call, Cast, Closure, Const, Continue,
        Field, ForLoop, Group, If, Index, Infer, Let, Lit, Loop, Macro, Match, MethodCall, Paren,
        Path, Range, RawAddr, Reference, Repeat, Return, Struct, Try, TryBlock, Tuple, Unary,
        Unsafe, While, Yield
    )
}

macro_rules! item_attrs {
    ($e:expr, $($v:ident),*) => {
        match $e {
            $(syn::Item::$v(x) => &x.attrs[..],)*
            _ => &[],
        }
    };
}

impl<'ast> Visit<'ast> for AttrVisitor<'_> {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        let attrs = item_attrs!(
            i,
            Const,
            Enum,
            ExternCrate,
            Fn,
            ForeignMod,
            Impl,
            Macro,
            Mod,
            Static,
            Struct,
            Trait,
            TraitAlias,
            Type,
            Union,
            Use
        );
        self.attrs(attrs, i);
        syn::visit::visit_item(self, i);
    }
    fn visit_impl_item_fn(&mut self, i: &'ast syn::ImplItemFn) {
        self.attrs(&i.attrs, i);
        syn::visit::visit_impl_item_fn(self, i);
    }
    fn visit_impl_item_const(&mut self, i: &'ast syn::ImplItemConst) {
        self.attrs(&i.attrs, i);
        syn::visit::visit_impl_item_const(self, i);
    }
    fn visit_trait_item_fn(&mut self, i: &'ast syn::TraitItemFn) {
        self.attrs(&i.attrs, i);
        syn::visit::visit_trait_item_fn(self, i);
    }
    fn visit_local(&mut self, l: &'ast syn::Local) {
        self.attrs(&l.attrs, l);
        syn::visit::visit_local(self, l);
    }
    fn visit_stmt_macro(&mut self, m: &'ast syn::StmtMacro) {
        self.attrs(&m.attrs, m);
        syn::visit::visit_stmt_macro(self, m);
    }
    fn visit_expr(&mut self, e: &'ast Expr) {
        let attrs = attrs_of_expr(e);
        if !attrs.is_empty() {
            self.attrs(attrs, e);
        }
        syn::visit::visit_expr(self, e);
    }
    fn visit_field(&mut self, f: &'ast syn::Field) {
        self.attrs(&f.attrs, f);
        syn::visit::visit_field(self, f);
    }
    fn visit_field_value(&mut self, f: &'ast syn::FieldValue) {
        self.attrs(&f.attrs, f);
        syn::visit::visit_field_value(self, f);
    }
    fn visit_arm(&mut self, a: &'ast syn::Arm) {
        self.attrs(&a.attrs, a);
        syn::visit::visit_arm(self, a);
    }
    fn visit_variant(&mut self, v: &'ast syn::Variant) {
        self.attrs(&v.attrs, v);
        syn::visit::visit_variant(self, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_all_spellings() {
        let src = "/// // paranoid:allow(raw_mmio): quoted in a doc comment\n#[paranoid::allow(raw_mmio, reason = \"hal shim\")]\nfn a() {\n    x();\n}\nfn b() {\n    #[cfg_attr(any(), paranoid::allow(unbounded_poll, reason = \"r\"))]\n    let v = 1;\n    // paranoid:allow(raw_mmio): boot console\n    y();\n    // paranoid:allow(raw_mmio)\n    z();\n}\n";
        let f = SourceFile::new("a.rs", src.to_string());
        let ast: syn::File = syn::parse_str(src).unwrap();
        let s = collect(&f, Some(&ast));
        assert_eq!(s.len(), 4, "{s:#?}");
        let by_line: Vec<_> = s
            .iter()
            .map(|s| (s.lines, s.lints.clone(), s.reason.is_some()))
            .collect();
        assert!(by_line.contains(&((1, 5), vec!["raw_mmio".to_string()], true)));
        assert!(by_line.contains(&((7, 8), vec!["unbounded_poll".to_string()], true)));
        assert!(by_line.contains(&((10, 10), vec!["raw_mmio".to_string()], true)));
        assert!(by_line.contains(&((12, 12), vec!["raw_mmio".to_string()], false)));
        assert!(s.iter().any(|s| s.covers("raw_mmio", 3)));
        assert!(!s.iter().any(|s| s.covers("raw_mmio", 6)));
    }

    #[test]
    fn string_literals_quoting_the_syntax_are_not_suppressions() {
        let src = "fn t() {\n    let a = \"x\n    // paranoid:allow(raw_mmio): quoted\n\";\n    let b = \"// paranoid:allow(raw_mmio): r\";\n    f(r#\"// paranoid:allow(raw_mmio): raw\"#);\n    // paranoid:allow(raw_mmio): real\n    g();\n}\n";
        let f = SourceFile::new("a.rs", src.to_string());
        let ast: syn::File = syn::parse_str(src).unwrap();
        let s = collect(&f, Some(&ast));
        assert_eq!(s.len(), 1, "{s:#?}");
        assert_eq!(s[0].reason.as_deref(), Some("real"));
    }
}
