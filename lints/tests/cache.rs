//! The result cache (`target/paranoid/cache`): a hit gives exactly what a fresh run gives;
//! a changed file, a file rewritten with the same size and modification time, an edited
//! (doctored) entry, a changed configuration and a changed `CARGO_TARGET_DIR` are never
//! served from it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A poll with no bound (one `unbounded_poll`) …
const POLL: &str = "pub fn wait(regs: &Regs) {\n    while regs.read32(0x08) & 1 == 0 {}\n}\n";
/// … and the same bytes count with no loop at all (nothing to report).
const NO_POLL: &str = "pub fn wait(regs: &Regs) {\n    if    regs.read32(0x08) & 1 == 0 {}\n}\n";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

/// A two-package workspace: `nic` (the file the tests change) and `disk` (never changed).
fn fixture(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("paranoid-cache-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    write(
        &root,
        "Cargo.toml",
        "[workspace]\nmembers = [\"nic\", \"disk\"]\n",
    );
    for name in ["nic", "disk"] {
        write(
            &root,
            &format!("{name}/Cargo.toml"),
            &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        );
    }
    write(&root, "nic/src/lib.rs", POLL);
    write(
        &root,
        "disk/src/lib.rs",
        "pub fn spin(regs: &Regs) {\n    loop {\n        if regs.read32(0x10) != 0 {\n            break;\n        }\n    }\n}\n",
    );
    root
}

struct Run {
    stdout: String,
    stderr: String,
}

impl Run {
    /// Packages served from the cache, from the `--stats` line.
    fn cached(&self) -> usize {
        self.stderr
            .lines()
            .find_map(|l| l.strip_suffix(" packages from the cache"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no stats line in {}", self.stderr))
    }

    /// Diagnostics in the JSON stream: `file:line lint`.
    fn found(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-message")
            .map(|v| {
                let m = &v["message"];
                format!(
                    "{}:{} {}",
                    m["spans"][0]["file_name"].as_str().unwrap_or(""),
                    m["spans"][0]["line_start"],
                    m["code"]["code"].as_str().unwrap_or("")
                )
            })
            .collect();
        v.sort();
        v
    }
}

fn run_in(dir: &Path, target: Option<&Path>, extra: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cargo-paranoid"));
    c.current_dir(dir)
        .arg("paranoid")
        .args(["--message-format", "json", "--stats"])
        .args(extra)
        .env_remove("PARANOID_NO_CACHE")
        .env_remove("CARGO");
    match target {
        Some(t) => c.env("CARGO_TARGET_DIR", t),
        None => c.env_remove("CARGO_TARGET_DIR"),
    };
    let out = c.output().expect("run cargo-paranoid");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(dir: &Path) -> Run {
    run_in(dir, None, &[])
}

fn entry_of(root: &Path, package: &str) -> PathBuf {
    let dir = root.join("target/paranoid/cache");
    std::fs::read_dir(&dir)
        .expect("cache directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}-")) && n.ends_with(".json"))
        })
        .unwrap_or_else(|| panic!("no entry for {package} in {}", dir.display()))
}

const POLL_FOUND: &str = "nic/src/lib.rs:2 paranoid::unbounded_poll";

