//! `dma_outside_window`: DMA addresses built from literals or pointer casts instead of a window allocator.

use proc_macro2::Span as Span2;
use std::collections::HashSet;

use syn::visit::Visit;

use syn::spanned::Spanned;
use syn::{Expr, Type};

use super::{declare_lint, idents_of, LintCx};
use crate::analysis::access::{self, receiver_chain};
use crate::analysis::callgraph::for_each_fn;
use crate::diagnostic::Finding;

declare_lint! {
    /// ### What it does
    /// Flags a DMA address that does not come from a DMA window / IOVA allocator:
    /// a non-zero integer literal, a pointer cast to an integer (`buf.as_ptr() as u64`,
    /// `&x as *const _ as usize`) or a CPU-physical translation (`virt_to_phys(..)`),
    /// written into
    /// - a device register whose name says it holds an address (`ASQ`, `ACQ`, `RDBAL`,
    ///   `TDBAH`, `RTADDR`, `IQA`, anything with `addr`, `base`, `dma`, `prp`, `ring`, `desc`), or
    ///   (a CPU-physical translation, or a local bound from one, counts in a device write
    ///   whatever the register is called: `inner.rbstart.write(virt_to_phys(buf) as u32)`), or
    /// - an address field of a descriptor (`desc.addr = …`, `Descriptor { buffer_addr: … }`,
    ///   fields with `addr`, `dma`, `prp`, `phys` on `desc`/`ring`/`entry`/`cmd`/`sqe` values).
    ///
    /// ### Why is this bad?
    /// In the recovery kernel all DMA must go through the reserved IOMMU window: that is what
    /// tells recovery DMA (inside the window) from stale DMA of the dead kernel (outside),
    /// and what keeps a device from writing anywhere else. A raw address bypasses the
    /// IOMMU mapping, faults, or scribbles over memory the crash dump needs.
    ///
    /// ### Example
    /// ```rust,ignore
    /// regs.write64(ASQ, admin_sq.as_ptr() as u64);
    /// desc.addr = 0x8000_0000;
    /// ```
    ///
    /// ### Use instead
    /// ```rust,ignore
    /// let sq = window.alloc::<[SqEntry; 64]>(Direction::ToDevice)?;
    /// regs.write64(ASQ, sq.iova().as_u64());
    /// ```
    pub DMA_OUTSIDE_WINDOW, "dma_outside_window", Warn, "a dma address built from a literal or pointer cast instead of a dma window / iova allocator", Some(check)
}

/// A raw DMA address.
#[derive(Debug)]
pub struct RawDma {
    /// The raw value.
    pub value: Span2,
    /// Where it goes (register write or field).
    pub target: Span2,
    /// How the target is named.
    pub target_name: String,
}

const ADDR_WORDS: &[&str] = &[
    "addr",
    "address",
    "base",
    "dma",
    "prp",
    "prp1",
    "prp2",
    "asq",
    "acq",
    "rdbal",
    "rdbah",
    "tdbal",
    "tdbah",
    "rdba",
    "tdba",
    "sqba",
    "cqba",
    "rtaddr",
    "iqa",
    "dba",
    "bdp",
    "ring",
    "desc",
    "descriptor",
    "iova",
    "sgl",
];
const DESC_WORDS: &[&str] = &[
    "desc",
    "descriptor",
    "descs",
    "ring",
    "entry",
    "cmd",
    "command",
    "sqe",
    "prd",
    "td",
    "rd",
    "trb",
    "sge",
    "sgl",
];
const FIELD_WORDS: &[&str] = &[
    "addr", "address", "dma", "prp", "prp1", "prp2", "phys", "buffer",
];

fn check(cx: &LintCx<'_>) -> Vec<Finding> {
    find(cx).into_iter().map(|m| report(cx, m)).collect()
}

fn any_word(ids: &[String], set: &[&str]) -> Option<String> {
    ids.iter()
        .find(|i| access::words(i).iter().any(|w| set.contains(&w.as_str())))
        .cloned()
}

