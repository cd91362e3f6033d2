//! Recognising device access as real driver code writes it.
//!
//! Forms recognised (see the README for the full list):
//! - `core::ptr::read_volatile`/`write_volatile` (also `std::ptr`, and the `.read_volatile()`
//!   method form) on a pointer that looks like device memory;
//! - dereferences of integers cast to raw pointers (`*(0xfee0_0000 as *const u32)`);
//! - `asm!` with `in`/`out`/`ins`/`outs` port instructions;
//! - the `volatile` crate (`Volatile`, `VolatilePtr`, `VolatileRef`) and port handles
//!   (`x86_64::instructions::port::Port*`, `paranoid::port::Port`): `.read()`/`.write()`/
//!   `.update()` on a receiver tied to such a type by a field or parameter type, a typed
//!   `let`, a binding of a constructor call (`let`, `let … else`, `if let`, `match`), a
//!   static, or the constructor call itself (`Port::new(0xf4).write(..)`);
//! - tock-registers style fields (`ReadWrite`, `ReadOnly`, `WriteOnly`, …):
//!   `.get()/.set()/.read()/.write()/.modify()/.is_set()/.matches_all()`;
//! - our HAL (`paranoid`): `read8/16/32/64`, `write8/16/32/64` and generated accessors
//!   `regs.csts().read()`;
//! - reader and writer functions: port helpers (`inb`, `outl`, …), Linux-style `readl`/`writel`,
//!   names from the configuration, and crate functions that wrap a device read and return it.

use std::collections::HashSet;
use std::sync::Arc;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, Macro, Type};

/// Whether an access reads, writes, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    /// The device is read; the expression's value comes from the device.
    Read,
    /// The device is written.
    Write,
    /// Read-modify-write (`.modify(..)`, `.update(..)`).
    Modify,
}

/// How the access is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `read_volatile`/`write_volatile`.
    Volatile,
    /// Dereference of an integer cast to a raw pointer.
    RawDeref,
    /// `asm!` port instruction.
    AsmPort,
    /// A register handle method (`volatile` crate, `Port`, tock-registers, HAL accessors).
    Register,
    /// A reader/writer function or HAL method (`inb`, `read32`, configured names).
    Function,
}

/// One recognised device access.
#[derive(Debug, Clone)]
pub struct Access {
    /// Read, write or modify.
    pub kind: AccessKind,
    /// How it is spelled.
    pub form: Form,
    /// The whole access expression.
    pub span: Span,
    /// A short description for messages, e.g. `read_volatile` or `.read32()`.
    pub what: String,
}

impl Access {
    /// Whether the access is raw (volatile, pointer dereference or port assembly).
    pub fn is_raw(&self) -> bool {
        matches!(self.form, Form::Volatile | Form::RawDeref | Form::AsmPort)
    }
}

/// Default device-reader function and method names.
pub const DEFAULT_READERS: &[&str] = &[
    "inb",
    "inw",
    "inl",
    "inportb",
    "inportw",
    "inportl",
    "in8",
    "in16",
    "in32",
    "ioread8",
    "ioread16",
    "ioread32",
    "ioread64",
    "readb",
    "readw",
    "readl",
    "readq",
    "read8",
    "read16",
    "read32",
    "read64",
    "mmio_read",
    "mmio_read8",
    "mmio_read16",
    "mmio_read32",
    "mmio_read64",
    "config_read8",
    "config_read16",
    "config_read32",
    "cfg_read8",
    "cfg_read16",
    "cfg_read32",
];

/// Default device-writer function and method names.
pub const DEFAULT_WRITERS: &[&str] = &[
    "outb",
    "outw",
    "outl",
    "outportb",
    "outportw",
    "outportl",
    "out8",
    "out16",
    "out32",
    "iowrite8",
    "iowrite16",
    "iowrite32",
    "iowrite64",
    "writeb",
    "writew",
    "writel",
    "writeq",
    "write8",
    "write16",
    "write32",
    "write64",
    "mmio_write",
    "mmio_write8",
    "mmio_write16",
    "mmio_write32",
    "mmio_write64",
    "config_write8",
    "config_write16",
    "config_write32",
    "cfg_write8",
    "cfg_write16",
    "cfg_write32",
];

/// Type names of register handles: a field or local of such a type is device memory.
pub const REGISTER_TYPES: &[&str] = &[
    "Volatile",
    "VolatilePtr",
    "VolatileRef",
    "VolatileCell",
    "ReadWrite",
    "ReadOnly",
    "WriteOnly",
    "Aliased",
    "Port",
    "PortReadOnly",
    "PortWriteOnly",
    "PortGeneric",
    "Mmio",
    "MmioReg",
    "Reg",
    "Register",
    "RegisterIo",
    "UniqueMmioPointer",
    "SharedMmioPointer",
];

/// Types that hold a register handle without changing how it is accessed: a field, static
/// or parameter of type `Mutex<Port<u8>>`, `Option<Port<u8>>` or `&mut [Port<u32>; 4]` is a
/// handle, reached through the methods of [`GUARD_METHODS`].
const HANDLE_WRAPPERS: &[&str] = &[
    "Mutex",
    "SpinMutex",
    "TicketMutex",
    "RefCell",
    "Option",
    "Box",
    "Lazy",
    "LazyLock",
];

/// Methods that reach the handle inside a wrapper of [`HANDLE_WRAPPERS`]
/// (`CONSOLE.lock().write(b)`, `self.port.as_mut().unwrap().read()`).
const GUARD_METHODS: &[&str] = &[
    "lock",
    "borrow_mut",
    "get_mut",
    "as_mut",
    "unwrap",
    "expect",
];

/// Identifier words that mark a receiver chain as a register block.
const REG_WORDS: &[&str] = &[
    "regs",
    "registers",
    "reg",
    "mmio",
    "csr",
    "csrs",
    "hw",
    "iomem",
    "bar0",
    "bar1",
    "bar2",
    "bar3",
    "bar4",
    "bar5",
];

/// Identifier words that mark a pointer as device memory.
const PTR_WORDS: &[&str] = &[
    "mmio",
    "reg",
    "regs",
    "register",
    "registers",
    "base",
    "bar",
    "bar0",
    "bar1",
    "bar2",
    "bar3",
    "bar4",
    "bar5",
    "csr",
    "csrs",
    "iomem",
    "hw",
    "doorbell",
    "apic",
    "lapic",
    "ioapic",
    "hpet",
    "uart",
    "gic",
    "gicd",
    "gicc",
    "gicr",
    "ecam",
    "mmcfg",
    "port",
    "device",
    "dev",
    "bus",
];

