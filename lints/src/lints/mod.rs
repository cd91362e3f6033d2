//! The lints: one file each, a registry, and helpers shared by several lints.

use proc_macro2::Span as Span2;
use syn::visit::Visit;
use syn::Expr;

use crate::analysis::access::{self, DeviceCx};
use crate::analysis::callgraph::{CrateInfo, FnRef, Reach};
use crate::config::Config;
use crate::diagnostic::{Finding, Level};
use crate::source::{SourceFile, Span};

pub mod assumed_reset_value;
pub mod device_gone_unchecked;
pub mod device_io_in_panic_path;
pub mod dma_outside_window;
pub mod enable_before_reset;
pub mod missing_paranoid_init;
pub mod panic_in_recovery;
pub mod raw_mmio;
pub mod unbounded_poll;
pub mod unchecked_device_value;

/// A lint: its name, level, summary, explanation and matcher.
#[derive(Debug, Clone, Copy)]
pub struct Lint {
    /// Name, used as `paranoid::NAME`.
    pub name: &'static str,
    /// Level when nothing else is configured.
    pub default_level: Level,
    /// One-line summary for `--list` and SARIF.
    pub summary: &'static str,
    /// The clippy-style doc block (What it does / Why is this bad? / Example / Use instead).
    pub explanation: &'static str,
    /// Finds the lint's matches in one file (`None` for diagnostics the engine emits itself).
    pub check: Option<fn(&LintCx<'_>) -> Vec<Finding>>,
}

impl Lint {
    /// The explanation with the one leading space of each doc line removed.
    pub fn explanation_text(&self) -> String {
        self.explanation
            .lines()
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string()
    }
}

/// Declares a lint from its doc comment, like clippy's `declare_clippy_lint!`.
macro_rules! declare_lint {
    ($(#[doc = $doc:expr])* pub $konst:ident, $name:literal, $level:ident, $summary:literal, $check:expr) => {
        $(#[doc = $doc])*
        pub const $konst: $crate::lints::Lint = $crate::lints::Lint {
            name: $name,
            default_level: $crate::diagnostic::Level::$level,
            summary: $summary,
            explanation: concat!($($doc, "\n"),*),
            check: $check,
        };
    };
}
pub(crate) use declare_lint;

pub mod meta {
    //! Diagnostics about the run itself rather than the code's device handling.

    declare_lint! {
        /// ### What it does
        /// Reports a suppression (`#[paranoid::allow(..)]`, its `cfg_attr` form, or a
        /// `// paranoid:allow(..)` comment) that silences nothing or names an unknown lint.
        ///
        /// ### Why is this bad?
        /// Stale suppressions hide future findings at that place and mislead reviewers.
        ///
        /// ### Example
        /// ```rust,ignore
        /// // paranoid:allow(raw_mmio): the hal shim
        /// let x = 1;
        /// ```
        ///
        /// ### Use instead
        /// Remove the suppression, or move it to the line it was meant for.
        pub UNUSED_SUPPRESSION, "unused_suppression", Warn, "a suppression that silences nothing", None
    }

    declare_lint! {
        /// ### What it does
        /// Reports a suppression without a reason (`reason = "…"` in the attribute, or text
        /// after the colon in the comment form).
        ///
        /// ### Why is this bad?
        /// Every exception to the hardening rules must say why it is safe, so that review can
        /// check the argument.
        ///
        /// ### Example
        /// ```rust,ignore
        /// #[paranoid::allow(raw_mmio)]
        /// fn shim() {}
        /// ```
        ///
        /// ### Use instead
        /// ```rust,ignore
        /// #[paranoid::allow(raw_mmio, reason = "the one audited mmio shim of this crate")]
        /// fn shim() {}
        /// ```
        pub SUPPRESSION_WITHOUT_REASON, "suppression_without_reason", Warn, "a suppression that gives no reason", None
    }

    declare_lint! {
        /// ### What it does
        /// Reports a file that could not be read or parsed as Rust; the run goes on with the
        /// other files.
        ///
        /// ### Why is this bad?
        /// Code the linter cannot read is code it cannot check.
        ///
        /// ### Example
        /// A file with a syntax error, or one that only compiles with a nightly syntax.
        ///
        /// ### Use instead
        /// Fix the syntax, or exclude the file in `[files] exclude` of `paranoid.toml`.
        pub PARSE_ERROR, "parse_error", Warn, "a file that could not be parsed", None
    }
}

/// Every lint, in `--list` order.
pub const LINTS: &[Lint] = &[
    unbounded_poll::UNBOUNDED_POLL,
    raw_mmio::RAW_MMIO,
    unchecked_device_value::UNCHECKED_DEVICE_VALUE,
    device_gone_unchecked::DEVICE_GONE_UNCHECKED,
    panic_in_recovery::PANIC_IN_RECOVERY,
    enable_before_reset::ENABLE_BEFORE_RESET,
    dma_outside_window::DMA_OUTSIDE_WINDOW,
    missing_paranoid_init::MISSING_PARANOID_INIT,
    device_io_in_panic_path::DEVICE_IO_IN_PANIC_PATH,
    assumed_reset_value::ASSUMED_RESET_VALUE,
    meta::UNUSED_SUPPRESSION,
    meta::SUPPRESSION_WITHOUT_REASON,
    meta::PARSE_ERROR,
];

/// Looks a lint up by name.
pub fn find(name: &str) -> Option<&'static Lint> {
    LINTS.iter().find(|l| l.name == name)
}

/// What a lint sees of one file.
pub struct LintCx<'a> {
    /// The file's text.
    pub file: &'a SourceFile,
    /// Its syntax tree.
    pub ast: &'a syn::File,
    /// What is known about its crate.
    pub krate: &'a CrateInfo,
    /// The configuration.
    pub config: &'a Config,
    /// Whether the file is HAL code (raw access expected).
    pub is_hal: bool,
}

impl LintCx<'_> {
    /// Resolves a syntax span in this file.
    pub fn span(&self, s: Span2) -> Span {
        self.file.span(s)
    }