/// Whether `e` is a raw address: a non-zero literal, a pointer-to-integer cast, or `virt_to_phys`.
pub fn is_raw_address(e: &Expr) -> bool {
    match e {
        Expr::Lit(l) => {
            matches!(&l.lit, syn::Lit::Int(i) if i.base10_parse::<u128>().is_ok_and(|v| v >= 0x1000))
        }
        Expr::Paren(p) => is_raw_address(&p.expr),
        Expr::Group(g) => is_raw_address(&g.expr),
        Expr::Binary(b) => is_raw_address(&b.left) || is_raw_address(&b.right),
        Expr::Cast(c) => {
            let to_int = matches!(&*c.ty, Type::Path(_));
            to_int && (is_pointer(&c.expr) || is_raw_address(&c.expr))
        }
        Expr::Call(c) => access::callee_name(&c.func).is_some_and(|n| {
            matches!(
                n.as_str(),
                "virt_to_phys" | "to_phys" | "virt_to_bus" | "physical_address" | "phys_addr"
            )
        }),
        Expr::MethodCall(m) => {
            matches!(
                m.method.to_string().as_str(),
                "virt_to_phys" | "to_phys" | "physical_address" | "phys_addr"
            ) || (matches!(
                m.method.to_string().as_str(),
                "addr" | "expose_addr" | "expose_provenance"
            ) && is_pointer(&m.receiver))
        }
        _ => false,
    }
}

/// Whether `e` is a CPU-physical translation, possibly converted (`virt_to_phys(v).as_u64()
/// as u32`), or a local bound from one (in `translated`).
fn is_translation(e: &Expr, translated: &HashSet<String>) -> bool {
    match e {
        Expr::Paren(p) => is_translation(&p.expr, translated),
        Expr::Group(g) => is_translation(&g.expr, translated),
        Expr::Cast(c) => is_translation(&c.expr, translated),
        Expr::Path(p) => p
            .path
            .get_ident()
            .is_some_and(|i| translated.contains(&i.to_string())),
        Expr::Call(c) => {
            access::callee_name(&c.func).is_some_and(|n| TRANSLATIONS.contains(&n.as_str()))
        }
        Expr::MethodCall(m) => {
            TRANSLATIONS.contains(&m.method.to_string().as_str())
                || is_translation(&m.receiver, translated)
        }
        _ => false,
    }
}

/// Functions that turn a CPU virtual address into a physical or bus address.
const TRANSLATIONS: &[&str] = &[
    "virt_to_phys",
    "to_phys",
    "virt_to_bus",
    "physical_address",
    "phys_addr",
    "translate_addr",
];

