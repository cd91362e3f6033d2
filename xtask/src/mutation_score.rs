//! `cargo xtask mutation-score [DIR]`: the cargo-mutants score of a run, per file.
//!
//! Reads the outcome lists cargo-mutants writes (`caught.txt`,
//! `previously_caught.txt` from `--iterate` runs, `missed.txt`, `timeout.txt`,
//! `unviable.txt`, one mutant per line, `file:line:col: …`) from `DIR`
//! (default `drivers/mutation`, where the lists of the last run are kept) and
//! prints, per file and in total, how many mutants were caught, missed, timed
//! out or did not compile, and the score: caught (timeouts counted as caught,
//! as cargo-mutants does) over the viable mutants tested.
//!
//! `equivalent.txt` in the same directory (kept by hand) lists survivors that
//! are equivalent to the original, one per line as cargo-mutants prints it,
//! then `  # why`. Those are counted in their own column and the second score
//! leaves them out; a listed mutant that is not among the survivors is
//! reported, so the list cannot go stale silently.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Outcome columns, in the order the table prints them.
const COLUMNS: [&str; 5] = ["caught", "missed", "equivalent", "timeout", "unviable"];

/// Which column each list counts in.
const LISTS: [(&str, usize); 5] = [
    ("caught", 0),
    ("previously_caught", 0),
    ("missed", 1),
    ("timeout", 3),
    ("unviable", 4),
];

/// Prints the table for the lists under `dir`.
///
/// # Errors
///
/// When none of the lists can be read, or `equivalent.txt` has a line without
/// a reason.
pub fn run(dir: &Path) -> Result<(), String> {
    let equivalent = read_equivalents(dir)?;
    let mut per_file: BTreeMap<String, [usize; 5]> = BTreeMap::new();
    let mut found = 0;
    let mut survivors = BTreeSet::new();
    for (list, column) in LISTS {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("{list}.txt"))) else {
            continue;
        };
        found += 1;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let file = line.split(':').next().unwrap_or(line).to_string();
            let column = if column == 1 && equivalent.contains(line) {
                survivors.insert(line.to_string());
                2
            } else {
                column
            };
            per_file.entry(file).or_default()[column] += 1;
        }
    }
    if found == 0 {
        return Err(format!(
            "no cargo-mutants outcome lists (caught.txt, missed.txt, …) in {}",
            dir.display()
        ));
    }
    println!(
        "{:<34} {:>7} {:>7} {:>10} {:>7} {:>8} {:>7} {:>11}",
        "file", COLUMNS[0], COLUMNS[1], COLUMNS[2], COLUMNS[3], COLUMNS[4], "score", "w/o equiv."
    );
    let mut total = [0usize; 5];
    for (file, n) in &per_file {
        for (t, v) in total.iter_mut().zip(n) {
            *t += v;
        }
        println!("{}", row(file, n));
    }
    println!("{}", row("total", &total));
    let stale: Vec<_> = equivalent.difference(&survivors).collect();
    if !stale.is_empty() {
        println!(
            "{} mutant(s) in equivalent.txt are not among this run's survivors:",
            stale.len()
        );
        for m in stale {
            println!("  {m}");
        }
    }
    Ok(())
}

/// The mutants `equivalent.txt` lists (empty when there is no such file).
fn read_equivalents(dir: &Path) -> Result<BTreeSet<String>, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("equivalent.txt")) else {
        return Ok(BTreeSet::new());
    };
    let mut set = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once("  # ") {
            Some((mutant, why)) if !why.trim().is_empty() => {
                set.insert(mutant.trim().to_string());
            }
            _ => {
                return Err(format!(
                    "equivalent.txt line {}: `<mutant>  # <why it is equivalent>` expected: {line}",
                    n + 1
                ))
            }
        }
    }
    Ok(set)
}

/// One table row: the counts, the score (`-` when nothing viable was tested),
/// and the score without the equivalent survivors.
fn row(name: &str, n: &[usize; 5]) -> String {
    let caught = n[0] + n[3];
    let percent = |viable: usize| {
        if viable == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * caught as f64 / viable as f64)
        }
    };
    let score = percent(caught + n[1] + n[2]);
    let without = percent(caught + n[1]);
    format!(
        "{name:<34} {:>7} {:>7} {:>10} {:>7} {:>8} {score:>7} {without:>11}",
        n[0], n[1], n[2], n[3], n[4]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_counts_timeouts_as_caught_and_leaves_out_unviable() {
        let r = row("f", &[8, 1, 0, 1, 5]);
        assert!(r.ends_with("90.0%       90.0%"), "{r}");
        assert!(row("f", &[0, 0, 0, 0, 3]).ends_with('-'));
    }

    #[test]
    fn equivalents_leave_the_second_score_only() {
        // 8 caught, 1 missed, 1 equivalent: 80 % as run, 8 of 9 without.
        let r = row("f", &[8, 1, 1, 0, 0]);
        assert!(r.ends_with("80.0%       88.9%"), "{r}");
    }

    #[test]
    fn an_equivalent_without_a_reason_is_an_error() {
        let dir = std::env::temp_dir().join("paranoid-mutation-score-noreason");
        let _ = std::fs::create_dir_all(&dir);
        std::fs::write(dir.join("missed.txt"), "a.rs:1:1: replace | with ^\n").unwrap();
        std::fs::write(dir.join("equivalent.txt"), "a.rs:1:1: replace | with ^\n").unwrap();
        assert!(run(&dir).is_err());
        std::fs::write(
            dir.join("equivalent.txt"),
            "a.rs:1:1: replace | with ^  # disjoint bits\n",
        )
        .unwrap();
        assert_eq!(read_equivalents(&dir).unwrap().len(), 1);
        assert!(run(&dir).is_ok());
    }

    #[test]
    fn a_directory_without_lists_is_an_error() {
        let dir = std::env::temp_dir().join("paranoid-mutation-score-empty");
        let _ = std::fs::create_dir_all(&dir);
        assert!(run(&dir).is_err());
    }
}
