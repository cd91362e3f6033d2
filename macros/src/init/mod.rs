//! `#[paranoid_init(budget_ms = N)]`: checks an init function at compile time and
//! wraps it in the budget, trace and escalation runtime (`paranoid::init::run`).

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ctxt::Ctxt;

/// Expands `#[paranoid_init(attr)] item`. Never panics: mistakes come back as
/// `compile_error!`s next to a stub (the wrapper when the signature is usable,
/// the function with an empty body when not, a non-function item unchanged) so
/// that only our errors show.
pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::new();
    let args = parse::args(&mut cx, attr);
    let parsed = parse::item(&mut cx, item);
    let budget = validate::budget(&mut cx, &args);
    let code = match parsed {
        parse::Parsed::Init(init) => {
            if validate::body(&mut cx, &init) {
                expand::wrapper(&init, budget)
            } else {
                expand::stub(&init.item)
            }
        }
        parse::Parsed::BadSignature(item) => expand::stub(&item),
        parse::Parsed::Unusable(tokens) => tokens,
    };
    let errors = cx.into_compile_errors();
    quote!(#errors #code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(attr: TokenStream, item: TokenStream) -> Vec<String> {
        let out = expand(attr, item).to_string();
        out.split("compile_error !")
            .skip(1)
            .map(|s| s.split('"').nth(1).unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn good_init_expands_to_a_wrapper_calling_run() {
        let out = expand(
            quote!(budget_ms = 250),
            quote! {
                pub fn init<C: Clock>(dev: Device<Nvme, Unknown>, ctx: &mut InitContext<'_, C>)
                    -> Result<Device<Nvme, Ready>, Stalled<Nvme>>
                {
                    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
                }
            },
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("device : Nvme"), "{out}");
        assert!(out.contains(":: paranoid :: init :: run"), "{out}");
        assert!(out.contains("from_millis (250)"), "{out}");
        assert!(out.contains("init :: < C >"), "{out}");
    }

    #[test]
    fn all_body_mistakes_reported_at_once() {
        let errs = errors(
            quote!(budget_ms = 10),
            quote! {
                fn init<C: Clock>(dev: Device<D, Unknown>, ctx: &mut InitContext<'_, C>)
                    -> Result<Device<D, Ready>, Stalled<D>>
                {
                    let x = a.unwrap();
                    let f = || loop {};
                    while x {}
                    let y = b[i];
                    let z = b[0] + b[N] + b[..LEN];
                    panic!("no");
                    debug_assert!(x);
                    fn nested() { loop {} }
                    for i in 0..3 {}
                    unsafe { core::ptr::read_volatile(p) };
                    Option::expect(o, "x");
                    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
                }
            },
        );
        assert_eq!(errs.len(), 7, "{errs:#?}");
    }

    #[test]
    fn missing_and_bad_arguments() {
        let f = quote! {
            fn init<C: Clock>(dev: Device<D, Unknown>, ctx: &mut InitContext<'_, C>)
                -> Result<Device<D, Ready>, Stalled<D>> { dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx) }
        };
        assert_eq!(errors(quote!(), f.clone()).len(), 1);
        assert_eq!(errors(quote!(budget_ms = 0), f.clone()).len(), 1);
        assert_eq!(errors(quote!(budget_ms = 300001), f.clone()).len(), 1);
        assert_eq!(errors(quote!(budget_ms = 300000), f.clone()).len(), 0);
        assert_eq!(
            errors(quote!(budget_ms = 1, budget_ms = 2), f.clone()).len(),
            1
        );
        assert_eq!(
            errors(quote!(budget_ms = 1, retries = 2), f.clone()).len(),
            1
        );
        assert_eq!(errors(quote!(budget_ms = "1"), f).len(), 1);
    }

    #[test]
    fn signature_mistakes() {
        let e = errors(
            quote!(budget_ms = 10),
            quote!(
                async unsafe fn init(x: u32) -> u32 {
                    x
                }
            ),
        );
        assert_eq!(e.len(), 3, "{e:#?}");
        let e = errors(
            quote!(budget_ms = 10),
            quote!(
                fn init<C: Clock>(dev: Device<D, Quiesced>, ctx: &InitContext<'_, C>) {}
            ),
        );
        assert_eq!(e.len(), 3, "{e:#?}");
        let e = errors(
            quote!(budget_ms = 10),
            quote!(
                fn init<C: Clock>(
                    dev: Device<D, Unknown>,
                    ctx: &mut InitContext<'_, C>,
                ) -> Result<Device<E, Verified>, Stalled<E>> {
                    todo!()
                }
            ),
        );
        assert_eq!(e.len(), 3, "{e:#?}");
        let e = errors(
            quote!(budget_ms = 10),
            quote!(
                struct S;
            ),
        );
        assert_eq!(e.len(), 1, "{e:#?}");
    }
}
