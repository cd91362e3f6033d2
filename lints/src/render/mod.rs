//! Renderers of the one diagnostic model: rustc-style text, cargo JSON, SARIF.

pub mod human;
pub mod json;
pub mod sarif;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// rustc-style text on stderr.
    Human,
    /// One cargo `compiler-message` JSON object per line on stdout.
    Json,
    /// One SARIF 2.1.0 document on stdout.
    Sarif,
}
