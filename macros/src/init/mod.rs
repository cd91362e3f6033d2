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
            // The wrapper is emitted even when the body breaks a rule: callers
            // still type-check, so only our errors show.
            validate::body(&mut cx, &init);
            expand::wrapper(&init, budget, args.caller_budget)
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
        assert!(!out.contains("fn init < C > (dev"), "no nested fn: {out}");
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

    fn body_errors(body: TokenStream) -> Vec<String> {
        errors(
            quote!(budget_ms = 10),
            quote! {
                fn init<C: Clock>(dev: Device<D, Unknown>, ctx: &mut InitContext<'_, C>)
                    -> Result<Device<D, Ready>, Stalled<D>>
                {
                    #body
                    dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx)
                }
            },
        )
    }

    #[test]
    fn endless_iterators_are_rejected() {
        for body in [
            quote!(for _ in 0.. {}),
            quote!(for _ in (1u32..).map(|x| x * 2) {}),
            quote!(for q in QUEUES.iter().cycle() {
                let _ = q;
            }),
            quote!(let _ = (0..).find(|&n| n == y);),
            quote!(let _ = (0u64..).position(|n| n > 3);),
            quote!(for _ in core::iter::repeat(1) {}),
            quote!(let _ = repeat_with(|| 1).any(|x| x == 2);),
            quote!(let _ = core::iter::successors(Some(1u32), |n| Some(n + 1)).last();),
            quote!(for _ in iter::from_fn(|| Some(1)) {}),
            quote!(for _ in (0..).zip(core::iter::repeat(0)) {}),
            quote!(for _ in (0..3).chain(5..) {}),
        ] {
            let e = body_errors(body.clone());
            assert_eq!(e.len(), 1, "{body}: {e:#?}");
            assert!(e[0].contains("run forever"), "{body}: {e:#?}");
        }
    }

    #[test]
    fn bounded_iterators_are_accepted() {
        for body in [
            quote!(for _ in 0..4 {}),
            quote!(for _ in (0..).take(4) {}),
            quote!(for q in QUEUES.iter().cycle().take(8) {
                let _ = q;
            }),
            quote!(for (i, q) in (0..).zip(QUEUES.iter()) {
                let _ = (i, q);
            }),
            quote!(let _ = (0..).next();),
            quote!(let _ = (0..N).find(|&n| n == y);),
            quote!(let _ = core::iter::repeat(0).take(3).count();),
            quote!(let t: [u8; 4] = core::array::from_fn(|i| i as u8); let _ = t;),
            quote!(let _ = buf.get(4..);),
        ] {
            let e = body_errors(body.clone());
            assert!(e.is_empty(), "{body}: {e:#?}");
        }
    }

    #[test]
    fn other_new_rules() {
        for (body, n) in [
            (quote!(let _ = r.unwrap_err();), 1),
            (quote!(let _ = r.expect_err("ok");), 1),
            (quote!(let _ = Result::unwrap_err(r);), 1),
            (
                quote!(use core::ptr::read_volatile as r; let _ = unsafe { r(p) };),
                2,
            ),
            (
                quote!(
                    use core::ptr::{self, write_volatile};
                ),
                1,
            ),
            (
                quote!(use core::ptr; let _ = unsafe { ptr::read_volatile(p) };),
                1,
            ),
            (
                quote!(let _ = unsafe { core::intrinsics::volatile_load(p) };),
                1,
            ),
            (
                quote!(let _ = unsafe { core::intrinsics::unaligned_volatile_load(p) };),
                1,
            ),
            (quote!(let _ = unsafe { *p };), 1),
            (quote!(let _ = matches!(x, n if n == y.unwrap());), 1),
            (quote!(let _ = matches!(x.unwrap(), Some(_) | None);), 1),
            (quote!(debug_assert!(x.expect("e") > 0);), 1),
            (quote!(let _ = write!(f, "{}", a[i]);), 1),
            (quote!(let _ = format_args!("{}", a.unwrap());), 1),
            (quote!(let _ = vec![a.unwrap(); n];), 1),
            (quote!(let _ = vec![1, b.unwrap()];), 1),
            (quote!(let _ = regs[Queue::Admin as usize];), 0),
            (quote!(let _ = regs[Self::ADMIN];), 0),
            (quote!(let _ = regs[u8::MAX as usize];), 0),
            (quote!(let _ = regs[q as usize];), 1),
            (quote!(let _ = regs[const { 2 * N }];), 0),
            (quote!(const { assert!(N > 0) };), 0),
            (
                quote!(const { assert!(core::mem::size_of::<u32>() == 4) }),
                0,
            ),
            (quote!(let _ = Self::helper();), 0),
        ] {
            let e = body_errors(body.clone());
            assert_eq!(e.len(), n, "{body}: {e:#?}");
        }
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
    fn caller_budget_capped_at_the_declared_maximum() {
        let f = quote! {
            fn init<C: Clock>(dev: Device<D, Unknown>, ctx: &mut InitContext<'_, C>)
                -> Result<Device<D, Ready>, Stalled<D>> { dev.quiesce(ctx)?.reset(ctx)?.verify(ctx)?.enable(ctx) }
        };
        let out = expand(quote!(max_budget_ms = 2000), f.clone()).to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(
            out.contains("budget : :: core :: time :: Duration"),
            "{out}"
        );
        assert!(
            out.contains(":: core :: cmp :: min (budget , :: core :: time :: Duration :: from_millis (2000))"),
            "{out}"
        );
        assert_eq!(errors(quote!(max_budget_ms = 0), f.clone()).len(), 1);
        assert_eq!(errors(quote!(max_budget_ms = 300001), f.clone()).len(), 1);
        assert_eq!(errors(quote!(budget_ms = 1, max_budget_ms = 2), f).len(), 1);
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
