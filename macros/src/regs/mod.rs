//! `register_block!`: one declaration per register block, typed accessors over
//! any `paranoid::mmio::RegisterIo`, layout mistakes rejected at compile time.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ctxt::Ctxt;

/// Expands `register_block! { input }`. Never panics: mistakes come back as
/// `compile_error!`s beside the code for every usable register, so code that
/// uses the block sees no follow-up errors.
pub fn expand(input: TokenStream) -> TokenStream {
    let mut cx = Ctxt::new();
    let block = match syn::parse2::<parse::Block>(input) {
        Ok(block) => block,
        Err(e) => return e.to_compile_error(),
    };
    let code = validate::check(&mut cx, &block)
        .map(|model| expand::block(&model))
        .unwrap_or_default();
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
    fn good_block_expands() {
        let out = expand(quote! {
            /// NVMe.
            pub struct NvmeRegs, size = 4 KiB;
            /// Capabilities.
            CAP @ 0x00: u64, ro, reset = 0 { TO: 24..=31, MQES: 0..=15 }
            CC @ 0x14: u32, rw { EN: 0 };
            INTMS @ 0x0c: u32, wo;
            ISR @ 0x18: u8, w1c;
            ICR @ 0x19: u8, rc;
        })
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("pub fn cap"), "{out}");
        assert!(out.contains("pub mod nvme_regs"), "{out}");
        assert!(out.contains("read_and_clear"), "{out}");
    }

    #[test]
    fn layout_mistakes_all_reported() {
        let errs = errors(quote! {
            struct R, size = 0x20;
            A @ 0x02: u32, ro;
            B @ 0x00: u32, rw;
            C @ 0x20: u32, ro;
            A @ 0x10: u32, ro;
            D @ 0x14: u16, rw, reset = 0x10000 { X: 0..=3, Y: 3..=5, Z: 16, X: 7 };
            E @ 0x18: u24, rw;
            F @ 0x1c: u32, rx;
            G @ 0x1c: u8, ro { W: 5..=2 };
        });
        // misaligned A, overlap B/A, C past end, duplicate A, reset, overlap Y,
        // Z outside, duplicate X, u24, rx, reversed W.
        assert_eq!(errs.len(), 11, "{errs:#?}");
    }

    #[test]
    fn syntax_errors_are_errors() {
        assert_eq!(
            errors(quote!(
                struct R;
            ))
            .len(),
            1
        );
        assert_eq!(errors(quote!(struct R, size = 4; A @ 0: u32)).len(), 1);
        assert_eq!(
            errors(quote!(struct R, size = 4; A @ 0: u32, ro { B: 0..2 })).len(),
            1
        );
        assert_eq!(errors(quote!()).len(), 1);
    }
}
