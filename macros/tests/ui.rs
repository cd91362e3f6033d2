//! Compile-time checks, as rustc shows them: one `tests/ui/<mistake>.rs` with
//! its reviewed `.stderr` per rejected mistake, and `tests/pass/*.rs` that must
//! build.
//!
//! The snapshots are pinned to the toolchain in `tests/ui/RUSTC_VERSION`
//! (rustc's wording and layout change between versions). On another rustc the
//! test stops with instructions instead of failing on every snapshot; set
//! `PARANOID_UI_ANY_RUSTC=1` to run the comparison anyway.

use std::path::Path;
use std::process::Command;

const PIN: &str = "tests/ui/RUSTC_VERSION";

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let out = Command::new(rustc)
        .arg("--version")
        .output()
        .expect("run `rustc --version`");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Checks the toolchain against the pin; re-blessing (`TRYBUILD=overwrite`)
/// moves the pin to the current toolchain.
fn check_pin() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let current = rustc_version();
    if std::env::var_os("TRYBUILD").is_some_and(|v| v == "overwrite") {
        std::fs::write(root.join(PIN), format!("{current}\n")).expect("write the pin");
        return;
    }
    let pinned = std::fs::read_to_string(root.join(PIN)).unwrap_or_default();
    let pinned = pinned.trim();
    if pinned == current || std::env::var_os("PARANOID_UI_ANY_RUSTC").is_some() {
        return;
    }
    panic!(
        "\nthe UI snapshots were blessed with `{pinned}` but this is `{current}`.\n\
         rustc's messages differ between versions, so the comparison would fail\n\
         on wording alone. To move the snapshots to this toolchain:\n\
         \n    TRYBUILD=overwrite cargo test -p paranoid-hal-macros --test ui\n\n\
         then review every changed `macros/tests/ui/*.stderr` (our messages must\n\
         still name the problem and point at the right token) and commit them\n\
         with the updated `{PIN}`. To compare anyway, set PARANOID_UI_ANY_RUSTC=1.\n"
    );
}

#[test]
fn ui() {
    check_pin();
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
