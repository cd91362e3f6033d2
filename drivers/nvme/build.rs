//! Deliberate bugs for `cargo xtask mutants`: with `PARANOID_MUTANT=name` in the
//! environment this crate is built with `--cfg paranoid_mutant="name"` (the
//! table is `mutants.toml` beside this file). Passing the cfg here rather than
//! in RUSTFLAGS rebuilds only this crate and its tests per mutant: RUSTFLAGS
//! would rebuild every dependency for each one. Normal builds never set it.

fn main() {
    println!("cargo::rerun-if-env-changed=PARANOID_MUTANT");
    if let Ok(name) = std::env::var("PARANOID_MUTANT") {
        let name = name.trim();
        if !name.is_empty() {
            println!("cargo::rustc-cfg=paranoid_mutant=\"{name}\"");
        }
    }
}
