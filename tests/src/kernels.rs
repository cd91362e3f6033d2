//! Building the bare-metal kernels (`examples/kernels/`, its own workspace).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::repo_root;

/// The kernels' target triple.
pub const TARGET: &str = "x86_64-unknown-none";

/// The kernels workspace directory.
pub fn workspace() -> PathBuf {
    repo_root().join("examples").join("kernels")
}

/// Where release binaries land.
pub fn release_dir() -> PathBuf {
    workspace().join("target").join(TARGET).join("release")
}

/// The path of kernel binary `bin`.
pub fn binary(bin: &str) -> PathBuf {
    release_dir().join(bin)
}

/// The cargo to run (the one that runs us, under `cargo xtask`).
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// A cargo command in the kernels workspace: its `.cargo/config.toml` (target,
/// `relocation-model=static`) applies because it runs from that directory;
/// `RUSTFLAGS` from the environment would replace those flags, so it is
/// removed, and the target dir is pinned to `examples/kernels/target` whatever
/// `CARGO_TARGET_DIR` says.
pub fn cargo_in_kernels(args: &[&str]) -> Command {
    let dir = workspace();
    // Cargo's own options go before a `--` (what follows it is for the tool).
    let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    let (cargo_args, tool_args) = args.split_at(split);
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&dir)
        .args(cargo_args)
        .arg("--target")
        .arg(TARGET)
        .arg("--target-dir")
        .arg(dir.join("target"))
        .args(tool_args)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    cmd
}

/// `cargo build --release` of every kernel and crate in the kernels workspace.
///
/// # Errors
///
/// The failing command and its status.
pub fn build() -> Result<(), String> {
    run(cargo_in_kernels(&[
        "build",
        "--release",
        "--workspace",
        "--quiet",
    ]))
}

/// Runs a command, inheriting output.
///
/// # Errors
///
/// The command line and its exit status.
pub fn run(mut cmd: Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {status}", describe(&cmd)))
    }
}

/// A short description of a command (program and arguments).
pub fn describe(cmd: &Command) -> String {
    let prog = Path::new(cmd.get_program())
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args: Vec<_> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!("{prog} {}", args.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_options_go_before_the_tool_separator() {
        let cmd = cargo_in_kernels(&["clippy", "--release", "--", "-D", "warnings"]);
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let sep = args.iter().position(|a| a == "--").unwrap();
        let target = args.iter().position(|a| a == "--target").unwrap();
        let dir = args.iter().position(|a| a == "--target-dir").unwrap();
        assert!(target < sep && dir < sep);
        assert_eq!(&args[sep + 1..], ["-D", "warnings"]);
    }
}
