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
    /// Whether it sits under a `#[cfg(test)]` item (test code, not part of the built crate).
    pub test_only: bool,
    /// The type of its `impl` block (last identifier) or its trait, `None` for free functions.
    pub owner: Option<&'a syn::Ident>,
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

/// Whether `attrs` has `#[cfg(test)]` (or a `cfg(all(test, ..))`: any `cfg` whose predicate
/// requires `test`, that is `test` not under `not(..)` or `any(..)`).
pub fn is_cfg_test(attrs: &[Attribute]) -> bool {
    fn requires_test(m: &syn::Meta) -> bool {
        match m {
            syn::Meta::Path(p) => p.is_ident("test"),
            syn::Meta::List(l) if l.path.is_ident("all") => l
                .parse_args_with(
                    syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
                )
                .is_ok_and(|ms| ms.iter().any(requires_test)),
            _ => false,
        }
    }
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.parse_args::<syn::Meta>().is_ok_and(|m| requires_test(&m))
    })
}

/// Calls `f` for every function with a body in `file`, in source order.
pub fn for_each_fn<'a>(file: &'a syn::File, mut f: impl FnMut(FnRef<'a>)) {
    struct V<'a, F> {
        f: F,
        /// Depth of enclosing `#[cfg(test)]` items.
        in_test: usize,
        /// The enclosing `impl` type or trait.
        owner: Option<&'a syn::Ident>,
        _p: std::marker::PhantomData<&'a ()>,
    }
    impl<'a, F: FnMut(FnRef<'a>)> V<'a, F> {
        fn owned(&mut self, owner: Option<&'a syn::Ident>, walk: impl FnOnce(&mut Self)) {
            let saved = std::mem::replace(&mut self.owner, owner);
            walk(self);
            self.owner = saved;
        }
        fn scoped(&mut self, attrs: &[Attribute], walk: impl FnOnce(&mut Self)) {
            let t = is_cfg_test(attrs);
            self.in_test += usize::from(t);
            walk(self);
            self.in_test -= usize::from(t);
        }
    }
    impl<'a, F: FnMut(FnRef<'a>)> Visit<'a> for V<'a, F> {
        fn visit_item_mod(&mut self, i: &'a syn::ItemMod) {
            self.scoped(&i.attrs, |v| syn::visit::visit_item_mod(v, i));
        }
        fn visit_item_impl(&mut self, i: &'a syn::ItemImpl) {
            let owner = match &*i.self_ty {
                syn::Type::Path(p) => p.path.segments.last().map(|s| &s.ident),
                _ => None,
            };
            self.scoped(&i.attrs, |v| {
                v.owned(owner, |v| syn::visit::visit_item_impl(v, i));
            });
        }
        fn visit_item_trait(&mut self, i: &'a syn::ItemTrait) {
            self.scoped(&i.attrs, |v| {
                v.owned(Some(&i.ident), |v| syn::visit::visit_item_trait(v, i));
            });
        }
        fn visit_item_fn(&mut self, i: &'a syn::ItemFn) {
            // A free function, also when nested in a method body.
            self.owned(None, |v| {
                v.scoped(&i.attrs, |v| {
                    (v.f)(FnRef {
                        attrs: &i.attrs,
                        sig: &i.sig,
                        block: &i.block,
                        is_pub: !matches!(i.vis, Visibility::Inherited),
                        test_only: v.in_test > 0,
                        owner: None,
                    });
                    syn::visit::visit_item_fn(v, i);
                });
            });
        }
        fn visit_impl_item_fn(&mut self, i: &'a syn::ImplItemFn) {
            self.scoped(&i.attrs, |v| {
                (v.f)(FnRef {
                    attrs: &i.attrs,
                    sig: &i.sig,
                    block: &i.block,
                    is_pub: !matches!(i.vis, Visibility::Inherited),
                    test_only: v.in_test > 0,
                    owner: v.owner,
                });
                syn::visit::visit_impl_item_fn(v, i);
            });
        }
        fn visit_trait_item_fn(&mut self, i: &'a syn::TraitItemFn) {
            self.scoped(&i.attrs, |v| {
                if let Some(block) = &i.default {
                    (v.f)(FnRef {
                        attrs: &i.attrs,
                        sig: &i.sig,
                        block,
                        is_pub: true,
                        test_only: v.in_test > 0,
                        owner: v.owner,
                    });
                }
                syn::visit::visit_trait_item_fn(v, i);
            });
        }
    }
    let mut v = V {
        f: &mut f,
        in_test: 0,
        owner: None,
        _p: std::marker::PhantomData,
    };
    v.visit_file(file);
}

