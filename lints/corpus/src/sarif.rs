//! SARIF checks: the SARIF Multitool's verdict, and `partialFingerprints` that
//! are present and stable (two runs, and a line inserted above the finding).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// `(ruleId, uri, partialFingerprints)` of every result, sorted: what must not
/// change between runs or when lines move.
pub type Prints = Vec<(String, String, String)>;

/// The results of a SARIF log.
fn results(log: &Value) -> Vec<&Value> {
    log["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["results"].as_array().into_iter().flatten())
        .collect()
}

/// Fingerprints of every result; results without a non-empty
/// `partialFingerprints` object are returned as errors.
pub fn fingerprints(log: &Value) -> Result<Prints, Vec<String>> {
    let mut prints = Vec::new();
    let mut missing = Vec::new();
    for r in results(log) {
        let rule = r["ruleId"].as_str().unwrap_or("?").to_owned();
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        match r["partialFingerprints"].as_object() {
            Some(fp) if !fp.is_empty() => {
                prints.push((rule, uri, Value::Object(fp.clone()).to_string()));
            }
            _ => missing.push(format!(
                "{rule} at {uri}:{}: no partialFingerprints",
                loc["region"]["startLine"]
            )),
        }
    }
    prints.sort();
    if missing.is_empty() {
        Ok(prints)
    } else {
        Err(missing)
    }
}

/// Files (SARIF `uri`s) that have results.
pub fn files_with_results(log: &Value) -> Vec<String> {
    let mut f: Vec<String> = results(log)
        .iter()
        .filter_map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    f.sort();
    f.dedup();
    f
}

/// Copies `src` to `dst` (a fresh tree of the crate's files, `target/` left out).
///
/// # Errors
///
/// An I/O error, as text.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dst);
    let mut stack = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((s, d)) = stack.pop() {
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in std::fs::read_dir(&s).map_err(|e| format!("{}: {e}", s.display()))? {
            let e = e.map_err(|e| e.to_string())?;
            let (sp, dp) = (e.path(), d.join(e.file_name()));
            if sp.is_dir() {
                if e.file_name() != "target" {
                    stack.push((sp, dp));
                }
            } else {
                std::fs::copy(&sp, &dp).map_err(|e| format!("{}: {e}", sp.display()))?;
            }
        }
    }
    Ok(())
}

/// Inserts a comment line at the top of each of `files` under `root`: every
/// finding in them moves down one line.
///
/// # Errors
///
/// An I/O error, as text.
pub fn shift_down(root: &Path, files: &[String]) -> Result<(), String> {
    for f in files {
        let p = root.join(f);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        std::fs::write(
            &p,
            format!("// a line inserted above every finding\n{text}"),
        )
        .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

/// The SARIF Multitool, run directly (not through the npm wrapper, which
/// splits `Sarif;Ghas` at the `;`).
pub struct Multitool {
    /// Path to the `Sarif.Multitool` executable.
    pub exe: PathBuf,
}

impl Multitool {
    /// `Sarif.Multitool validate FILE... -o OUT --rule-kind 'Sarif;Ghas'` (one
    /// process for every file: the tool takes seconds to start); returns the
    /// error-level results in OUT as `file: ruleId: message` lines.
    ///
    /// # Errors
    ///
    /// The tool cannot be run or writes no readable output.
    pub fn errors(&self, files: &[PathBuf], out: &Path) -> Result<Vec<String>, String> {
        let _ = std::fs::remove_file(out);
        let status = Command::new(&self.exe)
            .arg("validate")
            .args(files)
            .arg("-o")
            .arg(out)
            .args(["--rule-kind", "Sarif;Ghas"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("{}: {e}", self.exe.display()))?;
        let text = std::fs::read_to_string(out).map_err(|e| {
            format!(
                "{} ({status}) wrote no {}: {e}",
                self.exe.display(),
                out.display()
            )
        })?;
        let log: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", out.display()))?;
        Ok(results(&log)
            .into_iter()
            .filter(|r| r["level"].as_str() == Some("error"))
            .map(|r| {
                format!(
                    "{}: {}",
                    r["ruleId"].as_str().unwrap_or("?"),
                    r["message"]["arguments"]
                )
            })
            .collect())
    }
}

/// A copy of a valid log with what the SARIF 2.1.0 schema requires broken: the
/// tool's name removed and a region with a negative start line. The Multitool
/// must reject it (the negative control of [`Multitool::errors`]).
pub fn doctored(log: &Value) -> Value {
    let mut bad = log.clone();
    if let Some(driver) = bad["runs"][0]["tool"]["driver"].as_object_mut() {
        driver.remove("name");
    }
    bad["runs"][0]["results"] = serde_json::json!([{
        "ruleId": "paranoid::unbounded_poll",
        "message": { "text": "doctored" },
        "locations": [{ "physicalLocation": {
            "artifactLocation": { "uri": "src/lib.rs" },
            "region": { "startLine": -3 }
        }}]
    }]);
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(fp: Value) -> Value {
        serde_json::json!({ "runs": [{ "results": [{
            "ruleId": "paranoid::raw_mmio",
            "locations": [{ "physicalLocation": {
                "artifactLocation": { "uri": "src/lib.rs" },
                "region": { "startLine": 4 } } }],
            "partialFingerprints": fp
        }]}]})
    }

    #[test]
    fn missing_or_empty_fingerprints_are_errors() {
        assert!(fingerprints(&log(serde_json::json!({ "paranoid/v1": "ab" }))).is_ok());
        assert!(fingerprints(&log(serde_json::json!({}))).is_err());
        assert!(fingerprints(&log(Value::Null)).is_err());
    }

    #[test]
    fn the_doctored_log_loses_the_tool_name() {
        let d = doctored(&log(Value::Null));
        assert!(d["runs"][0]["tool"]["driver"]["name"].is_null());
        assert_eq!(
            d["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"],
            -3
        );
    }
}
