//! Functions of a file, per-file summaries, and the per-crate call graph (by name).
//!
//! Syntax trees are not `Send`, so each file is summarised where it is parsed and the
//! summaries (plain strings) are merged into a [`CrateInfo`] shared by every file's lints.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use syn::visit::Visit;
use syn::{Attribute, Block, Expr, Signature, Visibility};

use crate::device::{self, AccessKind, DeviceCx};

/// A function (free, inherent or trait method, nested) seen in a file.
#[derive(Clone, Copy)]
pub struct FnRef<'a> {
    /// Its attributes.
    pub attrs: &'a [Attribute],
    /// Its signature.
    pub sig: &'a Signature,
    /// Its body.
    pub block: &'a Block,
    /// Whether it is `pub` (any `pub(..)` counts).
    pub is_pub: bool,
}

impl FnRef<'_> {
    /// The function's name.
    pub fn name(&self) -> String {
        self.sig.ident.to_string()
    }

    /// Whether it carries an attribute whose path ends in `name`.
    pub fn has_attr(&self, name: &str) -> bool {
        has_attr(self.attrs, name)
    }
}

/// Whether `attrs` has an attribute whose path ends in `name`.
pub fn has_attr(attrs: &[Attribute], name: &str) -> bool {
    attrs
        .iter()
        .any(|a| a.path().segments.last().is_some_and(|s| s.ident == name))
}

/// Calls `f` for every function with a body in `file`, in source order.
pub fn for_each_fn<'a>(file: &'a syn::File, mut f: impl FnMut(FnRef<'a>)) {
    struct V<'a, F> {
        f: F,
        _p: std::marker::PhantomData<&'a ()>,
    }
    impl<'a, F: FnMut(FnRef<'a>)> Visit<'a> for V<'a, F> {
        fn visit_item_fn(&mut self, i: &'a syn::ItemFn) {
            (self.f)(FnRef {
                attrs: &i.attrs,
                sig: &i.sig,
                block: &i.block,
                is_pub: !matches!(i.vis, Visibility::Inherited),
            });
            syn::visit::visit_item_fn(self, i);
        }
        fn visit_impl_item_fn(&mut self, i: &'a syn::ImplItemFn) {
            (self.f)(FnRef {
                attrs: &i.attrs,
                sig: &i.sig,
                block: &i.block,
                is_pub: !matches!(i.vis, Visibility::Inherited),
            });
            syn::visit::visit_impl_item_fn(self, i);
        }
        fn visit_trait_item_fn(&mut self, i: &'a syn::TraitItemFn) {
            if let Some(block) = &i.default {
                (self.f)(FnRef {
                    attrs: &i.attrs,
                    sig: &i.sig,
                    block,
                    is_pub: true,
                });
            }
            syn::visit::visit_trait_item_fn(self, i);
        }
    }
    let mut v = V {
        f: &mut f,
        _p: std::marker::PhantomData,
    };
    v.visit_file(file);
}

