//! Declares the `paranoid_mutant` cfg values listed in this crate's
//! `mutants.toml`, so a build with one of them set (`RUSTFLAGS='--cfg
//! paranoid_mutant="NAME"'`) stays warning-free, and turns the
//! `PARANOID_MUTANT=NAME` environment variable into the same cfg for this crate
//! only (no rebuild of the dependencies). Normal builds set neither: no mutant
//! is compiled in.

use std::env;
use std::fs;

fn main() {
    println!("cargo::rerun-if-changed=mutants.toml");
    println!("cargo::rerun-if-env-changed=PARANOID_MUTANT");
    let table = fs::read_to_string("mutants.toml").unwrap_or_default();
    let values: Vec<String> = table
        .lines()
        .filter(|line| line.trim_start().starts_with("cfg"))
        .filter_map(|line| {
            let (_, rest) = line.split_once("paranoid_mutant=\"")?;
            let (name, _) = rest.split_once('"')?;
            Some(format!("\"{name}\""))
        })
        .collect();
    println!(
        "cargo::rustc-check-cfg=cfg(paranoid_mutant, values({}))",
        values.join(", ")
    );
    if let Ok(name) = env::var("PARANOID_MUTANT") {
        if !name.is_empty() {
            println!("cargo::rustc-cfg=paranoid_mutant=\"{name}\"");
        }
    }
}
