//! Deliberate bugs for `cargo xtask mutants`: with `PARANOID_MUTANT=name` in the
//! environment this crate is built with `--cfg paranoid_mutant="name"` (rows in
//! `drivers/*/mutants.toml` name the HAL's mutants too, e.g.
//! `flr_ignores_deadline`). Normal builds never set it.

fn main() {
    println!("cargo::rerun-if-env-changed=PARANOID_MUTANT");
    if let Ok(name) = std::env::var("PARANOID_MUTANT") {
        let name = name.trim();
        if !name.is_empty() {
            println!("cargo::rustc-cfg=paranoid_mutant=\"{name}\"");
        }
    }
}
