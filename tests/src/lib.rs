//! The QEMU end-to-end harness.
//!
//! Builds the bare-metal kernels in `examples/kernels/` for
//! `x86_64-unknown-none`, boots each [`Scenario`] under QEMU (q35, TCG,
//! intel-iommu, e1000, NVMe, `isa-debug-exit`, PVH `-kernel`), and passes a run
//! only when QEMU exits with the expected debug-exit status **and** serial shows
//! the scenario's `PARANOID-RESULT test=NAME verdict=pass` line (a triple fault
//! under `-no-reboot` exits 0 and prints nothing, so neither alone is proof),
//! within the scenario's timeout, and the scenario's host-side check agrees.
//!
//! Every run keeps its files under `tests/out/<scenario>/`: `serial.log`,
//! `qemu.stderr`, the NVMe disk image and `command.txt` (the exact QEMU command
//! line, to rerun by hand).
//!
//! - [`scenarios::all`]: the scenario table (add yours there; see `tests/README.md`);
//! - [`kernels::build`]: `cargo build --release` of the kernels workspace;
//! - [`qemu`]: prerequisites, the QEMU command line, one run;
//! - [`runner::run_all`]: runs scenarios in parallel, [`summary`] prints the table;
//! - [`bench`](mod@bench): `cargo xtask dump-bench`, the dump against the raw writer and the codecs;
//! - [`codegen`]: the "one `mov` per register access" check on the release build.
#![deny(missing_docs)]

pub mod bench;
pub mod codegen;
pub mod demo;
pub mod kernels;
pub mod machine;
pub mod prereqs;
pub mod qemu;
pub mod result_line;
pub mod runner;
pub mod scenario;
pub mod scenarios;
pub mod show;
pub mod summary;

use std::path::PathBuf;

pub use runner::{run_all, RunReport, Verdict};
pub use scenario::{RunOutput, Scenario};

/// The repository root (the directory holding the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// Where runs keep their files: `tests/out/`.
pub fn out_dir() -> PathBuf {
    repo_root().join("tests").join("out")
}
