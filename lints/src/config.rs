//! `paranoid.toml`: lint levels and the names of project-specific functions.
//!
//! ```toml
//! [lints]
//! unbounded_poll = "deny"
//! raw_mmio = "allow"
//!
//! [device]
//! readers = ["mmio_read", "cfg_read32"]   # functions/methods returning a device value
//! writers = ["mmio_write"]                # functions/methods writing the device
//!
//! [recovery]
//! functions = ["recover", "dump_to_disk"] # recovery roots besides #[paranoid_init]
//! not = ["init_logger"]                   # names that are never recovery roots
//! by_name = true                          # bring-up names are roots in crates that do not
//!                                         # use the toolkit (default true; see callgraph)
//!
//! [panic_path]
//! functions = ["on_panic"]                # panic-path code besides #[panic_handler]
//!
//! [hal]
//! crates = ["paranoid", "my_hal"]         # where raw volatile access is expected
//! paths = ["src/arch/mmio.rs"]            # path prefixes treated as HAL code
//!
//! [files]
//! exclude = ["tests/ui", "vendor"]        # path substrings that are not linted
//! auxiliary = ["src/model"]               # linted, but not driver code (device models,
//!                                         # test support): treated like tests
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::diagnostic::Level;

/// The parsed configuration, merged with the built-in defaults.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Lint levels set by the file, then by the command line (later wins).
    pub levels: Vec<(String, Level)>,
    /// Extra device-reader function and method names.
    pub readers: Vec<String>,
    /// Extra device-writer function and method names.
    pub writers: Vec<String>,
    /// Extra recovery function names.
    pub recovery: Vec<String>,
    /// Names that are never recovery roots (removes default by-name roots).
    pub recovery_not: Vec<String>,
    /// Whether bring-up names are recovery roots in crates that do not use the toolkit
    /// (`None`: the default, yes).
    pub recovery_by_name: Option<bool>,
    /// Extra panic-path function names.
    pub panic_path: Vec<String>,
    /// Crates whose code is a HAL (raw access expected there).
    pub hal_crates: Vec<String>,
    /// Path prefixes (relative to the workspace root) that are HAL code.
    pub hal_paths: Vec<String>,
    /// Path substrings not to lint.
    pub exclude: Vec<String>,
    /// Path substrings of code that is linted but is not part of the driver (device models,
    /// test support built into the crate): like tests, library recovery code and panic paths
    /// do not reach into it.
    pub auxiliary: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    lints: BTreeMap<String, String>,
    #[serde(default)]
    device: RawDevice,
    #[serde(default)]
    recovery: RawRecovery,
    #[serde(default)]
    panic_path: RawFunctions,
    #[serde(default)]
    hal: RawHal,
    #[serde(default)]
    files: RawFiles,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    #[serde(default)]
    readers: Vec<String>,
    #[serde(default)]
    writers: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunctions {
    #[serde(default)]
    functions: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecovery {
    #[serde(default)]
    functions: Vec<String>,
    #[serde(default)]
    not: Vec<String>,
    #[serde(default)]
    by_name: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHal {
    #[serde(default)]
    crates: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    auxiliary: Vec<String>,
}

impl Config {
    /// The defaults: our HAL crate (package `paranoid-hal`, library `paranoid`) is a HAL,
    /// UI-test fixtures are not linted.
    pub fn with_defaults() -> Self {
        Self {
            hal_crates: vec!["paranoid-hal".into()],
            exclude: vec!["tests/ui/".into(), "/target/".into()],
            ..Self::default()
        }
    }

    /// Parses configuration text and merges it into `self`.
    ///
    /// # Errors
    ///
    /// A message naming the problem when the TOML is malformed, has unknown keys or
    /// names an unknown level or lint.
    pub fn merge_toml(
        &mut self,
        text: &str,
        known_lint: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        for (lint, level) in raw.lints {
            let lvl = Level::parse(&level).ok_or_else(|| {
                format!("unknown level `{level}` for lint `{lint}` (use allow, warn or deny)")
            })?;
            if lint != "all" && !known_lint(&lint) {
                return Err(format!("unknown lint `{lint}` in `[lints]`"));
            }
            self.levels.push((lint, lvl));
        }
        self.readers.extend(raw.device.readers);
        self.writers.extend(raw.device.writers);
        self.recovery.extend(raw.recovery.functions);
        self.recovery_not.extend(raw.recovery.not);
        if raw.recovery.by_name.is_some() {
            self.recovery_by_name = raw.recovery.by_name;
        }
        self.panic_path.extend(raw.panic_path.functions);
        self.hal_crates.extend(raw.hal.crates);
        self.hal_paths.extend(raw.hal.paths);
        self.exclude.extend(raw.files.exclude);
        self.auxiliary.extend(raw.files.auxiliary);
        Ok(())
    }

    /// Reads and merges a configuration file.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or is invalid (see [`Config::merge_toml`]).
    pub fn merge_file(
        &mut self,
        path: &Path,
        known_lint: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        self.merge_toml(&text, known_lint)
            .map_err(|e| format!("invalid `{}`: {e}", path.display()))
    }

    /// Whether `path` (as displayed, workspace-relative) is excluded from linting.
    pub fn is_excluded(&self, path: &Path) -> bool {
        matches_any(&self.exclude, path)
    }

    /// Whether `path` (as displayed, workspace-relative) is auxiliary code (`[files] auxiliary`).
    pub fn is_auxiliary(&self, path: &Path) -> bool {
        matches_any(&self.auxiliary, path)
    }

    /// Whether `path` in crate `krate` is HAL code.
    pub fn is_hal(&self, krate: &str, path: &Path) -> bool {
        let p = path.to_string_lossy().replace('\\', "/");
        self.hal_crates
            .iter()
            .any(|c| c.replace('-', "_") == krate.replace('-', "_"))
            || self
                .hal_paths
                .iter()
                .any(|h| p.starts_with(h.trim_start_matches("./")))
    }
}

/// Whether `path` contains one of `patterns` (directories at a component boundary, files by
/// their path suffix).
fn matches_any(patterns: &[String], path: &Path) -> bool {
    let p = format!("/{}", path.to_string_lossy().replace('\\', "/"));
    patterns.iter().any(|e| {
        let e = e.trim_start_matches("./").trim_start_matches('/');
        let e = if e.ends_with('/') || e.ends_with(".rs") {
            e.to_string()
        } else {
            format!("{e}/")
        };
        p.contains(&format!("/{e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_sections() {
        let mut c = Config::with_defaults();
        c.merge_toml(
            "[lints]\nraw_mmio = \"deny\"\n[device]\nreaders = [\"rd\"]\n[recovery]\nfunctions = [\"r\"]\n[panic_path]\nfunctions = [\"p\"]\n[hal]\ncrates = [\"h\"]\npaths = [\"src/hal\"]\n[files]\nexclude = [\"vendor\"]\nauxiliary = [\"src/model\"]\n",
            |l| l == "raw_mmio",
        )
        .unwrap();
        assert_eq!(c.levels, vec![("raw_mmio".to_string(), Level::Deny)]);
        assert_eq!(c.readers, ["rd"]);
        assert_eq!(c.recovery, ["r"]);
        assert_eq!(c.panic_path, ["p"]);
        assert!(c.is_hal("h", Path::new("x.rs")));
        assert!(c.is_hal("other", Path::new("src/hal/mmio.rs")));
        assert!(c.is_excluded(Path::new("vendor/a.rs")));
        assert!(c.is_excluded(Path::new("lints/tests/ui/raw_mmio.rs")));
        assert!(!c.is_excluded(Path::new("src/vendored.rs")));
        assert!(c.is_auxiliary(Path::new("drivers/nvme/src/model/exec.rs")));
        assert!(!c.is_auxiliary(Path::new("drivers/nvme/src/models.rs")));
    }

    #[test]
    fn rejects_bad_input() {
        let mut c = Config::default();
        assert!(c
            .merge_toml("[lints]\nraw_mmio = \"loud\"", |_| true)
            .is_err());
        assert!(c.merge_toml("[lints]\nnope = \"deny\"", |_| false).is_err());
        assert!(c.merge_toml("[bogus]\n", |_| true).is_err());
        assert!(c.merge_toml("not toml [", |_| true).is_err());
    }
}
