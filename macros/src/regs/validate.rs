//! Rules for register blocks, each a small function; all run, so every mistake
//! shows in one build. The result is the model [`super::expand`] generates from:
//! registers whose width, access and names are usable (a register with other
//! mistakes is still generated, so code using it sees no second error).

use proc_macro2::Ident;

use super::parse::{Access, Block, Field, Register};
use crate::ctxt::Ctxt;
use crate::names;
use crate::num::{bytes, show};

/// The largest block accepted: 4 GiB (a BAR of registers is far smaller).
const MAX_SIZE: u128 = 1 << 32;

/// Method names the block type defines itself.
const BLOCK_METHODS: &[&str] = &["new", "io", "into_io"];
/// Constants every register module defines.
const REGISTER_CONSTS: &[&str] = &["OFFSET", "WIDTH", "ACCESS", "RESET", "SPEC"];
/// Methods every register value defines.
const VALUE_METHODS: &[&str] = &["untrusted", "from_untrusted"];

/// A block ready to expand.
pub struct Model<'a> {
    pub block: &'a Block,
    /// `mod nvme_regs`.
    pub module: Ident,
    pub size: u64,
    pub registers: Vec<Reg<'a>>,
}

/// A register ready to expand.
pub struct Reg<'a> {
    pub decl: &'a Register,
    pub width: u32,
    pub access: Access,
    pub offset: u64,
    pub reset: Option<u64>,
    /// `regs.cap()`.
    pub method: Ident,
    /// `Cap<'_, R>`.
    pub handle: Ident,
    /// `mod cap`.
    pub module: Ident,
    pub fields: Vec<Fld<'a>>,
}

/// A field ready to expand.
pub struct Fld<'a> {
    pub decl: &'a Field,
    /// `cap::TO`.
    pub konst: Ident,
    /// `value.to()`.
    pub getter: Ident,
    pub shift: u32,
    pub width: u32,
}

/// Checks the block and builds the model.
pub fn check<'a>(cx: &mut Ctxt, block: &'a Block) -> Option<Model<'a>> {
    for e in &block.errors {
        cx.syn_error(e.clone());
    }
    let module = block_module(cx, block)?;
    let size = block_size(cx, block);
    let mut registers: Vec<Reg<'a>> = Vec::new();
    for decl in &block.registers {
        let Some(reg) = register(cx, decl, size) else {
            continue;
        };
        // A duplicate is left out of the model: generating it would only add
        // rustc's "defined multiple times" errors to ours.
        if no_duplicate_register(cx, &registers, &reg) {
            no_overlapping_register(cx, &registers, &reg);
            registers.push(reg);
        }
    }
    if block.registers.is_empty() {
        cx.error_spanned_by(
            &block.ident,
            format!(
                "register block `{}` declares no register; add one like `CAP @ 0x00: u64, ro;`",
                block.ident
            ),
        );
    }
    Some(Model {
        block,
        module,
        size,
        registers,
    })
}

/// Rule: the block's name gives a module name (`NvmeRegs` → `nvme_regs`).
fn block_module(cx: &mut Ctxt, block: &Block) -> Option<Ident> {
    let name = names::plain(&block.ident);
    let module = names::is_ascii_name(&name)
        .then(|| names::ident(&names::snake(&name), block.ident.span()))
        .flatten();
    if module.is_none() {
        cx.error_spanned_by(
            &block.ident,
            format!("cannot derive a module name from `{name}`; name the block with ASCII letters, like `NvmeRegs`"),
        );
    }
    module
}

/// Rule: the size is non-zero and at most 4 GiB. Returns `u64::MAX` when it is
/// not, so that registers are not also reported past the end.
fn block_size(cx: &mut Ctxt, block: &Block) -> u64 {
    let size = &block.size;
    if size.value == 0 {
        cx.error_spanned_by(
            &size.tokens,
            "a register block of size 0 has no room for registers; give its size in bytes, like `size = 0x1000`",
        );
        return u64::MAX;
    }
    if size.value > MAX_SIZE {
        cx.error_spanned_by(
            &size.tokens,
            format!(
                "a register block of {} is larger than 4 GiB; give the size of the register BAR",
                bytes(size.value)
            ),
        );
        return u64::MAX;
    }
    u64::try_from(size.value).unwrap_or(u64::MAX)
}

