//! Workspace discovery from manifests alone: a virtual manifest with member globs, an
//! excluded member, a nightly `rust-toolchain.toml` that is not installed, a `[lib] path`
//! override and a binary, found in path mode and in workspace mode.

use std::path::{Path, PathBuf};
use std::process::Command;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

/// Builds the fixture workspace in a fresh temporary directory.
fn fixture(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("paranoid-ws-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    write(
        &root,
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = [\"drivers/*\", \"tools/cli\"]\nexclude = [\"drivers/broken\"]\n",
    );
    write(
        &root,
        "rust-toolchain.toml",
        "[toolchain]\nchannel = \"nightly-2019-01-01\"\n",
    );
    // A member whose library lives at a custom path.
    write(
        &root,
        "drivers/nic/Cargo.toml",
        "[package]\nname = \"nic\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[lib]\npath = \"lib/nic.rs\"\n",
    );
    write(
        &root,
        "drivers/nic/lib/nic.rs",
        "mod ring;\npub fn wait(regs: &Regs) {\n    while regs.read32(0x08) & 1 == 0 {}\n}\n",
    );
    write(
        &root,
        "drivers/nic/lib/ring.rs",
        "pub fn spin(regs: &Regs) {\n    loop {\n        if regs.read32(0x10) != 0 {\n            break;\n        }\n    }\n}\n",
    );
    // A member that uses the toolkit, with the plain src/ layout.
    write(
        &root,
        "drivers/disk/Cargo.toml",
        "[package]\nname = \"disk\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\nparanoid-hal = { path = \"../../hal\" }\n",
    );
    write(
        &root,
        "drivers/disk/src/lib.rs",
        "pub fn init(regs: &Regs) {\n    while regs.read32(0x1c) & 1 == 0 {}\n}\n",
    );
    // Excluded: must not be linted.
    write(
        &root,
        "drivers/broken/Cargo.toml",
        "[package]\nname = \"broken\"\nversion = \"0.1.0\"\n",
    );
    write(
        &root,
        "drivers/broken/src/lib.rs",
        "pub fn wait(regs: &Regs) {\n    while regs.read32(0) == 0 {}\n}\n",
    );
    // A binary-only member with src/main.rs and src/bin/*.rs.
    write(
        &root,
        "tools/cli/Cargo.toml",
        "[package]\nname = \"cli\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[[bin]]\nname = \"cli\"\npath = \"src/main.rs\"\n",
    );
    write(
        &root,
        "tools/cli/src/main.rs",
        "fn main() {\n    while inb(0x64) & 2 != 0 {}\n}\n",
    );
    write(
        &root,
        "tools/cli/src/bin/extra.rs",
        "fn main() {\n    while inb(0x60) & 1 == 0 {}\n}\n",
    );
    root
}

fn run(dir: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-paranoid"))
        .current_dir(dir)
        .arg("paranoid")
        .args(args)
        // The toolchain file names a nightly that is not installed: cargo must not be needed.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .output()
        .expect("run cargo-paranoid");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn packages_in(json: &str) -> Vec<String> {
    let mut names: Vec<String> = json
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-message")
        .filter_map(|v| {
            let id = v["package_id"].as_str()?.to_string();
            let file = v["message"]["spans"][0]["file_name"].as_str()?.to_string();
            Some(format!(
                "{}:{file}",
                id.rsplit('#').next()?.split('@').next()?
            ))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn expected(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "cli:tools/cli/src/bin/extra.rs",
        "cli:tools/cli/src/main.rs",
        "disk:drivers/disk/src/lib.rs",
        "nic:drivers/nic/lib/nic.rs",
        "nic:drivers/nic/lib/ring.rs",
    ]
    .iter()
    .map(|s| s.replacen(':', &format!(":{prefix}"), 1))
    .collect();
    v.sort();
    v
}

#[test]
fn path_mode_finds_every_member() {
    let root = fixture("path");
    let parent = root.parent().expect("parent");
    let name = root.file_name().and_then(|n| n.to_str()).expect("name");
    let (out, err) = run(parent, &[name, "--message-format", "json", "--stats"]);
    assert_eq!(packages_in(&out), expected(&format!("{name}/")), "{err}");
    assert!(err.contains("3 packages, 5 files"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn workspace_mode_finds_every_member_from_any_directory() {
    let root = fixture("ws");
    for dir in [root.clone(), root.join("drivers/nic/lib")] {
        let (out, err) = run(&dir, &["--message-format", "json", "--stats"]);
        assert_eq!(packages_in(&out), expected(""), "{err}");
        assert!(err.contains("3 packages, 5 files"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn toolkit_is_read_from_the_manifest() {
    let root = fixture("toolkit");
    let (out, _) = run(
        &root,
        &["--message-format", "json", "-W", "missing_paranoid_init"],
    );
    let missing: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("paranoid::missing_paranoid_init\""))
        .collect();
    // `disk` depends on `paranoid-hal`: its `init` is reported; `nic` does not: nothing there.
    assert_eq!(missing.len(), 1, "{out}");
    assert!(missing[0].contains("drivers/disk/src/lib.rs"));
    let _ = std::fs::remove_dir_all(&root);
}
