//! `device_io_in_panic_path`: device access in a panic handler, a panic hook, or what they call.

use proc_macro2::Span as Span2;
use syn::visit::Visit;
use syn::Expr;

use super::{declare_lint, reach_note, LintCx};
use crate::analysis::access::{self, Access};
use crate::analysis::callgraph::{for_each_fn, Reach};
use crate::diagnostic::Finding;

declare_lint! {
    /// ### What it does
    /// Flags any device access (register, port, volatile, reader or writer function) in a
    /// `#[panic_handler]` function, in a closure or function passed to
    /// `std::panic::set_hook`, in functions named under `[panic_path] functions` in
    /// `paranoid.toml`, and in every function of the same crate they call (by name).
    ///
    /// ### Why is this bad?
    /// The panicking kernel can no longer be trusted: its view of the device may be stale and
    /// a device access can hang, fault or corrupt state the recovery kernel relies on. The
    /// panic path should only record the crash and jump to the recovery kernel, which resets
    /// devices from a known state.
    ///
    /// ### Example
    /// ```rust,ignore
    /// #[panic_handler]
    /// fn panic(info: &PanicInfo) -> ! {
    ///     nic.regs().ctrl().write(CTRL_RST);
    ///     jump_to_recovery()
    /// }
    /// ```
    ///
    /// ### Use instead
    /// ```rust,ignore
    /// #[panic_handler]
    /// fn panic(info: &PanicInfo) -> ! {
    ///     crash_record::store(info);
    ///     jump_to_recovery()
    /// }
    /// ```
    pub DEVICE_IO_IN_PANIC_PATH, "device_io_in_panic_path", Deny, "device access in a panic handler, panic hook, or a function they call", Some(check)
}

/// A device access on the panic path.
#[derive(Debug)]
pub struct PanicPathIo {
    /// The access.
    pub access: Access,
    /// The function it is in and why it is on the panic path (`None` inside a hook closure).
    pub function: Option<(String, Reach)>,
}

fn check(cx: &LintCx<'_>) -> Vec<Finding> {
    find(cx).into_iter().map(|m| report(cx, m)).collect()
}

/// Matches device access on the panic path in one file.
pub fn find(cx: &LintCx<'_>) -> Vec<PanicPathIo> {
    let mut out = Vec::new();
    for_each_fn(cx.ast, |f| {
        let name = f.name();
        let dcx = cx.device_for(&f);
        if let Some(reach) =
            cx.krate
                .panic_path_of(&f, &cx.file.path.to_string_lossy(), cx.file.aux)
        {
            for access in access::accesses_in_block(&dcx, f.block) {
                out.push(PanicPathIo {
                    access,
                    function: Some((name.clone(), reach.clone())),
                });
            }
            return;
        }
        // Closures passed to `set_hook` in other functions.
        struct V<'a> {
            dcx: &'a access::DeviceCx,
            out: &'a mut Vec<PanicPathIo>,
        }
        impl<'ast> Visit<'ast> for V<'_> {
            fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
                if access::callee_name(&c.func).as_deref() == Some("set_hook") {
                    for a in &c.args {
                        for access in access::accesses_in_expr(self.dcx, a) {
                            self.out.push(PanicPathIo {
                                access,
                                function: None,
                            });
                        }
                    }
                    return;
                }
                syn::visit::visit_expr_call(self, c);
            }
            fn visit_expr(&mut self, e: &'ast Expr) {
                syn::visit::visit_expr(self, e);
            }
            fn visit_item(&mut self, _: &'ast syn::Item) {}
        }
        V {
            dcx: &dcx,
            out: &mut out,
        }
        .visit_block(f.block);
    });
    out
}

fn report(cx: &LintCx<'_>, m: PanicPathIo) -> Finding {
    let span: Span2 = m.access.span;
    let mut f = Finding::new(
        "device_io_in_panic_path",
        format!("device access (`{}`) on the panic path", m.access.what),
        cx.span(span),
        "touches a device while the kernel is panicking",
    )
    .with_help(
        "record the crash in memory and leave devices to the recovery kernel, which resets them",
    );
    match &m.function {
        Some((name, r)) => f = f.with_note(reach_note("on the panic path", name, r)),
        None => f = f.with_note("this closure is installed as a panic hook by `set_hook`"),
    }
    f
}
