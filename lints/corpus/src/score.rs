//! Matching diagnostics to labels, and the tables.
//!
//! A diagnostic matches a label of the same crate, file and lint whose line is
//! within `tolerance` lines (the nearest label wins; each label is matched at
//! most once). Then:
//! - `report` label matched: true positive; not matched: false negative;
//! - `silent` label matched: false positive (a reviewed look-alike);
//! - a diagnostic that matches no label: false positive as well. The corpus
//!   files are labelled completely (every diagnostic the tool has printed on
//!   them was reviewed and labelled `report` or `silent`), so a new unlabelled
//!   diagnostic is a change to review, and until it is labelled it counts
//!   against precision: precision is never flattered by missing labels.
//!
//! Several diagnostics of one lint on one line (`dstrd` used as a shift and as
//! an offset in one expression) are one site, and so is a further diagnostic of
//! the lint within `tolerance` of a label already matched (one expression over
//! two lines): they are counted once.

use std::collections::BTreeMap;

use crate::labels::{Crate, Expect};
use crate::run::Diag;

/// Counts for one lint (or overall).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// `report` labels.
    pub report_labels: usize,
    /// `silent` labels.
    pub silent_labels: usize,
    /// Diagnostics on `report` labels.
    pub tp: usize,
    /// Diagnostics on `silent` labels.
    pub fp_labelled: usize,
    /// Diagnostics on no label.
    pub fp_unlabelled: usize,
    /// `report` labels without a diagnostic.
    pub fn_: usize,
}

impl Counts {
    /// TP / (TP + FP); `None` without diagnostics.
    pub fn precision(&self) -> Option<f64> {
        let d = self.tp + self.fp_labelled + self.fp_unlabelled;
        (d > 0).then(|| self.tp as f64 / d as f64)
    }

    /// TP / report labels; `None` without report labels.
    pub fn recall(&self) -> Option<f64> {
        (self.report_labels > 0).then(|| self.tp as f64 / self.report_labels as f64)
    }

    fn add(&mut self, o: &Counts) {
        self.report_labels += o.report_labels;
        self.silent_labels += o.silent_labels;
        self.tp += o.tp;
        self.fp_labelled += o.fp_labelled;
        self.fp_unlabelled += o.fp_unlabelled;
        self.fn_ += o.fn_;
    }
}

/// One mismatch, for the findings list.
#[derive(Debug, Clone)]
pub struct Miss {
    /// `FP` (silent label hit), `FP?` (unlabelled), `FN`.
    pub kind: &'static str,
    /// `crate-version file:line`.
    pub site: String,
    /// Lint.
    pub lint: String,
    /// The label's reason or the diagnostic's message.
    pub why: String,
}

/// Scores one crate: per-lint counts and the mismatches.
pub fn score_crate(
    krate: &Crate,
    diags: &[Diag],
    tolerance: usize,
) -> (BTreeMap<String, Counts>, Vec<Miss>) {
    let mut per: BTreeMap<String, Counts> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut used = vec![false; krate.labels.len()];
    for l in &krate.labels {
        let c = per.entry(l.lint.clone()).or_default();
        match l.expect {
            Expect::Report => c.report_labels += 1,
            Expect::Silent => c.silent_labels += 1,
        }
    }
    let mut sites: Vec<&Diag> = diags.iter().collect();
    sites.sort_by(|a, b| (&a.file, a.line, &a.lint).cmp(&(&b.file, b.line, &b.lint)));
    sites.dedup_by(|a, b| (&a.file, a.line, &a.lint) == (&b.file, b.line, &b.lint));
    for d in sites {
        let best = krate
            .labels
            .iter()
            .enumerate()
            .filter(|(i, l)| {
                !used[*i]
                    && l.file == d.file
                    && l.lint == d.lint
                    && l.line.abs_diff(d.line) <= tolerance
            })
            .min_by_key(|(_, l)| l.line.abs_diff(d.line));
        let c = per.entry(d.lint.clone()).or_default();
        match best {
            Some((i, l)) => {
                used[i] = true;
                match l.expect {
                    Expect::Report => c.tp += 1,
                    Expect::Silent => {
                        c.fp_labelled += 1;
                        misses.push(Miss {
                            kind: "FP",
                            site: format!("{} {}:{}", krate.dir_name(), d.file, d.line),
                            lint: d.lint.clone(),
                            why: l.reason.clone(),
                        });
                    }
                }
            }
            None if krate.labels.iter().enumerate().any(|(i, l)| {
                used[i]
                    && l.file == d.file
                    && l.lint == d.lint
                    && l.line.abs_diff(d.line) <= tolerance
            }) => {}
            None => {
                c.fp_unlabelled += 1;
                misses.push(Miss {
                    kind: "FP?",
                    site: format!("{} {}:{}", krate.dir_name(), d.file, d.line),
                    lint: d.lint.clone(),
                    why: format!("unlabelled: {}", d.message),
                });
            }
        }
    }
    for (i, l) in krate.labels.iter().enumerate() {
        if l.expect == Expect::Report && !used[i] {
            if let Some(c) = per.get_mut(&l.lint) {
                c.fn_ += 1;
            }
            misses.push(Miss {
                kind: "FN",
                site: format!("{} {}:{}", krate.dir_name(), l.file, l.line),
                lint: l.lint.clone(),
                why: l.reason.clone(),
            });
        }
    }
    (per, misses)
}

