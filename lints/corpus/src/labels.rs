//! The labels: facts about published code, read from `labels.toml`.
//!
//! One `[[crate]]` table per corpus crate (name and exact version, as pinned in
//! `crates/Cargo.toml`) with its `labels`, one inline table a row:
//! `{ file, line, anchor, lint, expect, reason }`. `anchor` is a piece of the
//! labelled line's text, so a label that no longer points at the code it was
//! written for is detected instead of silently scoring the wrong line.

use std::path::Path;

use serde::Deserialize;

/// What the lint must do at a labelled site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// A true finding: the lint's documentation says this code must be reported.
    Report,
    /// A look-alike, or a diagnostic reviewed and found false: must not be reported.
    Silent,
}

/// One labelled site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Path of the file relative to the crate root, `/`-separated.
    pub file: String,
    /// 1-based line of the construct the lint points at.
    pub line: usize,
    /// Text that must occur on `line` (detects a label that has shifted).
    pub anchor: String,
    /// Lint name without the `paranoid::` prefix.
    pub lint: String,
    /// Report or silent.
    pub expect: Expect,
    /// One line: why, by the lint's documentation.
    pub reason: String,
}

/// One corpus crate and its labels.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crate {
    /// Crate name on crates.io.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// Labelled sites.
    #[serde(default)]
    pub labels: Vec<Label>,
}

impl Crate {
    /// The directory name cargo unpacks the crate into (`name-version`).
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }
}

/// The whole label file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    /// Corpus crates in scoring order.
    #[serde(rename = "crate")]
    pub crates: Vec<Crate>,
}

/// Reads and parses a label file.
///
/// # Errors
///
/// The file cannot be read, is not TOML of the shape above, or names a lint
/// twice at the same site.
pub fn load(path: &Path) -> Result<Labels, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let labels: Labels = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for c in &labels.crates {
        let mut seen = std::collections::BTreeSet::new();
        for l in &c.labels {
            if !seen.insert((&l.file, l.line, &l.lint)) {
                return Err(format!(
                    "{}: {} {}:{} {} is labelled twice",
                    path.display(),
                    c.dir_name(),
                    l.file,
                    l.line,
                    l.lint
                ));
            }
            if l.reason.trim().is_empty() {
                return Err(format!(
                    "{}: {} {}:{} {} has no reason",
                    path.display(),
                    c.dir_name(),
                    l.file,
                    l.line,
                    l.lint
                ));
            }
        }
    }
    Ok(labels)
}

/// Labels whose anchor is not on their line in the fetched source, as messages.
pub fn stale_anchors(krate: &Crate, root: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    for l in &krate.labels {
        let path = root.join(&l.file);
        let line = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.lines().nth(l.line.wrapping_sub(1)).map(str::to_owned));
        match line {
            Some(text) if text.contains(&l.anchor) => {}
            Some(text) => bad.push(format!(
                "{} {}:{}: anchor `{}` not on the line (`{}`)",
                krate.dir_name(),
                l.file,
                l.line,
                l.anchor,
                text.trim()
            )),
            None => bad.push(format!(
                "{} {}:{}: no such file or line",
                krate.dir_name(),
                l.file,
                l.line
            )),
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_and_rejects_unknown_expectations() {
        let ok = r#"
            [[crate]]
            name = "x"
            version = "1.0.0"
            labels = [
              { file = "src/lib.rs", line = 3, anchor = "loop", lint = "unbounded_poll", expect = "report", reason = "spins on LSR" },
            ]
        "#;
        let l: Labels = toml::from_str(ok).expect("valid");
        assert_eq!(l.crates[0].labels[0].expect, Expect::Report);
        let bad = ok.replace("\"report\"", "\"maybe\"");
        assert!(toml::from_str::<Labels>(&bad).is_err());
    }

    #[test]
    fn a_shifted_label_is_detected() {
        let dir = std::env::temp_dir().join(format!("lint-corpus-anchor-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).expect("tmp");
        std::fs::write(dir.join("src/lib.rs"), "fn a() {}\nfn b() { loop {} }\n").expect("tmp");
        let label = |line| Label {
            file: "src/lib.rs".into(),
            line,
            anchor: "loop {".into(),
            lint: "unbounded_poll".into(),
            expect: Expect::Report,
            reason: "r".into(),
        };
        let mut c = Crate {
            name: "x".into(),
            version: "1".into(),
            labels: vec![label(2)],
        };
        assert!(stale_anchors(&c, &dir).is_empty());
        c.labels = vec![label(1), label(9)];
        assert_eq!(stale_anchors(&c, &dir).len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
