//! Integer literals with an optional binary size unit (`4096`, `0x1000`, `1 MiB`).

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitInt};

/// A number as written, with the tokens to point errors at.
#[derive(Clone)]
pub struct Num {
    /// The value (units applied, saturating).
    pub value: u128,
    /// The literal and its unit, for spans.
    pub tokens: TokenStream,
    /// True when written in hexadecimal (errors echo values the same way).
    pub hex: bool,
}

impl Num {
    /// The value as written back in errors: hex if the user wrote hex.
    pub fn show(&self) -> String {
        show(self.value, self.hex)
    }
}

/// Formats `v` as hex (`0x1000`) or decimal.
pub fn show(v: u128, hex: bool) -> String {
    if hex {
        format!("{v:#x}")
    } else {
        v.to_string()
    }
}

/// Formats a byte count for messages (`4 KiB`, `0x1800 bytes`).
pub fn bytes(v: u128) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if v >= 1 << shift && v % (1 << shift) == 0 {
            return format!("{} {unit}", v >> shift);
        }
    }
    if v < 1024 {
        format!("{v} bytes")
    } else {
        format!("{v:#x} bytes")
    }
}

const UNITS: &[(&str, u32)] = &[("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40)];

/// Parses an integer literal (any base, `_` separators, no suffix) without unit.
pub fn parse_plain(input: ParseStream) -> syn::Result<Num> {
    let lit: LitInt = input.parse()?;
    if !lit.suffix().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "remove the `{}` suffix: values here are plain numbers",
                lit.suffix()
            ),
        ));
    }
    let value = lit.base10_parse::<u128>()?;
    let hex = lit.to_string().starts_with("0x");
    Ok(Num {
        value,
        tokens: lit.into_token_stream(),
        hex,
    })
}

/// Parses a size: an integer literal optionally followed by `KiB`, `MiB`, `GiB`
/// or `TiB`.
pub fn parse_size(input: ParseStream) -> syn::Result<Num> {
    let mut num = parse_plain(input)?;
    if input.peek(Ident) {
        let unit: Ident = input.parse()?;
        let name = unit.to_string();
        let Some(&(_, shift)) = UNITS.iter().find(|(u, _)| *u == name) else {
            return Err(syn::Error::new(
                unit.span(),
                format!("unknown size unit `{name}`; write `KiB`, `MiB`, `GiB` or `TiB`"),
            ));
        };
        num.value = num.value.checked_shl(shift).unwrap_or(u128::MAX);
        if num.value > u128::from(u64::MAX) {
            num.value = u128::MAX;
        }
        unit.to_tokens(&mut num.tokens);
    }
    Ok(num)
}

/// `Num` parsed as a plain literal (for `syn::parse2`).
pub struct Plain(pub Num);

impl Parse for Plain {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        parse_plain(input).map(Plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse::Parser;

    #[test]
    fn sizes_and_units() {
        let n = parse_size.parse2(quote::quote!(1 MiB)).unwrap();
        assert_eq!(n.value, 1 << 20);
        let n = parse_size.parse2(quote::quote!(0x1000)).unwrap();
        assert_eq!((n.value, n.hex), (0x1000, true));
        assert!(parse_size.parse2(quote::quote!(1 MB)).is_err());
        assert!(parse_plain.parse2(quote::quote!(1u8)).is_err());
        let huge = parse_size
            .parse2(quote::quote!(0xffff_ffff_ffff TiB))
            .unwrap();
        assert_eq!(huge.value, u128::MAX);
    }

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(bytes(1 << 20), "1 MiB");
        assert_eq!(bytes(0x1800), "6 KiB");
        assert_eq!(bytes(0x1801), "0x1801 bytes");
        assert_eq!(bytes(12), "12 bytes");
    }
}