/// Adds `from` into `into`, lint by lint.
pub fn merge(into: &mut BTreeMap<String, Counts>, from: &BTreeMap<String, Counts>) {
    for (k, v) in from {
        into.entry(k.clone()).or_default().add(v);
    }
}

/// The sum over lints.
pub fn total(per: &BTreeMap<String, Counts>) -> Counts {
    let mut t = Counts::default();
    for c in per.values() {
        t.add(c);
    }
    t
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// The per-lint table, with an overall row.
pub fn table(per: &BTreeMap<String, Counts>) -> String {
    let mut s = format!(
        "{:<26} {:>6} {:>6} {:>4} {:>4} {:>4} {:>4} {:>9} {:>6}\n",
        "lint", "report", "silent", "TP", "FP", "FP?", "FN", "precision", "recall"
    );
    let row = |name: &str, c: &Counts| {
        format!(
            "{:<26} {:>6} {:>6} {:>4} {:>4} {:>4} {:>4} {:>9} {:>6}\n",
            name,
            c.report_labels,
            c.silent_labels,
            c.tp,
            c.fp_labelled,
            c.fp_unlabelled,
            c.fn_,
            ratio(c.precision()),
            ratio(c.recall())
        )
    };
    for (k, c) in per {
        s.push_str(&row(k, c));
    }
    s.push_str(&row("overall", &total(per)));
    s
}

/// Threshold failures (issue 14): overall precision ≥ 0.9, overall recall ≥ 0.7,
/// and no lint with report labels below 0.5 recall.
pub fn threshold_failures(per: &BTreeMap<String, Counts>) -> Vec<String> {
    let mut f = Vec::new();
    let t = total(per);
    if t.precision().unwrap_or(0.0) < 0.9 {
        f.push(format!("overall precision {} < 0.90", ratio(t.precision())));
    }
    if t.recall().unwrap_or(0.0) < 0.7 {
        f.push(format!("overall recall {} < 0.70", ratio(t.recall())));
    }
    for (k, c) in per {
        if let Some(r) = c.recall() {
            if r < 0.5 {
                f.push(format!("{k}: recall {r:.2} < 0.50"));
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Label;

    fn label(line: usize, lint: &str, expect: Expect) -> Label {
        Label {
            file: "src/lib.rs".into(),
            line,
            anchor: String::new(),
            lint: lint.into(),
            expect,
            reason: "r".into(),
        }
    }

    fn diag(line: usize, lint: &str) -> Diag {
        Diag {
            file: "src/lib.rs".into(),
            line,
            lint: lint.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn counts_and_thresholds() {
        let k = Crate {
            name: "x".into(),
            version: "1".into(),
            labels: vec![
                label(10, "unbounded_poll", Expect::Report),
                label(20, "unbounded_poll", Expect::Report),
                label(30, "unbounded_poll", Expect::Silent),
            ],
        };
        // One hit one line off, one silent site reported, one unlabelled report,
        // one lint mismatch (same line, other lint: unlabelled).
        let d = [
            diag(11, "unbounded_poll"),
            diag(30, "unbounded_poll"),
            diag(50, "unbounded_poll"),
            diag(20, "raw_mmio"),
        ];
        let (per, misses) = score_crate(&k, &d, 2);
        let c = per["unbounded_poll"];
        assert_eq!((c.tp, c.fp_labelled, c.fp_unlabelled, c.fn_), (1, 1, 1, 1));
        assert_eq!(misses.len(), 4);
        assert!(!threshold_failures(&per).is_empty());
        let good = [diag(10, "unbounded_poll"), diag(20, "unbounded_poll")];
        let (per, _) = score_crate(&k, &good, 2);
        assert!(
            threshold_failures(&per).is_empty(),
            "{:?}",
            threshold_failures(&per)
        );
    }

    #[test]
    fn a_label_is_matched_once_and_tolerance_holds() {
        let k = Crate {
            name: "x".into(),
            version: "1".into(),
            labels: vec![label(10, "raw_mmio", Expect::Report)],
        };
        // Two diagnostics on one line, or within the tolerance of a matched label,
        // are one site; one further off is another.
        let (per, _) = score_crate(&k, &[diag(10, "raw_mmio"), diag(10, "raw_mmio")], 2);
        assert_eq!((per["raw_mmio"].tp, per["raw_mmio"].fp_unlabelled), (1, 0));
        let (per, _) = score_crate(&k, &[diag(10, "raw_mmio"), diag(12, "raw_mmio")], 2);
        assert_eq!((per["raw_mmio"].tp, per["raw_mmio"].fp_unlabelled), (1, 0));
        let (per, _) = score_crate(&k, &[diag(10, "raw_mmio"), diag(13, "raw_mmio")], 2);
        assert_eq!((per["raw_mmio"].tp, per["raw_mmio"].fp_unlabelled), (1, 1));
        let (per, _) = score_crate(&k, &[diag(13, "raw_mmio")], 2);
        assert_eq!(per["raw_mmio"].fn_, 1);
    }
}
