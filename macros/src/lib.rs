//! placeholder
#![deny(missing_docs)]

mod ctxt;
mod dma;
mod init;
mod names;
mod num;
mod regs;

use proc_macro::TokenStream;

/// Checks an init function at compile time and wraps it in a time budget.
#[proc_macro_attribute]
pub fn paranoid_init(attr: TokenStream, item: TokenStream) -> TokenStream {
    init::expand(attr.into(), item.into()).into()
}

/// Declares a register block.
#[proc_macro]
pub fn register_block(input: TokenStream) -> TokenStream {
    regs::expand(input.into()).into()
}

/// Declares DMA windows.
#[proc_macro]
pub fn dma_windows(input: TokenStream) -> TokenStream {
    dma::expand(input.into()).into()
}