#[test]
fn a_hit_is_what_a_fresh_run_gives() {
    let root = fixture("hit");
    let cold = run(&root);
    assert_eq!(cold.cached(), 0, "{}", cold.stderr);
    let warm = run(&root);
    assert_eq!(warm.cached(), 2, "{}", warm.stderr);
    // Byte for byte, the rendered diagnostics included.
    assert_eq!(warm.stdout, cold.stdout);
    let fresh = run_in(&root, None, &["--no-cache"]);
    assert_eq!(fresh.cached(), 0);
    assert_eq!(fresh.stdout, warm.stdout);
    assert!(
        cold.found().contains(&POLL_FOUND.to_string()),
        "{}",
        cold.stdout
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_changed_file_gets_its_new_diagnostics() {
    let root = fixture("change");
    let before = run(&root);
    assert!(before.found().contains(&POLL_FOUND.to_string()));
    // The poll moves two lines down.
    write(&root, "nic/src/lib.rs", &format!("// a\n// b\n{POLL}"));
    let after = run(&root);
    // Only the changed package is analysed again.
    assert_eq!(after.cached(), 1, "{}", after.stderr);
    let found = after.found();
    assert!(
        found.contains(&"nic/src/lib.rs:4 paranoid::unbounded_poll".to_string()),
        "{found:?}"
    );
    assert!(!found.contains(&POLL_FOUND.to_string()), "{found:?}");
    // And removed.
    write(&root, "nic/src/lib.rs", "pub fn nothing() {}\n");
    let gone = run(&root);
    assert!(
        !gone.found().iter().any(|f| f.starts_with("nic/")),
        "{:?}",
        gone.found()
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn same_size_and_mtime_is_not_enough() {
    let root = fixture("racy");
    let file = root.join("nic/src/lib.rs");
    let mtime = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert!(run(&root).found().contains(&POLL_FOUND.to_string()));
    // Rewritten within the same tick, as fast tools and checkouts do: same size, same mtime.
    assert_eq!(POLL.len(), NO_POLL.len());
    std::fs::write(&file, NO_POLL).expect("write");
    std::fs::File::options()
        .append(true)
        .open(&file)
        .and_then(|f| f.set_modified(mtime))
        .expect("set mtime");
    assert_eq!(
        std::fs::metadata(&file).and_then(|m| m.modified()).ok(),
        Some(mtime)
    );
    let r = run(&root);
    assert_eq!(r.cached(), 1, "{}", r.stderr);
    assert!(
        !r.found().iter().any(|f| f.starts_with("nic/")),
        "{:?}",
        r.found()
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_doctored_entry_is_not_used() {
    let root = fixture("doctored");
    let file = root.join("nic/src/lib.rs");
    let mtime = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .expect("mtime");
    let cold = run(&root);
    let entry = entry_of(&root, "nic");
    let text = std::fs::read_to_string(&entry).expect("entry");
    assert!(text.contains("unbounded_poll"), "{text}");
    // 1. The stored diagnostics edited (the checksum no longer matches).
    let mut e: serde_json::Value = serde_json::from_str(&text).expect("json");
    e["diagnostics"][0]["message"] = "planted message".into();
    std::fs::write(&entry, e.to_string()).expect("write");
    let r = run(&root);
    assert_eq!(r.cached(), 1, "{}", r.stderr);
    assert!(!r.stdout.contains("planted message"));
    assert_eq!(r.stdout, cold.stdout);
    // 2. An entry for other content planted in place of the current one: the stamps and
    //    (consistent) diagnostics of the entry written for NO_POLL are kept, only its key
    //    claims the current inputs; the stamps must match too.
    let current: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&entry).expect("entry")).expect("json");
    std::fs::write(root.join("nic/src/lib.rs"), NO_POLL).expect("write");
    let none = run(&root);
    assert!(!none.found().iter().any(|f| f.starts_with("nic/")));
    let mut planted: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&entry).expect("entry")).expect("json");
    planted["key"] = current["key"].clone();
    // The file back exactly as it was when `current` was written: the same key.
    std::fs::write(&file, POLL).expect("write");
    std::fs::File::options()
        .append(true)
        .open(&file)
        .and_then(|f| f.set_modified(mtime))
        .expect("mtime");
    std::fs::write(&entry, planted.to_string()).expect("write");
    let r = run(&root);
    assert!(
        r.found().contains(&POLL_FOUND.to_string()),
        "{:?}",
        r.found()
    );
    // 3. Truncated.
    let len = std::fs::metadata(&entry).expect("entry").len();
    std::fs::File::options()
        .write(true)
        .open(&entry)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    let r = run(&root);
    assert!(
        r.found().contains(&POLL_FOUND.to_string()),
        "{:?}",
        r.found()
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn configuration_and_levels_are_part_of_the_key() {
    let root = fixture("config");
    assert!(run(&root).found().contains(&POLL_FOUND.to_string()));
    let allowed = run_in(&root, None, &["-A", "unbounded_poll"]);
    assert_eq!(allowed.cached(), 0, "{}", allowed.stderr);
    assert!(allowed.found().is_empty(), "{:?}", allowed.found());
    write(
        &root,
        "paranoid.toml",
        "[lints]\nunbounded_poll = \"allow\"\n",
    );
    let configured = run(&root);
    assert_eq!(configured.cached(), 0, "{}", configured.stderr);
    assert!(configured.found().is_empty(), "{:?}", configured.found());
    std::fs::remove_file(root.join("paranoid.toml")).expect("rm");
    assert!(run(&root).found().contains(&POLL_FOUND.to_string()));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_cache_lives_in_the_target_directory() {
    let root = fixture("target");
    let elsewhere = root.join("elsewhere");
    let r = run_in(&root, Some(&elsewhere), &[]);
    assert_eq!(r.cached(), 0);
    assert!(elsewhere.join("paranoid/cache").is_dir());
    assert!(!root.join("target").exists());
    assert_eq!(run_in(&root, Some(&elsewhere), &[]).cached(), 2);
    // Explicit paths are linted afresh, and leave no cache behind.
    let p = run_in(&root, None, &["nic"]);
    assert_eq!(p.cached(), 0);
    assert!(!root.join("target").exists());
    let _ = std::fs::remove_dir_all(&root);
}
