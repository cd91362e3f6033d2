//! Packages of a workspace, found from the manifests themselves (no `cargo` needed).
//!
//! A run must not depend on cargo being able to resolve the workspace: a
//! `rust-toolchain.toml` naming a nightly that is not installed, no network, or a manifest
//! cargo rejects would otherwise stop it. So the packages are read from `Cargo.toml` with the
//! `toml` crate:
//!
//! - a manifest with `[workspace]`: its `members` (with `*`, `?` and `[..]` globs per path
//!   segment) minus its `exclude`, plus the root package when it also has `[package]`
//!   (a *virtual* manifest has none);
//! - a manifest with `[package]` only: that package, and the workspace above it is not needed;
//! - a directory without a manifest: every package found below it (nested workspaces and
//!   stand-alone packages alike), skipping `target/` and hidden directories.
//!
//! Each package's files are every `.rs` file under its directory except those of nested
//! packages (this covers `src/lib.rs`, `src/main.rs`, `src/bin/*.rs`, `tests/`, `benches/`,
//! `examples/`, `build.rs`), plus the directories of `[lib] path` and `[[bin]] path` targets
//! that lie outside it. Whether the package is a *toolkit crate* (it depends on `paranoid-hal`) is
//! read from its dependency tables.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::PackageInfo;
use crate::PackageInput;

/// The package that makes a crate a *toolkit crate* when it is a dependency.
pub const TOOLKIT_PACKAGE: &str = "paranoid-hal";

/// A package read from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `package.name` (the directory name when the manifest has none).
    pub name: String,
    /// Absolute path of its `Cargo.toml`.
    pub manifest: PathBuf,
    /// Its library root (`[lib] path`, else `src/lib.rs` when present).
    pub lib: Option<PathBuf>,
    /// Its binary roots (`[[bin]] path`, `src/main.rs`, `src/bin/*.rs`).
    pub bins: Vec<PathBuf>,
    /// `package.edition` (`2015` when absent, as cargo; `2021` when inherited).
    pub edition: String,
    /// Whether it depends on the toolkit (`paranoid`) in any dependency table.
    pub toolkit: bool,
}

impl Package {
    /// The package's directory.
    pub fn dir(&self) -> &Path {
        self.manifest.parent().unwrap_or(Path::new("."))
    }
}

/// Reads and parses a manifest.
fn read_manifest(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("cannot parse `{}`: {e}", path.display()))
}

/// The workspace root for `dir`: the nearest ancestor manifest with `[workspace]` that lists
/// `dir`'s package as a member (or `dir` itself); `None` when there is no manifest at all.
///
/// When no workspace claims the nearest package, that package's manifest is the root.
pub fn find_root(dir: &Path) -> Option<PathBuf> {
    let dir = absolute(dir);
    let mut nearest: Option<PathBuf> = None;
    for d in dir.ancestors() {
        let m = d.join("Cargo.toml");
        if !m.is_file() {
            continue;
        }
        let Ok(t) = read_manifest(&m) else {
            nearest.get_or_insert(m);
            continue;
        };
        if t.contains_key("workspace") {
            let Some(pkg_dir) = nearest.as_ref().and_then(|n| n.parent()) else {
                return Some(m);
            };
            // A workspace above the nearest package: only when it claims it.
            if members_of(d, &t).iter().any(|p| p == pkg_dir) {
                return Some(m);
            }
            return nearest;
        }
        nearest.get_or_insert(m);
    }
    nearest
}

