//! The bodies of `macro_rules!` definitions read as code: drivers and HALs write one
//! implementation per peripheral instance inside a macro (`impl PwmInput<$TIM> { .. }`),
//! so a wait there is in no function the file's syntax tree shows.
//!
//! Each rule's transcriber is parsed once with its metavariables as plain identifiers
//! (`$TIM` → `TIM`, `$crate` → `crate`) and each repetition `$( .. )*` taken once. The
//! tokens keep their spans, so what is found points into the macro's text.

use proc_macro2::{Delimiter, Group, Ident, TokenStream, TokenTree};
use syn::visit::Visit;

/// The name of the function that holds a transcriber parsed as statements.
pub const STATEMENTS_FN: &str = "macro_body";

/// The transcribers of the file's `macro_rules!` definitions (at any depth) that parse as
/// items (`impl X { .. }`, `fn f() { .. }`), or as statements, which are wrapped in a
/// function `fn macro_body() { .. }`. Those that parse as neither are left out.
pub fn macro_bodies(file: &syn::File) -> Vec<syn::File> {
    struct V(Vec<TokenStream>);
    impl<'ast> Visit<'ast> for V {
        fn visit_item_macro(&mut self, m: &'ast syn::ItemMacro) {
            if m.mac.path.is_ident("macro_rules") {
                self.0.extend(transcribers(m.mac.tokens.clone()));
            }
        }
    }
    let mut v = V(Vec::new());
    v.visit_file(file);
    v.0.into_iter().filter_map(parse_body).collect()
}

/// The transcriber groups of `(pattern) => { body };` rules.
fn transcribers(rules: TokenStream) -> Vec<TokenStream> {
    let tokens: Vec<TokenTree> = rules.into_iter().collect();
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let arrow = matches!(t, TokenTree::Punct(p) if p.as_char() == '>')
            && i > 0
            && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '=');
        if let (true, Some(TokenTree::Group(g))) = (arrow, tokens.get(i + 1)) {
            out.push(plain(g.stream()));
        }
    }
    out
}

/// Metavariables as identifiers, repetitions once.
fn plain(ts: TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = ts.into_iter().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match (&tokens[i], tokens.get(i + 1)) {
            (TokenTree::Punct(p), Some(TokenTree::Ident(id))) if p.as_char() == '$' => {
                out.push(TokenTree::Ident(id.clone()));
                i += 2;
            }
            (TokenTree::Punct(p), Some(TokenTree::Group(g)))
                if p.as_char() == '$' && g.delimiter() == Delimiter::Parenthesis =>
            {
                out.extend(plain(g.stream()));
                i += 2;
                // An optional separator, then the repetition operator.
                let op = |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if matches!(p.as_char(), '*' | '+' | '?'));
                if op(tokens.get(i)) {
                    i += 1;
                } else if op(tokens.get(i + 1)) {
                    i += 2;
                }
            }
            (TokenTree::Group(g), _) => {
                let mut inner = Group::new(g.delimiter(), plain(g.stream()));
                inner.set_span(g.span());
                out.push(TokenTree::Group(inner));
                i += 1;
            }
            (t, _) => {
                out.push(t.clone());
                i += 1;
            }
        }
    }
    out.into_iter().collect()
}

fn parse_body(ts: TokenStream) -> Option<syn::File> {
    if let Ok(f) = syn::parse2::<syn::File>(ts.clone()) {
        return (!f.items.is_empty()).then_some(f);
    }
    let block: syn::Block =
        syn::parse2(TokenTree::Group(Group::new(Delimiter::Brace, ts)).into()).ok()?;
    let item = syn::ItemFn {
        attrs: Vec::new(),
        vis: syn::Visibility::Inherited,
        sig: syn::Signature {
            ident: Ident::new(STATEMENTS_FN, proc_macro2::Span::call_site()),
            ..syn::parse_quote!(fn f())
        },
        block: Box::new(block),
    };
    Some(syn::File {
        shebang: None,
        attrs: Vec::new(),
        items: vec![syn::Item::Fn(item)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_statements() {
        let file: syn::File = syn::parse_str(
            "macro_rules! timers { ($($TIM:ty,)+) => { $( impl W<$TIM> { fn f(&self) { \
             while unsafe { (*<$TIM>::ptr()).sr().read().cc1if().bit_is_clear() } {} } } )+ }; }\n\
             macro_rules! wait { ($r:expr) => { while $r.read() == 0 {} }; }\n\
             macro_rules! odd { () => { => }; }\n\
             macro_rules! raw { ($r#type:ident) => { fn f() -> $r#type { $crate::g() } }; }",
        )
        .unwrap();
        let bodies = macro_bodies(&file);
        assert_eq!(bodies.len(), 3);
        assert!(matches!(&bodies[0].items[0], syn::Item::Impl(_)));
        assert!(matches!(&bodies[1].items[0], syn::Item::Fn(f) if f.sig.ident == STATEMENTS_FN));
    }
}
