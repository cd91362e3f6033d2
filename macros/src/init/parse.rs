//! Typed view of a `#[paranoid_init(...)]` invocation: the arguments and the
//! signature shape (`Device<D, Unknown>`, `&mut InitContext<'_, C>` →
//! `Result<Device<D, Ready>, Stalled<D>>`).

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{
    FnArg, GenericArgument, Ident, Item, ItemFn, PathArguments, ReturnType, Token, Type, TypePath,
};

use crate::ctxt::Ctxt;
use crate::num::{self, Num};

/// The attribute arguments.
pub struct Args {
    /// `budget_ms = N` or `max_budget_ms = N`, if given and a number.
    pub budget_ms: Option<Num>,
    /// A budget was written (maybe with a bad value, already reported).
    pub budget_seen: bool,
    /// It was `max_budget_ms`: the caller passes the budget, capped at `N`.
    pub caller_budget: bool,
}

/// One `key = value` argument as written.
struct RawArg {
    key: Ident,
    value: TokenStream,
}

impl Parse for RawArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key = Ident::parse_any(input)?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `{key} = ...`; arguments are written `budget_ms = 500`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let mut value = TokenStream::new();
        while !input.is_empty() && !input.peek(Token![,]) {
            let tt: proc_macro2::TokenTree = input.parse()?;
            value.extend([tt]);
        }
        Ok(RawArg { key, value })
    }
}

/// Parses the attribute arguments, recording every mistake.
pub fn args(cx: &mut Ctxt, attr: TokenStream) -> Args {
    let mut out = Args {
        budget_ms: None,
        budget_seen: false,
        caller_budget: false,
    };
    let raw = match Punctuated::<RawArg, Token![,]>::parse_terminated.parse2(attr) {
        Ok(raw) => raw,
        Err(e) => {
            cx.syn_error(e);
            // Do not also report the budget missing: the syntax error comes first.
            out.budget_seen = true;
            return out;
        }
    };
    for arg in raw {
        let key = arg.key.unraw().to_string();
        match key.as_str() {
            "budget_ms" | "max_budget_ms" => {
                if out.budget_seen {
                    let same = out.caller_budget == (key == "max_budget_ms");
                    let what = if same {
                        format!("duplicate `{key}`")
                    } else {
                        "`budget_ms` and `max_budget_ms` together".to_owned()
                    };
                    cx.error_at(
                        arg.key.span(),
                        format!("{what}; give the budget once, as `budget_ms = N` (fixed) or `max_budget_ms = N` (the caller passes one, capped at N)"),
                    );
                    continue;
                }
                out.budget_seen = true;
                out.caller_budget = key == "max_budget_ms";
                if arg.value.is_empty() {
                    cx.error_at(
                        arg.key.span(),
                        "missing value; write `budget_ms = 500` (milliseconds)",
                    );
                    continue;
                }
                match num::Plain::parse.parse2(arg.value.clone()) {
                    Ok(num::Plain(n)) => out.budget_ms = Some(n),
                    Err(_) => cx.error_spanned_by(
                        &arg.value,
                        "expected an integer number of milliseconds, like `budget_ms = 500`",
                    ),
                }
            }
            other => cx.error_at(
                arg.key.span(),
                format!("unknown argument `{other}`; `#[paranoid_init]` takes `budget_ms = N` or `max_budget_ms = N`"),
            ),
        }
    }
    out
}

/// The init function, its shape checked.
pub struct InitFn {
    /// The function as written.
    pub item: ItemFn,
    /// `D` in `Device<D, Unknown>`.
    pub device: Type,
    /// `C` in `InitContext<'_, C>`.
    pub clock: Type,
}

/// What the item turned out to be.
pub enum Parsed {
    /// A function with the right shape.
    Init(Box<InitFn>),
    /// A function whose signature is wrong: emit a stub of it.
    BadSignature(Box<ItemFn>),
    /// Not a function: re-emit these tokens unchanged beside the errors.
    Unusable(TokenStream),
}

/// Parses the annotated item and checks its signature, recording every mistake.
pub fn item(cx: &mut Ctxt, tokens: TokenStream) -> Parsed {
    let item = match syn::parse2::<Item>(tokens.clone()) {
        Ok(item) => item,
        Err(e) => {
            cx.syn_error(e);
            return Parsed::Unusable(tokens);
        }
    };
    let func = match item {
        Item::Fn(f) => f,
        other => {
            cx.error_spanned_by(
                item_head(&other),
                "`#[paranoid_init]` goes on a function: `fn init<C: Clock>(dev: Device<D, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<D, Ready>, Stalled<D>>`",
            );
            return Parsed::Unusable(tokens);
        }
    };
    match signature(cx, &func) {
        Some((device, clock)) => Parsed::Init(Box::new(InitFn {
            item: func,
            device,
            clock,
        })),
        None => Parsed::BadSignature(Box::new(func)),
    }
}

