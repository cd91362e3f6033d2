//! Gathering every error of one macro invocation before reporting them together.
//!
//! Parsing and validation keep going after a mistake so that a user sees all of
//! them in one build; [`Ctxt::finish`] combines them into one `syn::Error`
//! (several `compile_error!`s, each at its own span).

use std::fmt::Display;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Collects `syn::Error`s.
#[derive(Default)]
pub struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error spanned on `tokens` (its first to last token).
    pub fn error_spanned_by<T: ToTokens, M: Display>(&mut self, tokens: T, message: M) {
        self.errors
            .push(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Records an error at `span`.
    pub fn error_at<M: Display>(&mut self, span: proc_macro2::Span, message: M) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records an error produced by syn (parse errors).
    pub fn syn_error(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// The number of errors recorded so far.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// The combined error, if any was recorded.
    pub fn finish(self) -> Option<syn::Error> {
        let mut errors = self.errors.into_iter();
        let mut combined = errors.next()?;
        for e in errors {
            combined.combine(e);
        }
        Some(combined)
    }

    /// The `compile_error!`s of every recorded error (empty when none).
    pub fn into_compile_errors(self) -> TokenStream {
        self.finish()
            .map(|e| e.to_compile_error())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    #[test]
    fn combines_all_errors_in_order() {
        let mut cx = Ctxt::new();
        assert_eq!(cx.len(), 0);
        cx.error_at(Span::call_site(), "first");
        cx.error_spanned_by(quote::quote!(a b), "second");
        let all: Vec<String> = cx
            .finish()
            .unwrap()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(all, ["first", "second"]);
    }

    #[test]
    fn no_error_gives_no_tokens() {
        assert!(Ctxt::new().into_compile_errors().is_empty());
    }
}