/// Splits an identifier into lowercase words (`snake_case` and `CamelCase`).
pub fn words(ident: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in ident.split('_') {
        let mut cur = String::new();
        let mut prev_lower = false;
        for ch in part.chars() {
            if ch.is_uppercase() && prev_lower && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = ch.is_lowercase() || ch.is_ascii_digit();
            cur.extend(ch.to_lowercase());
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

/// Every identifier in a token stream, in order.
pub fn idents(tokens: TokenStream, out: &mut Vec<String>) {
    for tt in tokens {
        match tt {
            TokenTree::Ident(i) => out.push(i.to_string()),
            TokenTree::Group(g) => idents(g.stream(), out),
            _ => {}
        }
    }
}

/// The last path segment of a call's function expression.
pub fn callee_name(func: &Expr) -> Option<String> {
    match func {
        Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Expr::Paren(p) => callee_name(&p.expr),
        _ => None,
    }
}

/// The path segments of a call's function expression (`["core", "ptr", "read_volatile"]`).
pub fn callee_path(func: &Expr) -> Vec<String> {
    match func {
        Expr::Path(p) => p
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// The last identifier of a type (`Port` for `x86_64::instructions::port::Port<u8>`).
pub fn type_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Type::Reference(r) => type_name(&r.elem),
        Type::Paren(p) => type_name(&p.elem),
        Type::Group(g) => type_name(&g.elem),
        _ => None,
    }
}

/// Port handle type names a crate may define for itself without meaning port I/O (a
/// switch's or a hub's `struct Port`): see [`HandleNames::of_file`].
const PORT_TYPES: &[&str] = &["Port", "PortReadOnly", "PortWriteOnly", "PortGeneric"];

/// The register handle type names in force in a crate: [`REGISTER_TYPES`], plus the names
/// they are imported or aliased under (`use x86_64::instructions::port::Port as IoPort`,
/// `type Com = Port<u8>`), minus the port type names the crate defines for something else
/// and never imports from another crate.
#[derive(Debug, Default, Clone)]
pub struct HandleNames {
    /// Renames and aliases of handle types.
    pub extra: HashSet<String>,
    /// Handle type names the crate defines for something else: a `struct Port` (or
    /// `PortReadOnly`, …) holding no port number, an enum of any handle type's name.
    pub shadowed: HashSet<String>,
    /// Handle type names the crate imports from another crate (`use x86_64::…::Port`): a
    /// definition of its own elsewhere in the crate does not hide those.
    pub imported: HashSet<String>,
}

impl HandleNames {
    /// Whether `name` (a type's last identifier) is a handle type.
    pub fn contains(&self, name: &str) -> bool {
        self.extra.contains(name)
            || (REGISTER_TYPES.contains(&name)
                && (!self.shadowed.contains(name) || self.imported.contains(name)))
    }

    /// Adds another file's names.
    pub fn merge(&mut self, other: &HandleNames) {
        self.extra.extend(other.extra.iter().cloned());
        self.shadowed.extend(other.shadowed.iter().cloned());
        self.imported.extend(other.imported.iter().cloned());
    }

    /// The renames, aliases and shadowing definitions of one file. A `struct Port` (or
    /// `PortReadOnly`, …) with no `u16` field is a type of the crate's own (a wire's port, a
    /// switch port): no port number, so no port I/O; an enum of a handle type's name
    /// (`enum Register { Rax, .. }`, `enum Port { A, B }`) is never a handle.
    pub fn of_file(file: &syn::File) -> Self {
        struct V(HandleNames);
        impl<'ast> syn::visit::Visit<'ast> for V {
            fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
                // A path from another crate: not `crate::`, `self::` or `super::`.
                let local = matches!(&u.tree, syn::UseTree::Path(p)
                    if p.ident == "crate" || p.ident == "self" || p.ident == "super");
                if !local {
                    let mut leaves = Vec::new();
                    use_leaves(&u.tree, &mut leaves);
                    self.0.imported.extend(
                        leaves
                            .into_iter()
                            .filter(|l| REGISTER_TYPES.contains(&l.as_str())),
                    );
                }
                syn::visit::visit_item_use(self, u);
            }
            fn visit_use_rename(&mut self, r: &'ast syn::UseRename) {
                if REGISTER_TYPES.contains(&r.ident.to_string().as_str()) {
                    self.0.extra.insert(r.rename.to_string());
                }
            }
            fn visit_item_type(&mut self, t: &'ast syn::ItemType) {
                if type_name(&t.ty).is_some_and(|n| REGISTER_TYPES.contains(&n.as_str())) {
                    self.0.extra.insert(t.ident.to_string());
                }
            }
            fn visit_item_struct(&mut self, s: &'ast syn::ItemStruct) {
                let name = s.ident.to_string();
                let holds_port = s
                    .fields
                    .iter()
                    .any(|f| matches!(&f.ty, Type::Path(p) if p.path.is_ident("u16")));
                if PORT_TYPES.contains(&name.as_str()) && !holds_port {
                    self.0.shadowed.insert(name);
                }
                syn::visit::visit_item_struct(self, s);
            }
            fn visit_item_enum(&mut self, e: &'ast syn::ItemEnum) {
                // An `enum Register { Rax, .. }` or `enum Port { A, B }` names things; no
                // handle type is an enum.
                let name = e.ident.to_string();
                if REGISTER_TYPES.contains(&name.as_str()) {
                    self.0.shadowed.insert(name);
                }
                syn::visit::visit_item_enum(self, e);
            }
        }
        let mut v = V(HandleNames::default());
        syn::visit::Visit::visit_file(&mut v, file);
        v.0
    }
}

/// The names a `use` tree brings into scope unrenamed (renames are [`HandleNames::extra`]).
fn use_leaves(t: &syn::UseTree, out: &mut Vec<String>) {
    match t {
        syn::UseTree::Path(p) => use_leaves(&p.tree, out),
        syn::UseTree::Name(n) => out.push(n.ident.to_string()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|i| use_leaves(i, out)),
        syn::UseTree::Rename(_) | syn::UseTree::Glob(_) => {}
    }
}

/// Whether `ty` is a register handle type (`Port<u8>`, `&mut PortWriteOnly<u16>`), also
/// inside arrays, slices and the usual wrappers (`Mutex<Port<u8>>`).
pub fn is_handle_type(ty: &Type, names: &HandleNames) -> bool {
    match ty {
        Type::Array(a) => is_handle_type(&a.elem, names),
        Type::Slice(s) => is_handle_type(&s.elem, names),
        Type::Reference(r) => is_handle_type(&r.elem, names),
        Type::Paren(p) => is_handle_type(&p.elem, names),
        Type::Group(g) => is_handle_type(&g.elem, names),
        Type::Path(p) => p.path.segments.last().is_some_and(|seg| {
            let name = seg.ident.to_string();
            if names.contains(&name) {
                return true;
            }
            HANDLE_WRAPPERS.contains(&name.as_str())
                && matches!(&seg.arguments, syn::PathArguments::AngleBracketed(a)
                    if a.args.iter().any(|g| matches!(g, syn::GenericArgument::Type(t) if is_handle_type(t, names))))
        }),
        _ => false,
    }
}

/// Whether `e` constructs a register handle: `Port::new(0x3f8)`, `Port::<u8>::inert(p)`,
/// also under `unsafe { … }`, `?`, `.unwrap()`, `.expect(..)`, `.ok_or(..)`, `.ok()`.
pub fn is_handle_ctor(e: &Expr, names: &HandleNames) -> bool {
    match e {
        Expr::Call(c) => {
            let p = callee_path(&c.func);
            p.len() >= 2 && names.contains(&p[p.len() - 2])
        }
        Expr::Unsafe(u) => u.block.stmts.last().is_some_and(|s| match s {
            syn::Stmt::Expr(e, None) => is_handle_ctor(e, names),
            _ => false,
        }),
        Expr::Try(t) => is_handle_ctor(&t.expr, names),
        Expr::Paren(p) => is_handle_ctor(&p.expr, names),
        Expr::Group(g) => is_handle_ctor(&g.expr, names),
        Expr::MethodCall(m) => {
            matches!(
                m.method.to_string().as_str(),
                "unwrap" | "expect" | "ok_or" | "ok_or_else" | "ok"
            ) && is_handle_ctor(&m.receiver, names)
        }
        Expr::Macro(m) => is_mmio_projection(&m.mac),
        _ => false,
    }
}

/// `field!(regs, status)` / `field_shared!(self.header, queue_ready)`: the `safe-mmio`
/// projection of one register of an MMIO struct pointer, itself an MMIO pointer (a handle
/// whose `.read()`/`.write(..)` reach the device). Recognised by the macro's name and its
/// shape: two arguments, the second a field name.
fn is_mmio_projection(mac: &Macro) -> bool {
    let Some(last) = mac.path.segments.last() else {
        return false;
    };
    if last.ident != "field" && last.ident != "field_shared" {
        return false;
    }
    let parser = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
    syn::parse::Parser::parse2(parser, mac.tokens.clone()).is_ok_and(|args| {
        args.len() == 2
            && matches!(args.last(), Some(Expr::Path(p)) if p.path.get_ident().is_some())
    })
}

/// `e` without the guard methods, `?` and parentheses that reach a wrapped handle:
/// `CONSOLE.lock()` → `CONSOLE`, `self.port.as_mut().unwrap()` → `self.port`.
fn peel_guards(e: &Expr) -> &Expr {
    match e {
        Expr::MethodCall(m) if GUARD_METHODS.contains(&m.method.to_string().as_str()) => {
            peel_guards(&m.receiver)
        }
        Expr::Try(t) => peel_guards(&t.expr),
        Expr::Paren(p) => peel_guards(&p.expr),
        Expr::Group(g) => peel_guards(&g.expr),
        _ => e,
    }
}

/// The names a pattern binds to the whole matched value or to the `Some`/`Ok` payload:
/// `mut port`, `port: Port<u8>`, `Some(mut port)`, `Ok(port)`.
fn bound_names(pat: &syn::Pat, out: &mut Vec<String>) {
    match pat {
        syn::Pat::Ident(p) if p.subpat.is_none() => out.push(p.ident.to_string()),
        syn::Pat::Type(t) => bound_names(&t.pat, out),
        syn::Pat::Paren(p) => bound_names(&p.pat, out),
        syn::Pat::TupleStruct(t)
            if t.elems.len() == 1
                && t.path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "Some" || s.ident == "Ok") =>
        {
            bound_names(&t.elems[0], out)
        }
        _ => {}
    }
}

/// Names the surrounding crate and function give to device access.
#[derive(Debug, Default, Clone)]
pub struct DeviceCx {
    /// Struct fields declared with a register type (shared: cloned once per function).
    pub reg_fields: Arc<HashSet<String>>,
    /// Reader function and method names.
    pub readers: Arc<HashSet<String>>,
    /// Writer function and method names.
    pub writers: Arc<HashSet<String>>,
    /// Locals bound to register handles (`Port`, `Volatile`, …) in the current function.
    pub locals: HashSet<String>,
    /// Locals bound to raw pointers into device memory in the current function.
    pub ptr_locals: HashSet<String>,
    /// Of those, the locals made from an integer address (`0xfee0_0000 as *mut u32`).
    pub int_ptr_locals: HashSet<String>,
    /// Statics holding pointers made from integer addresses (`static mut LAPIC: *mut u32 =
    /// 0xfee0_0000 as *mut u32`), crate-wide.
    pub ptr_statics: Arc<HashSet<String>>,
    /// Locals holding a PAC register's read value (`let sr1 = self.i2c.sr1().read();`
    /// whose fields the function tests: `sr1.af().bit_is_set()`), in the current function.
    pub pac_values: HashSet<String>,
    /// Statics holding register handles (`static COM1: Mutex<Port<u8>>`), crate-wide.
    pub handle_statics: Arc<HashSet<String>>,
    /// The handle type names in force in the crate.
    pub handle_names: Arc<HandleNames>,
    /// Names `read_volatile` is imported under (`use core::ptr::read_volatile as rd`).
    pub volatile_reads: Arc<HashSet<String>>,
    /// Names `write_volatile` is imported under.
    pub volatile_writes: Arc<HashSet<String>>,
}

impl DeviceCx {
    /// A context with the default reader/writer names plus the given extra names.
    pub fn new(readers: &[String], writers: &[String]) -> Self {
        Self {
            readers: Arc::new(
                DEFAULT_READERS
                    .iter()
                    .map(|s| s.to_string())
                    .chain(readers.iter().cloned())
                    .collect(),
            ),
            writers: Arc::new(
                DEFAULT_WRITERS
                    .iter()
                    .map(|s| s.to_string())
                    .chain(writers.iter().cloned())
                    .collect(),
            ),
            ..Self::default()
        }
    }

    /// A copy with the locals of `block` that hold register handles or device pointers.
    pub fn for_block(&self, block: &syn::Block) -> Self {
        let mut cx = self.clone();
        cx.locals.clear();
        cx.ptr_locals.clear();
        cx.int_ptr_locals.clear();
        cx.pac_values.clear();
        let mut v = LocalScan {
            cx: &mut cx,
            pac_reads: HashSet::new(),
        };
        syn::visit::Visit::visit_block(&mut v, block);
        // A `.read()` value counts only when a field of it is tested like a PAC reader's.
        let mut used = PacFieldUse(HashSet::new());
        syn::visit::Visit::visit_block(&mut used, block);
        cx.pac_values = v.pac_reads.intersection(&used.0).cloned().collect();
        cx
    }

    /// [`for_block`](Self::for_block) of a function body, with the parameters of
    /// register handle types (`port: &mut Port<u8>`) as handle locals.
    pub fn for_fn(&self, sig: &syn::Signature, block: &syn::Block) -> Self {
        let mut cx = self.for_block(block);
        for input in &sig.inputs {
            if let syn::FnArg::Typed(t) = input {
                if is_handle_type(&t.ty, &self.handle_names) {
                    let mut names = Vec::new();
                    bound_names(&t.pat, &mut names);
                    cx.locals.extend(names);
                }
            }
        }
        cx
    }

    /// Whether `e` (a method receiver, guard methods peeled) is a handle itself: a
    /// constructor call (`Port::new(0xf4)`) or a static holding one.
    fn is_direct_handle(&self, e: &Expr) -> bool {
        is_handle_ctor(e, &self.handle_names)
            || matches!(e, Expr::Path(p) if p.path.get_ident().is_some_and(|i| self.handle_statics.contains(&i.to_string())))
    }

    /// Whether `e` (a method receiver) names a register handle.
    pub fn is_register_receiver(&self, e: &Expr) -> bool {
        let e = peel_guards(e);
        if self.is_direct_handle(e) {
            return true;
        }
        let mut chain = Vec::new();
        receiver_chain(e, &mut chain);
        if chain.is_empty() {
            return false;
        }
        if chain.first().is_some_and(|r| self.locals.contains(r)) {
            return true;
        }
        if chain.last().is_some_and(|l| self.reg_fields.contains(l)) {
            return true;
        }
        chain
            .iter()
            .any(|seg| words(seg).iter().any(|w| REG_WORDS.contains(&w.as_str())))
    }

    /// Whether `e` (a method receiver) is a typed register handle: a local bound to one, or
    /// a field declared with a register type (`ReadWrite<u32>`, `Volatile<u32>`).
    pub fn is_handle_receiver(&self, e: &Expr) -> bool {
        let e = peel_guards(e);
        if self.is_direct_handle(e) {
            return true;
        }
        let mut chain = Vec::new();
        receiver_chain(e, &mut chain);
        match e {
            Expr::Path(_) => chain.len() == 1 && self.locals.contains(&chain[0]),
            Expr::Field(_) => chain.last().is_some_and(|l| self.reg_fields.contains(l)),
            _ => false,
        }
    }

    /// Whether `e` names a local or static that holds a pointer made from an integer
    /// address (so `*e` is a device access).
    pub fn is_ptr_place(&self, e: &Expr) -> bool {
        match e {
            Expr::Paren(p) => self.is_ptr_place(&p.expr),
            Expr::Path(p) => p.path.segments.last().is_some_and(|s| {
                let n = s.ident.to_string();
                self.ptr_statics.contains(&n)
                    || (p.path.segments.len() == 1
                        && self.ptr_locals.contains(&n)
                        && self.int_ptr_locals.contains(&n))
            }),
            Expr::MethodCall(m)
                if matches!(m.method.to_string().as_str(), "add" | "offset" | "byte_add") =>
            {
                self.is_ptr_place(&m.receiver)
            }
            _ => false,
        }
    }

    /// Whether a pointer expression looks like device memory.
    pub fn is_device_pointer(&self, e: &Expr) -> bool {
        if int_cast_to_ptr(e)
            || self.is_ptr_place(e)
            || is_raw_field_address(e)
            || is_pointer_field(e)
        {
            return true;
        }
        let mut ids = Vec::new();
        idents(e.to_token_stream(), &mut ids);
        ids.iter().any(|id| {
            self.locals.contains(id)
                || self.ptr_locals.contains(id)
                || self.reg_fields.contains(id)
                || words(id).iter().any(|w| PTR_WORDS.contains(&w.as_str()))
        })
    }

    /// Classifies the top node of `e` as a device access.
    pub fn classify(&self, e: &Expr) -> Option<Access> {
        let acc = |kind, form, what: String| {
            Some(Access {
                kind,
                form,
                span: e.span(),
                what,
            })
        };
        match e {
            Expr::Call(c) => {
                let name = callee_name(&c.func)?;
                let name = if self.volatile_reads.contains(&name) {
                    "read_volatile".to_string()
                } else if self.volatile_writes.contains(&name) {
                    "write_volatile".to_string()
                } else {
                    name
                };
                match name.as_str() {
                    "read_volatile" | "read_unaligned_volatile" => {
                        let arg = c.args.first()?;
                        self.is_device_pointer(arg).then_some(()).and_then(|_| {
                            acc(AccessKind::Read, Form::Volatile, "read_volatile".into())
                        })
                    }
                    "write_volatile" => {
                        let arg = c.args.first()?;
                        self.is_device_pointer(arg).then_some(()).and_then(|_| {
                            acc(AccessKind::Write, Form::Volatile, "write_volatile".into())
                        })
                    }
                    n if self.readers.contains(n) && !fills_buffer(&c.args) => {
                        acc(AccessKind::Read, Form::Function, format!("{n}()"))
                    }
                    n if self.writers.contains(n) => {
                        acc(AccessKind::Write, Form::Function, format!("{n}()"))
                    }
                    _ => None,
                }
            }
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                match name.as_str() {
                    // The method of a typed handle (`accessor`'s `single::ReadWrite`, a
                    // `VolatileCell` field): register access through a type, not a raw pointer.
                    "read_volatile" | "read_unaligned_volatile"
                        if self.is_handle_receiver(&m.receiver) =>
                    {
                        acc(AccessKind::Read, Form::Register, format!(".{name}()"))
                    }
                    "write_volatile" if self.is_handle_receiver(&m.receiver) => {
                        acc(AccessKind::Write, Form::Register, format!(".{name}()"))
                    }
                    "read_volatile" if self.is_device_pointer(&m.receiver) => {
                        acc(AccessKind::Read, Form::Volatile, ".read_volatile()".into())
                    }
                    "write_volatile" if self.is_device_pointer(&m.receiver) => acc(
                        AccessKind::Write,
                        Form::Volatile,
                        ".write_volatile()".into(),
                    ),
                    // `serial.read(&mut buf)`: a call that fills a buffer returns how much it
                    // filled (bounded by the buffer), not a register value.
                    n if self.readers.contains(n) && !fills_buffer(&m.args) => {
                        acc(AccessKind::Read, Form::Function, format!(".{n}()"))
                    }
                    n if self.writers.contains(n) => {
                        acc(AccessKind::Write, Form::Function, format!(".{n}()"))
                    }
                    // svd2rust/PAC chains: `rcc.cr().read().hserdy().bit_is_clear()`,
                    // `spi.sr.read().bits()`.
                    "bit_is_set" | "bit_is_clear" | "bits"
                        if m.args.is_empty() && reads_pac_register(&m.receiver) =>
                    {
                        acc(
                            AccessKind::Read,
                            Form::Register,
                            format!(".read().{name}()"),
                        )
                    }
                    // The other field readers of a PAC read: `.read().pvu().bit()`,
                    // `.read().cen().is_enabled()`, `.read().mode().variant()`, and the
                    // same on a local holding the read value (`sr1.af().bit_is_set()`).
                    // An enumerated-value test (`is_<variant>()`) only on the read itself: on a
                    // local, `value.untrusted().is_all_ones()` is any type's predicate.
                    n if m.args.is_empty()
                        && is_pac_field_reader(n)
                        && (pac_field_of_read(&m.receiver)
                            || (is_pac_bit_reader(n) && self.is_pac_value_field(&m.receiver))) =>
                    {
                        acc(
                            AccessKind::Read,
                            Form::Register,
                            format!(".read().{name}()"),
                        )
                    }
                    // A register block reached through the PAC's pointer:
                    // `(*DMA::ptr()).isr().read()`, `(*pac::RCC::ptr()).cr.modify(..)`.
                    "read" if m.args.is_empty() && roots_at_pac_block(&m.receiver) => {
                        acc(AccessKind::Read, Form::Register, ".read()".into())
                    }
                    "write" | "modify" | "reset" if roots_at_pac_block(&m.receiver) => acc(
                        if name == "modify" {
                            AccessKind::Modify
                        } else {
                            AccessKind::Write
                        },
                        Form::Register,
                        format!(".{name}()"),
                    ),
                    "get" if !m.args.is_empty() => None,
                    "read" | "get" | "is_set" | "read_as_enum" | "matches_all" | "matches_any"
                    | "extract"
                        if self.is_register_receiver(&m.receiver) =>
                    {
                        acc(AccessKind::Read, Form::Register, format!(".{name}()"))
                    }
                    "write" | "set" if self.is_register_receiver(&m.receiver) => {
                        acc(AccessKind::Write, Form::Register, format!(".{name}()"))
                    }
                    "modify" | "modify_no_read" | "update"
                        if self.is_register_receiver(&m.receiver) =>
                    {
                        acc(AccessKind::Modify, Form::Register, format!(".{name}()"))
                    }
                    _ => None,
                }
            }
            Expr::Unary(u)
                if matches!(u.op, syn::UnOp::Deref(_))
                    && (int_cast_to_ptr(&u.expr) || self.is_ptr_place(&u.expr)) =>
            {
                acc(
                    AccessKind::Read,
                    Form::RawDeref,
                    "raw pointer dereference".into(),
                )
            }
            Expr::Assign(a) => match &*a.left {
                Expr::Unary(u)
                    if matches!(u.op, syn::UnOp::Deref(_))
                        && (int_cast_to_ptr(&u.expr) || self.is_ptr_place(&u.expr)) =>
                {
                    acc(
                        AccessKind::Write,
                        Form::RawDeref,
                        "raw pointer dereference".into(),
                    )
                }
                _ => None,
            },
            Expr::Macro(m) => self.classify_macro(&m.mac),
            _ => None,
        }
    }

    /// Classifies a macro invocation (`asm!` port I/O).
    pub fn classify_macro(&self, mac: &Macro) -> Option<Access> {
        let kind = asm_port_kind(mac)?;
        Some(Access {
            kind,
            form: Form::AsmPort,
            span: mac.span(),
            what: "asm! port i/o".into(),
        })
    }
}