/// The keyword and name of an item, where errors about the whole item point.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Struct(i) => {
            let (t, n) = (&i.struct_token, &i.ident);
            quote!(#t #n)
        }
        Item::Enum(i) => {
            let (t, n) = (&i.enum_token, &i.ident);
            quote!(#t #n)
        }
        Item::Const(i) => {
            let (t, n) = (&i.const_token, &i.ident);
            quote!(#t #n)
        }
        Item::Static(i) => {
            let (t, n) = (&i.static_token, &i.ident);
            quote!(#t #n)
        }
        Item::Mod(i) => {
            let (t, n) = (&i.mod_token, &i.ident);
            quote!(#t #n)
        }
        Item::Trait(i) => {
            let (t, n) = (&i.trait_token, &i.ident);
            quote!(#t #n)
        }
        Item::Type(i) => {
            let (t, n) = (&i.type_token, &i.ident);
            quote!(#t #n)
        }
        Item::Impl(i) => {
            let t = &i.impl_token;
            let s = &i.self_ty;
            quote!(#t #s)
        }
        other => other.into_token_stream(),
    }
}

const SHAPE: &str = "fn init<C: Clock>(dev: Device<D, Unknown>, ctx: &mut InitContext<'_, C>) -> Result<Device<D, Ready>, Stalled<D>>";

/// Checks the signature and returns `(D, C)`.
fn signature(cx: &mut Ctxt, f: &ItemFn) -> Option<(Type, Type)> {
    let sig = &f.sig;
    let before = cx.len();
    if let Some(t) = &sig.constness {
        cx.error_spanned_by(
            t,
            "an init function cannot be `const`: it talks to hardware; remove `const`",
        );
    }
    if let Some(t) = &sig.asyncness {
        cx.error_spanned_by(
            t,
            "an init function cannot be `async`: it runs to completion within its budget; remove `async` and wait with `paranoid::poll::poll`",
        );
    }
    if let Some(t) = &sig.unsafety {
        cx.error_spanned_by(
            t,
            "an init function cannot be `unsafe`: keep unsafe code in the HAL; remove `unsafe`",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(
            abi,
            "an init function cannot declare an ABI; remove the `extern`",
        );
    }
    if let Some(v) = &sig.variadic {
        cx.error_spanned_by(v, "an init function cannot be variadic; remove the `...`");
    }
    let mut typed = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => cx.error_spanned_by(
                r,
                format!("an init function takes no `self`; take the device as the first parameter: `{SHAPE}`"),
            ),
            FnArg::Typed(t) => typed.push(t),
        }
    }
    let (device, clock) = match typed.as_slice() {
        [dev, ctx] => (device_param(cx, &dev.ty), context_param(cx, &ctx.ty)),
        [] | [_] => {
            let found = typed.len();
            if sig.inputs.is_empty() {
                cx.error_spanned_by(
                    &sig.ident,
                    format!("an init function takes exactly two parameters, the device and the init context; found {found}: write `{SHAPE}`"),
                );
            } else {
                cx.error_spanned_by(
                    &sig.inputs,
                    format!("an init function takes exactly two parameters, the device and the init context; found {found}: write `{SHAPE}`"),
                );
            }
            (None, None)
        }
        [dev, ctx, extra @ ..] => {
            for e in extra {
                cx.error_spanned_by(
                    e,
                    "extra parameter: an init function takes exactly two, `dev: Device<D, Unknown>` and `ctx: &mut InitContext<'_, C>`; keep driver state inside the device type",
                );
            }
            (device_param(cx, &dev.ty), context_param(cx, &ctx.ty))
        }
    };
    if let Some(device) = &device {
        output(cx, sig, device);
    } else if let ReturnType::Default = sig.output {
        output(cx, sig, &syn::parse_quote!(D));
    }
    if cx.len() != before {
        return None;
    }
    Some((device?, clock?))
}

/// The last segment of a path type and its angle-bracketed arguments.
fn last_segment(ty: &Type) -> Option<(&Ident, Vec<&GenericArgument>)> {
    let Type::Path(TypePath { qself: None, path }) = ty else {
        return None;
    };
    let seg = path.segments.last()?;
    let args = match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().collect(),
        PathArguments::None => Vec::new(),
        PathArguments::Parenthesized(_) => return None,
    };
    Some((&seg.ident, args))
}

/// Types among generic arguments (lifetimes skipped).
fn types<'a>(args: &[&'a GenericArgument]) -> Vec<&'a Type> {
    args.iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// True when `ty` is a path whose last segment is `name` with no arguments.
fn is_marker(ty: &Type, name: &str) -> bool {
    matches!(last_segment(ty), Some((id, args)) if id == name && args.is_empty())
}

/// `Device<D, Unknown>` → `D`.
fn device_param(cx: &mut Ctxt, ty: &Type) -> Option<Type> {
    let (d, state) = device_type(ty)?.or_else(|| {
        cx.error_spanned_by(
            ty,
            "the first parameter must be the device in its `Unknown` state: `dev: Device<D, Unknown>`",
        );
        None
    })?;
    if !is_marker(state, "Unknown") {
        cx.error_spanned_by(
            state,
            "the device must come in as `Unknown`: init starts from whatever state the device was left in; write `Device<D, Unknown>`",
        );
        return None;
    }
    Some(d.clone())
}

/// `Device<D, S>` → `Some(Some((D, S)))`; another type → `Some(None)`.
#[expect(
    clippy::option_option,
    reason = "three answers: not a type we can read (None), another type (Some(None)), a `Device<D, S>`"
)]
fn device_type(ty: &Type) -> Option<Option<(&Type, &Type)>> {
    Some(match last_segment(ty) {
        Some((id, args)) if id == "Device" => match types(&args).as_slice() {
            [d, s] if args.len() == 2 => Some((*d, *s)),
            _ => None,
        },
        _ => None,
    })
}