/// A call seen in a function body: the callee's name and, when the syntax says which type
/// it belongs to (`self.f()`, `Self::f()`, `Type::f()`), that type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Call {
    /// The type the callee is looked up on first (last identifier), if known.
    pub on: Option<String>,
    /// The callee's name (last path segment).
    pub name: String,
}

/// Names of the functions and methods called in `block` (last path segment).
pub fn calls_in(block: &Block) -> Vec<String> {
    calls_of(block, None, &HashSet::new())
        .into_iter()
        .map(|c| c.name)
        .collect()
}

/// Calls in the body of `f`: `self.m()` and `Self::m()` are looked up on `f`'s owner,
/// `Type::m()` on `Type`; a path passed as an argument (`map(helper)`) counts as a call unless
/// it names a parameter or local of `f`.
pub fn calls_of_fn(f: &FnRef<'_>) -> Vec<Call> {
    let mut bound = HashSet::new();
    for input in &f.sig.inputs {
        if let syn::FnArg::Typed(t) = input {
            pat_idents(&t.pat, &mut bound);
        }
    }
    struct L<'b>(&'b mut HashSet<String>);
    impl<'ast> Visit<'ast> for L<'_> {
        fn visit_local(&mut self, l: &'ast syn::Local) {
            pat_idents(&l.pat, self.0);
            syn::visit::visit_local(self, l);
        }
        fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
            for p in &c.inputs {
                pat_idents(p, self.0);
            }
            syn::visit::visit_expr_closure(self, c);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    L(&mut bound).visit_block(f.block);
    calls_of(f.block, f.owner.map(ToString::to_string), &bound)
}

fn pat_idents(p: &syn::Pat, out: &mut HashSet<String>) {
    struct P<'b>(&'b mut HashSet<String>);
    impl<'ast> Visit<'ast> for P<'_> {
        fn visit_pat_ident(&mut self, i: &'ast syn::PatIdent) {
            self.0.insert(i.ident.to_string());
            syn::visit::visit_pat_ident(self, i);
        }
    }
    P(out).visit_pat(p);
}

fn calls_of(block: &Block, owner: Option<String>, bound: &HashSet<String>) -> Vec<Call> {
    struct V<'b> {
        out: Vec<Call>,
        owner: Option<String>,
        bound: &'b HashSet<String>,
    }
    impl V<'_> {
        fn push(&mut self, on: Option<String>, name: String) {
            self.out.push(Call { on, name });
        }
    }
    impl<'ast> Visit<'ast> for V<'_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            match e {
                Expr::Call(c) => {
                    if let Some(n) = device::callee_name(&c.func) {
                        let path = device::callee_path(&c.func);
                        let on = match path.len().checked_sub(2).and_then(|i| path.get(i)) {
                            Some(t) if t == "Self" => self.owner.clone(),
                            Some(t) if t.starts_with(|c: char| c.is_ascii_uppercase()) => {
                                Some(t.clone())
                            }
                            _ => None,
                        };
                        self.push(on, n);
                    }
                    // Function paths passed as values (`map(helper)`) may be called too.
                    for a in &c.args {
                        if let Expr::Path(p) = a {
                            if let Some(s) = p.path.segments.last() {
                                let name = s.ident.to_string();
                                if p.path.segments.len() > 1 || !self.bound.contains(&name) {
                                    self.push(None, name);
                                }
                            }
                        }
                    }
                }
                Expr::MethodCall(m) => {
                    let on_self = matches!(&*m.receiver, Expr::Path(p) if p.path.is_ident("self"));
                    let on = if on_self { self.owner.clone() } else { None };
                    self.push(on, m.method.to_string());
                }
                _ => {}
            }
            syn::visit::visit_expr(self, e);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut v = V {
        out: Vec::new(),
        owner,
        bound,
    };
    v.visit_block(block);
    v.out
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
///
/// Every function is tagged with its side: *auxiliary* when it belongs to a test, bench or
/// example target (each a crate of its own, which the library cannot call) or sits under
/// `#[cfg(test)]`; the library or binary code otherwise.
#[derive(Debug, Clone, Default)]
pub struct FileSummary {
    /// Functions → the calls they make.
    pub calls: Vec<(FnId, Vec<Call>)>,
    /// `#[paranoid_init]` functions.
    pub init_roots: Vec<FnId>,
    /// `#[panic_handler]` functions.
    pub panic_roots: Vec<FnId>,
    /// Names passed to panic hooks (`set_hook(Box::new(on_panic))`), and whether auxiliary.
    pub hook_names: Vec<(String, bool)>,
    /// Fields of register types.
    pub reg_fields: Vec<String>,
    /// Functions that read the device and return the value (wrappers like `fn read_reg`).
    pub derived_readers: Vec<String>,
}