/// Whether `mac` is `asm!` with a port instruction; reads win over writes.
pub fn asm_port_kind(mac: &Macro) -> Option<AccessKind> {
    if mac
        .path
        .segments
        .last()
        .map(|s| s.ident != "asm")
        .unwrap_or(true)
    {
        return None;
    }
    let mut kind = None;
    for tt in mac.tokens.clone() {
        if let TokenTree::Literal(lit) = tt {
            let s = lit.to_string();
            for line in s
                .trim_matches(|c| c == '"' || c == 'r' || c == '#')
                .split(['\n', ';'])
            {
                let ins = line
                    .trim()
                    .trim_start_matches("\\n")
                    .trim()
                    .to_ascii_lowercase();
                let op = ins.split_whitespace().next().unwrap_or("");
                match op {
                    "in" | "inb" | "inw" | "inl" | "insb" | "insw" | "insl" | "insd" => {
                        return Some(AccessKind::Read);
                    }
                    "out" | "outb" | "outw" | "outl" | "outsb" | "outsw" | "outsl" | "outsd" => {
                        kind = Some(AccessKind::Write);
                    }
                    _ => {}
                }
            }
        }
    }
    kind
}

/// The locals an `asm!` port read writes (its `out`/`lateout`/`inout` operands).
pub fn asm_outputs(mac: &Macro) -> Vec<String> {
    let toks: Vec<TokenTree> = mac.tokens.clone().into_iter().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let TokenTree::Ident(id) = &toks[i] {
            let s = id.to_string();
            if matches!(s.as_str(), "out" | "lateout" | "inout" | "inlateout")
                && matches!(toks.get(i + 1), Some(TokenTree::Group(_)))
            {
                let mut j = i + 2;
                let mut last = None;
                while j < toks.len() {
                    match &toks[j] {
                        TokenTree::Punct(p) if p.as_char() == ',' => break,
                        TokenTree::Ident(id) => last = Some(id.to_string()),
                        _ => {}
                    }
                    j += 1;
                }
                if let Some(l) = last.filter(|l| l != "_") {
                    out.push(l);
                }
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// `<integer expr> as *const T` / `as *mut T`, possibly parenthesised or with `.add(..)`.
pub fn int_cast_to_ptr(e: &Expr) -> bool {
    match e {
        Expr::Paren(p) => int_cast_to_ptr(&p.expr),
        Expr::Group(g) => int_cast_to_ptr(&g.expr),
        Expr::Cast(c) => matches!(&*c.ty, Type::Ptr(_)) && is_integer_like(&c.expr),
        Expr::MethodCall(m)
            if matches!(m.method.to_string().as_str(), "add" | "offset" | "byte_add") =>
        {
            int_cast_to_ptr(&m.receiver)
        }
        _ => false,
    }
}

/// Whether a call's arguments include a mutable borrow (`&mut buf`): the call fills it.
fn fills_buffer(args: &syn::punctuated::Punctuated<Expr, syn::Token![,]>) -> bool {
    args.iter()
        .any(|a| matches!(a, Expr::Reference(r) if r.mutability.is_some()))
}

/// The raw pointer kept in a struct field: `self.ioregsel.as_ptr()` (a `NonNull`),
/// `self.base.as_ptr().add(off)`. Volatile access through a pointer a driver keeps is its
/// register window (or memory the device shares), not a local buffer.
fn is_pointer_field(e: &Expr) -> bool {
    match e {
        Expr::Paren(p) => is_pointer_field(&p.expr),
        Expr::Cast(c) => is_pointer_field(&c.expr),
        Expr::MethodCall(m) => match m.method.to_string().as_str() {
            "as_ptr" | "as_mut_ptr" => {
                m.args.is_empty()
                    && matches!(&*m.receiver, Expr::Field(f) if matches!(&*f.base, Expr::Path(p) if p.path.is_ident("self")))
            }
            "add" | "offset" | "byte_add" | "wrapping_add" | "cast" => {
                is_pointer_field(&m.receiver)
            }
            _ => false,
        },
        _ => false,
    }
}

/// Whether a method chain contains a PAC register read: `.read()` without arguments on a
/// register accessor (`x.cr()`, `x.sr`), not on a plain local (a lock guard).
fn reads_pac_register(e: &Expr) -> bool {
    match e {
        Expr::MethodCall(m) if m.method == "read" && m.args.is_empty() => {
            matches!(&*m.receiver, Expr::MethodCall(r) if r.args.is_empty() && !matches!(r.method.to_string().as_str(), "lock" | "borrow" | "borrow_mut" | "as_ref" | "unwrap" | "get" | "deref" | "write"))
                || matches!(&*m.receiver, Expr::Field(_))
        }
        Expr::MethodCall(m) => reads_pac_register(&m.receiver),
        Expr::Paren(p) => reads_pac_register(&p.expr),
        _ => false,
    }
}

/// Field-reader methods of svd2rust's `R` types: `bit`, `bit_is_set`, `bit_is_clear`,
/// `bits`, `variant` and the enumerated-value tests `is_*` (`is_enabled`, `is_ready`).
fn is_pac_field_reader(name: &str) -> bool {
    is_pac_bit_reader(name)
        || (name.starts_with("is_")
            && name.len() > 3
            // Tests of collections, options and results, not of a register field.
            && !matches!(
                name,
                "is_empty" | "is_some" | "is_none" | "is_ok" | "is_err" | "is_null" | "is_full"
                // An all-ones check is the test for a gone device, not a field.
                | "is_all_ones"
            ))
}

/// The readers only svd2rust's field types have (`bit_is_set`, `bits`, `variant`), unlike
/// `is_*`, which any type may define (`is_all_ones`, `is_enabled`).
fn is_pac_bit_reader(name: &str) -> bool {
    matches!(
        name,
        "bit" | "bit_is_set" | "bit_is_clear" | "bits" | "variant"
    )
}

/// `x.reg().read().field()` (or `.field(n)`): a field accessor applied directly to a PAC
/// register read.
fn pac_field_of_read(e: &Expr) -> bool {
    match e {
        Expr::MethodCall(f) if f.args.len() <= 1 => match &*f.receiver {
            r @ Expr::MethodCall(read) if read.method == "read" && read.args.is_empty() => {
                reads_pac_register(r) || roots_at_pac_block(&read.receiver)
            }
            _ => false,
        },
        _ => false,
    }
}

/// Whether a method/field chain starts at a PAC register block pointer: `(*X::ptr())`,
/// `&(*X::ptr())`, `unsafe { &*X::ptr() }` (svd2rust's `ptr()` associated function).
pub fn roots_at_pac_block(e: &Expr) -> bool {
    match e {
        Expr::MethodCall(m) => roots_at_pac_block(&m.receiver),
        Expr::Field(f) => roots_at_pac_block(&f.base),
        Expr::Paren(p) => roots_at_pac_block(&p.expr),
        Expr::Reference(r) => roots_at_pac_block(&r.expr),
        Expr::Unsafe(u) => {
            u.block.stmts.len() == 1
                && matches!(&u.block.stmts[0], syn::Stmt::Expr(e, None) if roots_at_pac_block(e))
        }
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => match &*u.expr {
            Expr::Call(c) => {
                c.args.is_empty()
                    && matches!(&*c.func, Expr::Path(p) if (p.qself.is_some() || p.path.segments.len() >= 2)
                        && p.path.segments.last().is_some_and(|s| s.ident == "ptr"))
            }
            other => roots_at_pac_block(other),
        },
        _ => false,
    }
}

/// Locals whose fields are tested like a PAC reader's: `x.f().bit_is_set()`, `x.bits()`.
struct PacFieldUse(HashSet<String>);

impl<'ast> syn::visit::Visit<'ast> for PacFieldUse {
    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        if m.args.is_empty() && is_pac_bit_reader(&m.method.to_string()) {
            // `x.field().reader()`: a field accessor between the value and the reader.
            if let Expr::MethodCall(f) = &*m.receiver {
                if let (true, Expr::Path(p)) = (f.args.len() <= 1, &*f.receiver) {
                    if let Some(i) = p.path.get_ident() {
                        self.0.insert(i.to_string());
                    }
                }
            }
        }
        syn::visit::visit_expr_method_call(self, m);
    }
}

impl DeviceCx {
    /// `x.f()` (or `x.f(n)`) where `x` holds a PAC register read value.
    fn is_pac_value_field(&self, e: &Expr) -> bool {
        match e {
            Expr::MethodCall(f) if f.args.len() <= 1 => {
                matches!(&*f.receiver, Expr::Path(p) if p.path.get_ident().is_some_and(|i| self.pac_values.contains(&i.to_string())))
            }
            _ => false,
        }
    }
}

/// `addr_of!((*desc).status)`, `addr_of_mut!(..)`, `&raw const (*p).f`: the address of a
/// field reached through a raw pointer (descriptors and registers laid out as structs).
pub fn is_raw_field_address(e: &Expr) -> bool {
    fn through_deref(tokens: TokenStream) -> bool {
        syn::parse2::<Expr>(tokens).is_ok_and(|p| place_through_deref(&p))
    }
    fn place_through_deref(e: &Expr) -> bool {
        match e {
            Expr::Field(f) => place_through_deref(&f.base),
            Expr::Index(i) => place_through_deref(&i.expr),
            Expr::Paren(p) => place_through_deref(&p.expr),
            Expr::Unary(u) => matches!(u.op, syn::UnOp::Deref(_)),
            _ => false,
        }
    }
    match e {
        Expr::Paren(p) => is_raw_field_address(&p.expr),
        Expr::Cast(c) => is_raw_field_address(&c.expr),
        Expr::Macro(m) => {
            m.mac
                .path
                .segments
                .last()
                .is_some_and(|s| matches!(s.ident.to_string().as_str(), "addr_of" | "addr_of_mut"))
                && through_deref(m.mac.tokens.clone())
        }
        Expr::RawAddr(r) => place_through_deref(&r.expr),
        _ => false,
    }
}

/// Address-like names: a variable or field holding a physical or bus address.
fn is_address_name(e: &Expr) -> bool {
    let last = match e {
        Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Expr::Field(f) => match &f.member {
            syn::Member::Named(n) => Some(n.to_string()),
            syn::Member::Unnamed(_) => None,
        },
        _ => None,
    };
    last.is_some_and(|n| {
        words(&n).iter().any(|w| {
            matches!(
                w.as_str(),
                "addr" | "address" | "paddr" | "phys" | "mmio" | "bar" | "bar0" | "base"
            )
        })
    })
}

/// An expression that is an integer (literal, arithmetic on one, or an `as usize` cast).
fn is_integer_like(e: &Expr) -> bool {
    if is_address_name(e) {
        return true;
    }
    match e {
        // `*addr` of a match binding or a `&u64` parameter: `read_volatile(*addr as *const u32)`.
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => {
            matches!(&*u.expr, Expr::Path(p) if p.path.get_ident().is_some_and(|i| i != "self"))
                || is_integer_like(&u.expr)
        }
        Expr::Lit(l) => matches!(l.lit, syn::Lit::Int(_)),
        Expr::Paren(p) => is_integer_like(&p.expr),
        Expr::Binary(b) => is_integer_like(&b.left) || is_integer_like(&b.right),
        Expr::Cast(c) => match &*c.ty {
            Type::Path(p) => {
                p.path.segments.last().is_some_and(|s| {
                    matches!(
                        s.ident.to_string().as_str(),
                        "usize" | "u64" | "u32" | "isize"
                    )
                }) && !matches!(&*c.expr, Expr::Reference(_))
            }
            _ => false,
        },
        Expr::Path(p) => p.path.segments.last().is_some_and(|s| {
            let id = s.ident.to_string();
            id.len() > 1
                && id
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        }),
        _ => false,
    }
}

/// Identifiers along a receiver chain: `self.regs.csts()` → `["self", "regs", "csts"]`.
pub fn receiver_chain(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Path(p) => out.extend(p.path.segments.iter().map(|s| s.ident.to_string())),
        Expr::Field(f) => {
            receiver_chain(&f.base, out);
            if let syn::Member::Named(n) = &f.member {
                out.push(n.to_string());
            }
        }
        Expr::MethodCall(m) => {
            receiver_chain(&m.receiver, out);
            out.push(m.method.to_string());
        }
        Expr::Index(i) => receiver_chain(&i.expr, out),
        Expr::Paren(p) => receiver_chain(&p.expr, out),
        Expr::Reference(r) => receiver_chain(&r.expr, out),
        Expr::Unary(u) => receiver_chain(&u.expr, out),
        Expr::Call(c) => receiver_chain(&c.func, out),
        _ => {}
    }
}

struct LocalScan<'a> {
    cx: &'a mut DeviceCx,
    /// Locals bound to a PAC-shaped `.read()` (kept when a field of them is tested).
    pac_reads: HashSet<String>,
}

