//! Code generation for `dma_windows!`: a unit type per window implementing
//! `paranoid::dma::Window`, plus `WINDOWS` and `IOMMU_ADDRESS_WIDTH`.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::validate::{Model, Win};
use crate::names;
use crate::num::bytes;

/// The whole expansion.
pub fn windows(model: &Model<'_>) -> TokenStream {
    let types = model.windows.iter().map(window);
    let specs = model.windows.iter().map(|w| {
        let ident = &w.decl.ident;
        quote! {
            ::paranoid::dma::WindowSpec {
                name: <#ident as ::paranoid::dma::Window>::NAME,
                base: <#ident as ::paranoid::dma::Window>::BASE,
                size: <#ident as ::paranoid::dma::Window>::SIZE,
                page_size: <#ident as ::paranoid::dma::Window>::PAGE_SIZE,
            }
        }
    });
    let count = model.windows.len();
    let width = Literal::u8_unsuffixed(model.address_width);
    quote! {
        #(#types)*

        /// Every window declared by `dma_windows!`, checked at compile time to be
        /// aligned, non-empty, disjoint and inside [`IOMMU_ADDRESS_WIDTH`].
        #[allow(dead_code, reason = "declared for reports and run-time checks")]
        pub const WINDOWS: [::paranoid::dma::WindowSpec; #count] = [#(#specs),*];

        /// The IOMMU input address width (bits) the windows were checked against.
        #[allow(dead_code, reason = "declared for reports and run-time checks")]
        pub const IOMMU_ADDRESS_WIDTH: u8 = #width;
    }
}

fn window(w: &Win<'_>) -> TokenStream {
    let attrs = &w.decl.attrs;
    let vis = &w.decl.vis;
    let ident = &w.decl.ident;
    let name = names::plain(ident);
    let doc = format!(
        " DMA window `{name}`: IOVAs {:#x}..{:#x} ({}, {} pages), declared with `dma_windows!`.",
        w.base,
        u128::from(w.base) + u128::from(w.size),
        bytes(u128::from(w.size)),
        bytes(u128::from(w.page_size)),
    );
    let (base, size, page) = (
        Literal::u64_unsuffixed(w.base),
        Literal::u64_unsuffixed(w.size),
        Literal::u64_unsuffixed(w.page_size),
    );
    quote! {
        #(#attrs)*
        #[doc = ""]
        #[doc = #doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #vis struct #ident;

        impl ::paranoid::dma::Window for #ident {
            const NAME: &'static str = #name;
            const BASE: u64 = #base;
            const SIZE: u64 = #size;
            const PAGE_SIZE: u64 = #page;
        }
    }
}
