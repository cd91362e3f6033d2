//! Typed view of a `dma_windows!` declaration.
//!
//! ```text
//! input   := setting* window+
//! setting := "address_width" "=" BITS ";" | "page_size" "=" SIZE ";"
//! window  := attr* vis NAME "=" BASE (".." END)? ("," ("size" | "page_size") "=" SIZE)* ";"
//! SIZE    := INT ("KiB" | "MiB" | "GiB" | "TiB")?
//! ```

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, Token, Visibility};

use crate::num::{self, Num};

/// The whole declaration.
pub struct Decl {
    pub address_width: Option<Num>,
    pub page_size: Option<Num>,
    pub windows: Vec<WindowDecl>,
    /// Mistakes that did not stop parsing (duplicate settings).
    pub errors: Vec<syn::Error>,
}

/// How a window's extent was written.
pub enum Extent {
    /// `BASE .. END`.
    End(Num),
    /// `BASE, size = SIZE`.
    Size(Num),
    /// `BASE` alone: the default recovery window size.
    Default,
}

/// One window.
pub struct WindowDecl {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub ident: Ident,
    pub base: Num,
    pub extent: Extent,
    pub page_size: Option<Num>,
    /// The whole `NAME = ...` for spans.
    pub tokens: TokenStream,
}

impl Parse for Decl {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut decl = Decl {
            address_width: None,
            page_size: None,
            windows: Vec::new(),
            errors: Vec::new(),
        };
        while !input.is_empty() {
            if let Some(setting) = peek_setting(input) {
                let key = input.call(Ident::parse_any)?;
                input.parse::<Token![=]>()?;
                let value = if setting == "address_width" {
                    num::parse_plain(input)?
                } else {
                    num::parse_size(input)?
                };
                input.parse::<Token![;]>()?;
                let slot = if setting == "address_width" {
                    &mut decl.address_width
                } else {
                    &mut decl.page_size
                };
                if slot.is_some() {
                    decl.errors.push(syn::Error::new(
                        key.span(),
                        format!("duplicate `{setting}`; give it once"),
                    ));
                } else {
                    *slot = Some(value);
                }
                continue;
            }
            decl.windows.push(input.parse()?);
        }
        Ok(decl)
    }
}

/// `address_width =` or `page_size =` at the start of a statement.
fn peek_setting(input: ParseStream) -> Option<&'static str> {
    let fork = input.fork();
    let id = fork.call(Ident::parse_any).ok()?;
    if !fork.peek(Token![=]) {
        return None;
    }
    match id.to_string().as_str() {
        "address_width" => Some("address_width"),
        "page_size" => Some("page_size"),
        _ => None,
    }
}

impl Parse for WindowDecl {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let ident: Ident = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a window, like `pub Recovery = 0x7f_fff0_0000, size = 1 MiB;`, or a setting, `address_width = 39;`",
            )
        })?;
        let mut tokens = ident.to_token_stream();
        if !input.peek(Token![=]) {
            return Err(input.error(format!(
                "expected `= BASE` after window `{ident}`, like `{ident} = 0x4000_0000, size = 1 MiB;`"
            )));
        }
        input.parse::<Token![=]>()?;
        let base = num::parse_plain(input)?;
        tokens.extend(base.tokens.clone());
        let mut extent = Extent::Default;
        if input.peek(Token![..=]) {
            let dots: Token![..=] = input.parse()?;
            return Err(syn::Error::new_spanned(
                dots,
                "write the window as `BASE..END` with END exclusive, or `BASE, size = SIZE`",
            ));
        }
        if input.peek(Token![..]) {
            input.parse::<Token![..]>()?;
            let end = num::parse_size(input)?;
            tokens.extend(end.tokens.clone());
            extent = Extent::End(end);
        }
        let mut page_size = None;
        while input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
            let key = input.call(Ident::parse_any)?;
            input.parse::<Token![=]>()?;
            let value = num::parse_size(input)?;
            tokens.extend(value.tokens.clone());
            match key.to_string().as_str() {
                "size" => {
                    if !matches!(extent, Extent::Default) {
                        return Err(syn::Error::new(
                            key.span(),
                            format!("window `{ident}` already has its extent; give either `BASE..END` or one `size = SIZE`"),
                        ));
                    }
                    extent = Extent::Size(value);
                }
                "page_size" => {
                    if page_size.is_some() {
                        return Err(syn::Error::new(key.span(), "duplicate `page_size`; give it once"));
                    }
                    page_size = Some(value);
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown window option `{other}`; a window takes `size = SIZE` and `page_size = SIZE`"),
                    ))
                }
            }
        }
        if !input.peek(Token![;]) {
            return Err(input.error(format!("expected `;` to end window `{ident}`")));
        }
        input.parse::<Token![;]>()?;
        Ok(WindowDecl {
            attrs,
            vis,
            ident,
            base,
            extent,
            page_size,
            tokens,
        })
    }
}