impl<'ast> syn::visit::Visit<'ast> for LocalScan<'_> {
    fn visit_local(&mut self, l: &'ast syn::Local) {
        let name = match &l.pat {
            syn::Pat::Ident(p) => Some(p.ident.to_string()),
            syn::Pat::Type(t) => match &*t.pat {
                syn::Pat::Ident(p) => {
                    if is_handle_type(&t.ty, &self.cx.handle_names) {
                        self.cx.locals.insert(p.ident.to_string());
                    }
                    Some(p.ident.to_string())
                }
                _ => None,
            },
            _ => None,
        };
        // `let mut p = Port::new(..)`, `let Some(mut p) = Port::inert(..) else { .. }`,
        // `let p = &mut self.data` (a handle field borrowed).
        let handle = l
            .init
            .as_ref()
            .is_some_and(|i| self.is_handle_source(&i.expr));
        if handle {
            self.bind(&l.pat);
        }
        if let (Some(name), Some(init), false) = (name, &l.init, handle) {
            if int_cast_to_ptr(&init.expr) {
                self.cx.int_ptr_locals.insert(name.clone());
                self.cx.ptr_locals.insert(name);
            } else if is_pointer_expr(&init.expr) && self.cx.is_device_pointer(&init.expr) {
                self.cx.ptr_locals.insert(name);
            } else if matches!(&*init.expr, Expr::MethodCall(m) if m.method == "read" && m.args.is_empty())
                && (reads_pac_register(&init.expr)
                    || matches!(&*init.expr, Expr::MethodCall(m) if roots_at_pac_block(&m.receiver)))
            {
                self.pac_reads.insert(name);
            }
        }
        syn::visit::visit_local(self, l);
    }

    /// `if let Some(mut port) = Port::inert(..)`, `while let ..`.
    fn visit_expr_let(&mut self, l: &'ast syn::ExprLet) {
        if self.is_handle_source(&l.expr) {
            self.bind(&l.pat);
        }
        syn::visit::visit_expr_let(self, l);
    }

    /// `match Port::inert(..) { Some(mut port) => .., None => .. }`.
    fn visit_expr_match(&mut self, m: &'ast syn::ExprMatch) {
        if self.is_handle_source(&m.expr) {
            for arm in &m.arms {
                self.bind(&arm.pat);
            }
        }
        syn::visit::visit_expr_match(self, m);
    }

    /// Closure parameters of handle types (`|port: &mut Port<u8>| ..`).
    fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
        for input in &c.inputs {
            if let syn::Pat::Type(t) = input {
                if is_handle_type(&t.ty, &self.cx.handle_names) {
                    self.bind(&t.pat);
                }
            }
        }
        syn::visit::visit_expr_closure(self, c);
    }
}

