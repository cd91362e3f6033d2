//! The harness's command line, run by `cargo xtask` as a program (nothing
//! links the harness: it drives the kernels from the host).
//!
//! ```text
//! paranoid-harness demo [MACHINE]          the crash -> recovery demo
//! paranoid-harness qemu [MACHINE] [SCENARIO...]
//!                                          build the kernels, run scenarios
//! paranoid-harness machines                the machine profiles
//! paranoid-harness dump-bench [--rounds N] [--codecs|--throughput]
//!                                          the dump against the raw writer, the codecs
//!
//! MACHINE: --machine NAME, --machine-file FILE, --machine-args 'QEMU ARGS'.
//! paranoid-harness prereqs                 QEMU, the target, rustfmt/clippy, objdump
//! paranoid-harness codegen                 the one-mov check
//! paranoid-harness kernels CARGO-ARGS...   cargo in the kernels workspace (target, flags set)
//! ```

use std::process::ExitCode;

use paranoid_harness::{kernels, machine, show};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("", &[][..]),
    };
    let result = match cmd {
        "demo" => machine_options(rest).and_then(|(m, rest)| {
            if rest.is_empty() {
                show::demo(m.as_ref())
            } else {
                Err(format!("demo takes no scenario names: {rest:?}"))
            }
        }),
        "qemu" => machine_options(rest).and_then(|(m, rest)| show::qemu(&rest, m.as_ref())),
        "machines" => show::machines(),
        "dump-bench" => paranoid_harness::bench::run(rest),
        "prereqs" => show::all_prereqs(),
        "codegen" => show::codegen(),
        "kernels" => {
            let args: Vec<&str> = rest.iter().map(String::as_str).collect();
            kernels::run(kernels::cargo_in_kernels(&args))
        }
        other => Err(format!("unknown command `{other}`: demo, qemu [SCENARIO...], machines, dump-bench, prereqs, codegen, kernels ARGS...")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paranoid-harness: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Takes `--machine NAME`, `--machine-file FILE` and `--machine-args 'ARGS'`
/// out of `args`: the machine they select (`None` when none was given) and
/// the remaining words.
fn machine_options(args: &[String]) -> Result<(Option<machine::Machine>, Vec<String>), String> {
    let (mut name, mut file, mut extra, mut rest) = (None, None, Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match a.as_str() {
            "--machine" => name = Some(value("--machine")?),
            "--machine-file" => file = Some(std::path::PathBuf::from(value("--machine-file")?)),
            "--machine-args" => extra.extend(machine::split_args(&value("--machine-args")?)),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            word => rest.push(word.to_string()),
        }
    }
    if name.is_none() && file.is_none() && extra.is_empty() {
        return Ok((None, rest));
    }
    let m = machine::select(name.as_deref(), file.as_deref(), &extra)?;
    Ok((Some(m), rest))
}
