//! Functions of a file, per-file summaries, and the per-crate call graph (by name).
//!
//! Syntax trees are not `Send`, so each file is summarised where it is parsed and the
//! summaries (plain strings) are merged into a [`CrateInfo`] shared by every file's lints.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use syn::visit::Visit;
use syn::{Attribute, Block, Expr, Signature, Visibility};

use crate::analysis::access::{self, AccessKind, DeviceCx};

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
    /// The innermost inline `mod` it sits in, if any.
    pub inline_mod: Option<&'a syn::Ident>,
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
        /// The innermost enclosing inline module.
        module: Option<&'a syn::Ident>,
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
            let saved = self.module.replace(&i.ident);
            self.scoped(&i.attrs, |v| syn::visit::visit_item_mod(v, i));
            self.module = saved;
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
                        inline_mod: v.module,
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
                    inline_mod: v.module,
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
                        inline_mod: v.module,
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
        module: None,
        _p: std::marker::PhantomData,
    };
    v.visit_file(file);
}

/// Where a call's callee is looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `f(..)`: a free function in scope (same module, or imported by a `use`).
    Free,
    /// `m::f(..)`, `crate::a::m::f(..)`: a free function of module `m` (last qualifier);
    /// `crate` names the crate root, `self` the caller's module.
    Module(String),
    /// `T::f(..)`, `Self::f(..)`, `self.f()`, or `x.f()` where `x`'s type is known.
    Type(String),
    /// `self.field.f()` / `x.field.f()`: a method of the declared type of `field` of `T`.
    Field(String, String),
    /// `x.f()` on a receiver of unknown type: only a method in the caller's impl or module.
    Method,
}

/// A call seen in a function body: the callee's name and where to look it up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Call {
    /// Where the callee is looked up.
    pub target: Target,
    /// The callee's name (last path segment).
    pub name: String,
}

/// Names of the functions and methods called in `block` (last path segment).
pub fn calls_in(block: &Block) -> Vec<String> {
    calls_of(block, None, &HashMap::new(), &HashSet::new())
        .into_iter()
        .map(|c| c.name)
        .collect()
}

/// The type a written type stands for when methods are called on it: references, `Box`,
/// `Rc`, `Arc` and `&mut` are looked through (auto-deref); `None` for anything else that is
/// not a plain path.
pub fn deref_type_name(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Reference(r) => deref_type_name(&r.elem),
        syn::Type::Paren(p) => deref_type_name(&p.elem),
        syn::Type::Group(g) => deref_type_name(&g.elem),
        syn::Type::Path(p) => {
            let last = p.path.segments.last()?;
            let name = last.ident.to_string();
            if matches!(name.as_str(), "Box" | "Rc" | "Arc" | "Pin") {
                if let syn::PathArguments::AngleBracketed(a) = &last.arguments {
                    for arg in &a.args {
                        if let syn::GenericArgument::Type(t) = arg {
                            return deref_type_name(t);
                        }
                    }
                }
            }
            Some(name)
        }
        _ => None,
    }
}

/// Calls in the body of `f`: `self.m()` and `Self::m()` are looked up on `f`'s owner,
/// `Type::m()` on `Type`, `x.m()` on the written or constructed type of local `x`; a path
/// passed as an argument (`map(helper)`) counts as a call unless it names a parameter or
/// local of `f`.
pub fn calls_of_fn(f: &FnRef<'_>) -> Vec<Call> {
    let owner = f.owner.map(ToString::to_string);
    let mut bound = HashSet::new();
    let mut types: HashMap<String, String> = HashMap::new();
    for input in &f.sig.inputs {
        if let syn::FnArg::Typed(t) = input {
            pat_idents(&t.pat, &mut bound);
            if let (syn::Pat::Ident(pi), Some(ty)) = (&*t.pat, deref_type_name(&t.ty)) {
                let ty = if ty == "Self" {
                    owner.clone()
                } else {
                    Some(ty)
                };
                if let Some(ty) = ty {
                    types.insert(pi.ident.to_string(), ty);
                }
            }
        }
    }
    struct L<'b> {
        bound: &'b mut HashSet<String>,
        types: &'b mut HashMap<String, String>,
        owner: Option<String>,
    }
    impl<'ast> Visit<'ast> for L<'_> {
        fn visit_local(&mut self, l: &'ast syn::Local) {
            pat_idents(&l.pat, self.bound);
            let (pat, written) = match &l.pat {
                syn::Pat::Type(pt) => (&*pt.pat, deref_type_name(&pt.ty)),
                p => (p, None),
            };
            if let syn::Pat::Ident(pi) = pat {
                let ty = written.or_else(|| {
                    l.init
                        .as_ref()
                        .and_then(|i| constructed_type(&i.expr, self.owner.as_deref()))
                });
                match ty {
                    Some(t) if t == "Self" => {
                        if let Some(o) = &self.owner {
                            self.types.insert(pi.ident.to_string(), o.clone());
                        }
                    }
                    Some(t) => {
                        self.types.insert(pi.ident.to_string(), t);
                    }
                    // A shadowing `let` of unknown type forgets the old one.
                    None => {
                        self.types.remove(&pi.ident.to_string());
                    }
                }
            }
            syn::visit::visit_local(self, l);
        }
        fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
            for p in &c.inputs {
                pat_idents(p, self.bound);
            }
            syn::visit::visit_expr_closure(self, c);
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    L {
        bound: &mut bound,
        types: &mut types,
        owner: owner.clone(),
    }
    .visit_block(f.block);
    calls_of(f.block, owner, &types, &bound)
}

