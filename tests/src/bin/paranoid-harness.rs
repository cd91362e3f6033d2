//! The harness's command line, run by `cargo xtask` as a program (nothing
//! links the harness: it drives the kernels from the host).
//!
//! ```text
//! paranoid-harness demo                    the crash -> recovery demo
//! paranoid-harness qemu [SCENARIO...]      build the kernels, run scenarios
//! paranoid-harness prereqs                 QEMU, the target, rustfmt/clippy, objdump
//! paranoid-harness codegen                 the one-mov check
//! paranoid-harness kernels CARGO-ARGS...   cargo in the kernels workspace (target, flags set)
//! ```

use std::process::ExitCode;

use paranoid_harness::{kernels, show};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("", &[][..]),
    };
    let result = match cmd {
        "demo" => show::demo(),
        "qemu" => show::qemu(rest),
        "prereqs" => show::all_prereqs(),
        "codegen" => show::codegen(),
        "kernels" => {
            let args: Vec<&str> = rest.iter().map(String::as_str).collect();
            kernels::run(kernels::cargo_in_kernels(&args))
        }
        other => Err(format!("unknown command `{other}`: demo, qemu [SCENARIO...], prereqs, codegen, kernels ARGS...")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paranoid-harness: {e}");
            ExitCode::FAILURE
        }
    }
}
