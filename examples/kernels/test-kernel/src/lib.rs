//! Scenarios for the QEMU harness, selected with `-append test=NAME`.
//!
//! Each scenario checks something on QEMU's real (emulated) hardware through
//! the HAL, prints informational lines, then exactly one result line:
//!
//! ```text
//! PARANOID-RESULT test=NAME verdict=pass key=value ...
//! ```
//!
//! and the VM exits through `isa-debug-exit` with [`ExitCode::Success`] (QEMU
//! status 33) on pass, [`ExitCode::Failure`] (35) on fail. The harness
//! (`tests/`) requires both. Add a scenario: a module in `scenarios/`, a line in
//! [`scenarios::ALL`], a row in the harness table (`tests/src/scenarios.rs`).
#![no_std]
#![deny(missing_docs)]
// A failure carries its result line in a fixed 1 KiB buffer (no allocator);
// moving it once on the way out of a scenario costs nothing that matters.
#![expect(
    clippy::result_large_err,
    reason = "InitFailure carries the fixed-size init trace and the driver back (paranoid::init has no heap)"
)]

/// For [`scenario_kernel!`]: `paranoid-boot` by a path the expansion can name.
#[doc(hidden)]
pub use paranoid_boot as __boot;
pub use paranoid_boot::platform;
pub mod dispatch;
pub mod identity;
pub mod report;
pub mod scenarios;

use paranoid_boot::{println, BootInfo, ExitCode};

/// The kernel's `main`: dispatches on `test=NAME`.
pub fn main(boot: &'static BootInfo) -> ExitCode {
    let cmdline = boot.cmdline();
    let Some(name) = cmdline.get("test") else {
        let mut fields = report::Fields::new();
        fields.add("reason", "no-test-on-cmdline");
        return paranoid_boot::result::finish(
            "none",
            paranoid_boot::result::Verdict::Fail,
            &fields,
        );
    };
    if dispatch::find(scenarios::ALL, name).is_some() {
        println!(
            "PARANOID-BOOT test={name} kernel={:#x}..{:#x} tsc_khz={}",
            boot.kernel_image().start,
            boot.kernel_image().end,
            boot.clock().khz()
        );
    }
    dispatch::run(boot, scenarios::ALL, name)
}