/// The type an expression constructs: `T { .. }`, `T::new(..)`, `T::default()`,
/// `T::with_*(..)`/`T::from_*(..)`, through `?`, `.unwrap()`, `.expect(..)`, `&`, parens.
fn constructed_type(e: &Expr, owner: Option<&str>) -> Option<String> {
    match e {
        Expr::Struct(s) => s.path.segments.last().map(|s| s.ident.to_string()),
        // A unit struct: `let r = Ring;`.
        Expr::Path(p) => p.path.get_ident().map(ToString::to_string).filter(|n| {
            n.starts_with(|c: char| c.is_ascii_uppercase())
                && n.chars().any(|c| c.is_ascii_lowercase())
        }),
        Expr::Call(c) => {
            let path = access::callee_path(&c.func);
            let (ty, ctor) = match path.as_slice() {
                [.., t, f] => (t, f),
                _ => return None,
            };
            let is_ctor = ctor == "new"
                || ctor == "default"
                || ctor.starts_with("new_")
                || ctor.starts_with("with_")
                || ctor.starts_with("from_")
                || ctor.starts_with("try_new");
            if !is_ctor || !ty.starts_with(|c: char| c.is_ascii_uppercase()) {
                return None;
            }
            Some(if ty == "Self" {
                owner?.to_string()
            } else {
                ty.clone()
            })
        }
        Expr::Try(t) => constructed_type(&t.expr, owner),
        Expr::Paren(p) => constructed_type(&p.expr, owner),
        Expr::Reference(r) => constructed_type(&r.expr, owner),
        Expr::MethodCall(m) if matches!(m.method.to_string().as_str(), "unwrap" | "expect") => {
            constructed_type(&m.receiver, owner)
        }
        _ => None,
    }
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

/// Where a path call `a::b::f` is looked up, given the caller's owner.
fn path_target(path: &[String], owner: Option<&String>) -> Target {
    match path.len().checked_sub(2).and_then(|i| path.get(i)) {
        None => Target::Free,
        Some(t) if t == "Self" => owner.map_or(Target::Method, |o| Target::Type(o.clone())),
        Some(t) if t.starts_with(|c: char| c.is_ascii_uppercase()) => Target::Type(t.clone()),
        Some(m) => Target::Module(m.clone()),
    }
}

fn calls_of(
    block: &Block,
    owner: Option<String>,
    types: &HashMap<String, String>,
    bound: &HashSet<String>,
) -> Vec<Call> {
    struct V<'b> {
        out: Vec<Call>,
        owner: Option<String>,
        types: &'b HashMap<String, String>,
        bound: &'b HashSet<String>,
    }
    impl V<'_> {
        fn push(&mut self, target: Target, name: String) {
            self.out.push(Call { target, name });
        }
        /// The type of a receiver expression, when the code says it.
        fn receiver(&self, e: &Expr) -> Target {
            match e {
                Expr::Path(p) if p.path.is_ident("self") => {
                    self.owner.clone().map_or(Target::Method, Target::Type)
                }
                Expr::Path(p) => p
                    .path
                    .get_ident()
                    .and_then(|i| self.types.get(&i.to_string()))
                    .map_or(Target::Method, |t| Target::Type(t.clone())),
                Expr::Field(f) => match (self.receiver(&f.base), &f.member) {
                    (Target::Type(t), syn::Member::Named(m)) => Target::Field(t, m.to_string()),
                    _ => Target::Method,
                },
                Expr::Paren(p) => self.receiver(&p.expr),
                Expr::Reference(r) => self.receiver(&r.expr),
                Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => self.receiver(&u.expr),
                Expr::Call(_) | Expr::Struct(_) => {
                    constructed_type(e, self.owner.as_deref()).map_or(Target::Method, Target::Type)
                }
                _ => Target::Method,
            }
        }
    }
    impl<'ast> Visit<'ast> for V<'_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            match e {
                Expr::Call(c) => {
                    if let Some(n) = access::callee_name(&c.func) {
                        let path = access::callee_path(&c.func);
                        let target = path_target(&path, self.owner.as_ref());
                        self.push(target, n);
                    }
                    // Function paths passed as values (`map(helper)`) may be called too.
                    for a in &c.args {
                        if let Expr::Path(p) = a {
                            if let Some(s) = p.path.segments.last() {
                                let name = s.ident.to_string();
                                let path: Vec<String> = p
                                    .path
                                    .segments
                                    .iter()
                                    .map(|s| s.ident.to_string())
                                    .collect();
                                if path.len() > 1 || !self.bound.contains(&name) {
                                    let target = path_target(&path, self.owner.as_ref());
                                    self.push(target, name);
                                }
                            }
                        }
                    }
                }
                Expr::MethodCall(m) => {
                    let target = self.receiver(&m.receiver);
                    self.push(target, m.method.to_string());
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
        types,
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
            if access::callee_name(&c.func).as_deref() == Some("set_hook") {
                for a in &c.args {
                    let mut ids = Vec::new();
                    access::idents(quote::ToTokens::to_token_stream(a), &mut ids);
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

/// The module path of a file from its path (`src/arch/x86/apic.rs` → `arch::x86::apic`;
/// `lib.rs`, `main.rs` and `mod.rs` name their directory's module).
pub fn file_module(path: &str) -> String {
    let path = path.replace('\\', "/");
    let rel = match path.rfind("/src/") {
        Some(i) => &path[i + 5..],
        None => path.strip_prefix("src/").unwrap_or(&path),
    };
    let mut segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(last) = segs.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(last);
        if !matches!(stem, "lib" | "main" | "mod") {
            segs.push(stem);
        }
    }
    segs.join("::")
}

/// The last name of a module path (`""` for the crate root).
fn module_name(module: &str) -> &str {
    let m = module.split('#').next().unwrap_or(module);
    m.rsplit("::").next().unwrap_or(m)
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
    /// Functions that install a panic hook, with the names in the hook's arguments.
    pub hooks: Vec<(FnId, Vec<String>)>,
    /// Fields of register types.
    pub reg_fields: Vec<String>,
    /// Functions that read the device and return the value (wrappers like `fn read_reg`).
    pub derived_readers: Vec<String>,
    /// Struct fields and their declared types: (struct, field, type).
    pub fields: Vec<(String, String, String)>,
    /// Names imported by `use` (leaf or rename → the module it comes from).
    pub imports: Vec<(String, String)>,
    /// Whether the file names the toolkit (`paranoid::…`, `#[paranoid_init]`).
    pub mentions_toolkit: bool,
    /// Functions whose body accesses the device.
    pub touches: Vec<FnId>,
    /// Names of functions whose body reads the device (any return type).
    pub reading_fns: Vec<String>,
    /// Library functions that return a value (not `()`, `Result<()>`, `Option<()>`), with
    /// the names they call: a predicate such as `is_done() -> bool` that answers through
    /// another helper (`!self.channel.in_progress()`) reads the device too.
    pub value_fns: Vec<(String, Vec<String>)>,
    /// Statics holding pointers made from integer addresses.
    pub ptr_statics: Vec<String>,
    /// Statics holding register handles (`static COM1: Mutex<Port<u8>>`).
    pub handle_statics: Vec<String>,
    /// Handle type names the file renames, aliases or shadows.
    pub handle_names: access::HandleNames,
    /// Names `read_volatile` / `write_volatile` are imported under.
    pub volatile_aliases: (Vec<String>, Vec<String>),
}

/// Statics whose value is a pointer made from an integer address, and the names
/// `read_volatile`/`write_volatile` are imported under, in `file`.
fn pointer_statics_and_aliases(file: &syn::File) -> (Vec<String>, (Vec<String>, Vec<String>)) {
    struct V(Vec<String>, Vec<String>, Vec<String>);
    impl<'ast> Visit<'ast> for V {
        fn visit_item_static(&mut self, st: &'ast syn::ItemStatic) {
            if access::int_cast_to_ptr(&st.expr) {
                self.0.push(st.ident.to_string());
            }
            syn::visit::visit_item_static(self, st);
        }
        fn visit_use_rename(&mut self, r: &'ast syn::UseRename) {
            if r.ident == "read_volatile" {
                self.1.push(r.rename.to_string());
            } else if r.ident == "write_volatile" {
                self.2.push(r.rename.to_string());
            }
        }
    }
    let mut v = V(Vec::new(), Vec::new(), Vec::new());
    v.visit_file(file);
    (v.0, (v.1, v.2))
}

/// Struct fields with a declared type, (struct, field, type), in `file`.
fn struct_fields(file: &syn::File) -> Vec<(String, String, String)> {
    struct V(Vec<(String, String, String)>);
    impl<'ast> Visit<'ast> for V {
        fn visit_item_struct(&mut self, s: &'ast syn::ItemStruct) {
            for f in &s.fields {
                if let (Some(id), Some(ty)) = (&f.ident, deref_type_name(&f.ty)) {
                    self.0.push((s.ident.to_string(), id.to_string(), ty));
                }
            }
            syn::visit::visit_item_struct(self, s);
        }
    }
    let mut v = V(Vec::new());
    v.visit_file(file);
    v.0
}

/// `use` leaves: `use a::b::f;` → (`f`, `b`); `use a::b::f as g;` → (`g`, `b`), and the
/// original name too (so `g` resolves to `b::f`'s namesakes).
fn use_imports(file: &syn::File) -> Vec<(String, String)> {
    fn walk(t: &syn::UseTree, parent: &str, out: &mut Vec<(String, String)>) {
        match t {
            syn::UseTree::Path(p) => walk(&p.tree, &p.ident.to_string(), out),
            syn::UseTree::Name(n) => out.push((n.ident.to_string(), parent.to_string())),
            syn::UseTree::Rename(r) => {
                out.push((r.rename.to_string(), format!("{parent}::{}", r.ident)));
                out.push((r.ident.to_string(), parent.to_string()));
            }
            syn::UseTree::Group(g) => g.items.iter().for_each(|i| walk(i, parent, out)),
            syn::UseTree::Glob(_) => out.push(("*".to_string(), parent.to_string())),
        }
    }
    struct V(Vec<(String, String)>);
    impl<'ast> Visit<'ast> for V {
        fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
            walk(&u.tree, "", &mut self.0);
        }
    }
    let mut v = V(Vec::new());
    v.visit_file(file);
    v.0
}

/// Whether the file uses the toolkit: a `paranoid::` path, a `use paranoid`, or a
/// `#[paranoid_init]` attribute.
fn mentions_toolkit(file: &syn::File) -> bool {
    struct V(bool);
    impl<'ast> Visit<'ast> for V {
        fn visit_path(&mut self, p: &'ast syn::Path) {
            if p.segments
                .first()
                .is_some_and(|s| s.ident == "paranoid" || s.ident == "paranoid_init")
                && !(p.segments.len() > 1
                    && p.segments.iter().nth(1).is_some_and(|s| s.ident == "allow"))
            {
                self.0 = true;
            }
            syn::visit::visit_path(self, p);
        }
        fn visit_use_tree(&mut self, t: &'ast syn::UseTree) {
            if let syn::UseTree::Path(p) = t {
                if p.ident == "paranoid" {
                    self.0 = true;
                }
            }
            if let syn::UseTree::Name(n) = t {
                if n.ident == "paranoid" {
                    self.0 = true;
                }
            }
        }
    }
    let mut v = V(false);
    v.visit_file(file);
    v.0
}

/// Summarises one parsed file shown as `path`; `aux` when the whole file belongs to a test,
/// bench or example target.
pub fn summarize(file: &syn::File, path: &str, base: &DeviceCx, aux: bool) -> FileSummary {
    let (ptr_statics, volatile_aliases) = pointer_statics_and_aliases(file);
    let file_names = access::HandleNames::of_file(file);
    let mut names = (*base.handle_names).clone();
    names.merge(&file_names);
    let mut s = FileSummary {
        ptr_statics,
        volatile_aliases,
        reg_fields: access::register_fields(file, &names),
        handle_statics: access::handle_statics(file, &names),
        handle_names: file_names,
        fields: struct_fields(file),
        imports: use_imports(file),
        mentions_toolkit: mentions_toolkit(file),
        ..FileSummary::default()
    };
    let mut cx = base.clone();
    std::sync::Arc::make_mut(&mut cx.reg_fields).extend(s.reg_fields.iter().cloned());
    add_pointer_names(&mut cx, &s);
    let module = file_module(path);
    for_each_fn(file, |f| {
        let name = f.name();
        let id = FnId::in_module(&f, &module, path, aux);
        s.calls.push((id.clone(), calls_of_fn(&f)));
        if f.has_attr("paranoid_init") {
            s.init_roots.push(id.clone());
        }
        if f.has_attr("panic_handler") {
            s.panic_roots.push(id.clone());
        }
        let hook = panic_hook_targets(f.block);
        if !hook.is_empty() {
            s.hooks.push((id.clone(), hook));
        }
        let fcx = cx.for_fn(f.sig, f.block);
        let accesses = access::accesses_in_block(&fcx, f.block);
        if !accesses.is_empty() {
            s.touches.push(id.clone());
        }
        if !id.aux && accesses.iter().any(|a| a.kind == AccessKind::Read) {
            s.reading_fns.push(name.clone());
        }
        if !id.aux && returns_answer(f.sig) {
            s.value_fns.push((name.clone(), calls_in(f.block)));
        }
        if returns_value(f.sig) && accesses.iter().any(|a| a.kind == AccessKind::Read) {
            s.derived_readers.push(name);
        }
    });
    // Functions written in `macro_rules!` bodies (a HAL's per-instance `impl`s): only which
    // of them read the device, so a wait on `self.tim.is_counter_enabled()` is seen; they
    // join no call graph.
    if !aux {
        for body in super::macro_body::macro_bodies(file) {
            for_each_fn(&body, |f| {
                if f.name() == super::macro_body::STATEMENTS_FN {
                    return;
                }
                let fcx = cx.for_fn(f.sig, f.block);
                let accesses = access::accesses_in_block(&fcx, f.block);
                if accesses.iter().any(|a| a.kind == AccessKind::Read) {
                    s.reading_fns.push(f.name());
                }
                if returns_answer(f.sig) {
                    s.value_fns.push((f.name(), calls_in(f.block)));
                }
            });
        }
    }
    s
}

/// Adds a file's pointer and handle statics and volatile aliases to `cx`.
fn add_pointer_names(cx: &mut DeviceCx, s: &FileSummary) {
    if !s.ptr_statics.is_empty() {
        std::sync::Arc::make_mut(&mut cx.ptr_statics).extend(s.ptr_statics.iter().cloned());
    }
    let n = &s.handle_names;
    if !n.extra.is_empty() || !n.shadowed.is_empty() || !n.imported.is_empty() {
        std::sync::Arc::make_mut(&mut cx.handle_names).merge(&s.handle_names);
    }
    if !s.handle_statics.is_empty() {
        std::sync::Arc::make_mut(&mut cx.handle_statics).extend(s.handle_statics.iter().cloned());
    }
    if !s.volatile_aliases.0.is_empty() {
        std::sync::Arc::make_mut(&mut cx.volatile_reads)
            .extend(s.volatile_aliases.0.iter().cloned());
    }
    if !s.volatile_aliases.1.is_empty() {
        std::sync::Arc::make_mut(&mut cx.volatile_writes)
            .extend(s.volatile_aliases.1.iter().cloned());
    }
}

/// Whether a function answers something: it returns a type other than `()`,
/// `Result<(), _>` and `Option<()>`.
fn returns_answer(sig: &Signature) -> bool {
    fn unit(ty: &syn::Type) -> bool {
        matches!(ty, syn::Type::Tuple(t) if t.elems.is_empty())
    }
    match &sig.output {
        syn::ReturnType::Default => false,
        syn::ReturnType::Type(_, ty) => match &**ty {
            t if unit(t) => false,
            syn::Type::Path(p) => p.path.segments.last().is_none_or(|seg| {
                let first_unit = match &seg.arguments {
                    syn::PathArguments::AngleBracketed(a) => {
                        matches!(a.args.first(), Some(syn::GenericArgument::Type(t)) if unit(t))
                    }
                    _ => false,
                };
                !(matches!(seg.ident.to_string().as_str(), "Result" | "Option") && first_unit)
            }),
            _ => true,
        },
    }
}

/// The value-returning functions that read the device only through another function of
/// the crate (`is_done` → `in_progress` → `isr`, which reads), by name, to a fixpoint; the
/// functions that read directly are not included.
fn answering_fns(summaries: &[FileSummary]) -> HashSet<String> {
    let direct: HashSet<String> = summaries
        .iter()
        .flat_map(|s| s.reading_fns.iter().cloned())
        .collect();
    let mut reading = direct.clone();
    let value_fns: Vec<&(String, Vec<String>)> =
        summaries.iter().flat_map(|s| s.value_fns.iter()).collect();
    loop {
        let before = reading.len();
        for (name, callees) in &value_fns {
            if !reading.contains(name) && callees.iter().any(|c| c != name && reading.contains(c)) {
                reading.insert(name.clone());
            }
        }
        if reading.len() == before {
            return reading.difference(&direct).cloned().collect();
        }
    }
}

/// Whether a signature returns an integer or `Untrusted<..>` (a device value).
fn returns_value(sig: &Signature) -> bool {
    match &sig.output {
        syn::ReturnType::Default => false,
        syn::ReturnType::Type(_, ty) => access::type_name(ty).is_some_and(|n| {
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

/// A function of the crate: its module, its owner type or trait (if a method), its name, and
/// its side (*auxiliary*: in a test, bench or example target, or under `#[cfg(test)]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FnId {
    /// Its module: the file's module path, then `#name@line` of an inline `mod`.
    pub module: String,
    /// The `impl` type or trait it is defined in (last identifier).
    pub owner: Option<String>,
    /// Its name.
    pub name: String,
    /// Whether it is auxiliary code.
    pub aux: bool,
}

impl FnId {
    /// The id of `f` in the file shown as `path` that is (`aux`) or is not auxiliary.
    pub fn of(f: &FnRef<'_>, path: &str, aux: bool) -> Self {
        Self::in_module(f, &file_module(path), path, aux)
    }

    fn in_module(f: &FnRef<'_>, module: &str, path: &str, aux: bool) -> Self {
        let module = match f.inline_mod {
            Some(m) => format!("{module}#{m}@{path}:{}", m.span().start().line),
            None => module.to_string(),
        };
        Self {
            module,
            owner: f.owner.map(ToString::to_string),
            name: f.name(),
            aux: aux || f.test_only,
        }
    }

    /// `Owner::name` for a method, `name` for a free function.
    pub fn display(&self) -> String {
        match &self.owner {
            Some(o) => format!("{o}::{}", self.name),
            None => self.name.clone(),
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
    /// The call chain from the root to this function (root first, this function last).
    pub chain: Vec<String>,
}

/// Words that make a function name a bring-up entry point in a crate that does not use the
/// toolkit (matched on `snake_case`/`camelCase` words: `init_queues`, `reset_controller`).
pub const BRING_UP_WORDS: &[&str] = &[
    "init",
    "initialize",
    "initialise",
    "reinit",
    "probe",
    "reset",
    "recover",
    "recovery",
    "quiesce",
    "attach",
    "restart",
    "bringup",
    "takeover",
    "setup",
];

/// Whether `name` is a bring-up entry point by name: one of [`BRING_UP_WORDS`] as a word, or
/// `bring_up`/`bringUp`. `start`, `open`, `enable` and `new` are not (too common outside
/// bring-up), and predicates (`is_reset`, `needs_init`, `has_…`) are not.
pub fn is_bring_up_name(name: &str) -> bool {
    let w = access::words(name);
    if w.first().is_some_and(|f| {
        matches!(
            f.as_str(),
            "is" | "was" | "has" | "needs" | "should" | "can" | "get" | "print" | "log"
        )
    }) {
        return false;
    }
    w.iter().any(|x| BRING_UP_WORDS.contains(&x.as_str()))
        || w.windows(2).any(|p| p[0] == "bring" && p[1] == "up")
}

/// Everything the lints of one file need to know about its crate.
///
/// The call graph resolves each call to the functions the code names: `self.m()`, `Self::m()`
/// and `T::m()` go to `m` of that type only (nothing when the type is not of this crate); a
/// local, parameter or field with a written or constructed type is looked up on that type; a
/// method on a receiver of unknown type joins only the namesakes in the caller's own impl, or
/// failing that in its module; a free call `f()` goes to `f` in the caller's module or the
/// module its `use` names. Library code is reached only through library functions (a test,
/// bench or example is a crate of its own that the library cannot call).
#[derive(Debug, Clone, Default)]
pub struct CrateInfo {
    /// Crate (package) name.
    pub name: String,
    /// Whether the crate uses the toolkit (depends on `paranoid`).
    pub toolkit: bool,
    /// Device names (defaults, configuration, register fields, derived readers).
    pub device: DeviceCx,
    /// Recovery functions.
    pub recovery: HashMap<FnId, Reach>,
    /// Panic-path functions.
    pub panic_path: HashMap<FnId, Reach>,
    /// Functions that read the device and return the value (reader wrappers).
    pub derived_readers: HashSet<String>,
    /// Names of the crate's functions that read the device (any return type).
    pub reading_fns: HashSet<String>,
    /// Names of the crate's value-returning functions that read the device through another
    /// of its functions (predicates like `is_done() -> bool`), not in `reading_fns`.
    pub answering_fns: HashSet<String>,
}

/// Callees by caller.
type Graph = BTreeMap<FnId, BTreeSet<Call>>;

/// How recovery roots are chosen for a crate.
#[derive(Debug, Clone, Default)]
pub struct Roots<'a> {
    /// Configured recovery root names (`[recovery] functions`).
    pub recovery: &'a [String],
    /// Names that are never recovery roots (`[recovery] not`).
    pub not: &'a [String],
    /// Configured panic-path root names.
    pub panic: &'a [String],
    /// Whether the crate is a toolkit crate (`None`: decide from the sources).
    pub toolkit: Option<bool>,
    /// Whether bring-up names are roots in non-toolkit crates.
    pub by_name: bool,
}

impl CrateInfo {
    /// Merges file summaries with configured names.
    pub fn build(name: &str, base: DeviceCx, summaries: &[FileSummary], roots: &Roots<'_>) -> Self {
        let mut device = base;
        let mut graph: Graph = BTreeMap::new();
        let mut init_roots = Vec::new();
        let mut panic_roots = Vec::new();
        let mut fields: HashMap<(String, String), String> = HashMap::new();
        let mut imports: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let toolkit = roots
            .toolkit
            .unwrap_or_else(|| summaries.iter().any(|s| s.mentions_toolkit));
        for s in summaries {
            std::sync::Arc::make_mut(&mut device.reg_fields).extend(s.reg_fields.iter().cloned());
            std::sync::Arc::make_mut(&mut device.readers).extend(s.derived_readers.iter().cloned());
            add_pointer_names(&mut device, s);
            for (f, calls) in &s.calls {
                graph
                    .entry(f.clone())
                    .or_default()
                    .extend(calls.iter().cloned());
                let file_mod = f.module.split('#').next().unwrap_or_default().to_string();
                imports.entry(file_mod).or_insert_with(|| s.imports.clone());
            }
            for (st, field, ty) in &s.fields {
                fields.insert((st.clone(), field.clone()), ty.clone());
            }
            init_roots.extend(
                s.init_roots
                    .iter()
                    .map(|r| (r.clone(), "#[paranoid_init]".to_string())),
            );
            panic_roots.extend(
                s.panic_roots
                    .iter()
                    .map(|r| (r.clone(), "a panic handler".to_string())),
            );
        }
        let defs = Defs::new(&graph, fields, imports);
        // A hook's arguments name the function it installs (`set_hook(Box::new(on_panic))`):
        // resolved like free calls from the function that installs it.
        for s in summaries {
            for (installer, names) in &s.hooks {
                for n in names {
                    let call = Call {
                        target: Target::Free,
                        name: n.clone(),
                    };
                    for id in defs.resolve(installer, &call) {
                        panic_roots.push((id.clone(), "a panic hook".to_string()));
                    }
                }
            }
        }
        let touches: HashSet<&FnId> = summaries.iter().flat_map(|s| &s.touches).collect();
        let mut name_roots = Vec::new();
        if !toolkit && roots.by_name {
            // A bring-up name is a root when it touches the device itself or through a
            // function it calls directly: `init` of a logger or an allocator is not bring-up.
            let brings_up = |id: &FnId| {
                touches.contains(id)
                    || graph.get(id).is_some_and(|calls| {
                        calls
                            .iter()
                            .any(|c| defs.resolve(id, c).iter().any(|d| touches.contains(d)))
                    })
            };
            for id in graph.keys() {
                if !id.aux
                    && is_bring_up_name(&id.name)
                    && !roots.not.contains(&id.name)
                    && brings_up(id)
                {
                    name_roots.push((
                        id.clone(),
                        "a bring-up entry point by name (in a crate that does not use the toolkit)"
                            .to_string(),
                    ));
                }
            }
        }
        for (names, roots, section) in [
            (roots.recovery, &mut init_roots, "recovery"),
            (roots.panic, &mut panic_roots, "panic_path"),
        ] {
            let why = format!("named in `[{section}]` of the configuration");
            for n in names {
                for aux in [false, true] {
                    let ids = defs.named(n, aux);
                    if ids.is_empty() {
                        // Not defined in this crate: still a root (for `reach_note`).
                        roots.push((
                            FnId {
                                module: String::new(),
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
        init_roots.retain(|(id, _)| !roots.not.contains(&id.name));
        name_roots.retain(|(id, _)| !roots.not.contains(&id.name));
        let mut recovery = reach(&graph, &defs, &init_roots, None);
        if !name_roots.is_empty() {
            // A root found by its name is a guess: what it reaches is bring-up code only on
            // the way to the device. Functions that never lead to a device access (the
            // kernel's allocator, scheduler, file system, page tables behind a driver's
            // `init`) are not counted, so a kernel's `init` does not make the kernel
            // recovery code.
            let leads = leads_to_device(&graph, &defs, &touches);
            for (id, r) in reach(&graph, &defs, &name_roots, Some(&leads)) {
                recovery.entry(id).or_insert(r);
            }
        }
        Self {
            name: name.to_string(),
            toolkit,
            device,
            derived_readers: summaries
                .iter()
                .flat_map(|s| s.derived_readers.iter().cloned())
                .collect(),
            reading_fns: summaries
                .iter()
                .flat_map(|s| s.reading_fns.iter().cloned())
                .collect(),
            answering_fns: answering_fns(summaries),
            recovery,
            panic_path: reach(&graph, &defs, &panic_roots, None),
        }
    }

    /// Why function `f` (in the file shown as `path`, auxiliary or not) is recovery code.
    pub fn recovery_of(&self, f: &FnRef<'_>, path: &str, aux: bool) -> Option<&Reach> {
        self.recovery.get(&FnId::of(f, path, aux))
    }

    /// Why function `f` is on the panic path, if it is.
    pub fn panic_path_of(&self, f: &FnRef<'_>, path: &str, aux: bool) -> Option<&Reach> {
        self.panic_path.get(&FnId::of(f, path, aux))
    }
}

/// Function definitions by name, struct field types and imports, for resolving calls.
struct Defs<'g> {
    by_name: HashMap<&'g str, Vec<&'g FnId>>,
    fields: HashMap<(String, String), String>,
    /// File module → its `use` leaves (name → source module).
    imports: HashMap<String, Vec<(String, String)>>,
}

impl<'g> Defs<'g> {
    fn new(
        graph: &'g Graph,
        fields: HashMap<(String, String), String>,
        imports: HashMap<String, Vec<(String, String)>>,
    ) -> Self {
        let mut m: HashMap<&str, Vec<&FnId>> = HashMap::new();
        for id in graph.keys() {
            m.entry(id.name.as_str()).or_default().push(id);
        }
        Self {
            by_name: m,
            fields,
            imports,
        }
    }

    /// Functions named `name` visible from code on side `aux` (auxiliary code sees both).
    fn named(&self, name: &str, aux: bool) -> Vec<&'g FnId> {
        self.by_name
            .get(name)
            .map(|v| v.iter().copied().filter(|d| aux || !d.aux).collect())
            .unwrap_or_default()
    }

    /// What `call` made from `caller` may reach.
    fn resolve(&self, caller: &FnId, call: &Call) -> Vec<&'g FnId> {
        let all = self.named(&call.name, caller.aux);
        if all.is_empty() {
            return all;
        }
        let file_mod = |m: &str| m.split('#').next().unwrap_or_default().to_string();
        let pick = |f: &dyn Fn(&FnId) -> bool| -> Vec<&'g FnId> {
            all.iter().copied().filter(|d| f(d)).collect()
        };
        match &call.target {
            Target::Type(t) => pick(&|d| d.owner.as_deref() == Some(t.as_str())),
            Target::Field(st, field) => match self.fields.get(&(st.clone(), field.clone())) {
                Some(t) => pick(&|d| d.owner.as_deref() == Some(t.as_str())),
                None => self.same_impl_or_module(caller, &all),
            },
            Target::Method => self.same_impl_or_module(caller, &all),
            Target::Module(m) => {
                let m = m.as_str();
                match m {
                    "self" => pick(&|d| d.owner.is_none() && d.module == caller.module),
                    "crate" => pick(&|d| d.owner.is_none() && file_mod(&d.module).is_empty()),
                    "super" => {
                        let cm = file_mod(&caller.module);
                        let parent = cm.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
                        pick(&|d| d.owner.is_none() && file_mod(&d.module) == parent)
                    }
                    _ => pick(&|d| {
                        d.owner.is_none() && module_name(&file_mod(&d.module)) == m
                            || d.module.contains(&format!("#{m}@"))
                    }),
                }
            }
            Target::Free => {
                let local = pick(&|d| d.owner.is_none() && d.module == caller.module);
                if !local.is_empty() {
                    return local;
                }
                let cm = file_mod(&caller.module);
                let same_file = pick(&|d| d.owner.is_none() && file_mod(&d.module) == cm);
                if !same_file.is_empty() {
                    return same_file;
                }
                // Imported: `use path::module::f;` (or a glob of that module).
                let imports = self.imports.get(&cm).map(Vec::as_slice).unwrap_or(&[]);
                let sources: Vec<&str> = imports
                    .iter()
                    .filter(|(n, _)| n == &call.name || n == "*")
                    .map(|(_, m)| m.as_str())
                    .collect();
                pick(&|d| {
                    d.owner.is_none()
                        && sources.iter().any(|src| {
                            let src = src.rsplit("::").next().unwrap_or(src);
                            let dm = file_mod(&d.module);
                            module_name(&dm) == src
                                || (src == "crate" || src == "super") && !dm.contains("::")
                                || d.module.contains(&format!("#{src}@"))
                        })
                })
            }
        }
    }

    /// Namesakes in the caller's impl, else methods in the caller's module.
    fn same_impl_or_module(&self, caller: &FnId, all: &[&'g FnId]) -> Vec<&'g FnId> {
        if caller.owner.is_some() {
            let same: Vec<&FnId> = all
                .iter()
                .copied()
                .filter(|d| d.owner == caller.owner)
                .collect();
            if !same.is_empty() {
                return same;
            }
        }
        all.iter()
            .copied()
            .filter(|d| d.owner.is_some() && d.module == caller.module)
            .collect()
    }
}

/// The functions that access the device or call (transitively) one that does.
fn leads_to_device(graph: &Graph, defs: &Defs<'_>, touches: &HashSet<&FnId>) -> HashSet<FnId> {
    let mut callers: HashMap<&FnId, Vec<&FnId>> = HashMap::new();
    for (f, calls) in graph {
        for c in calls {
            for callee in defs.resolve(f, c) {
                callers.entry(callee).or_default().push(f);
            }
        }
    }
    let mut out: HashSet<FnId> = touches.iter().map(|f| (*f).clone()).collect();
    let mut queue: VecDeque<&FnId> = touches.iter().copied().collect();
    while let Some(f) = queue.pop_front() {
        for caller in callers.get(f).map(Vec::as_slice).unwrap_or(&[]) {
            if out.insert((*caller).clone()) {
                queue.push_back(caller);
            }
        }
    }
    out
}

/// The functions reached from `roots` (each with its chain); with `within`, only through
/// and into functions of that set (the roots themselves always count).
fn reach(
    graph: &Graph,
    defs: &Defs<'_>,
    roots: &[(FnId, String)],
    within: Option<&HashSet<FnId>>,
) -> HashMap<FnId, Reach> {
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
                    chain: vec![r.display()],
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
        for c in calls {
            for callee in defs.resolve(&f, c) {
                if !out.contains_key(callee) && within.is_none_or(|w| w.contains(callee)) {
                    let mut chain = parent.chain.clone();
                    chain.push(callee.display());
                    out.insert(
                        callee.clone(),
                        Reach {
                            root: parent.root.clone(),
                            why: parent.why.clone(),
                            via: Some(f.name.clone()),
                            chain,
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
        let s = summarize(&file, "src/lib.rs", &DeviceCx::default(), false);
        let extra = ["extra".to_string()];
        let c = CrateInfo::build(
            "x",
            DeviceCx::default(),
            &[s],
            &Roots {
                recovery: &extra,
                toolkit: Some(true),
                ..Roots::default()
            },
        );
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
                summarize(&file, "src/lib.rs", &DeviceCx::default(), *aux)
            })
            .collect();
        CrateInfo::build(
            "x",
            DeviceCx::default(),
            &sums,
            &Roots {
                toolkit: Some(true),
                ..Roots::default()
            },
        )
    }

    fn reached(c: &CrateInfo, owner: Option<&str>, name: &str, aux: bool) -> bool {
        c.recovery.contains_key(&FnId {
            module: String::new(),
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
    fn typed_receivers_resolve_to_their_type() {
        let c = build(&[(
            "struct Nic { regs: Regs, other: Other }
             #[paranoid_init] fn init(d: &mut A) { d.go(); let b = B::new(); b.stop(); let n = Nic { regs: Regs::new(), other: o }; n.regs.read(); }
             impl A { fn go(&self) {} } impl B { fn go(&self) {} fn new() -> Self { B } fn stop(&self) {} }
             impl Regs { fn read(&self) {} } impl Other { fn read(&self) {} }",
            false,
        )]);
        assert!(reached(&c, Some("A"), "go", false));
        assert!(!reached(&c, Some("B"), "go", false));
        assert!(reached(&c, Some("B"), "stop", false));
        assert!(reached(&c, Some("Regs"), "read", false));
        assert!(!reached(&c, Some("Other"), "read", false));
    }

    #[test]
    fn unknown_receivers_join_only_their_module() {
        let a = (
            "#[paranoid_init] fn init(d: &mut dyn Dev) { d.has_packet(); has_packet(); }
             impl Here { fn has_packet(&self) {} }",
            false,
        );
        let c = CrateInfo::build(
            "x",
            DeviceCx::default(),
            &[
                summarize(
                    &syn::parse_str(a.0).unwrap(),
                    "src/net/a.rs",
                    &DeviceCx::default(),
                    false,
                ),
                summarize(
                    &syn::parse_str("impl There { fn has_packet(&self) {} } fn has_packet() {}")
                        .unwrap(),
                    "src/net/b.rs",
                    &DeviceCx::default(),
                    false,
                ),
            ],
            &Roots {
                toolkit: Some(true),
                ..Roots::default()
            },
        );
        let names: Vec<String> = c.recovery.keys().map(FnId::display).collect();
        assert!(names.contains(&"Here::has_packet".to_string()), "{names:?}");
        assert!(
            !names
                .iter()
                .any(|n| n.contains("There") || n == "b::has_packet"),
            "{names:?}"
        );
    }

    #[test]
    fn bring_up_names_are_roots_without_the_toolkit() {
        let src =
            "fn init_queues(r: &mut Regs) { unsafe { core::ptr::read_volatile(r.base) }; step(r); alloc(); }
                   fn step(r: &mut Regs) { deeper(r); } fn deeper(r: &mut Regs) { unsafe { core::ptr::write_volatile(r.base, 1) } }
                   fn alloc() { frames(); } fn frames() {}
                   fn init_logger() { log(); } fn log() {} fn is_reset() {}";
        let s = summarize(
            &syn::parse_str(src).unwrap(),
            "src/lib.rs",
            &DeviceCx::default(),
            false,
        );
        let build = |toolkit| {
            CrateInfo::build(
                "x",
                DeviceCx::default(),
                std::slice::from_ref(&s),
                &Roots {
                    toolkit: Some(toolkit),
                    by_name: true,
                    ..Roots::default()
                },
            )
        };
        let c = build(false);
        let rec = |c: &CrateInfo, n: &str| c.recovery.keys().any(|k| k.name == n);
        assert!(rec(&c, "init_queues"));
        assert!(rec(&c, "step"), "on the way to the device");
        assert!(rec(&c, "deeper"));
        // A name-found root reaches only what leads to the device: a kernel's `init` does
        // not make its allocator recovery code.
        assert!(!rec(&c, "alloc"), "never reaches the device");
        assert!(!rec(&c, "frames"));
        assert!(!rec(&c, "init_logger"), "no device access: not bring-up");
        assert!(
            !rec(&build(true), "init_queues"),
            "toolkit crates mark roots"
        );
        assert!(is_bring_up_name("reset_controller"));
        assert!(is_bring_up_name("bringUp"));
        assert!(!is_bring_up_name("is_reset"));
        assert!(!is_bring_up_name("iterations_logged"));
    }

    #[test]
    fn file_modules_follow_paths() {
        assert_eq!(file_module("src/lib.rs"), "");
        assert_eq!(file_module("src/arch/x86/apic.rs"), "arch::x86::apic");
        assert_eq!(file_module("kernel/src/drivers/net/mod.rs"), "drivers::net");
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
        let s = summarize(&file, "src/lib.rs", &DeviceCx::new(&[], &[]), false);
        assert_eq!(s.derived_readers, ["read_reg"]);
    }
}