/// Summarises one parsed file; `aux` when the whole file belongs to a test, bench or
/// example target.
pub fn summarize(file: &syn::File, base: &DeviceCx, aux: bool) -> FileSummary {
    let mut s = FileSummary {
        reg_fields: device::register_fields(file),
        ..FileSummary::default()
    };
    let mut cx = base.clone();
    std::sync::Arc::make_mut(&mut cx.reg_fields).extend(s.reg_fields.iter().cloned());
    for_each_fn(file, |f| {
        let name = f.name();
        let id = FnId::of(&f, aux);
        s.calls.push((id.clone(), calls_of_fn(&f)));
        if f.has_attr("paranoid_init") {
            s.init_roots.push(id.clone());
        }
        if f.has_attr("panic_handler") {
            s.panic_roots.push(id.clone());
        }
        s.hook_names
            .extend(panic_hook_targets(f.block).into_iter().map(|n| (n, id.aux)));
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

/// A function of the crate: its owner type or trait (if a method), its name, and its side
/// (*auxiliary*: in a test, bench or example target, or under `#[cfg(test)]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FnId {
    /// The `impl` type or trait it is defined in (last identifier).
    pub owner: Option<String>,
    /// Its name.
    pub name: String,
    /// Whether it is auxiliary code.
    pub aux: bool,
}

impl FnId {
    /// The id of `f` in a file that is (`aux`) or is not auxiliary.
    pub fn of(f: &FnRef<'_>, aux: bool) -> Self {
        Self {
            owner: f.owner.map(ToString::to_string),
            name: f.name(),
            aux: aux || f.test_only,
        }
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
///
/// The call graph is built by name, refined by what the syntax says: `self.m()` and
/// `Self::m()` go to the caller's own type's `m` when it has one, `Type::m()` to `Type`'s,
/// other calls to every function named `m`. Library code is reached only through library
/// functions (a test, bench or example is a crate of its own that the library cannot call);
/// auxiliary code is reached from auxiliary roots through every function of the package.
#[derive(Debug, Clone, Default)]
pub struct CrateInfo {
    /// Crate (package) name.
    pub name: String,
    /// Device names (defaults, configuration, register fields, derived readers).
    pub device: DeviceCx,
    /// Recovery functions.
    pub recovery: HashMap<FnId, Reach>,
    /// Panic-path functions.
    pub panic_path: HashMap<FnId, Reach>,
    /// Functions that read the device and return the value (reader wrappers).
    pub derived_readers: HashSet<String>,
}

/// Callees by caller.
type Graph = BTreeMap<FnId, HashSet<Call>>;

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
        let mut graph: Graph = BTreeMap::new();
        let mut init_roots = Vec::new();
        let mut panic_roots = Vec::new();
        let mut hook_names = Vec::new();
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
            hook_names.extend(s.hook_names.iter().cloned());
        }
        let defs = Defs::new(&graph);
        // Hook arguments name everything in them (`Box`, `new`, …): keep crate functions.
        for (n, aux) in &hook_names {
            for id in defs.named(n, *aux) {
                panic_roots.push((id.clone(), "a panic hook".to_string()));
            }
        }
        for (names, roots, section) in [
            (recovery_names, &mut init_roots, "recovery"),
            (panic_names, &mut panic_roots, "panic_path"),
        ] {
            let why = format!("named in `[{section}]` of the configuration");
            for n in names {
                for aux in [false, true] {
                    let ids = defs.named(n, aux);
                    if ids.is_empty() {
                        // Not defined in this crate: still a root (for `reach_note`).
                        roots.push((
                            FnId {
                                owner: None,
                                name: n.clone(),
                                aux,
                            },
                            why.clone(),
                        ));
                    }
                    roots.extend(ids.into_iter().map(|id| (id.clone(), why.clone())));
                }
            }
        }
        Self {
            name: name.to_string(),
            device,
            derived_readers: summaries
                .iter()
                .flat_map(|s| s.derived_readers.iter().cloned())
                .collect(),
            recovery: reach(&graph, &defs, &init_roots),
            panic_path: reach(&graph, &defs, &panic_roots),
        }
    }

    /// Why function `f` (in a file that is or is not auxiliary) is recovery code, if it is.
    pub fn recovery_of(&self, f: &FnRef<'_>, aux: bool) -> Option<&Reach> {
        self.recovery.get(&FnId::of(f, aux))
    }

    /// Why function `f` is on the panic path, if it is.
    pub fn panic_path_of(&self, f: &FnRef<'_>, aux: bool) -> Option<&Reach> {
        self.panic_path.get(&FnId::of(f, aux))
    }
}

/// Function definitions by name.
struct Defs<'g>(HashMap<&'g str, Vec<&'g FnId>>);

impl<'g> Defs<'g> {
    fn new(graph: &'g Graph) -> Self {
        let mut m: HashMap<&str, Vec<&FnId>> = HashMap::new();
        for id in graph.keys() {
            m.entry(id.name.as_str()).or_default().push(id);
        }
        Self(m)
    }

    /// Functions named `name` visible from code on side `aux` (auxiliary code sees both).
    fn named(&self, name: &str, aux: bool) -> Vec<&'g FnId> {
        self.0
            .get(name)
            .map(|v| v.iter().copied().filter(|d| aux || !d.aux).collect())
            .unwrap_or_default()
    }

    /// What `call` made from `caller` may reach.
    fn resolve(&self, caller: &FnId, call: &Call) -> Vec<&'g FnId> {
        let all = self.named(&call.name, caller.aux);
        if let Some(on) = &call.on {
            let owned: Vec<&FnId> = all
                .iter()
                .copied()
                .filter(|d| d.owner.as_deref() == Some(on.as_str()))
                .collect();
            if !owned.is_empty() {
                return owned;
            }
        }
        all
    }
}

