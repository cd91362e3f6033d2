//! `dma_windows!`: the IOVA windows a system uses, as types, checked at compile
//! time (aligned, non-empty, disjoint, inside the IOMMU address width).

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ctxt::Ctxt;

/// Expands `dma_windows! { input }`. Never panics: mistakes come back as
/// `compile_error!`s beside the window types, so uses of them see no follow-up
/// errors.
pub fn expand(input: TokenStream) -> TokenStream {
    let decl = match syn::parse2::<parse::Decl>(input) {
        Ok(decl) => decl,
        Err(e) => return e.to_compile_error(),
    };
    let mut cx = Ctxt::new();
    let model = validate::check(&mut cx, &decl);
    let code = expand::windows(&model);
    let errors = cx.into_compile_errors();
    quote!(#errors #code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(input: TokenStream) -> Vec<String> {
        let out = expand(input).to_string();
        out.split("compile_error !")
            .skip(1)
            .map(|s| s.split('"').nth(1).unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn good_windows_expand() {
        let out = expand(quote! {
            address_width = 39;
            page_size = 4 KiB;
            /// The normal kernel's.
            pub Normal = 0 .. 0x4000_0000;
            pub Recovery = 0x7f_fff0_0000;
            pub Big = 0x40_0000_0000, size = 1 GiB, page_size = 2 MiB;
        })
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("const SIZE : u64 = 1048576"), "{out}");
        assert!(out.contains("WindowSpec ; 3"), "{out}");
    }

    #[test]
    fn every_rule() {
        let errs = errors(quote! {
            address_width = 39;
            A = 0x1001, size = 0x1000;
            B = 0x10000, size = 0x1800;
            C = 0x20000, size = 0;
            D = 0x7f_ffff_f000, size = 2 MiB;
            E = 0x1000 .. 0x3000;
            A = 0x100000;
            F = 0x200000, size = 1 MiB, page_size = 3 KiB;
        });
        // base A, size B, zero C, past D, overlap E/A, duplicate A, page F.
        assert_eq!(errs.len(), 7, "{errs:#?}");
        assert_eq!(errors(quote!(pub Recovery = 0x1000;)).len(), 1);
        assert_eq!(errors(quote!(address_width = 12; R = 0;)).len(), 1);
        assert_eq!(errors(quote!(address_width = 39;)).len(), 1);
        assert_eq!(
            errors(quote!(address_width = 39; address_width = 40; R = 0;)).len(),
            1
        );
        assert_eq!(
            errors(quote!(address_width = 39; R = 0x2000 .. 0x1000;)).len(),
            1
        );
    }

    /// `dma_windows!` and the run-time `paranoid::dma::check_windows` accept
    /// and reject the same windows at the top of the address space.
    #[test]
    fn macro_and_run_time_agree_at_the_top_of_the_address_space() {
        use paranoid::dma::{check_windows, WindowSpec};
        const MIB: u128 = 1 << 20;
        let mut cases = Vec::new();
        for width in [32u32, 39, 48, 63, 64] {
            let top = 1u128 << width;
            for (base, end) in [
                (top - MIB, top),          // ends exactly at 2^width
                (top - MIB, top + 0x1000), // one page past
                (top - 0x1000, top),       // the last page alone
                (top - MIB, top - 0x1000), // one page short
                (top, top + MIB),          // starts at the top
            ] {
                cases.push((width, base, end));
            }
        }
        for (width, base, end) in cases {
            let w = proc_macro2::Literal::u32_unsuffixed(width);
            let (b, e) = (
                proc_macro2::Literal::u128_unsuffixed(base),
                proc_macro2::Literal::u128_unsuffixed(end),
            );
            let by_macro = errors(quote!(address_width = #w; pub Top = #b .. #e;)).is_empty();
            // What the macro would generate, when the values fit its `u64`s.
            let by_run_time = match (u64::try_from(base), u64::try_from(end - base)) {
                (Ok(base), Ok(size)) => check_windows(
                    &[WindowSpec {
                        name: "top",
                        base,
                        size,
                        page_size: 4096,
                    }],
                    u8::try_from(width).unwrap(),
                )
                .is_ok(),
                _ => false,
            };
            assert_eq!(
                by_macro, by_run_time,
                "width {width}, {base:#x}..{end:#x}: macro {by_macro}, run time {by_run_time}"
            );
            let at_top = end == 1u128 << width;
            assert_eq!(
                by_macro,
                at_top || end < 1u128 << width,
                "{width} {base:#x}..{end:#x}"
            );
        }
        // The whole 64-bit space has a size no `u64` holds: rejected.
        assert_eq!(
            errors(quote!(address_width = 64; pub All = 0 .. 0x1_0000_0000_0000_0000;)).len(),
            1
        );
    }
}
