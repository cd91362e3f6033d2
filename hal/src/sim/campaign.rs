//! What an any-state campaign tallies: for each class of fault the generated
//! states injected, how the cases that injected it ended.
//!
//! A driver's campaign (NVMe, e1000) generates crashed-kernel states, each
//! with the set of faults it injects, runs init and a data check on each, and
//! holds the run to its oracle. [`FaultTable`] then says what every fault
//! class led to: ready, recovered, which typed error, and how often the device
//! ended fenced. A case counts once in the row of each fault it injected, or
//! in the row `none` when it injected nothing.
//!
//! ```
//! use paranoid::sim::campaign::{FaultClass, FaultTable, Outcome};
//!
//! #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
//! enum Fault {
//!     Gone,
//!     StuckReset,
//! }
//!
//! impl FaultClass for Fault {
//!     const ALL: &'static [Self] = &[Fault::Gone, Fault::StuckReset];
//!     fn name(self) -> &'static str {
//!         match self {
//!             Fault::Gone => "device gone",
//!             Fault::StuckReset => "stuck reset",
//!         }
//!     }
//! }
//!
//! let mut table = FaultTable::default();
//! table.add([], Outcome::Ready, false);
//! table.add([Fault::Gone], Outcome::InitError("device gone"), true);
//! let text = table.to_string();
//! assert!(text.starts_with("fault class"));
//! assert!(text.contains("device gone"));
//! assert_eq!(text.lines().count(), 4); // header, none, and one row per class
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// How one campaign case ended (the oracle has passed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ready within the budget, and the data check passed at once.
    Ready,
    /// Ready; the data check hit this typed error, the driver recovered, and
    /// the check passed after it.
    Recovered(&'static str),
    /// Init returned this typed error (the device fenced).
    InitError(&'static str),
    /// Ready, but the data path kept failing with this typed error.
    IoError(&'static str),
}

/// A class of injected fault: a row of the table.
pub trait FaultClass: Copy + Ord + 'static {
    /// Every class, in the order of the table's rows.
    const ALL: &'static [Self];

    /// The row's name.
    fn name(self) -> &'static str;
}

/// What each injected fault class led to, over a campaign (see the module
/// docs); [`Display`](fmt::Display) prints it as a table with a column per
/// error kind seen.
#[derive(Debug, Clone)]
pub struct FaultTable<F: FaultClass> {
    rows: BTreeMap<Option<F>, Row>,
    kinds: BTreeSet<&'static str>,
}

impl<F: FaultClass> Default for FaultTable<F> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            kinds: BTreeSet::new(),
        }
    }
}

/// One row: the cases of one fault class.
#[derive(Debug, Default, Clone)]
struct Row {
    cases: u64,
    ready: u64,
    recovered: u64,
    errors: BTreeMap<&'static str, u64>,
    fenced: u64,
}

impl<F: FaultClass> FaultTable<F> {
    /// Counts one case that injected `faults` (none: the row `none`), ended
    /// with `outcome`, and left the device `fenced` (bus mastering off).
    pub fn add(&mut self, faults: impl IntoIterator<Item = F>, outcome: Outcome, fenced: bool) {
        let mut keys: Vec<Option<F>> = faults.into_iter().map(Some).collect();
        if keys.is_empty() {
            keys.push(None);
        }
        for key in keys {
            let row = self.rows.entry(key).or_default();
            row.cases += 1;
            row.fenced += u64::from(fenced);
            match outcome {
                Outcome::Ready => row.ready += 1,
                Outcome::Recovered(_) => row.recovered += 1,
                Outcome::InitError(kind) | Outcome::IoError(kind) => {
                    *row.errors.entry(kind).or_default() += 1;
                    self.kinds.insert(kind);
                }
            }
        }
    }

    /// Cases counted in `class`'s row (`None`: the cases without a fault).
    pub fn cases(&self, class: Option<F>) -> u64 {
        self.rows.get(&class).map_or(0, |r| r.cases)
    }
}

impl<F: FaultClass> fmt::Display for FaultTable<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<20} {:>7} {:>7} {:>9}",
            "fault class", "cases", "ready", "recovered"
        )?;
        for k in &self.kinds {
            write!(f, " {:>w$}", k, w = k.len().max(6))?;
        }
        writeln!(f, " {:>7}", "fenced")?;
        let empty = Row::default();
        for key in core::iter::once(None).chain(F::ALL.iter().copied().map(Some)) {
            let row = self.rows.get(&key).unwrap_or(&empty);
            let name = key.map_or("none", F::name);
            write!(
                f,
                "{name:<20} {:>7} {:>7} {:>9}",
                row.cases, row.ready, row.recovered
            )?;
            for k in &self.kinds {
                let n = row.errors.get(k).copied().unwrap_or(0);
                write!(f, " {:>w$}", n, w = k.len().max(6))?;
            }
            writeln!(f, " {:>7}", row.fenced)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Fault {
        Gone,
        Slow,
    }

    impl FaultClass for Fault {
        const ALL: &'static [Self] = &[Fault::Gone, Fault::Slow];
        fn name(self) -> &'static str {
            match self {
                Fault::Gone => "gone",
                Fault::Slow => "slow",
            }
        }
    }

    #[test]
    fn a_case_counts_once_in_each_row_of_its_faults() {
        let mut t = FaultTable::default();
        t.add(
            [Fault::Gone, Fault::Slow],
            Outcome::InitError("device gone"),
            true,
        );
        t.add([Fault::Slow], Outcome::Recovered("timeout"), false);
        t.add([], Outcome::Ready, false);
        assert_eq!(t.cases(Some(Fault::Gone)), 1);
        assert_eq!(t.cases(Some(Fault::Slow)), 2);
        assert_eq!(t.cases(None), 1);
        let text = t.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].contains("device gone") && lines[0].ends_with("fenced"));
        fn cols(l: &str) -> Vec<&str> {
            l.split_whitespace().skip(1).collect()
        }
        // cases ready recovered <device gone> fenced
        assert_eq!(cols(lines[1]), ["1", "1", "0", "0", "0"], "none row");
        assert_eq!(cols(lines[2]), ["1", "0", "0", "1", "1"], "gone row");
        assert_eq!(cols(lines[3]), ["2", "0", "1", "1", "1"], "slow row");
    }
}
