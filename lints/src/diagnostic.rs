//! The one diagnostic model that every renderer (human, JSON, SARIF) reads.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::source::{SourceFile, Span};

/// How a lint is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Not reported.
    Allow,
    /// Reported; the run still succeeds.
    Warn,
    /// Reported as an error; the run fails (exit status 1).
    Deny,
}

impl Level {
    /// Parses `allow`, `warn` or `deny` (also `forbid`/`error` as `deny`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "warn" | "warning" => Some(Self::Warn),
            "deny" | "forbid" | "error" => Some(Self::Deny),
            _ => None,
        }
    }

    /// The name used in configuration (`allow`, `warn`, `deny`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Warn => "warn",
            Self::Deny => "deny",
        }
    }

    /// The rustc diagnostic level this lint level renders as.
    pub fn rustc_level(self) -> &'static str {
        match self {
            Self::Deny => "error",
            Self::Warn | Self::Allow => "warning",
        }
    }
}

/// A labelled region of the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What to say there (may be empty).
    pub text: String,
    /// Whether this is the primary span of the diagnostic.
    pub primary: bool,
}

/// A machine-applicable or advisory edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The text to replace (empty span: insertion).
    pub span: Span,
    /// The replacement text.
    pub replacement: String,
    /// What the edit does.
    pub message: String,
}

/// Information about the package a file belongs to, for cargo-compatible JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageInfo {
    /// Package name.
    pub name: String,
    /// Cargo package id.
    pub id: String,
    /// Absolute path of its manifest.
    pub manifest_path: String,
    /// Name of the target reported (usually the library).
    pub target_name: String,
    /// Kinds of that target (`lib`, `bin`, …).
    pub target_kind: Vec<String>,
    /// Root source file of that target.
    pub target_src_path: String,
    /// Rust edition.
    pub edition: String,
    /// Whether the package depends on the toolkit (`paranoid`), from its manifest; `None`
    /// when there is no manifest (the sources decide: a `paranoid::` path or attribute).
    pub toolkit: Option<bool>,
}

/// One finding, ready to render.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Lint name without the `paranoid::` prefix.
    pub lint: &'static str,
    /// Effective level.
    pub level: Level,
    /// Lowercase one-line message.
    pub message: String,
    /// The file the spans point into.
    pub file: Arc<SourceFile>,
    /// The package the file belongs to.
    pub package: Arc<PackageInfo>,
    /// Labels; exactly one is primary.
    pub labels: Vec<Label>,
    /// How to fix it, in one line.
    pub help: Option<String>,
    /// Extra context (why this code is recovery code, the fix in detail, …).
    pub notes: Vec<String>,
    /// An edit that fixes or silences it.
    pub suggestion: Option<Suggestion>,
}

impl Diagnostic {
    /// The primary label (the first label if none is marked primary).
    pub fn primary(&self) -> Option<&Label> {
        self.labels
            .iter()
            .find(|l| l.primary)
            .or_else(|| self.labels.first())
    }

    /// The lint code as shown to users: `paranoid::NAME`.
    pub fn code(&self) -> String {
        format!("paranoid::{}", self.lint)
    }

    /// Sort key: file, position, lint.
    pub fn sort_key(&self) -> (String, usize, usize, &'static str) {
        let (l, c) = self
            .primary()
            .map(|p| (p.span.line_start, p.span.column_start))
            .unwrap_or((0, 0));
        (self.file.path.display().to_string(), l, c, self.lint)
    }
}

/// A finding as a lint produces it, before levels and suppressions apply.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Lint name.
    pub lint: &'static str,
    /// Lowercase one-line message.
    pub message: String,
    /// Primary span and its label.
    pub primary: (Span, String),
    /// Secondary spans and labels.
    pub secondary: Vec<(Span, String)>,
    /// How to fix it.
    pub help: Option<String>,
    /// Extra notes.
    pub notes: Vec<String>,
    /// An optional edit.
    pub suggestion: Option<Suggestion>,
}

impl Finding {
    /// A finding with a primary span and label and nothing else.
    pub fn new(lint: &'static str, message: String, span: Span, label: impl Into<String>) -> Self {
        Self {
            lint,
            message,
            primary: (span, label.into()),
            secondary: Vec::new(),
            help: None,
            notes: Vec::new(),
            suggestion: None,
        }
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Self {
        if span != self.primary.0 {
            self.secondary.push((span, label.into()));
        }
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Turns the finding into a diagnostic at `level`.
    pub fn into_diagnostic(
        self,
        level: Level,
        file: Arc<SourceFile>,
        package: Arc<PackageInfo>,
    ) -> Diagnostic {
        let mut labels = vec![Label {
            span: self.primary.0,
            text: self.primary.1,
            primary: true,
        }];
        labels.extend(self.secondary.into_iter().map(|(span, text)| Label {
            span,
            text,
            primary: false,
        }));
        Diagnostic {
            lint: self.lint,
            level,
            message: self.message,
            file,
            package,
            labels,
            help: self.help,
            notes: self.notes,
            suggestion: self.suggestion,
        }
    }
}