/// Locals bound from a translation in `block` (`let p = virt_to_phys(v).as_u64() as u32;`).
fn translated_locals(block: &syn::Block) -> HashSet<String> {
    struct V(HashSet<String>);
    impl<'ast> Visit<'ast> for V {
        fn visit_local(&mut self, l: &'ast syn::Local) {
            if let (syn::Pat::Ident(pi), Some(init)) = (&l.pat, &l.init) {
                if is_translation(&init.expr, &self.0) {
                    self.0.insert(pi.ident.to_string());
                }
            }
            syn::visit::visit_local(self, l);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut v = V(HashSet::new());
    v.visit_block(block);
    v.0
}

fn is_pointer(e: &Expr) -> bool {
    match e {
        Expr::Cast(c) => matches!(&*c.ty, Type::Ptr(_)) || is_pointer(&c.expr),
        Expr::MethodCall(m) => matches!(
            m.method.to_string().as_str(),
            "as_ptr" | "as_mut_ptr" | "cast"
        ),
        Expr::Reference(_) => true,
        Expr::Paren(p) => is_pointer(&p.expr),
        Expr::Macro(m) => m
            .mac
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "addr_of" || s.ident == "addr_of_mut"),
        Expr::RawAddr(_) => true,
        _ => false,
    }
}

/// Matches raw DMA addresses in one file.
pub fn find(cx: &LintCx<'_>) -> Vec<RawDma> {
    let mut out = Vec::new();
    for_each_fn(cx.ast, |f| {
        let dcx = cx.device_for(&f);
        let translated = translated_locals(f.block);
        super::walk_exprs(f.block, &mut |e| match e {
            Expr::Assign(a) => {
                if let Expr::Field(fl) = &*a.left {
                    let syn::Member::Named(member) = &fl.member else {
                        return;
                    };
                    let mut chain = Vec::new();
                    receiver_chain(&fl.base, &mut chain);
                    let m = member.to_string();
                    let mw = access::words(&m);
                    let addr_field = mw.iter().any(|w| FIELD_WORDS.contains(&w.as_str()));
                    let strong = mw
                        .iter()
                        .any(|w| matches!(w.as_str(), "dma" | "prp" | "prp1" | "prp2" | "phys"));
                    if addr_field
                        && (strong || any_word(&chain, DESC_WORDS).is_some())
                        && is_raw_address(&a.right)
                    {
                        out.push(RawDma {
                            value: a.right.span(),
                            target: a.left.span(),
                            target_name: format!("`{}`", m),
                        });
                    }
                }
            }
            Expr::Struct(s) => {
                let sname = s
                    .path
                    .segments
                    .last()
                    .map(|x| x.ident.to_string())
                    .unwrap_or_default();
                if access::words(&sname)
                    .iter()
                    .any(|w| DESC_WORDS.contains(&w.as_str()))
                {
                    for fv in &s.fields {
                        let syn::Member::Named(n) = &fv.member else {
                            continue;
                        };
                        let nw = access::words(&n.to_string());
                        if nw.iter().any(|w| FIELD_WORDS.contains(&w.as_str()))
                            && is_raw_address(&fv.expr)
                        {
                            out.push(RawDma {
                                value: fv.expr.span(),
                                target: n.span(),
                                target_name: format!("`{sname}::{n}`"),
                            });
                        }
                    }
                }
            }
            _ => {
                let Some(acc) = dcx.classify(e) else { return };
                if acc.kind == access::AccessKind::Read {
                    return;
                }
                let (recv, args): (Option<&Expr>, Vec<&Expr>) = match e {
                    Expr::MethodCall(m) => (Some(&m.receiver), m.args.iter().collect()),
                    Expr::Call(c) => (None, c.args.iter().collect()),
                    _ => return,
                };
                let Some((value, rest)) = args.split_last() else {
                    return;
                };
                // The register is named by the receiver and the argument just before the
                // value; earlier arguments name the device (`cfg.write16(addr, 0x06, v)`).
                let mut ids = Vec::new();
                if let Some(r) = recv {
                    ids.extend(idents_of(r));
                }
                if let Some(reg) = rest.last() {
                    ids.extend(idents_of(reg));
                }
                if let Some(reg) = any_word(&ids, ADDR_WORDS) {
                    if is_raw_address(value) || is_translation(value, &translated) {
                        out.push(RawDma {
                            value: value.span(),
                            target: e.span(),
                            target_name: format!("`{reg}`"),
                        });
                    }
                } else if is_translation(value, &translated) {
                    // A CPU-physical address written to the device is a DMA address whatever
                    // the register is called (`rbstart`, `tx_dat[i]`).
                    let mut chain = Vec::new();
                    if let Some(r) = recv {
                        receiver_chain(r, &mut chain);
                    }
                    let reg = chain
                        .last()
                        .or(ids.last())
                        .cloned()
                        .unwrap_or_else(|| "a device register".into());
                    out.push(RawDma {
                        value: value.span(),
                        target: e.span(),
                        target_name: format!("`{reg}`"),
                    });
                }
            }
        });
    });
    out
}

fn report(cx: &LintCx<'_>, m: RawDma) -> Finding {
    Finding::new(
        "dma_outside_window",
        format!("dma address for {} does not come from a dma window", m.target_name),
        cx.span(m.value),
        "raw address: literal, pointer cast or cpu-physical translation",
    )
    .with_secondary(cx.span(m.target), "handed to the device here")
    .with_help("allocate the buffer from the reserved dma window and program its iova (`window.alloc(..)?.iova()`)")
    .with_note("recovery dma is recognised by its address alone: anything outside the window is treated as stale dma and faults")
}
