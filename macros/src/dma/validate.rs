//! Rules for DMA windows, each a small function. The same rules hold at run
//! time in `paranoid::dma::check_windows`; here they fail the build instead.

use proc_macro2::{Span, TokenStream};

use super::parse::{Decl, Extent, WindowDecl};
use crate::ctxt::Ctxt;
use crate::names;
use crate::num::{bytes, show};

/// The smallest IOMMU page (VT-d, AMD-Vi): 4 KiB.
const MIN_PAGE: u128 = 4096;
/// The largest page size accepted: 1 GiB (the largest x86 IOMMU page).
const MAX_PAGE: u128 = 1 << 30;
/// The reserved recovery window's default size: 1 MiB
/// (`paranoid::dma::DEFAULT_RECOVERY_WINDOW_SIZE`).
pub const DEFAULT_SIZE: u128 = 1 << 20;

/// Declarations ready to expand.
pub struct Model<'a> {
    pub address_width: u8,
    pub windows: Vec<Win<'a>>,
}

/// A window ready to expand.
pub struct Win<'a> {
    pub decl: &'a WindowDecl,
    pub base: u64,
    pub size: u64,
    pub page_size: u64,
}

/// Checks everything and builds the model (windows with usable names, even
/// when other rules fail, so uses of them see no follow-up error).
pub fn check<'a>(cx: &mut Ctxt, decl: &'a Decl) -> Model<'a> {
    for e in &decl.errors {
        cx.syn_error(e.clone());
    }
    let address_width = address_width(cx, decl);
    let default_page = decl
        .page_size
        .as_ref()
        .map_or(MIN_PAGE, |p| page_size(cx, p.value, &p.tokens));
    if decl.windows.is_empty() {
        cx.error_at(
            Span::call_site(),
            "no window declared; declare the recovery window, like `pub Recovery = 0x7f_fff0_0000;` (1 MiB by default)",
        );
    }
    let mut windows: Vec<Win<'a>> = Vec::new();
    for w in &decl.windows {
        let page = w
            .page_size
            .as_ref()
            .map_or(default_page, |p| page_size(cx, p.value, &p.tokens));
        let Some(win) = window(cx, w, page, address_width) else {
            continue;
        };
        // A duplicate is left out of the model: generating it would only add
        // rustc's "defined multiple times" errors to ours.
        if unique_name(cx, &windows, &win) {
            disjoint(cx, &windows, &win);
            windows.push(win);
        }
    }
    Model {
        address_width: u8::try_from(address_width).unwrap_or(64),
        windows,
    }
}

/// Rule: `address_width` is given, between 32 and 64 bits.
fn address_width(cx: &mut Ctxt, decl: &Decl) -> u32 {
    let Some(w) = &decl.address_width else {
        cx.error_at(
            Span::call_site(),
            "missing `address_width = BITS;`: the IOMMU's input address width windows must fit in (39 or 48 on VT-d)",
        );
        return 64;
    };
    if !(32..=64).contains(&w.value) {
        cx.error_spanned_by(
            &w.tokens,
            format!(
                "address width of {} bits is out of range; IOMMUs translate 32 to 64-bit addresses (VT-d: 39 or 48)",
                w.value
            ),
        );
        return 64;
    }
    u32::try_from(w.value).unwrap_or(64)
}

/// Rule: a page size is a power of two from 4 KiB to 1 GiB.
fn page_size(cx: &mut Ctxt, value: u128, tokens: &TokenStream) -> u128 {
    if !value.is_power_of_two() || !(MIN_PAGE..=MAX_PAGE).contains(&value) {
        cx.error_spanned_by(
            tokens,
            format!(
                "page size {} is not an IOMMU page size; use a power of two from 4 KiB to 1 GiB (4 KiB, 2 MiB, 1 GiB)",
                bytes(value)
            ),
        );
        return MIN_PAGE;
    }
    value
}