/// The directories of the members of the workspace whose root is `root` (table `t`).
fn members_of(root: &Path, t: &toml::Table) -> Vec<PathBuf> {
    let Some(ws) = t.get("workspace").and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    let strings = |key: &str| -> Vec<String> {
        ws.get(key)
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let exclude: Vec<PathBuf> = strings("exclude")
        .iter()
        .map(|e| normalize(&root.join(e)))
        .collect();
    let mut out = BTreeSet::new();
    for m in strings("members") {
        for dir in expand_glob(root, &m) {
            let dir = normalize(&dir);
            if exclude.iter().any(|e| dir.starts_with(e)) {
                continue;
            }
            if dir.join("Cargo.toml").is_file() {
                out.insert(dir);
            }
        }
    }
    if t.contains_key("package") {
        out.insert(normalize(root));
    }
    out.into_iter().collect()
}

/// Expands a member pattern (`crates/*`, `drivers/net-?`, `a/[bc]d`) relative to `root`.
fn expand_glob(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    for seg in pattern.split(['/', '\\']).filter(|s| !s.is_empty()) {
        let mut next = Vec::new();
        for d in &dirs {
            if seg == "." {
                next.push(d.clone());
            } else if seg == ".." {
                next.push(d.join(".."));
            } else if !seg.contains(['*', '?', '[']) {
                next.push(d.join(seg));
            } else if seg == "**" {
                next.push(d.clone());
                let walk = walkdir::WalkDir::new(d).min_depth(1).into_iter();
                next.extend(
                    walk.filter_entry(|e| !skipped_dir(e.file_name()))
                        .filter_map(Result::ok)
                        .filter(|e| e.file_type().is_dir())
                        .map(|e| e.path().to_path_buf()),
                );
            } else if let Ok(rd) = std::fs::read_dir(d) {
                let mut found: Vec<PathBuf> = rd
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter(|e| glob_match(seg, &e.file_name().to_string_lossy()))
                    .map(|e| e.path())
                    .collect();
                found.sort();
                next.extend(found);
            }
        }
        dirs = next;
    }
    dirs
}

/// Whether `name` matches the one-segment glob `pat` (`*`, `?`, `[abc]`, `[a-z]`, `[!a]`).
pub fn glob_match(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // Returns (matched, length of the class in `p`, from the `[`).
        let mut i = 1;
        let negate = matches!(p.get(1), Some('!' | '^'));
        if negate {
            i += 1;
        }
        let mut hit = false;
        let start = i;
        while let Some(&ch) = p.get(i) {
            if ch == ']' && i > start {
                return Some((hit != negate, i + 1));
            }
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
                let hi = p.get(i + 2).copied().unwrap_or(ch);
                hit |= ch <= c && c <= hi;
                i += 3;
            } else {
                hit |= ch == c;
                i += 1;
            }
        }
        None
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| n.get(k..).is_some_and(|rest| go(&p[1..], rest))),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => match (n.first(), class(p, n.first().copied().unwrap_or('\0'))) {
                (Some(_), Some((true, len))) => go(&p[len..], &n[1..]),
                (Some(_), Some((false, _))) | (None, _) => false,
                // An unclosed `[` is a literal.
                (Some(c), None) => *c == '[' && go(&p[1..], &n[1..]),
            },
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

fn skipped_dir(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') || name == "target"
}