fn reach(graph: &Graph, defs: &Defs<'_>, roots: &[(FnId, String)]) -> HashMap<FnId, Reach> {
    let mut out: HashMap<FnId, Reach> = HashMap::new();
    let mut queue = VecDeque::new();
    for (r, why) in roots {
        if !out.contains_key(r) {
            out.insert(
                r.clone(),
                Reach {
                    root: r.name.clone(),
                    why: why.clone(),
                    via: None,
                },
            );
            queue.push_back(r.clone());
        }
    }
    while let Some(f) = queue.pop_front() {
        let Some(calls) = graph.get(&f) else {
            continue;
        };
        let Some(parent) = out.get(&f).cloned() else {
            continue;
        };
        let mut calls: Vec<&Call> = calls.iter().collect();
        calls.sort_by(|a, b| (&a.name, &a.on).cmp(&(&b.name, &b.on)));
        for c in calls {
            for callee in defs.resolve(&f, c) {
                if !out.contains_key(callee) {
                    out.insert(
                        callee.clone(),
                        Reach {
                            root: parent.root.clone(),
                            why: parent.why.clone(),
                            via: Some(f.name.clone()),
                        },
                    );
                    queue.push_back(callee.clone());
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
        let s = summarize(&file, &DeviceCx::default(), false);
        let c = CrateInfo::build("x", DeviceCx::default(), &[s], &["extra".into()], &[]);
        let rec = |n: &str| c.recovery.iter().find(|(k, _)| k.name == n).map(|(_, r)| r);
        let pan = |n: &str| c.panic_path.keys().any(|k| k.name == n);
        assert!(rec("init").is_some());
        assert!(rec("step").is_some());
        assert_eq!(rec("deeper").and_then(|r| r.via.as_deref()), Some("step"));
        assert!(rec("unrelated").is_none());
        assert!(rec("extra").is_some());
        assert!(pan("ph"));
        assert!(pan("halt"));
        assert!(pan("my_hook"));
        assert!(!pan("main"));
    }

    fn build(files: &[(&str, bool)]) -> CrateInfo {
        let sums: Vec<FileSummary> = files
            .iter()
            .map(|(src, aux)| {
                let file: syn::File = syn::parse_str(src).unwrap();
                summarize(&file, &DeviceCx::default(), *aux)
            })
            .collect();
        CrateInfo::build("x", DeviceCx::default(), &sums, &[], &[])
    }

    fn reached(c: &CrateInfo, owner: Option<&str>, name: &str, aux: bool) -> bool {
        c.recovery.contains_key(&FnId {
            owner: owner.map(String::from),
            name: name.into(),
            aux,
        })
    }

    #[test]
    fn self_calls_stay_on_their_type() {
        let c = build(&[(
            "impl Driver { #[paranoid_init] fn init(&mut self) { self.admin_command(); Self::helper(); }
                           fn admin_command(&mut self) {} fn helper() {} }
             impl Model { fn admin_command(&mut self) { self.identify(); } fn identify(&self) {} fn helper() {} }
             fn free() { x.admin_command(); }",
            false,
        )]);
        assert!(reached(&c, Some("Driver"), "admin_command", false));
        assert!(reached(&c, Some("Driver"), "helper", false));
        assert!(!reached(&c, Some("Model"), "admin_command", false));
        assert!(!reached(&c, Some("Model"), "identify", false));
        assert!(!reached(&c, Some("Model"), "helper", false));
    }

    #[test]
    fn unknown_receivers_reach_every_namesake() {
        let c = build(&[(
            "#[paranoid_init] fn init(d: &mut D) { d.go(); }
             impl A { fn go(&self) {} } impl B { fn go(&self) {} }",
            false,
        )]);
        assert!(reached(&c, Some("A"), "go", false));
        assert!(reached(&c, Some("B"), "go", false));
    }

    #[test]
    fn tests_and_library_are_separate_crates() {
        let c = build(&[
            (
                "#[paranoid_init] fn init() { reclaim(); } fn reclaim() { failed(); } fn failed() {}
                 #[cfg(test)] mod tests { fn failed() { init(); } }",
                false,
            ),
            (
                "fn failed() { x.driver().unwrap(); } #[paranoid_init] fn generic() { reclaim(); }",
                true,
            ),
        ]);
        assert!(reached(&c, None, "failed", false));
        // A test helper named like a library recovery function is not recovery code.
        assert!(!reached(&c, None, "failed", true));
        // Test code reaches library functions from its own roots.
        assert!(reached(&c, None, "generic", true));
        assert!(reached(&c, None, "reclaim", false));
    }

    #[test]
    fn locals_passed_as_arguments_are_not_calls() {
        let c = build(&[(
            "#[paranoid_init] fn init(identify: u32) { let status = 1; report(identify, status, helper); }
             fn identify() {} fn status() {} fn helper() {} fn report() {}",
            false,
        )]);
        assert!(!reached(&c, None, "identify", false));
        assert!(!reached(&c, None, "status", false));
        assert!(reached(&c, None, "helper", false));
    }
    #[test]
    fn wrappers_become_readers() {
        let file: syn::File = syn::parse_str(
            "fn read_reg(&self, off: usize) -> u32 { unsafe { core::ptr::read_volatile(self.base.add(off) as *const u32) } }
             fn not_reader(&self) -> u32 { 3 }",
        )
        .unwrap();
        let s = summarize(&file, &DeviceCx::new(&[], &[]), false);
        assert_eq!(s.derived_readers, ["read_reg"]);
    }
}
