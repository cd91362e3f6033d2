//! Prerequisites on a fresh Debian machine: QEMU, the bare-metal target, the
//! rustfmt and clippy components.
//!
//! QEMU comes from Debian (`qemu-system-x86`, installed with apt when running
//! as root). It removes the preinstalled `qemu-utils` on this machine kind, so
//! nothing here uses `qemu-img`: disk images are sparse files.

use std::process::{Command, Stdio};

use crate::kernels::TARGET;
use crate::qemu;

/// The Debian package that provides `qemu-system-x86_64`.
pub const QEMU_PACKAGE: &str = "qemu-system-x86";

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when running as root (uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|r| r.split_whitespace().next() == Some("0"))
            })
        })
        .unwrap_or(false)
}

fn status(cmd: &mut Command) -> Result<(), String> {
    let st = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", crate::kernels::describe(cmd)))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {st}", crate::kernels::describe(cmd)))
    }
}

/// Makes sure QEMU runs; installs it with apt when missing and root. Returns
/// its version line.
///
/// # Errors
///
/// A message saying how to install QEMU when it is missing and cannot be
/// installed here.
pub fn ensure_qemu() -> Result<String, String> {
    if let Ok(v) = qemu::version() {
        return Ok(v);
    }
    let bin = qemu::binary();
    if !is_root() || std::env::var_os("PARANOID_QEMU").is_some() {
        return Err(format!(
            "{bin} not found. Install QEMU: `sudo apt-get install -y --no-install-recommends {QEMU_PACKAGE}` \
             (or set PARANOID_QEMU to a qemu-system-x86_64 binary)"
        ));
    }
    eprintln!("prereqs: {bin} missing; installing {QEMU_PACKAGE} with apt-get");
    status(
        Command::new("apt-get")
            .args(["update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null()),
    )?;
    status(
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                QEMU_PACKAGE,
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null()),
    )?;
    qemu::version()
        .map_err(|e| format!("installed {QEMU_PACKAGE}, but QEMU still does not run: {e}"))
}

/// Adds the bare-metal target when rustup lacks it.
///
/// # Errors
///
/// When `rustup` fails.
pub fn ensure_target() -> Result<(), String> {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == TARGET) {
        return Ok(());
    }
    eprintln!("prereqs: rustup target add {TARGET}");
    status(Command::new("rustup").args(["target", "add", TARGET]))
}

/// Adds the rustfmt and clippy components when missing.
///
/// # Errors
///
/// When `rustup` fails.
pub fn ensure_components() -> Result<(), String> {
    let installed = output("rustup", &["component", "list", "--installed"]).unwrap_or_default();
    for component in ["rustfmt", "clippy"] {
        if !installed.lines().any(|l| l.starts_with(component)) {
            eprintln!("prereqs: rustup component add {component}");
            status(Command::new("rustup").args(["component", "add", component]))?;
        }
    }
    Ok(())
}

/// Whether `objdump` (binutils) is available, for the codegen check.
pub fn has_objdump() -> bool {
    output("objdump", &["--version"]).is_some()
}