impl LocalScan<'_> {
    /// Whether a binding's value is a register handle: a constructor call, or a borrow or
    /// copy of a handle field or local (`&mut self.cmd`, `&mut self.tx_cmd[i]`).
    fn is_handle_source(&self, e: &Expr) -> bool {
        if is_handle_ctor(e, &self.cx.handle_names) {
            return true;
        }
        let e = match e {
            Expr::Reference(r) => &*r.expr,
            e => e,
        };
        match peel_guards(e) {
            Expr::Index(i) => self.cx.is_handle_receiver(&i.expr),
            e @ (Expr::Field(_) | Expr::Path(_)) => self.cx.is_handle_receiver(e),
            _ => false,
        }
    }

    /// Records the names `pat` binds as handle locals.
    fn bind(&mut self, pat: &syn::Pat) {
        let mut names = Vec::new();
        bound_names(pat, &mut names);
        self.cx.locals.extend(names);
    }
}

/// An expression that produces a raw pointer (cast to pointer, `.add`, `as_ptr`, `NonNull`).
fn is_pointer_expr(e: &Expr) -> bool {
    match e {
        Expr::Cast(c) => matches!(&*c.ty, Type::Ptr(_)),
        Expr::Paren(p) => is_pointer_expr(&p.expr),
        Expr::MethodCall(m) => matches!(
            m.method.to_string().as_str(),
            "add" | "offset" | "byte_add" | "cast" | "as_ptr" | "as_mut_ptr" | "wrapping_add"
        ),
        _ => false,
    }
}

