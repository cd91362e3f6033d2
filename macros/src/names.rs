//! Turning spec names (`CAP`, `CSTS_RDY`) into Rust item names without ever
//! building an invalid identifier (which would panic inside `proc_macro2`).

use proc_macro2::{Ident, Span};
use syn::ext::IdentExt;

/// Keywords that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Rust keywords (strict and reserved) that need `r#` as an identifier.
const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static",
    "struct", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn",
    "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized",
    "virtual", "yield", "try", "gen",
];

/// The name as written, without a leading `r#`.
pub fn plain(ident: &Ident) -> String {
    ident.unraw().to_string()
}

/// True when `name` is made of ASCII letters, digits and underscores and has at
/// least one letter.
pub fn is_ascii_name(name: &str) -> bool {
    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().any(|c| c.is_ascii_alphabetic())
}

/// `CSTS_RDY` → `csts_rdy`, `NvmeRegs` → `nvme_regs`.
pub fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `CSTS` → `Csts`, `ICR_0` → `Icr0`, `nvme_regs` → `NvmeRegs`.
pub fn camel(name: &str) -> String {
    let all_upper = !name.chars().any(|c| c.is_ascii_lowercase());
    let mut out = String::with_capacity(name.len());
    let mut up = true;
    for c in name.chars() {
        if c == '_' {
            up = true;
            continue;
        }
        if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else if all_upper {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// An identifier for `name`, raw if it is a keyword; `None` when `name` cannot be
/// an identifier at all (empty, starts with a digit, `self`...).
pub fn ident(name: &str, span: Span) -> Option<Ident> {
    let first = name.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || NOT_RAW.contains(&name)
    {
        return None;
    }
    if KEYWORDS.contains(&name) {
        Some(Ident::new_raw(name, span))
    } else {
        Some(Ident::new(name, span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_conversions() {
        assert_eq!(snake("NvmeRegs"), "nvme_regs");
        assert_eq!(snake("CAP"), "cap");
        assert_eq!(snake("ICR_0"), "icr_0");
        assert_eq!(snake("HTTPServer"), "http_server");
        assert_eq!(camel("CAP"), "Cap");
        assert_eq!(camel("ICR_0"), "Icr0");
        assert_eq!(camel("nvme_regs"), "NvmeRegs");
        assert_eq!(camel("MyCap"), "MyCap");
    }

    #[test]
    fn idents_never_invalid() {
        assert!(ident("", Span::call_site()).is_none());
        assert!(ident("1a", Span::call_site()).is_none());
        assert!(ident("self", Span::call_site()).is_none());
        assert!(ident("é", Span::call_site()).is_none());
        assert_eq!(
            ident("type", Span::call_site()).unwrap().to_string(),
            "r#type"
        );
        assert_eq!(ident("cap", Span::call_site()).unwrap().to_string(), "cap");
    }
}
