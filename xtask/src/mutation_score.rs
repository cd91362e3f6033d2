//! `cargo xtask mutation-score [DIR]`: the cargo-mutants score of a run, per file.
//!
//! Reads the outcome lists cargo-mutants writes (`caught.txt`, `missed.txt`,
//! `timeout.txt`, `unviable.txt`, one mutant per line, `file:line:col: …`) from
//! `DIR` (default `drivers/mutation`, where the lists of the last run are kept)
//! and prints, per file and in total, how many mutants were caught, missed,
//! timed out or did not compile, and the score: caught (timeouts counted as
//! caught, as cargo-mutants does) over the viable mutants tested.

use std::collections::BTreeMap;
use std::path::Path;

/// The outcome lists, in the order the table prints them.
const OUTCOMES: [&str; 4] = ["caught", "missed", "timeout", "unviable"];

/// Prints the table for the lists under `dir`.
///
/// # Errors
///
/// When none of the lists can be read.
pub fn run(dir: &Path) -> Result<(), String> {
    let mut per_file: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let mut found = 0;
    for (k, outcome) in OUTCOMES.iter().enumerate() {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("{outcome}.txt"))) else {
            continue;
        };
        found += 1;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let file = line.split(':').next().unwrap_or(line).to_string();
            per_file.entry(file).or_default()[k] += 1;
        }
    }
    if found == 0 {
        return Err(format!(
            "no cargo-mutants outcome lists (caught.txt, missed.txt, …) in {}",
            dir.display()
        ));
    }
    println!(
        "{:<34} {:>7} {:>7} {:>7} {:>8} {:>7}",
        "file", "caught", "missed", "timeout", "unviable", "score"
    );
    let mut total = [0usize; 4];
    for (file, n) in &per_file {
        for (t, v) in total.iter_mut().zip(n) {
            *t += v;
        }
        println!("{}", row(file, n));
    }
    println!("{}", row("total", &total));
    Ok(())
}

/// One table row: the counts and the score (`-` when nothing viable was tested).
fn row(name: &str, n: &[usize; 4]) -> String {
    let caught = n[0] + n[2];
    let viable = caught + n[1];
    let score = if viable == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", 100.0 * caught as f64 / viable as f64)
    };
    format!(
        "{name:<34} {:>7} {:>7} {:>7} {:>8} {score:>7}",
        n[0], n[1], n[2], n[3]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_counts_timeouts_as_caught_and_leaves_out_unviable() {
        assert!(row("f", &[8, 1, 1, 5]).ends_with("90.0%"));
        assert!(row("f", &[0, 0, 0, 3]).ends_with('-'));
    }

    #[test]
    fn a_directory_without_lists_is_an_error() {
        let dir = std::env::temp_dir().join("paranoid-mutation-score-empty");
        let _ = std::fs::create_dir_all(&dir);
        assert!(run(&dir).is_err());
    }
}