/// Collects struct fields (and `register_structs!`-style macro fields) of register types, and
/// the fields struct literals initialise with a handle constructor.
pub fn register_fields(file: &syn::File, names: &HandleNames) -> Vec<String> {
    struct V<'n>(Vec<String>, &'n HandleNames);
    impl<'ast> syn::visit::Visit<'ast> for V<'_> {
        fn visit_field(&mut self, f: &'ast syn::Field) {
            if let Some(id) = &f.ident {
                // Also arrays and slices of handles (`tx_cmd: [Port<u32>; 4]`) and handles
                // behind a lock or an `Option` (`data: Mutex<Port<u8>>`).
                if is_handle_type(&f.ty, self.1) {
                    self.0.push(id.to_string());
                }
            }
            syn::visit::visit_field(self, f);
        }
        /// A field initialised by a handle constructor (`Serial { data: Port::new(base) }`),
        /// whatever its declared type (a generic `P`, a type of another crate).
        fn visit_expr_struct(&mut self, e: &'ast syn::ExprStruct) {
            for fv in &e.fields {
                if let (syn::Member::Named(id), true) =
                    (&fv.member, is_handle_ctor(&fv.expr, self.1))
                {
                    self.0.push(id.to_string());
                }
            }
            syn::visit::visit_expr_struct(self, e);
        }
        fn visit_macro(&mut self, m: &'ast Macro) {
            scan_macro_fields(m.tokens.clone(), &mut self.0);
        }
    }
    let mut v = V(Vec::new(), names);
    syn::visit::Visit::visit_file(&mut v, file);
    v.0
}

