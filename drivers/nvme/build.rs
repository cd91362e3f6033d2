//! Turns the mutant switches of `cargo xtask mutants` into cfgs for this crate
//! only (no rebuild of the dependencies; see `src/mutant.rs`):
//!
//! - `PARANOID_MUTANT=<id>`: `--cfg paranoid_mutant="<id>"`, one deliberate bug
//!   compiled in;
//! - `PARANOID_MUTANTS=all`: `--cfg paranoid_mutants`, every deliberate bug
//!   compiled in, selected at run time by `PARANOID_MUTANT`. In that mode a
//!   change of `PARANOID_MUTANT` does not rebuild: it is read when the tests run.
//!
//! It also declares the ids of `mutants.toml` to check-cfg. Normal builds set
//! neither variable: no mutant is compiled in.

use std::env;
use std::fs;

fn main() {
    println!("cargo::rerun-if-changed=mutants.toml");
    println!("cargo::rerun-if-env-changed=PARANOID_MUTANTS");
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
    println!("cargo::rustc-check-cfg=cfg(paranoid_mutants)");
    let all = env::var("PARANOID_MUTANTS").unwrap_or_default();
    match all.trim() {
        "" => {}
        "all" => {
            println!("cargo::rustc-cfg=paranoid_mutants");
            // PARANOID_MUTANT is read at run time: not watched here.
            return;
        }
        other => panic!("PARANOID_MUTANTS={other}: the only value is `all`"),
    }
    println!("cargo::rerun-if-env-changed=PARANOID_MUTANT");
    if let Ok(name) = env::var("PARANOID_MUTANT") {
        let name = name.trim();
        if !name.is_empty() {
            println!("cargo::rustc-cfg=paranoid_mutant=\"{name}\"");
        }
    }
}
