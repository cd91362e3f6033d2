//! `raw_mmio`: volatile, raw-pointer or port-assembly device access outside a HAL.

use super::{declare_lint, LintCx};
use crate::analysis::access::{self, Access, AccessKind, Form};
use crate::analysis::callgraph::for_each_fn;
use crate::diagnostic::Finding;

declare_lint! {
    /// ### What it does
    /// Flags raw device access outside HAL code: `read_volatile`/`write_volatile` (function or
    /// method form, `core::ptr` or `std::ptr`) on a pointer that looks like device memory,
    /// dereferences of integers cast to raw pointers, and `asm!` port instructions
    /// (`in`, `out`, `ins`, `outs`). Files of HAL crates (`[hal] crates`, by default
    /// `paranoid`) and HAL paths (`[hal] paths`) are exempt.
    ///
    /// ### Why is this bad?
    /// Raw access bypasses the HAL's guarantees: access width and ordering, no references to
    /// device memory, read values wrapped as untrusted, and a simulated backend for tests.
    /// Each raw access is one more place that can tear a 64-bit register or let the
    /// compiler merge accesses.
    ///
    /// ### Example
    /// ```rust,ignore
    /// let csts = unsafe { core::ptr::read_volatile(bar0.add(0x1c) as *const u32) };
    /// ```
    ///
    /// ### Use instead
    /// ```rust,ignore
    /// let csts = regs.csts().read();
    /// ```
    pub RAW_MMIO, "raw_mmio", Warn, "raw volatile, pointer or port access to a device outside a hal", Some(check)
}

fn check(cx: &LintCx<'_>) -> Vec<Finding> {
    find(cx).into_iter().map(|a| report(cx, a)).collect()
}

/// Matches raw accesses in one file (none in HAL files).
pub fn find(cx: &LintCx<'_>) -> Vec<Access> {
    if cx.is_hal {
        return Vec::new();
    }
    let mut out = Vec::new();
    for_each_fn(cx.ast, |f| {
        let dcx = cx.device_for(&f);
        out.extend(
            access::accesses_in_block(&dcx, f.block)
                .into_iter()
                .filter(Access::is_raw),
        );
    });
    out
}

fn report(cx: &LintCx<'_>, a: Access) -> Finding {
    let how = match a.form {
        Form::Volatile => format!(
            "`{}`",
            a.what.trim_start_matches('.').trim_end_matches("()")
        ),
        Form::RawDeref => "a raw pointer dereference".to_string(),
        _ => "`asm!` port i/o".to_string(),
    };
    let dir = match a.kind {
        AccessKind::Read => "read",
        AccessKind::Write => "write",
        AccessKind::Modify => "read-modify-write",
    };
    Finding::new(
        "raw_mmio",
        format!("raw device {dir} through {how} outside the hal"),
        cx.span(a.span),
        format!("raw device {dir}"),
    )
    .with_help("use the hal's register accessors (e.g. `regs.csts().read()`, `Port`), or list this module under `[hal] paths` in `paranoid.toml`")
}