/// One register: its own rules, then its fields.
fn register<'a>(cx: &mut Ctxt, decl: &'a Register, size: u64) -> Option<Reg<'a>> {
    let name = names::plain(&decl.ident);
    let idents = register_names(cx, decl, &name);
    offset_in_bounds(cx, decl, &name, size);
    let (width, access) = (decl.width?, decl.access?);
    offset_aligned(cx, decl, &name, width);
    let reset = reset_fits(cx, decl, &name, width);
    let mut fields: Vec<Fld<'a>> = Vec::new();
    for f in &decl.fields {
        let Some(fld) = field(cx, f, &name, width) else {
            continue;
        };
        if let Some(prev) = fields.iter().find(|p| p.konst == fld.konst) {
            cx.error_spanned_by(
                &f.ident,
                format!(
                    "duplicate field `{}` in register `{name}` (also declared as `{}`); give each field its own name",
                    names::plain(&f.ident),
                    names::plain(&prev.decl.ident)
                ),
            );
            continue;
        }
        if let Some(prev) = fields
            .iter()
            .find(|p| p.shift < fld.shift + fld.width && fld.shift < p.shift + p.width)
        {
            cx.error_spanned_by(
                &f.tokens,
                format!(
                    "field `{}` (bits {}) overlaps field `{}` (bits {}) of register `{name}`; fields must not share bits",
                    names::plain(&f.ident),
                    range(fld.shift, fld.width),
                    names::plain(&prev.decl.ident),
                    range(prev.shift, prev.width),
                ),
            );
            continue;
        }
        fields.push(fld);
    }
    let (method, handle, module) = idents?;
    Some(Reg {
        decl,
        width,
        access,
        offset: u64::try_from(decl.offset.value).ok()?,
        reset,
        method,
        handle,
        module,
        fields,
    })
}

fn range(shift: u32, width: u32) -> String {
    if width == 1 {
        shift.to_string()
    } else {
        format!("{shift}..={}", shift + width - 1)
    }
}

/// Rule: the name is ASCII, gives a method, a type and a module name, and the
/// method does not clash with the block's own methods.
fn register_names(cx: &mut Ctxt, decl: &Register, name: &str) -> Option<(Ident, Ident, Ident)> {
    let span = decl.ident.span();
    let snake = names::snake(name);
    let made = names::is_ascii_name(name)
        .then(|| {
            Some((
                names::ident(&snake, span)?,
                names::ident(&names::camel(name), span)?,
                names::ident(&snake, span)?,
            ))
        })
        .flatten();
    let Some(made) = made else {
        cx.error_spanned_by(
            &decl.ident,
            format!("cannot derive Rust names from register name `{name}`; use the spec's name in ASCII letters, digits and `_`, like `CAP` or `INTMS`"),
        );
        return None;
    };
    if BLOCK_METHODS.contains(&snake.as_str()) {
        cx.error_spanned_by(
            &decl.ident,
            format!("register `{name}` would clash with the block's own method `{snake}()`; rename it (e.g. `{name}_REG`)"),
        );
        return None;
    }
    Some(made)
}

/// Rule: the register lies inside the block.
fn offset_in_bounds(cx: &mut Ctxt, decl: &Register, name: &str, size: u64) {
    let width = u128::from(decl.width.unwrap_or(1));
    let end = decl.offset.value.saturating_add(width);
    if end > u128::from(size) {
        cx.error_spanned_by(
            &decl.offset.tokens,
            format!(
                "register `{name}` at {}..{} lies past the end of the block (size {}); use an offset below {:#x} or enlarge the block's `size`",
                show(decl.offset.value, true),
                show(end, true),
                show(u128::from(size), true),
                u128::from(size).saturating_sub(width),
            ),
        );
    }
}

/// Rule: the offset is a multiple of the width (naturally aligned access).
fn offset_aligned(cx: &mut Ctxt, decl: &Register, name: &str, width: u32) {
    let w = u128::from(width);
    if decl.offset.value % w != 0 {
        let down = decl.offset.value - decl.offset.value % w;
        cx.error_spanned_by(
            &decl.offset.tokens,
            format!(
                "register `{name}` at offset {} is not aligned to its {width}-byte width; use a multiple of {width}, like {:#x}",
                decl.offset.show(),
                down
            ),
        );
    }
}