    /// Device names for one function body.
    pub fn device_for(&self, f: &FnRef<'_>) -> DeviceCx {
        self.krate.device.for_fn(f.sig, f.block)
    }
}

/// Whether a function name reads like device bring-up (`init`, `probe`, `bring_up`, `attach`, …).
pub fn is_init_like(name: &str) -> bool {
    let w = access::words(name);
    w.iter().any(|w| {
        matches!(
            w.as_str(),
            "init"
                | "initialize"
                | "initialise"
                | "probe"
                | "bring"
                | "attach"
                | "start"
                | "setup"
                | "reinit"
                | "recover"
                | "takeover"
        )
    })
}

/// Whether a called name is a reset or quiesce step.
pub fn is_reset_name(name: &str) -> bool {
    let w = access::words(name);
    if w.first()
        .is_some_and(|f| matches!(f.as_str(), "is" | "was" | "has" | "needs" | "get"))
    {
        return false;
    }
    w.iter().any(|w| {
        matches!(
            w.as_str(),
            "reset" | "quiesce" | "flr" | "rst" | "disable" | "shutdown" | "halt"
        )
    }) && !w.iter().any(|w| w == "value" || w == "values")
}

/// Whether a called name waits (bounded poll, delay, sleep).
pub fn is_wait_name(name: &str) -> bool {
    access::words(name).iter().any(|w| {
        matches!(
            w.as_str(),
            "poll"
                | "wait"
                | "sleep"
                | "delay"
                | "udelay"
                | "mdelay"
                | "msleep"
                | "usleep"
                | "spin"
                | "deadline"
                | "timeout"
        )
    })
}

/// Identifiers of an expression's tokens.
pub fn idents_of(e: &Expr) -> Vec<String> {
    let mut v = Vec::new();
    access::idents(quote::ToTokens::to_token_stream(e), &mut v);
    v
}

/// Whether a device write's arguments mention a reset bit (`RST`, `RESET`, `SWRST`).
pub fn mentions_reset_bit(idents: &[String]) -> bool {
    idents.iter().any(|i| {
        access::words(i)
            .iter()
            .any(|w| matches!(w.as_str(), "rst" | "reset" | "swrst" | "srst"))
    })
}

/// Longest call chain printed in a note (longer ones keep both ends).
const CHAIN_SHOWN: usize = 8;

/// Describes why a function is in a reachability set, with the call chain that leads there.
pub fn reach_note(kind: &str, name: &str, r: &Reach) -> String {
    let chain = || {
        let names: Vec<String> = if r.chain.len() > CHAIN_SHOWN {
            let head = r.chain.iter().take(CHAIN_SHOWN / 2);
            let tail = r.chain.iter().skip(r.chain.len() - CHAIN_SHOWN / 2);
            head.map(|c| format!("`{c}`"))
                .chain(std::iter::once("…".to_string()))
                .chain(tail.map(|c| format!("`{c}`")))
                .collect()
        } else {
            r.chain.iter().map(|c| format!("`{c}`")).collect()
        };
        names.join(" → ")
    };
    match &r.via {
        None => format!("`{name}` is {kind} because it is {}", root_why(&r.why)),
        Some(via) if *via == r.root => {
            format!("`{name}` is {kind}: it is called from `{via}` ({})", r.why)
        }
        Some(_) => format!(
            "`{name}` is {kind}: call chain {} (`{}` is {})",
            chain(),
            r.root,
            root_why(&r.why)
        ),
    }
}

fn root_why(why: &str) -> String {
    if why.starts_with('#') {
        format!("marked `{why}`")
    } else {
        why.to_string()
    }
}

/// Calls `f` for each expression in a function body in source order, without entering nested items.
pub fn walk_exprs<'a>(block: &'a syn::Block, f: &mut dyn FnMut(&'a Expr)) {
    struct V<'f, 'a> {
        f: &'f mut dyn FnMut(&'a Expr),
    }
    impl<'a> Visit<'a> for V<'_, 'a> {
        fn visit_expr(&mut self, e: &'a Expr) {
            (self.f)(e);
            syn::visit::visit_expr(self, e);
        }
        fn visit_item(&mut self, _: &'a syn::Item) {}
    }
    V { f }.visit_block(block);
}