/// Names of the functions and methods called in `block` (last path segment).
pub fn calls_in(block: &Block) -> Vec<String> {
    struct V(Vec<String>);
    impl<'ast> Visit<'ast> for V {
        fn visit_expr(&mut self, e: &'ast Expr) {
            match e {
                Expr::Call(c) => {
                    if let Some(n) = device::callee_name(&c.func) {
                        self.0.push(n);
                    }
                    // Function paths passed as values (`map(helper)`) may be called too.
                    for a in &c.args {
                        if let Expr::Path(p) = a {
                            if let Some(s) = p.path.segments.last() {
                                self.0.push(s.ident.to_string());
                            }
                        }
                    }
                }
                Expr::MethodCall(m) => self.0.push(m.method.to_string()),
                _ => {}
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut v = V(Vec::new());
    v.visit_block(block);
    v.0
}

/// Names mentioned inside the arguments of `set_hook(..)` / `take_hook` wrappers in `block`.
pub fn panic_hook_targets(block: &Block) -> Vec<String> {
    struct V(Vec<String>);
    impl<'ast> Visit<'ast> for V {
        fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
            if device::callee_name(&c.func).as_deref() == Some("set_hook") {
                for a in &c.args {
                    let mut ids = Vec::new();
                    device::idents(quote::ToTokens::to_token_stream(a), &mut ids);
                    self.0.extend(ids);
                }
            }
            syn::visit::visit_expr_call(self, c);
        }
    }
    let mut v = V(Vec::new());
    v.visit_block(block);
    v.0
}

/// What one file contributes to its crate's analysis.
#[derive(Debug, Clone, Default)]
pub struct FileSummary {
    /// Functions by name → names they call.
    pub calls: Vec<(String, Vec<String>)>,
    /// `#[paranoid_init]` functions.
    pub init_roots: Vec<String>,
    /// `#[panic_handler]` functions and names passed to panic hooks.
    pub panic_roots: Vec<String>,
    /// Fields of register types.
    pub reg_fields: Vec<String>,
    /// Functions that read the device and return the value (wrappers like `fn read_reg`).
    pub derived_readers: Vec<String>,
}

/// Summarises one parsed file.
pub fn summarize(file: &syn::File, base: &DeviceCx) -> FileSummary {
    let mut s = FileSummary {
        reg_fields: device::register_fields(file),
        ..FileSummary::default()
    };
    let mut cx = base.clone();
    std::sync::Arc::make_mut(&mut cx.reg_fields).extend(s.reg_fields.iter().cloned());
    for_each_fn(file, |f| {
        let name = f.name();
        s.calls.push((name.clone(), calls_in(f.block)));
        if f.has_attr("paranoid_init") {
            s.init_roots.push(name.clone());
        }
        if f.has_attr("panic_handler") {
            s.panic_roots.push(name.clone());
        }
        s.panic_roots.extend(panic_hook_targets(f.block));
        if returns_value(f.sig) {
            let fcx = cx.for_block(f.block);
            if device::accesses_in_block(&fcx, f.block)
                .iter()
                .any(|a| a.kind == AccessKind::Read)
            {
                s.derived_readers.push(name);
            }
        }
    });
    s
}

/// Whether a signature returns an integer or `Untrusted<..>` (a device value).
fn returns_value(sig: &Signature) -> bool {
    match &sig.output {
        syn::ReturnType::Default => false,
        syn::ReturnType::Type(_, ty) => device::type_name(ty).is_some_and(|n| {
            matches!(
                n.as_str(),
                "u8" | "u16"
                    | "u32"
                    | "u64"
                    | "u128"
                    | "usize"
                    | "i8"
                    | "i16"
                    | "i32"
                    | "i64"
                    | "Untrusted"
            )
        }),
    }
}

/// Why a function belongs to a set (recovery code, panic path): the root and the call chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// The function the set starts from.
    pub root: String,
    /// What makes the root a root (`#[paranoid_init]`, `#[panic_handler]`, …).
    pub why: String,
    /// The caller through which this function was reached (none for the root itself).
    pub via: Option<String>,
}

/// Everything the lints of one file need to know about its crate.
#[derive(Debug, Clone, Default)]
pub struct CrateInfo {
    /// Crate (package) name.
    pub name: String,
    /// Device names (defaults, configuration, register fields, derived readers).
    pub device: DeviceCx,
    /// Recovery functions by name.
    pub recovery: HashMap<String, Reach>,
    /// Panic-path functions by name.
    pub panic_path: HashMap<String, Reach>,
    /// Functions that read the device and return the value (reader wrappers).
    pub derived_readers: HashSet<String>,
}

impl CrateInfo {
    /// Merges file summaries with configured names.
    pub fn build(
        name: &str,
        base: DeviceCx,
        summaries: &[FileSummary],
        recovery_names: &[String],
        panic_names: &[String],
    ) -> Self {
        let mut device = base;
        let mut graph: BTreeMap<String, HashSet<String>> = BTreeMap::new();
        let mut init_roots = Vec::new();
        let mut panic_roots = Vec::new();
        for s in summaries {
            std::sync::Arc::make_mut(&mut device.reg_fields).extend(s.reg_fields.iter().cloned());
            std::sync::Arc::make_mut(&mut device.readers).extend(s.derived_readers.iter().cloned());
            for (f, calls) in &s.calls {
                graph
                    .entry(f.clone())
                    .or_default()
                    .extend(calls.iter().cloned());
            }
            init_roots.extend(
                s.init_roots
                    .iter()
                    .map(|r| (r.clone(), "#[paranoid_init]".to_string())),
            );
            panic_roots.extend(
                s.panic_roots
                    .iter()
                    .map(|r| (r.clone(), "a panic handler or hook".to_string())),
            );
        }
        // Hook arguments name everything in them (`Box`, `new`, …): keep crate functions only.
        panic_roots.retain(|(r, _)| graph.contains_key(r));
        init_roots.extend(recovery_names.iter().map(|r| {
            (
                r.clone(),
                "named in `[recovery]` of the configuration".to_string(),
            )
        }));
        panic_roots.extend(panic_names.iter().map(|r| {
            (
                r.clone(),
                "named in `[panic_path]` of the configuration".to_string(),
            )
        }));
        Self {
            name: name.to_string(),
            device,
            derived_readers: summaries
                .iter()
                .flat_map(|s| s.derived_readers.iter().cloned())
                .collect(),
            recovery: reach(&graph, &init_roots),
            panic_path: reach(&graph, &panic_roots),
        }
    }
}

fn reach(
    graph: &BTreeMap<String, HashSet<String>>,
    roots: &[(String, String)],
) -> HashMap<String, Reach> {
    let mut out: HashMap<String, Reach> = HashMap::new();
    let mut queue = VecDeque::new();
    for (r, why) in roots {
        if !out.contains_key(r) {
            out.insert(
                r.clone(),
                Reach {
                    root: r.clone(),
                    why: why.clone(),
                    via: None,
                },
            );
            queue.push_back(r.clone());
        }
    }
    while let Some(f) = queue.pop_front() {
        let Some(callees) = graph.get(&f) else {
            continue;
        };
        let parent = out.get(&f).cloned();
        let mut callees: Vec<&String> = callees.iter().collect();
        callees.sort();
        for c in callees {
            if graph.contains_key(c) && !out.contains_key(c) {
                if let Some(p) = &parent {
                    out.insert(
                        c.clone(),
                        Reach {
                            root: p.root.clone(),
                            why: p.why.clone(),
                            via: Some(f.clone()),
                        },
                    );
                    queue.push_back(c.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_set_follows_calls() {
        let file: syn::File = syn::parse_str(
            "#[paranoid_init] fn init() { step(); } fn step() { self.deeper(); } impl X { fn deeper(&self) {} } fn unrelated() {}
             #[panic_handler] fn ph(_: &PanicInfo) -> ! { halt() } fn halt() -> ! { loop {} }
             fn main() { std::panic::set_hook(Box::new(my_hook)); } fn my_hook(_: &PanicHookInfo) {}",
        )
        .unwrap();
        let s = summarize(&file, &DeviceCx::default());
        let c = CrateInfo::build("x", DeviceCx::default(), &[s], &["extra".into()], &[]);
        assert!(c.recovery.contains_key("init"));
        assert!(c.recovery.contains_key("step"));
        assert_eq!(c.recovery["deeper"].via.as_deref(), Some("step"));
        assert!(!c.recovery.contains_key("unrelated"));
        assert!(c.recovery.contains_key("extra"));
        assert!(c.panic_path.contains_key("ph"));
        assert!(c.panic_path.contains_key("halt"));
        assert!(c.panic_path.contains_key("my_hook"));
        assert!(!c.panic_path.contains_key("main"));
    }

    #[test]
    fn wrappers_become_readers() {
        let file: syn::File = syn::parse_str(
            "fn read_reg(&self, off: usize) -> u32 { unsafe { core::ptr::read_volatile(self.base.add(off) as *const u32) } }
             fn not_reader(&self) -> u32 { 3 }",
        )
        .unwrap();
        let s = summarize(&file, &DeviceCx::new(&[], &[]));
        assert_eq!(s.derived_readers, ["read_reg"]);
    }
}