/// `&mut InitContext<'_, C>` → `C`.
fn context_param(cx: &mut Ctxt, ty: &Type) -> Option<Type> {
    let msg = "the second parameter must be the init context: `ctx: &mut InitContext<'_, C>`";
    let Type::Reference(r) = ty else {
        cx.error_spanned_by(ty, msg);
        return None;
    };
    if r.mutability.is_none() {
        cx.error_spanned_by(
            ty,
            "the init context must be borrowed mutably (steps record into its trace): write `&mut InitContext<'_, C>`",
        );
        return None;
    }
    match last_segment(&r.elem) {
        Some((id, args)) if id == "InitContext" => match types(&args).as_slice() {
            [c] => Some((*c).clone()),
            _ => {
                cx.error_spanned_by(&r.elem, msg);
                None
            }
        },
        _ => {
            cx.error_spanned_by(ty, msg);
            None
        }
    }
}

/// Checks `-> Result<Device<D, Ready>, Stalled<D>>`.
fn output(cx: &mut Ctxt, sig: &syn::Signature, device: &Type) {
    let want = format!(
        "-> Result<Device<{d}, Ready>, Stalled<{d}>>",
        d = device.to_token_stream()
    );
    let ty = match &sig.output {
        ReturnType::Default => {
            let paren = sig.paren_token.span.close();
            cx.error_at(
                paren,
                format!("missing return type: an init function returns the ready device or the stalled one; write `{want}`"),
            );
            return;
        }
        ReturnType::Type(_, ty) => ty,
    };
    let Some((id, args)) = last_segment(ty).filter(|(id, _)| *id == "Result") else {
        cx.error_spanned_by(
            ty,
            format!("wrong return type: an init function returns the ready device or the stalled one; write `{want}`"),
        );
        return;
    };
    let _ = id;
    let [ok, err] = types(&args)[..] else {
        cx.error_spanned_by(ty, format!("wrong return type; write `{want}`"));
        return;
    };
    match device_type(ok).flatten() {
        Some((d, state)) => {
            if !is_marker(state, "Ready") {
                cx.error_spanned_by(
                    state,
                    "an init function must return the device `Ready`; write `Device<D, Ready>`",
                );
            }
            if !same(d, device) {
                cx.error_spanned_by(
                    d,
                    format!(
                        "the device type changed: it comes in as `{}`; return the same type",
                        device.to_token_stream()
                    ),
                );
            }
        }
        None => cx.error_spanned_by(
            ok,
            format!("an init function returns `Ok(Device<D, Ready>)`; write `{want}`"),
        ),
    }
    match last_segment(err) {
        Some((id, args)) if id == "Stalled" => match types(&args)[..] {
            [d] if same(d, device) => {}
            [d] => cx.error_spanned_by(
                d,
                format!(
                    "the stalled device must be the same type as the input, `{}`",
                    device.to_token_stream()
                ),
            ),
            _ => cx.error_spanned_by(err, format!("write `Stalled<{}>`", device.to_token_stream())),
        },
        _ => cx.error_spanned_by(
            err,
            format!(
                "the error must be `Stalled<{}>` (it hands the device back so the wrapper can reset it deeper or fence it); write `{want}`",
                device.to_token_stream()
            ),
        ),
    }
}

/// Type equality as written (whitespace-insensitive).
fn same(a: &Type, b: &Type) -> bool {
    a.to_token_stream().to_string() == b.to_token_stream().to_string()
}

/// The span of the attribute itself, for errors about missing arguments.
pub fn attr_span() -> Span {
    Span::call_site()
}
