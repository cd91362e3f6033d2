//! The QEMU side: which binary, which accelerator, the standard machine, one run.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::kernels;
use crate::scenario::{RunDir, Scenario};

/// Environment variable naming the QEMU binary (default `qemu-system-x86_64`).
pub const QEMU_ENV: &str = "PARANOID_QEMU";
/// Environment variable allowing KVM: `PARANOID_QEMU_ACCEL=kvm`. On this
/// machine kind KVM is far slower than TCG (DESIGN.md), so TCG is the default.
pub const ACCEL_ENV: &str = "PARANOID_QEMU_ACCEL";

/// The QEMU binary.
pub fn binary() -> String {
    std::env::var(QEMU_ENV).unwrap_or_else(|_| "qemu-system-x86_64".to_string())
}

/// QEMU's version line (`QEMU emulator version 7.2.x ...`).
///
/// # Errors
///
/// When QEMU cannot be run.
pub fn version() -> Result<String, String> {
    let out = Command::new(binary())
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", binary()))?;
    if !out.status.success() {
        return Err(format!("{} --version: {}", binary(), out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

/// The short version number out of the version line (`7.2.19`).
pub fn short_version(line: &str) -> String {
    line.split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .unwrap_or(line)
        .to_string()
}

/// The accelerator to use: `tcg`, unless `PARANOID_QEMU_ACCEL=kvm` and
/// `/dev/kvm` exists.
pub fn accelerator() -> &'static str {
    match std::env::var(ACCEL_ENV).as_deref() {
        Ok("kvm") if Path::new("/dev/kvm").exists() => "kvm",
        _ => "tcg",
    }
}

/// The full QEMU command line of a scenario (without the program name).
///
/// The scenario's machine ([`crate::machine`]; the standard one is DESIGN.md
/// "Platform facts": q35, no default devices, `isa-debug-exit` at 0xf4,
/// intel-iommu before the PCI devices it translates, e1000 without option
/// ROM, NVMe on a raw image), then PVH `-kernel`.
pub fn args(s: &Scenario, dir: &RunDir, accel: &str) -> Vec<String> {
    let machine = s.machine.machine_arg();
    let mut a: Vec<String> = [
        "-machine",
        &machine,
        "-accel",
        accel,
        "-m",
        s.guest_memory(),
        "-smp",
        "1",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-monitor",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if accel == "kvm" {
        // The default CPU under KVM warns about PNI; `host`/`max` abort here.
        a.extend(["-cpu", "qemu64,-pni"].map(String::from));
    }
    a.push("-serial".into());
    a.push(format!("file:{}", dir.serial().display()));
    a.extend(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"].map(String::from));
    a.extend(
        s.machine
            .device_args(s.nic_netdev.as_deref(), &s.images(dir)),
    );
    a.push("-kernel".into());
    a.push(kernels::binary(&s.kernel).display().to_string());
    a.push("-append".into());
    a.push(s.full_cmdline());
    if let Some(initrd) = &s.initrd {
        a.push("-initrd".into());
        a.push(resolve_file(initrd).display().to_string());
    }
    let run = dir.dir.display().to_string();
    a.extend(s.qemu_args.iter().map(|w| {
        w.replace(crate::scenario::RUN_DIR, &run)
            .replace(crate::scenario::GUEST_MEMORY, s.guest_memory())
    }));
    a
}

/// A kernel binary name, or a path relative to the repo root.
pub fn resolve_file(name: &str) -> PathBuf {
    if name.contains('/') {
        crate::repo_root().join(name)
    } else {
        kernels::binary(name)
    }
}

/// Quotes a word for a shell when needed.
fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=,./:+".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// How a QEMU process ended.
#[derive(Debug)]
pub enum Ended {
    /// It exited by itself.
    Exited(ExitStatus),
    /// It ran past the timeout and was killed.
    TimedOut,
}

/// Prepares the run directory, starts QEMU and waits for it, killing it at the
/// scenario's timeout. Returns how it ended and the wall time.
///
/// # Errors
///
/// When the run directory cannot be prepared or QEMU cannot start.
pub fn run(s: &Scenario, dir: &RunDir, accel: &str) -> Result<(Ended, Duration), String> {
    if dir.dir.exists() {
        fs::remove_dir_all(&dir.dir).map_err(|e| format!("clean {}: {e}", dir.dir.display()))?;
    }
    fs::create_dir_all(&dir.dir).map_err(|e| format!("create {}: {e}", dir.dir.display()))?;
    // The target a sparse raw image (as `truncate -s` makes it); every other
    // namespace patterned, to be found unchanged afterwards.
    crate::machine::create_images(&s.images(dir))
        .map_err(|e| format!("disk images in {}: {e}", dir.dir.display()))?;
    if let Some(prepare) = &s.prepare {
        prepare(dir).map_err(|e| format!("prepare hook: {e}"))?;
    }
    let kernel = kernels::binary(&s.kernel);
    if !kernel.exists() {
        return Err(format!(
            "kernel {} not built (is `{}` a [[bin]] of examples/kernels?)",
            kernel.display(),
            s.kernel
        ));
    }
    let args = args(s, dir, accel);
    let line: Vec<String> = std::iter::once(binary())
        .chain(args.iter().cloned())
        .map(|w| shell_quote(&w))
        .collect();
    fs::write(dir.command(), line.join(" ") + "\n").map_err(|e| format!("command.txt: {e}"))?;

    let stdout = File::create(dir.stdout()).map_err(|e| e.to_string())?;
    let stderr = File::create(dir.stderr()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = Command::new(binary())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary()))?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok((Ended::Exited(status), started.elapsed())),
            Ok(None) if started.elapsed() >= s.timeout => {
                // The child is ours: kill it by its pid, then reap it.
                let _ = child.kill();
                let _ = child.wait();
                return Ok((Ended::TimedOut, started.elapsed()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("waiting for QEMU: {e}"));
            }
        }
    }
}

/// Reads a file as lossy UTF-8 (empty when missing).
pub fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
