//! Robustness: the three expanders, fed random token soup and mutations of
//! valid inputs, never panic and always return tokens that are either our
//! `compile_error!`s or well-formed items.
//!
//! `proc_macro2` runs here on its fallback implementation, so the expanders are
//! called exactly as the `#[proc_macro]` entry points call them.

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use proptest::prelude::*;
use quote::quote;

/// Identifiers the macros give meaning to, keywords, and a few others.
const IDENTS: &[&str] = &[
    "fn",
    "pub",
    "struct",
    "async",
    "const",
    "unsafe",
    "extern",
    "impl",
    "loop",
    "while",
    "for",
    "in",
    "let",
    "mut",
    "self",
    "Self",
    "crate",
    "super",
    "Device",
    "Unknown",
    "Ready",
    "Verified",
    "InitContext",
    "Stalled",
    "Result",
    "Option",
    "C",
    "D",
    "Clock",
    "budget_ms",
    "max_budget_ms",
    "cycle",
    "unsafe",
    "matches",
    "size",
    "address_width",
    "page_size",
    "reset",
    "ro",
    "wo",
    "rw",
    "w1c",
    "rc",
    "u8",
    "u16",
    "u32",
    "u64",
    "i32",
    "KiB",
    "MiB",
    "GiB",
    "TiB",
    "unwrap",
    "expect",
    "panic",
    "assert",
    "todo",
    "read_volatile",
    "write_volatile",
    "CAP",
    "CC",
    "EN",
    "TO",
    "Recovery",
    "Normal",
    "dev",
    "ctx",
    "x",
    "_x",
    "r#type",
    "new",
    "io",
    "into_io",
    "OFFSET",
    "untrusted",
    "A_B",
    "__",
];
const PUNCTS: &[char] = &[
    '@', ':', ',', ';', '=', '.', '!', '#', '&', '*', '-', '+', '<', '>', '\'', '?', '/', '%', '^',
    '|', '~', '$',
];

fn leaf() -> impl Strategy<Value = TokenTree> {
    prop_oneof![
        4 => prop::sample::select(IDENTS).prop_map(|s| {
            let t: TokenTree = match s.strip_prefix("r#") {
                Some(raw) => Ident::new_raw(raw, Span::call_site()).into(),
                None => Ident::new(s, Span::call_site()).into(),
            };
            t
        }),
        3 => (prop::sample::select(PUNCTS), any::<bool>()).prop_map(|(c, joint)| {
            Punct::new(c, if joint { Spacing::Joint } else { Spacing::Alone }).into()
        }),
        3 => prop_oneof![
            any::<u64>().prop_map(Literal::u64_unsuffixed),
            (0u64..0x2000).prop_map(Literal::u64_unsuffixed),
            any::<u128>().prop_map(Literal::u128_unsuffixed),
            any::<u32>().prop_map(Literal::u32_suffixed),
            any::<u64>().prop_map(|v| {
                format!("{v:#x}")
                    .parse::<Literal>()
                    .unwrap_or_else(|_| Literal::u64_unsuffixed(v))
            }),
            "[a-z ]{0,8}".prop_map(|s| Literal::string(&s)),
            any::<f32>().prop_map(Literal::f32_unsuffixed),
            any::<char>().prop_map(Literal::character),
        ]
        .prop_map(TokenTree::from),
    ]
}

fn delimiter() -> impl Strategy<Value = Delimiter> {
    prop::sample::select(vec![
        Delimiter::Brace,
        Delimiter::Parenthesis,
        Delimiter::Bracket,
        Delimiter::None,
    ])
}

fn tree() -> impl Strategy<Value = TokenTree> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        (delimiter(), prop::collection::vec(inner, 0..8))
            .prop_map(|(d, ts)| TokenTree::from(Group::new(d, ts.into_iter().collect())))
    })
}

fn soup() -> impl Strategy<Value = TokenStream> {
    prop::collection::vec(tree(), 0..24).prop_map(|ts| ts.into_iter().collect())
}

/// One edit of a token list.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Replace(usize, TokenTree),
    Insert(usize, TokenTree),
    /// Apply the next edit inside the group at this index, if it is one.
    Descend(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap(a, b)),
        (any::<usize>(), leaf()).prop_map(|(a, t)| Edit::Replace(a, t)),
        (any::<usize>(), leaf()).prop_map(|(a, t)| Edit::Insert(a, t)),
        any::<usize>().prop_map(Edit::Descend),
    ]
}

