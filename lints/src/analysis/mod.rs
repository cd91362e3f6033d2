//! The analyses the lints share, all on `syn` syntax trees (no type information):
//!
//! - [`access`]: recognising device access as driver code spells it (volatile pointers,
//!   port I/O, register-handle crates, our HAL, reader and writer functions);
//! - [`callgraph`]: per-file summaries and the per-crate call graph that resolves methods
//!   by their impl type (recovery code, the panic path, call chains for diagnostics);
//! - [`macro_body`]: the transcribers of `macro_rules!` definitions read as code;
//! - [`taint`]: per-function flow of device values to their uses and the checks that
//!   validate them.

pub mod access;
pub mod callgraph;
pub mod macro_body;
pub mod taint;