/// Makes `p` absolute against the current directory (without touching the file system).
fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        normalize(p)
    } else {
        std::env::current_dir()
            .map(|c| normalize(&c.join(p)))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Removes `.` and resolves `..` lexically.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// Reads the package whose manifest is `manifest`; `None` for a virtual manifest.
pub fn read_package(manifest: &Path) -> Result<Option<Package>, String> {
    let t = read_manifest(manifest)?;
    let Some(pkg) = t.get("package").and_then(toml::Value::as_table) else {
        return Ok(None);
    };
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let name = pkg
        .get("name")
        .and_then(toml::Value::as_str)
        .map(String::from)
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let edition = match pkg.get("edition") {
        Some(toml::Value::String(s)) => s.clone(),
        Some(_) => "2021".into(),
        None => "2015".into(),
    };
    let target_path = |v: &toml::Value| {
        v.get("path")
            .and_then(toml::Value::as_str)
            .map(|p| dir.join(p))
    };
    let lib = t
        .get("lib")
        .and_then(target_path)
        .or_else(|| Some(dir.join("src/lib.rs")).filter(|p| p.is_file()));
    let mut bins: Vec<PathBuf> = t
        .get("bin")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(target_path)
        .collect();
    let main = dir.join("src/main.rs");
    if main.is_file() && !bins.contains(&main) {
        bins.push(main);
    }
    if let Ok(rd) = std::fs::read_dir(dir.join("src/bin")) {
        let mut more: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs") || p.join("main.rs").is_file())
            .filter(|p| !bins.contains(p))
            .collect();
        more.sort();
        bins.extend(more);
    }
    Ok(Some(Package {
        name,
        manifest: manifest.to_path_buf(),
        lib,
        bins,
        edition,
        toolkit: depends_on_in(&t, TOOLKIT_PACKAGE, workspace_dependencies(dir).as_ref()),
    }))
}

/// The `[workspace.dependencies]` of the workspace `dir` belongs to: the first
/// manifest with a `[workspace]` table in `dir` or above it, as cargo finds it.
fn workspace_dependencies(dir: &Path) -> Option<toml::Table> {
    let dir = absolute(dir);
    dir.ancestors().find_map(|d| {
        let t = read_manifest(&d.join("Cargo.toml")).ok()?;
        let ws = t.get("workspace")?.as_table()?;
        Some(
            ws.get("dependencies")
                .and_then(toml::Value::as_table)
                .cloned()
                .unwrap_or_default(),
        )
    })
}

/// Whether a manifest depends on package `wanted` (renames through `package = ".."` count)
/// in `[dependencies]`, `[build-dependencies]` or their `[target.'..']` forms. Dev-dependencies
/// do not make the library a toolkit crate.
pub fn depends_on(t: &toml::Table, wanted: &str) -> bool {
    depends_on_in(t, wanted, None)
}

/// [`depends_on`], with `workspace = true` entries resolved in the workspace's
/// `[workspace.dependencies]` (where a rename's `package = ".."` then lives).
pub fn depends_on_in(t: &toml::Table, wanted: &str, workspace: Option<&toml::Table>) -> bool {
    let package_of = |k: &str, v: &toml::Value| -> String {
        let inherited = v.get("workspace").and_then(toml::Value::as_bool) == Some(true);
        let from = if inherited {
            workspace.and_then(|w| w.get(k)).unwrap_or(v)
        } else {
            v
        };
        from.get("package")
            .and_then(toml::Value::as_str)
            .unwrap_or(k)
            .to_string()
    };
    let in_table = |deps: Option<&toml::Value>| {
        deps.and_then(toml::Value::as_table)
            .is_some_and(|d| d.iter().any(|(k, v)| package_of(k, v) == wanted))
    };
    let tables =
        |t: &toml::Table| in_table(t.get("dependencies")) || in_table(t.get("build-dependencies"));
    tables(t)
        || t.get("target")
            .and_then(toml::Value::as_table)
            .is_some_and(|targets| {
                targets
                    .values()
                    .filter_map(toml::Value::as_table)
                    .any(tables)
            })
}

/// The packages named by the manifest `manifest` (workspace members, or the one package).
pub fn packages_of_manifest(manifest: &Path) -> Result<Vec<Package>, String> {
    let manifest = absolute(manifest);
    let t = read_manifest(&manifest)?;
    let dir = manifest.parent().unwrap_or(Path::new(".")).to_path_buf();
    let dirs = if t.contains_key("workspace") {
        members_of(&dir, &t)
    } else {
        vec![dir]
    };
    let mut out = Vec::new();
    for d in dirs {
        // A member that cannot be read is skipped, not fatal: the others are still checked.
        if let Ok(Some(p)) = read_package(&d.join("Cargo.toml")) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Every package under `dir` (for a directory without a manifest): each manifest found is
/// read as a workspace or a package; members are not listed twice.
pub fn packages_below(dir: &Path) -> Vec<Package> {
    let mut out: Vec<Package> = Vec::new();
    let manifests = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !skipped_dir(e.file_name()))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.file_name() == "Cargo.toml");
    let mut seen = BTreeSet::new();
    for m in manifests {
        for p in packages_of_manifest(m.path()).unwrap_or_default() {
            if seen.insert(p.manifest.clone()) {
                out.push(p);
            }
        }
    }
    out.sort_by(|a, b| a.manifest.cmp(&b.manifest));
    out
}

/// The packages to lint for `path`: the workspace or package its manifest names, else every
/// package below it; `None` when there is no manifest in or below it.
pub fn discover(path: &Path) -> Option<Vec<Package>> {
    let path = absolute(path);
    let m = path.join("Cargo.toml");
    let pkgs = if m.is_file() {
        packages_of_manifest(&m).ok()?
    } else {
        packages_below(&path)
    };
    (!pkgs.is_empty()).then_some(pkgs)
}

/// Turns a package into lint input, file paths shown relative to `shown_from`.
pub fn input_of(p: &Package, shown_from: &Path) -> PackageInput {
    let dir = p.dir();
    let mut files = crate::cli::rust_files(dir, shown_from);
    let mut have: BTreeSet<PathBuf> = files.iter().map(|(_, a)| a.clone()).collect();
    // Targets whose root lies outside the package directory bring their directory along.
    for root in p.lib.iter().chain(&p.bins) {
        let root = normalize(root);
        if root.starts_with(dir) || !root.is_file() {
            continue;
        }
        let extra = root
            .parent()
            .map(|d| crate::cli::rust_files(d, shown_from))
            .unwrap_or_default();
        for f in extra {
            if have.insert(f.1.clone()) {
                files.push(f);
            }
        }
    }
    files.sort();
    let (target_name, kind, src) = match (&p.lib, p.bins.first()) {
        (Some(l), _) => (p.name.replace('-', "_"), "lib", l.clone()),
        (None, Some(b)) => (
            b.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| s != "main")
                .unwrap_or_else(|| p.name.clone()),
            "bin",
            b.clone(),
        ),
        (None, None) => (p.name.replace('-', "_"), "lib", dir.join("src/lib.rs")),
    };
    let version = read_manifest(&p.manifest)
        .ok()
        .and_then(|t| t.get("package")?.get("version")?.as_str().map(String::from))
        .unwrap_or_else(|| "0.0.0".into());
    PackageInput {
        info: Arc::new(PackageInfo {
            name: p.name.clone(),
            id: format!("path+file://{}#{}@{version}", dir.display(), p.name),
            manifest_path: p.manifest.display().to_string(),
            target_name,
            target_kind: vec![kind.to_string()],
            target_src_path: src.display().to_string(),
            edition: p.edition.clone(),
            toolkit: Some(p.toolkit),
        }),
        files,
    }
}