fn mutate(ts: TokenStream, edits: &[Edit]) -> TokenStream {
    let mut v: Vec<TokenTree> = ts.into_iter().collect();
    let Some((first, rest)) = edits.split_first() else {
        return v.into_iter().collect();
    };
    let n = v.len().max(1);
    match first.clone() {
        Edit::Delete(i) if !v.is_empty() => {
            v.remove(i % n);
        }
        Edit::Duplicate(i) if !v.is_empty() => {
            let t = v[i % n].clone();
            v.insert(i % n, t);
        }
        Edit::Swap(a, b) if !v.is_empty() => v.swap(a % n, b % n),
        Edit::Replace(i, t) if !v.is_empty() => v[i % n] = t,
        Edit::Insert(i, t) => v.insert(i % (v.len() + 1), t),
        Edit::Descend(i) if !v.is_empty() => {
            if let TokenTree::Group(g) = &v[i % n] {
                let inner = mutate(g.stream(), rest.get(..1).unwrap_or(&[]));
                v[i % n] = Group::new(g.delimiter(), inner).into();
            }
        }
        _ => {}
    }
    mutate(v.into_iter().collect(), rest)
}

/// The property: tokens come back, and they are our errors or valid items.
fn check(out: &TokenStream) -> Result<(), TestCaseError> {
    prop_assert!(!out.is_empty(), "an expansion returned nothing");
    let text = out.to_string();
    if !text.contains("compile_error") {
        prop_assert!(
            syn::parse2::<syn::File>(out.clone()).is_ok(),
            "no error reported, yet the output is not valid items: {text}"
        );
    }
    Ok(())
}

fn valid_init() -> (TokenStream, TokenStream) {
    (
        quote!(budget_ms = 500),
        quote! {
            /// Docs.
            pub fn init<C: Clock>(dev: Device<Nvme, Unknown>, ctx: &mut InitContext<'_, C>)
                -> Result<Device<Nvme, Ready>, Stalled<Nvme>>
            {
                let dev = dev.quiesce(ctx)?.reset(ctx)?;
                for i in 0..3 { let _ = TABLE[i]; }
                let _ = (|| loop {})();
                dev.verify(ctx)?.enable(ctx)
            }
        },
    )
}

fn valid_regs() -> TokenStream {
    quote! {
        /// Docs.
        pub struct NvmeRegs, size = 4 KiB;
        /// Capabilities.
        CAP @ 0x00: u64, ro, reset = 0 { TO: 24..=31, MQES: 0..=15, CQR: 16 }
        CC @ 0x14: u32, rw { EN: 0, CSS: 4..=6 };
        INTMS @ 0x0c: u32, wo;
        ISR @ 0x18: u8, w1c;
        ICR @ 0x19: u8, rc;
        MISC @ 0x20: u32, rw { TYPE: 0..=3 }
    }
}

fn valid_windows() -> TokenStream {
    quote! {
        address_width = 39;
        page_size = 4 KiB;
        /// Docs.
        pub Normal = 0 .. 0x4000_0000;
        pub Recovery = 0x7f_fff0_0000;
        pub(crate) Big = 0x40_0000_0000, size = 1 GiB, page_size = 2 MiB;
    }
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn init_survives_soup(attr in soup(), item in soup()) {
        check(&crate::init::expand(attr, item))?;
    }

    #[test]
    fn regs_survive_soup(input in soup()) {
        check(&crate::regs::expand(input))?;
    }

    #[test]
    fn windows_survive_soup(input in soup()) {
        check(&crate::dma::expand(input))?;
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn init_survives_mutations(
        attr_edits in prop::collection::vec(edit(), 0..3),
        item_edits in prop::collection::vec(edit(), 1..6),
    ) {
        let (attr, item) = valid_init();
        check(&crate::init::expand(mutate(attr, &attr_edits), mutate(item, &item_edits)))?;
    }

    #[test]
    fn regs_survive_mutations(edits in prop::collection::vec(edit(), 1..6)) {
        check(&crate::regs::expand(mutate(valid_regs(), &edits)))?;
    }

    #[test]
    fn windows_survive_mutations(edits in prop::collection::vec(edit(), 1..6)) {
        check(&crate::dma::expand(mutate(valid_windows(), &edits)))?;
    }
}

#[test]
fn valid_inputs_expand_without_errors() {
    let (attr, item) = valid_init();
    let out = crate::init::expand(attr, item).to_string();
    // The closure's `loop` and the loop variable index are reported.
    assert_eq!(out.matches("compile_error").count(), 2, "{out}");
    for out in [
        crate::regs::expand(valid_regs()),
        crate::dma::expand(valid_windows()),
    ] {
        assert!(!out.to_string().contains("compile_error"), "{out}");
        assert!(syn::parse2::<syn::File>(out).is_ok());
    }
}