/// Statics of register handle types (`static COM1: Mutex<Port<u8>>`, `static mut PIT:
/// Port<u8>`).
pub fn handle_statics(file: &syn::File, names: &HandleNames) -> Vec<String> {
    struct V<'n>(Vec<String>, &'n HandleNames);
    impl<'ast> syn::visit::Visit<'ast> for V<'_> {
        fn visit_item_static(&mut self, st: &'ast syn::ItemStatic) {
            if is_handle_type(&st.ty, self.1) {
                self.0.push(st.ident.to_string());
            }
        }
    }
    let mut v = V(Vec::new(), names);
    syn::visit::Visit::visit_file(&mut v, file);
    v.0
}

fn scan_macro_fields(tokens: TokenStream, out: &mut Vec<String>) {
    let toks: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tt) in toks.iter().enumerate() {
        match tt {
            TokenTree::Group(g) => scan_macro_fields(g.stream(), out),
            TokenTree::Ident(id) => {
                if let (Some(TokenTree::Punct(p)), Some(TokenTree::Ident(ty))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    if p.as_char() == ':' && REGISTER_TYPES.contains(&ty.to_string().as_str()) {
                        out.push(id.to_string());
                    }
                }
            }
            _ => {}
        }
    }
}

/// Finds every device access in a syntax tree node, in source order.
pub fn accesses_in_block(cx: &DeviceCx, block: &syn::Block) -> Vec<Access> {
    let mut v = Finder {
        cx,
        out: Vec::new(),
    };
    syn::visit::Visit::visit_block(&mut v, block);
    v.out
}

/// Finds every device access in an expression, in source order.
pub fn accesses_in_expr(cx: &DeviceCx, e: &Expr) -> Vec<Access> {
    let mut v = Finder {
        cx,
        out: Vec::new(),
    };
    syn::visit::Visit::visit_expr(&mut v, e);
    v.out
}

struct Finder<'a> {
    cx: &'a DeviceCx,
    out: Vec<Access>,
}

impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
    fn visit_expr(&mut self, e: &'ast Expr) {
        if let Some(a) = self.cx.classify(e) {
            let store = a.form == Form::RawDeref && a.kind == AccessKind::Write;
            self.out.push(a);
            if let (true, Expr::Assign(asg)) = (store, e) {
                // `*(addr as *mut T) = v` is one write, not also a read of the target.
                self.visit_expr(&asg.right);
                return;
            }
        }
        syn::visit::visit_expr(self, e);
    }
    fn visit_stmt_macro(&mut self, m: &'ast syn::StmtMacro) {
        if let Some(a) = self.cx.classify_macro(&m.mac) {
            self.out.push(a);
        }
    }
    fn visit_item(&mut self, _: &'ast syn::Item) {
        // Nested items are analysed as functions of their own.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(src: &str) -> Option<AccessKind> {
        let e: Expr = syn::parse_str(src).unwrap();
        let mut cx = DeviceCx::new(&["my_read".into()], &[]);
        Arc::make_mut(&mut cx.reg_fields).insert("ctrl".into());
        cx.classify(&e).map(|a| a.kind)
    }

    #[test]
    fn recognises_forms() {
        use AccessKind::*;
        assert_eq!(
            classify("core::ptr::read_volatile(self.base.add(4) as *const u32)"),
            Some(Read)
        );
        assert_eq!(classify("ptr::write_volatile(mmio, 1)"), Some(Write));
        assert_eq!(
            classify("(0xfee0_0000 as *const u32).read_volatile()"),
            Some(Read)
        );
        assert_eq!(classify("*(0xb800_0 as *mut u8)"), Some(Read));
        assert_eq!(classify("regs.csts().read()"), Some(Read));
        assert_eq!(classify("self.registers.status.get()"), Some(Read));
        assert_eq!(classify("self.ctrl.modify(CTRL::EN::SET)"), Some(Modify));
        assert_eq!(classify("bar.read32(0x1c)"), Some(Read));
        assert_eq!(classify("inb(0x60)"), Some(Read));
        assert_eq!(classify("my_read(3)"), Some(Read));
        assert_eq!(
            classify("asm!(\"in al, dx\", out(\"al\") v, in(\"dx\") p)"),
            Some(Read)
        );
        assert_eq!(
            classify("asm!(\"out dx, al\", in(\"dx\") p, in(\"al\") v)"),
            Some(Write)
        );
    }

    #[test]
    fn ignores_look_alikes() {
        assert_eq!(classify("ptr::write_volatile(elem, 0)"), None);
        assert_eq!(classify("lock.read()"), None);
        assert_eq!(classify("cell.get()"), None);
        assert_eq!(classify("file.read(&mut buf)"), None);
        assert_eq!(classify("*(&x as *const u32)"), None);
        assert_eq!(classify("asm!(\"nop\")"), None);
    }

    fn accesses_with(cx: &DeviceCx, body: &str) -> Vec<String> {
        let block: syn::Block = syn::parse_str(&format!("{{ {body} }}")).unwrap();
        accesses_in_block(&cx.for_block(&block), &block)
            .into_iter()
            .map(|a| a.what)
            .collect()
    }

    fn accesses(body: &str) -> Vec<String> {
        let mut cx = DeviceCx::new(&[], &[]);
        Arc::make_mut(&mut cx.reg_fields).insert("data".into());
        Arc::make_mut(&mut cx.handle_statics).insert("COM1".into());
        accesses_with(&cx, body)
    }

    #[test]
    fn port_handles_bound_from_constructors() {
        let w = [".write()".to_string()];
        let r = [".read()".to_string()];
        assert_eq!(
            accesses("if let Some(mut p) = Port::<u32>::inert(0xf4) { p.write(1) }"),
            w
        );
        assert_eq!(
            accesses("let Some(mut p) = Port::<u8>::inert(0x3fd) else { return }; p.read()"),
            r
        );
        assert_eq!(
            accesses("match Port::<u8>::inert(1) { Some(mut p) => p.write(1), None => {} }"),
            w
        );
        assert_eq!(
            accesses("let mut p = Port::<u8>::inert(0x61).ok_or(Error::Pit)?; p.write(2)"),
            w
        );
        assert_eq!(
            accesses("unsafe { PortWriteOnly::<u8>::new(0x80).write(0) }"),
            w
        );
        assert_eq!(accesses("let p = &mut self.data; p.write(1)"), w);
        assert_eq!(accesses("unsafe { COM1.lock().write(b'x') }"), w);
        assert_eq!(accesses("self.data.lock().read()"), r);
    }

    #[test]
    fn port_look_alikes_are_not_handles() {
        assert!(accesses("let g = lock.read(); g.write(1)").is_empty());
        assert!(accesses("if let Some(c) = self.conn.take() { c.write(b) }").is_empty());
        assert!(accesses("std::io::stdout().write(b\"x\")").is_empty());
        assert!(accesses("CONFIG.read().port").is_empty());
        assert!(accesses("LOG.lock().write(1)").is_empty());
        assert!(accesses("let port: u16 = 0x3f8; self.socket.write(port)").is_empty());
    }

    #[test]
    fn fields_initialised_by_port_constructors() {
        let file: syn::File = syn::parse_str(
            "struct Serial<P> { data: P, baud: u32 }\n\
             fn new(base: u16) -> Serial<Port<u8>> {\n\
                 Serial { data: unsafe { Port::new(base) }, baud: 115_200 }\n\
             }",
        )
        .unwrap();
        assert_eq!(register_fields(&file, &HandleNames::default()), ["data"]);
    }

    #[test]
    fn port_handle_parameters() {
        let f: syn::ItemFn = syn::parse_str(
            "fn f(port: &mut Port<u8>, out: &mut Vec<u8>) { port.write(1); out.write(2); }",
        )
        .unwrap();
        let cx = DeviceCx::new(&[], &[]).for_fn(&f.sig, &f.block);
        let found: Vec<String> = accesses_in_block(&cx, &f.block)
            .into_iter()
            .map(|a| a.what)
            .collect();
        assert_eq!(found, [".write()"]);
    }

    #[test]
    fn handle_names_follow_renames_aliases_and_shadowing() {
        let file: syn::File = syn::parse_str(
            "use x86_64::instructions::port::Port as IoPort;\n\
             type Com = PortWriteOnly<u8>;\n\
             struct Port { inbox: Vec<u8> }\n\
             struct PortGeneric { port: u16 }\n\
             enum Register { Rax, Rbx }",
        )
        .unwrap();
        let n = HandleNames::of_file(&file);
        assert!(n.contains("IoPort") && n.contains("Com") && n.contains("PortGeneric"));
        assert!(!n.contains("Register"), "an enum of CPU registers");
        assert!(!n.contains("Port"), "a wire's port holds no port number");
        let mut cx = DeviceCx::new(&[], &[]);
        cx.handle_names = Arc::new(n);
        assert_eq!(
            accesses_with(
                &cx,
                "let mut p = IoPort::new(0xf4); unsafe { p.write(1u32) }"
            ),
            [".write()"]
        );
        assert!(accesses_with(&cx, "let mut p = Port::default(); p.write(1)").is_empty());
        let imported: syn::File =
            syn::parse_str("use x86_64::instructions::port::Port; struct Port { a: Vec<u8> }")
                .unwrap();
        assert!(HandleNames::of_file(&imported).contains("Port"));
    }

    #[test]
    fn asm_outputs_found() {
        let e: Expr =
            syn::parse_str("asm!(\"in eax, dx\", out(\"eax\") value, in(\"dx\") port)").unwrap();
        let Expr::Macro(m) = e else { panic!() };
        assert_eq!(asm_outputs(&m.mac), ["value"]);
    }

    #[test]
    fn splits_words() {
        assert_eq!(words("mmioBase_addr"), ["mmio", "base", "addr"]);
        assert_eq!(words("BAR0"), ["bar0"]);
    }
}