/// One window: a usable name, non-zero size, aligned base and size, and inside
/// the address width.
fn window<'a>(cx: &mut Ctxt, w: &'a WindowDecl, page: u128, width: u32) -> Option<Win<'a>> {
    let name = names::plain(&w.ident);
    let (size, size_tokens) = match &w.extent {
        Extent::Size(s) => (s.value, s.tokens.clone()),
        Extent::End(e) => (e.value.saturating_sub(w.base.value), e.tokens.clone()),
        Extent::Default => (DEFAULT_SIZE, w.tokens.clone()),
    };
    if let Extent::End(e) = &w.extent {
        if e.value <= w.base.value {
            cx.error_spanned_by(
                &w.tokens,
                format!(
                    "window `{name}` is empty: its end {} is not above its base {}; write `BASE..END` with END > BASE",
                    e.show(),
                    w.base.show()
                ),
            );
        }
    } else if size == 0 {
        cx.error_spanned_by(
            &size_tokens,
            format!(
                "window `{name}` has size 0; give it at least one page ({})",
                bytes(page)
            ),
        );
    }
    if w.base.value % page != 0 {
        cx.error_spanned_by(
            &w.base.tokens,
            format!(
                "base {} of window `{name}` is not aligned to the {} page size; use a multiple of {:#x}, like {:#x}",
                w.base.show(),
                bytes(page),
                page,
                w.base.value - w.base.value % page
            ),
        );
    }
    if size % page != 0 {
        cx.error_spanned_by(
            &size_tokens,
            format!(
                "size {} of window `{name}` is not a multiple of the {} page size; round it to {}",
                bytes(size),
                bytes(page),
                bytes(size.div_ceil(page).saturating_mul(page))
            ),
        );
    }
    let end = w.base.value.saturating_add(size);
    let limit = 1u128 << width;
    if end > limit {
        cx.error_spanned_by(
            &w.tokens,
            format!(
                "window `{name}` ({}..{}) ends past the {width}-bit IOMMU address space (which ends at {}); move it below {}",
                show(w.base.value, true),
                show(end, true),
                show(limit, true),
                show(limit.saturating_sub(size), true),
            ),
        );
    }
    // A window may end exactly at the top of the address space (2^width, 2^64
    // included: `check_windows` computes the end without overflow too), but
    // its size must fit `Window::SIZE: u64`.
    if end <= limit && size > u128::from(u64::MAX) {
        cx.error_spanned_by(
            &w.tokens,
            format!(
                "window `{name}` spans the whole 64-bit address space: its size, {}, does not fit `Window::SIZE: u64`; leave out at least one page, like `0..{}`",
                show(size, true),
                show(limit.saturating_sub(page), true),
            ),
        );
    }
    let Some(_) = names::ident(&name, w.ident.span()).filter(|_| names::is_ascii_name(&name))
    else {
        cx.error_spanned_by(
            &w.ident,
            format!("window name `{name}` cannot name a type; use ASCII letters, like `Recovery`"),
        );
        return None;
    };
    Some(Win {
        decl: w,
        base: u64::try_from(w.base.value).unwrap_or(u64::MAX),
        size: u64::try_from(size).unwrap_or(u64::MAX),
        page_size: u64::try_from(page).unwrap_or(4096),
    })
}

/// Rule: window names are unique. Returns false for a duplicate.
fn unique_name(cx: &mut Ctxt, earlier: &[Win<'_>], w: &Win<'_>) -> bool {
    if earlier.iter().any(|p| p.decl.ident == w.decl.ident) {
        cx.error_spanned_by(
            &w.decl.ident,
            format!(
                "duplicate window `{}`; give each window its own name",
                names::plain(&w.decl.ident)
            ),
        );
        return false;
    }
    true
}

/// Rule: windows do not share an address (the recovery window must be one the
/// normal kernel never maps).
fn disjoint(cx: &mut Ctxt, earlier: &[Win<'_>], w: &Win<'_>) {
    let end = |x: &Win<'_>| u128::from(x.base) + u128::from(x.size);
    if let Some(p) = earlier
        .iter()
        .find(|p| u128::from(p.base) < end(w) && u128::from(w.base) < end(p))
    {
        cx.error_spanned_by(
            &w.decl.tokens,
            format!(
                "window `{}` ({:#x}..{:#x}) overlaps window `{}` ({:#x}..{:#x}); windows must be disjoint",
                names::plain(&w.decl.ident),
                w.base,
                end(w),
                names::plain(&p.decl.ident),
                p.base,
                end(p),
            ),
        );
    }
}
