//! `unchecked_device_value`: a device-read value used as an index, size, shift or address unvalidated.

use super::{declare_lint, LintCx};
use crate::analysis::callgraph::for_each_fn;
use crate::analysis::taint::{self, Flow};
use crate::diagnostic::Finding;

declare_lint! {
    /// ### What it does
    /// Follows every value read from the device (registers, ports, volatile loads, DMA
    /// descriptors read through the `volatile` crate, reader functions) through locals, struct
    /// and tuple fields, arithmetic, casts, conversions and closures, and flags its use as an
    /// index, a slice length or range, a shift amount, an address or pointer offset, an
    /// allocation size or a loop bound before it was validated. A comparison (`if v < n`,
    /// a range `match`, `assert!`), `min`/`clamp`, `checked_*`, `.get(..)` and the
    /// `Untrusted` validators (`check_range`, `check_not_all_ones`, `validate`, `get_if`,
    /// `in_range`, `clamp_to`) validate it. Equality with all-ones does not: it only says
    /// the device is present.
    ///
    /// ### Why is this bad?
    /// A device left in a perverse state — or gone, reading all-ones — returns any value. Used
    /// unchecked it indexes past a table (a panic), shifts by 32 or more (a panic in debug,
    /// garbage in release), allocates gigabytes, or points DMA and MMIO at arbitrary memory.
    ///
    /// ### Example
    /// ```rust,ignore
    /// let head = regs.read32(RDH) as usize;
    /// let desc = &ring[head];
    /// ```
    ///
    /// ### Use instead
    /// ```rust,ignore
    /// let head = regs.read32(RDH).check_range(0..RING_LEN as u32)? as usize;
    /// let desc = &ring[head];
    /// ```
    pub UNCHECKED_DEVICE_VALUE, "unchecked_device_value", Deny, "a device-read value used as an index, size, shift, address or loop bound without validation", Some(check)
}

fn check(cx: &LintCx<'_>) -> Vec<Finding> {
    find(cx).into_iter().map(|f| report(cx, f)).collect()
}

/// Matches unvalidated flows in one file.
pub fn find(cx: &LintCx<'_>) -> Vec<Flow> {
    let mut out = Vec::new();
    for_each_fn(cx.ast, |f| {
        let dcx = cx.device_for(&f);
        out.extend(taint::analyze(&dcx, f.block));
    });
    out
}

fn report(cx: &LintCx<'_>, f: Flow) -> Finding {
    let what = match &f.var {
        Some(v) => format!("device-read value `{v}`"),
        None => "device-read value".to_string(),
    };
    Finding::new(
        "unchecked_device_value",
        format!("{what} used as {} without validation", f.sink.describe()),
        cx.span(f.span),
        format!("used as {} here", f.sink.describe()),
    )
    .with_secondary(cx.span(f.origin), "value read from the device here")
    .with_help("validate it first: compare it with its bound, use `min`/`.get(..)`/`checked_*`, or `Untrusted::check_range`")
    .with_note("a device in a bad state (or gone, reading all-ones) can return any value")
}