/// Whether a `rust-toolchain` or `rust-toolchain.toml` file applies to `dir`: running cargo
/// there could make rustup try to install the toolchain it names.
pub fn has_toolchain_file(dir: &Path) -> bool {
    absolute(dir)
        .ancestors()
        .any(|d| d.join("rust-toolchain.toml").is_file() || d.join("rust-toolchain").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_one_segment() {
        assert!(glob_match("*", "abc"));
        assert!(glob_match("net-*", "net-e1000"));
        assert!(!glob_match("net-*", "storage"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("[ab]x", "bx"));
        assert!(!glob_match("[!ab]x", "bx"));
        assert!(glob_match("[a-c]*", "cat"));
        assert!(!glob_match("[a-c]*", "dog"));
    }

    #[test]
    fn toolkit_dependency_is_read_from_every_table() {
        let t = |s: &str| s.parse::<toml::Table>().unwrap();
        assert!(depends_on(
            &t("[dependencies]\nparanoid = \"1\""),
            "paranoid"
        ));
        assert!(depends_on(
            &t("[dependencies]\nhal = { package = \"paranoid\", path = \"x\" }"),
            "paranoid"
        ));
        assert!(depends_on(
            &t("[target.'cfg(unix)'.dependencies]\nparanoid = \"1\""),
            "paranoid"
        ));
        assert!(!depends_on(
            &t("[dev-dependencies]\nparanoid = \"1\""),
            "paranoid"
        ));
        assert!(!depends_on(
            &t("[dependencies]\nparanoid-macros = \"1\""),
            "paranoid"
        ));
        // `workspace = true`: the package (a rename) is in the workspace's table.
        let ws = t("paranoid = { package = \"paranoid-hal\", path = \"hal\" }");
        let member = t("[dependencies]\nparanoid = { workspace = true }");
        assert!(depends_on_in(&member, "paranoid-hal", Some(&ws)));
        assert!(!depends_on_in(&member, "paranoid", Some(&ws)));
        assert!(!depends_on(&member, "paranoid-hal"));
    }
}
