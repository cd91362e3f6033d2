//! Typed view of a `register_block!` declaration.
//!
//! ```text
//! block    := attr* vis "struct" NAME "," "size" "=" SIZE ";" register*
//! register := attr* NAME "@" OFFSET ":" ("u8"|"u16"|"u32"|"u64") "," ACCESS
//!             ("," "reset" "=" INT)? ( "{" field,* "}" ";"? | ";" )
//! ACCESS   := "ro" | "wo" | "rw" | "w1c" | "rc"
//! field    := attr* NAME ":" BIT | attr* NAME ":" LO "..=" HI
//! ```

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, Attribute, Ident, Token, Visibility};

use crate::num::{self, Num};

/// Access modes, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `ro`
    ReadOnly,
    /// `wo`
    WriteOnly,
    /// `rw`
    ReadWrite,
    /// `w1c`
    WriteOneToClear,
    /// `rc`
    ReadToClear,
}

/// The whole declaration.
pub struct Block {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub ident: Ident,
    pub size: Num,
    pub registers: Vec<Register>,
    /// Mistakes found while parsing that did not stop it (unknown width or
    /// access keyword).
    pub errors: Vec<syn::Error>,
}

/// One register.
pub struct Register {
    pub attrs: Vec<Attribute>,
    pub ident: Ident,
    pub offset: Num,
    /// Width in bytes, when the width keyword is known.
    pub width: Option<u32>,
    /// The access, when the keyword is known.
    pub access: Option<Access>,
    pub reset: Option<Num>,
    pub fields: Vec<Field>,
}

/// One field of a register.
pub struct Field {
    pub attrs: Vec<Attribute>,
    pub ident: Ident,
    pub lo: Num,
    pub hi: Num,
    /// `LO..=HI` or `BIT`, for spans.
    pub tokens: TokenStream,
}

impl Parse for Block {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        if !input.peek(Token![struct]) {
            return Err(input.error(
                "a register block starts with its type: `pub struct NvmeRegs, size = 0x1000;`",
            ));
        }
        input.parse::<Token![struct]>()?;
        let ident: Ident = input.parse()?;
        if !input.peek(Token![,]) {
            return Err(input.error(format!(
                "expected `, size = ...` after `struct {ident}`: give the block's size in bytes, like `struct {ident}, size = 0x1000;`"
            )));
        }
        input.parse::<Token![,]>()?;
        keyword(input, "size", "`size = 0x1000`")?;
        input.parse::<Token![=]>()?;
        let size = num::parse_size(input)?;
        input.parse::<Token![;]>()?;
        let mut block = Block {
            attrs,
            vis,
            ident,
            size,
            registers: Vec::new(),
            errors: Vec::new(),
        };
        while !input.is_empty() {
            let reg = register(input, &mut block.errors)?;
            block.registers.push(reg);
        }
        Ok(block)
    }
}

/// Expects the contextual keyword `kw`.
fn keyword(input: ParseStream, kw: &str, example: &str) -> syn::Result<Ident> {
    let lookahead = input.fork();
    match lookahead.call(Ident::parse_any) {
        Ok(id) if id == kw => input.call(Ident::parse_any),
        _ => Err(input.error(format!("expected {example}"))),
    }
}

fn register(input: ParseStream, errors: &mut Vec<syn::Error>) -> syn::Result<Register> {
    let attrs = input.call(Attribute::parse_outer)?;
    let ident: Ident = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a register: `CAP @ 0x00: u64, ro;` (name, offset, width, access)",
        )
    })?;
    if !input.peek(Token![@]) {
        return Err(input.error(format!(
            "expected `@ OFFSET` after register `{ident}`, like `{ident} @ 0x14: u32, rw;`"
        )));
    }
    input.parse::<Token![@]>()?;
    let offset = num::parse_plain(input)?;
    input.parse::<Token![:]>()?;
    let ty: Ident = input.parse()?;
    let width = match ty.to_string().as_str() {
        "u8" => Some(1),
        "u16" => Some(2),
        "u32" => Some(4),
        "u64" => Some(8),
        other => {
            errors.push(syn::Error::new(
                ty.span(),
                format!("`{other}` is not a register width; write `u8`, `u16`, `u32` or `u64`"),
            ));
            None
        }
    };
    if !input.peek(Token![,]) {
        return Err(input.error(format!(
            "expected `, ACCESS` after the width of `{ident}`: one of `ro`, `wo`, `rw`, `w1c`, `rc`"
        )));
    }
    input.parse::<Token![,]>()?;
    let access_token = input.call(Ident::parse_any)?;
    let access = match access_token.to_string().as_str() {
        "ro" => Some(Access::ReadOnly),
        "wo" => Some(Access::WriteOnly),
        "rw" => Some(Access::ReadWrite),
        "w1c" => Some(Access::WriteOneToClear),
        "rc" => Some(Access::ReadToClear),
        other => {
            errors.push(syn::Error::new(
                access_token.span(),
                format!(
                    "unknown access `{other}`; write `ro` (read-only), `wo` (write-only), `rw` (read/write), `w1c` (write 1 to clear) or `rc` (read to clear)"
                ),
            ));
            None
        }
    };
    let mut reset = None;
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
        keyword(input, "reset", "`reset = VALUE` (the value after reset)")?;
        input.parse::<Token![=]>()?;
        reset = Some(num::parse_plain(input)?);
    }
    let mut fields = Vec::new();
    if input.peek(syn::token::Brace) {
        let content;
        braced!(content in input);
        let parsed = Punctuated::<Field, Token![,]>::parse_terminated(&content)?;
        fields.extend(parsed);
        if input.peek(Token![;]) {
            input.parse::<Token![;]>()?;
        }
    } else if input.peek(Token![;]) {
        input.parse::<Token![;]>()?;
    } else {
        return Err(input.error(format!(
            "expected `;` or a `{{ FIELD: BITS, ... }}` block to end register `{ident}`"
        )));
    }
    Ok(Register {
        attrs,
        ident,
        offset,
        width,
        access,
        reset,
        fields,
    })
}

impl Parse for Field {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let ident: Ident = input.parse()?;
        if !input.peek(Token![:]) {
            return Err(input.error(format!(
                "expected `: BITS` after field `{ident}`, like `{ident}: 0` or `{ident}: 4..=7`"
            )));
        }
        input.parse::<Token![:]>()?;
        let lo = num::parse_plain(input)?;
        let mut tokens = lo.tokens.clone();
        let hi = if input.peek(Token![..=]) {
            let dots: Token![..=] = input.parse()?;
            let hi = num::parse_plain(input)?;
            dots.to_tokens(&mut tokens);
            tokens.extend(hi.tokens.clone());
            hi
        } else if input.peek(Token![..]) {
            let dots: Token![..] = input.parse()?;
            return Err(syn::Error::new_spanned(
                dots,
                "write an inclusive bit range `LO..=HI`, as the spec numbers bits",
            ));
        } else {
            lo.clone()
        };
        Ok(Field {
            attrs,
            ident,
            lo,
            hi,
            tokens,
        })
    }
}
