//! Compile-time checked driver declarations for `paranoid`: use them through the
//! HAL's re-exports, `paranoid::{paranoid_init, register_block, dma_windows}`.
//!
//! Each macro lives in `src/<macro>/` as `parse.rs` (a typed view of the input),
//! `validate.rs` (the rules, one small function each) and `expand.rs` (code
//! generation). Every error is a `syn::Error` on the offending token; all are
//! gathered and reported together, next to a stub expansion so that only our
//! errors show. No input makes a macro panic (see `src/fuzz.rs`).
//!
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod ctxt;
mod dma;
#[cfg(test)]
mod fuzz;
mod init;
mod names;
mod num;
mod regs;

use proc_macro::TokenStream;

/// Checks a driver's init function at compile time and wraps it in a time
/// budget, an init trace and the reset escalation ladder.
///
/// ```text
/// #[paranoid_init(budget_ms = 2000)]
/// pub fn init<C: Clock>(dev: Device<D, Unknown>, ctx: &mut InitContext<'_, C>)
///     -> Result<Device<D, Ready>, Stalled<D>> { … }
/// // becomes
/// pub fn init<C: Clock>(device: D, clock: &C) -> Result<Initialized<D>, InitFailure<D>>
/// ```
///
/// `#[paranoid_init(max_budget_ms = N)]` instead lets the caller choose the
/// budget: the wrapper takes a third parameter, `budget: Duration`, and runs
/// within `min(budget, N ms)`.
///
/// The function is rewritten in place: it keeps its name, generics and
/// `where` clause, takes `(device, &clock)`, and hands its body, as a closure,
/// to `paranoid::init::run`. So it works as an associated function of a
/// generic `impl` (the body may use the `impl`'s parameters and `Self`), with
/// const generics and with `impl Clock` arguments.
///
/// Rejected: a wrong signature, a missing/zero/over-5-minute budget, unknown or
/// duplicate arguments, and in the body (closures, nested blocks and the
/// arguments of `matches!`, `debug_assert*!`, `write!`, `format_args!`,
/// `vec!` and other expression-argument macros included; nested `fn` items
/// not): `panic!`, `todo!`, `unimplemented!`, `unreachable!`, `assert!`,
/// `assert_eq!`, `assert_ne!`, `.unwrap()`, `.expect()`, `.unwrap_err()`,
/// `.expect_err()`, indexing by a non-constant, `loop`, `while`, iterators
/// that never end (`a..`, `.cycle()`, `iter::repeat`, `repeat_with`,
/// `successors`, `iter::from_fn`, unless bounded by `.take(n)` or `.zip` with
/// a bounded iterator) in a `for` or under a consumer such as `.find(..)`,
/// any `*volatile*` function or method, importing one (`use
/// core::ptr::read_volatile as r`), and `unsafe` blocks.
///
/// Accepted: constant indexes (literals, `CONST`, `Type::Variant as usize`,
/// `Type::CONST`, `CONST.len()`, `const { .. }`, arithmetic and ranges of
/// those: fixed in the program, so out of bounds on an array they fail the
/// build), `const { assert!(..) }` (decided at compile time), `debug_assert!`.
///
/// Calls are not followed: an attribute macro sees only its function, so
/// helper functions (same crate or not) are left to `cargo paranoid`, whose
/// `panic_in_recovery` lint follows every call from a `#[paranoid_init]`
/// function through the crate's call graph. See the crate documentation for a
/// complete example.
#[proc_macro_attribute]
pub fn paranoid_init(attr: TokenStream, item: TokenStream) -> TokenStream {
    init::expand(attr.into(), item.into()).into()
}

/// Declares a device's register block: typed accessors over any
/// `paranoid::mmio::RegisterIo`, one handle type per register with exactly the
/// methods its access allows, fields as constants and getters.
///
/// ```text
/// register_block! {
///     pub struct NvmeRegs, size = 0x1000;
///     CAP @ 0x00: u64, ro { TO: 24..=31, MQES: 0..=15 }
///     CC @ 0x14: u32, rw, reset = 0 { EN: 0 }
///     INTMS @ 0x0c: u32, wo;
/// }
/// ```
///
/// Rejected: misaligned offsets, overlapping registers, registers past `size`,
/// fields outside their register, overlapping or reversed fields, duplicate
/// names, reset values wider than the register, unknown widths or access modes.
/// See the crate documentation for the generated items.
#[proc_macro]
pub fn register_block(input: TokenStream) -> TokenStream {
    regs::expand(input.into()).into()
}

/// Declares the IOVA windows a system uses, as types implementing
/// `paranoid::dma::Window`, plus `WINDOWS` and `IOMMU_ADDRESS_WIDTH`.
///
/// ```text
/// dma_windows! {
///     address_width = 39;
///     pub Normal = 0 .. 0x4000_0000;
///     pub Recovery = 0x7f_fff0_0000;            // 1 MiB by default
/// }
/// ```
///
/// Rejected: a base or size that is not a multiple of the page size (4 KiB or
/// the declared `page_size`), zero or empty windows, overlapping windows,
/// windows past the address width, an address width outside 32..=64, bad page
/// sizes and duplicate names.
#[proc_macro]
pub fn dma_windows(input: TokenStream) -> TokenStream {
    dma::expand(input.into()).into()
}