/// Rule: the reset value fits in the register's width.
fn reset_fits(cx: &mut Ctxt, decl: &Register, name: &str, width: u32) -> Option<u64> {
    let reset = decl.reset.as_ref()?;
    let bits = width * 8;
    let max = (1u128 << bits) - 1;
    if reset.value > max {
        cx.error_spanned_by(
            &reset.tokens,
            format!(
                "reset value {} of register `{name}` does not fit in its {bits} bits (at most {max:#x}); fix the value or the width",
                reset.show(),
            ),
        );
        return None;
    }
    u64::try_from(reset.value).ok()
}

/// One field: a usable name, bits in order and inside the register.
fn field<'a>(cx: &mut Ctxt, decl: &'a Field, reg: &str, width: u32) -> Option<Fld<'a>> {
    let name = names::plain(&decl.ident);
    let snake = names::snake(&name);
    let konst_name = snake.to_ascii_uppercase();
    let span = decl.ident.span();
    let idents = names::is_ascii_name(&name)
        .then(|| {
            Some((
                names::ident(&konst_name, span)?,
                names::ident(&snake, span)?,
            ))
        })
        .flatten();
    let mut ok = true;
    let Some((konst, getter)) = idents else {
        cx.error_spanned_by(
            &decl.ident,
            format!("cannot derive Rust names from field name `{name}`; use the spec's name in ASCII letters, digits and `_`, like `EN` or `CSS`"),
        );
        return None;
    };
    if REGISTER_CONSTS.contains(&konst_name.as_str()) || VALUE_METHODS.contains(&snake.as_str()) {
        cx.error_spanned_by(
            &decl.ident,
            format!("field name `{name}` clashes with a generated item of register `{reg}`; rename it (e.g. `{name}_F`)"),
        );
        ok = false;
    }
    let bits = u128::from(width) * 8;
    let (lo, hi) = (decl.lo.value, decl.hi.value);
    if lo > hi {
        cx.error_spanned_by(
            &decl.tokens,
            format!("field `{name}` has its bits reversed; write the low bit first: `{hi}..={lo}`"),
        );
        return None;
    }
    if hi >= bits {
        let what = if lo == hi {
            format!("bit {lo}")
        } else {
            format!("bits {lo}..={hi}")
        };
        cx.error_spanned_by(
            &decl.tokens,
            format!(
                "field `{name}` ({what}) does not fit in {bits}-bit register `{reg}`, whose bits are 0..={}",
                bits - 1
            ),
        );
        return None;
    }
    if !ok {
        return None;
    }
    Some(Fld {
        decl,
        konst,
        getter,
        shift: u32::try_from(lo).ok()?,
        width: u32::try_from(hi - lo + 1).ok()?,
    })
}

/// Rule: register names are unique (also after conversion to Rust names).
/// Returns false for a duplicate.
fn no_duplicate_register(cx: &mut Ctxt, earlier: &[Reg<'_>], reg: &Reg<'_>) -> bool {
    if let Some(prev) = earlier
        .iter()
        .find(|p| p.method == reg.method || p.handle == reg.handle)
    {
        cx.error_spanned_by(
            &reg.decl.ident,
            format!(
                "duplicate register `{}` (already declared as `{}` at offset {}); give each register its own name",
                names::plain(&reg.decl.ident),
                names::plain(&prev.decl.ident),
                show(u128::from(prev.offset), true)
            ),
        );
        return false;
    }
    true
}

/// Rule: registers do not share bytes.
fn no_overlapping_register(cx: &mut Ctxt, earlier: &[Reg<'_>], reg: &Reg<'_>) {
    let end = |r: &Reg<'_>| r.offset.saturating_add(u64::from(r.width));
    if let Some(prev) = earlier
        .iter()
        .find(|p| p.offset < end(reg) && reg.offset < end(p))
    {
        cx.error_spanned_by(
            &reg.decl.offset.tokens,
            format!(
                "register `{}` ({:#x}..{:#x}) overlaps register `{}` ({:#x}..{:#x}); registers must not share bytes",
                names::plain(&reg.decl.ident),
                reg.offset,
                end(reg),
                names::plain(&prev.decl.ident),
                prev.offset,
                end(prev),
            ),
        );
    }
}
