//! `enable_before_reset`: bus mastering or DMA enabled before the device was reset.

use proc_macro2::Span as Span2;
use syn::Expr;

use super::{declare_lint, idents_of, is_init_like, is_reset_name, mentions_reset_bit, LintCx};
use crate::analysis::access::{self, AccessKind, DeviceCx};
use crate::analysis::callgraph::{for_each_fn, FnRef};
use crate::diagnostic::Finding;

declare_lint! {
    /// ### What it does
    /// Flags a step that lets the device master the bus — `enable_dma(..)`,
    /// `set_bus_master(true)`, `enable_bus_master()`, or a register write mentioning a
    /// bus-master bit (`BUS_MASTER`, `BME`, `CMD_MASTER`), a DMA-enable bit (`DMA_EN`) or NVMe
    /// `CC.EN` (`CC_EN`, `Cc::EN`, `CC::EN::SET`) — when no reset or quiesce step
    /// (a call whose name says `reset`, `quiesce`, `flr`, `disable`, `shutdown`, or a write of a
    /// `RST`/`RESET` bit) came before it in the same function. It fires in bring-up
    /// functions (named like `init`, `probe`, `attach`, `start`, `setup`, or marked
    /// `#[paranoid_init]`) and in any function where a reset follows the enable.
    ///
    /// ### Why is this bad?
    /// The device was left by a dead kernel: its rings point into memory that now belongs to
    /// someone else. Enabling bus mastering before a reset lets it resume DMA from those
    /// stale rings into the recovery kernel's memory.
    ///
    /// ### Example
    /// ```rust,ignore
    /// pci.set_bus_master(true);
    /// nvme.reset()?;
    /// ```
    ///
    /// ### Use instead
    /// ```rust,ignore
    /// let dev = dev.quiesce()?.reset()?.verify()?;
    /// let dev = dev.enable_dma(window)?;
    /// ```
    pub ENABLE_BEFORE_RESET, "enable_before_reset", Deny, "bus mastering or dma enabled before a reset step", Some(check)
}

/// An enable without a prior reset.
#[derive(Debug)]
pub struct EarlyEnable {
    /// The enable step.
    pub span: Span2,
    /// What it is.
    pub what: String,
    /// A reset that comes after it, if any.
    pub later_reset: Option<Span2>,
}

/// One ordered event of a function body.
#[derive(Debug, Clone)]
pub enum Event {
    /// A reset or quiesce step.
    Reset(Span2),
    /// An enable step, with its description.
    Enable(Span2, String),
}

fn check(cx: &LintCx<'_>) -> Vec<Finding> {
    find(cx).into_iter().map(|m| report(cx, m)).collect()
}

/// Matches early enables in one file.
pub fn find(cx: &LintCx<'_>) -> Vec<EarlyEnable> {
    let mut out = Vec::new();
    let path = cx.file.path.to_string_lossy();
    for_each_fn(cx.ast, |f| {
        let dcx = cx.device_for(&f);
        let events = events(&dcx, &f);
        let init = is_init_like(&f.name())
            || f.has_attr("paranoid_init")
            || cx
                .krate
                .recovery_of(&f, &path, cx.file.aux)
                .is_some_and(|r| r.via.is_none());
        let mut reset_seen = false;
        for (i, ev) in events.iter().enumerate() {
            match ev {
                Event::Reset(_) => reset_seen = true,
                Event::Enable(span, what) if !reset_seen => {
                    let later_reset = events[i + 1..].iter().find_map(|e| match e {
                        Event::Reset(s) => Some(*s),
                        Event::Enable(..) => None,
                    });
                    if init || later_reset.is_some() {
                        out.push(EarlyEnable {
                            span: *span,
                            what: what.clone(),
                            later_reset,
                        });
                    }
                    break;
                }
                Event::Enable(..) => {}
            }
        }
    });
    out
}

/// Reset and enable events of a function, in source order.
pub fn events(dcx: &DeviceCx, f: &FnRef<'_>) -> Vec<Event> {
    let mut out = Vec::new();
    super::walk_exprs(f.block, &mut |e| {
        if let Some(ev) = classify(dcx, e) {
            out.push(ev);
        }
    });
    out
}

fn is_true(e: Option<&Expr>) -> bool {
    matches!(e, Some(Expr::Lit(l)) if matches!(&l.lit, syn::Lit::Bool(b) if b.value))
}

fn enable_bits(ids: &[String]) -> Option<String> {
    for (i, id) in ids.iter().enumerate() {
        let w = access::words(id);
        let lower = id.to_ascii_lowercase();
        if w.iter()
            .any(|w| matches!(w.as_str(), "master" | "busmaster" | "bme" | "mastering"))
        {
            return Some(format!("`{id}`"));
        }
        if lower == "cc_en" || (lower == "en" && i > 0 && ids[i - 1].eq_ignore_ascii_case("cc")) {
            return Some("`CC.EN`".to_string());
        }
        if w.len() >= 2
            && w.contains(&"dma".to_string())
            && w.iter().any(|x| x == "en" || x == "enable")
        {
            return Some(format!("`{id}`"));
        }
    }
    None
}

fn classify(dcx: &DeviceCx, e: &Expr) -> Option<Event> {
    use syn::spanned::Spanned;
    let (name, args): (String, Vec<&Expr>) = match e {
        Expr::MethodCall(m) => (m.method.to_string(), m.args.iter().collect()),
        Expr::Call(c) => (access::callee_name(&c.func)?, c.args.iter().collect()),
        _ => return None,
    };
    let lname = name.to_ascii_lowercase();
    match lname.as_str() {
        "enable_dma"
        | "enable_bus_master"
        | "enable_busmaster"
        | "bus_master_enable"
        | "enable_bus_mastering" => {
            return Some(Event::Enable(e.span(), format!("`{name}`")));
        }
        "set_bus_master" | "set_bus_mastering" | "set_master" if is_true(args.first().copied()) => {
            return Some(Event::Enable(e.span(), format!("`{name}(true)`")));
        }
        _ => {}
    }
    if let Some(acc) = dcx.classify(e) {
        if acc.kind != AccessKind::Read {
            let ids: Vec<String> = args.iter().flat_map(|a| idents_of(a)).collect();
            if mentions_reset_bit(&ids) {
                return Some(Event::Reset(e.span()));
            }
            if let Some(bit) = enable_bits(&ids) {
                return Some(Event::Enable(e.span(), format!("a write of {bit}")));
            }
        }
        return None;
    }
    is_reset_name(&name).then(|| Event::Reset(e.span()))
}

fn report(cx: &LintCx<'_>, m: EarlyEnable) -> Finding {
    let mut f = Finding::new(
        "enable_before_reset",
        format!("{} enables bus mastering before the device was reset", m.what),
        cx.span(m.span),
        "device may resume dma from the dead kernel's rings here",
    )
    .with_help("quiesce and reset the device first (bus master off, reset, wait for reset done), then enable dma");
    if let Some(r) = m.later_reset {
        f = f.with_secondary(cx.span(r), "the reset only happens here");
    }
    f.with_note("with the `paranoid` hal: `dev.quiesce()?.reset()?.verify()?.enable_dma(window)?`")
}
