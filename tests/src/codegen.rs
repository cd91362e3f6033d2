//! The codegen check: in the x86_64 release build, a 32-bit register read or
//! write through the HAL is a single `mov`.
//!
//! `examples/kernels/codegen-probe` exports four functions over
//! `paranoid::arch::{read32, write32}` and `Mmio`'s `RegisterIo::{read32,
//! write32}`. This module disassembles its release rlib for
//! `x86_64-unknown-none` with `objdump -d -M intel` and asserts:
//!
//! - `probe_read32` is exactly `mov eax,DWORD PTR [rdi]; ret`;
//! - `probe_write32` is exactly `mov DWORD PTR [rdi],esi; ret`;
//! - `probe_mmio_read32` / `probe_mmio_write32` (base, size, offset in
//!   registers) touch memory exactly once, with a 32-bit `mov`, and call
//!   nothing: the only other instructions are the bounds and alignment check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::kernels;

/// The probe crate's release rlib.
pub fn probe_rlib() -> PathBuf {
    kernels::release_dir().join("libparanoid_codegen_probe.rlib")
}

/// Disassembly by function: name → instructions (mnemonic and operands,
/// whitespace-normalized).
pub fn parse_objdump(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t
            .strip_suffix(">:")
            .and_then(|h| h.split_once(" <"))
            .map(|(_, n)| n)
        {
            current = Some(name.to_string());
            out.entry(name.to_string()).or_default();
            continue;
        }
        if t.is_empty() || t.starts_with("Disassembly of section") {
            if t.starts_with("Disassembly") {
                current = None;
            }
            continue;
        }
        let Some(name) = &current else { continue };
        // "19:\tmov    eax,DWORD PTR [rdi]" (with --no-show-raw-insn)
        let Some((addr, insn)) = t.split_once(':') else {
            continue;
        };
        if !addr.trim().chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let insn = insn.split_whitespace().collect::<Vec<_>>().join(" ");
        if !insn.is_empty() {
            if let Some(v) = out.get_mut(name) {
                v.push(insn);
            }
        }
    }
    out
}

fn touches_memory(insn: &str) -> bool {
    insn.contains('[')
}

/// Checks one function's instructions against the rules above.
///
/// # Errors
///
/// What is wrong, with the disassembly.
pub fn check_function(name: &str, insns: &[String]) -> Result<(), String> {
    let show = || format!("{name}: {}", insns.join("; "));
    match name {
        "probe_read32" => {
            if insns != ["mov eax,DWORD PTR [rdi]", "ret"] {
                return Err(format!(
                    "expected `mov eax,DWORD PTR [rdi]; ret`, got {}",
                    show()
                ));
            }
        }
        "probe_write32" => {
            if insns != ["mov DWORD PTR [rdi],esi", "ret"] {
                return Err(format!(
                    "expected `mov DWORD PTR [rdi],esi; ret`, got {}",
                    show()
                ));
            }
        }
        "probe_mmio_read32" | "probe_mmio_write32" => {
            let accesses: Vec<_> = insns.iter().filter(|i| touches_memory(i)).collect();
            let [access] = accesses.as_slice() else {
                return Err(format!(
                    "expected exactly one memory access, got {}",
                    show()
                ));
            };
            let ok = if name.ends_with("read32") {
                access.starts_with("mov e") && access.contains(",DWORD PTR [")
            } else {
                access.starts_with("mov DWORD PTR [")
            };
            if !ok {
                return Err(format!("the access is not a 32-bit mov: {}", show()));
            }
            if insns
                .iter()
                .any(|i| i.starts_with("call") || i.starts_with("jmp ") && !i.contains('<'))
            {
                return Err(format!("calls out: {}", show()));
            }
            if insns.len() > 16 || insns.last().map(String::as_str) != Some("ret") {
                return Err(format!(
                    "more than a bounds check around the mov: {}",
                    show()
                ));
            }
        }
        other => return Err(format!("unknown probe {other}")),
    }
    Ok(())
}

/// The names the check requires.
pub const PROBES: [&str; 4] = [
    "probe_read32",
    "probe_write32",
    "probe_mmio_read32",
    "probe_mmio_write32",
];

/// Disassembles `rlib` and checks every probe; returns one line per probe.
///
/// # Errors
///
/// `objdump` failing, a probe missing, or a probe with the wrong code.
pub fn check(rlib: &Path) -> Result<Vec<String>, String> {
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn", "-M", "intel"])
        .arg(rlib)
        .output()
        .map_err(|e| format!("objdump: {e} (install binutils)"))?;
    if !out.status.success() {
        return Err(format!(
            "objdump {} failed: {}",
            rlib.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let funcs = parse_objdump(&String::from_utf8_lossy(&out.stdout));
    let mut lines = Vec::new();
    for name in PROBES {
        let insns = funcs
            .get(name)
            .ok_or_else(|| format!("{name} not found in {}", rlib.display()))?;
        check_function(name, insns)?;
        lines.push(format!("{name:<20} {}", insns.join("; ")));
    }
    Ok(lines)
}

/// Builds the probe crate in release for the bare-metal target, then [`check`]s it.
///
/// # Errors
///
/// As [`check`], or the build failing.
pub fn build_and_check() -> Result<Vec<String>, String> {
    kernels::run(kernels::cargo_in_kernels(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "paranoid-codegen-probe",
    ]))?;
    check(&probe_rlib())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "
Disassembly of section .text.probe_mmio_read32:

0000000000000000 <probe_mmio_read32>:
   0:\ttest   dl,0x3
   3:\tjne    1c <probe_mmio_read32+0x1c>
   5:\tsub    rsi,rdx
   8:\tsetbe  al
   b:\tcmp    rsi,0x4
   f:\tsetb   cl
  12:\tor     cl,al
  14:\tjne    1c <probe_mmio_read32+0x1c>
  16:\tadd    rdi,rdx
  19:\tmov    eax,DWORD PTR [rdi]
  1b:\tret
  1c:\tmov    eax,0xffffffff
  21:\tret

Disassembly of section .text.probe_read32:

0000000000000000 <probe_read32>:
   0:\tmov    eax,DWORD PTR [rdi]
   2:\tret
";

    #[test]
    fn parses_and_accepts_single_movs() {
        let f = parse_objdump(SAMPLE);
        assert_eq!(f["probe_read32"], ["mov eax,DWORD PTR [rdi]", "ret"]);
        assert_eq!(f["probe_mmio_read32"].len(), 13);
        check_function("probe_read32", &f["probe_read32"]).unwrap();
        check_function("probe_mmio_read32", &f["probe_mmio_read32"]).unwrap();
    }

    #[test]
    fn rejects_split_or_extra_accesses() {
        let split: Vec<String> = [
            "movzx eax,WORD PTR [rdi]",
            "movzx ecx,WORD PTR [rdi+0x2]",
            "shl ecx,0x10",
            "or eax,ecx",
            "ret",
        ]
        .map(String::from)
        .to_vec();
        assert!(check_function("probe_read32", &split).is_err());
        assert!(check_function("probe_mmio_read32", &split).is_err());
        let via_call: Vec<String> = ["call 0 <read>", "mov eax,DWORD PTR [rdi]", "ret"]
            .map(String::from)
            .to_vec();
        assert!(check_function("probe_mmio_read32", &via_call).is_err());
        let byte: Vec<String> = ["mov al,BYTE PTR [rdi]", "ret"].map(String::from).to_vec();
        assert!(check_function("probe_mmio_read32", &byte).is_err());
    }
}
