//! Deliberate bugs for `cargo xtask mutants` (the table is `mutants.toml` at
//! the crate's root): `mutant!("<id>")` says whether bug `<id>` is in. In a
//! normal build it is `false`, a constant the compiler folds away.
//!
//! Two ways in, both for tests only (`build.rs` sets the cfgs):
//!
//! - `PARANOID_MUTANT=<id>` at build time: `--cfg paranoid_mutant="<id>"`,
//!   that one bug compiled in;
//! - `PARANOID_MUTANTS=all` at build time: `--cfg paranoid_mutants`, every bug
//!   compiled in and each off until `PARANOID_MUTANT=<id>` in the environment
//!   of the test process selects it. One build then serves every mutant of the
//!   crate: `cargo xtask mutants` builds each check once, not once per mutant.

/// True when the deliberate bug `$id` is in (see the module docs).
macro_rules! mutant {
    ($id:literal) => {
        (cfg!(paranoid_mutant = $id) || $crate::mutant::selected($id))
    };
}

/// Whether the environment of this process selects mutant `id` (a build with
/// every mutant compiled in).
#[cfg(paranoid_mutants)]
pub(crate) fn selected(id: &str) -> bool {
    extern crate std;
    static SELECTED: std::sync::OnceLock<Option<std::string::String>> = std::sync::OnceLock::new();
    SELECTED
        .get_or_init(|| std::env::var("PARANOID_MUTANT").ok())
        .as_deref()
        == Some(id)
}

/// Never: no mutant is compiled in.
#[cfg(not(paranoid_mutants))]
#[inline(always)]
pub(crate) const fn selected(_id: &str) -> bool {
    false
}
