//! Dispatch by `test=NAME`: a kernel's scenario table, the scenario the command
//! line names, its result line and exit code.
//!
//! Every test kernel (this one, `nvme-test`, `e1000-test`, `vtd-test`) lists
//! its scenarios in a `&[Scenario]` and hands it to [`main`] or [`run`].

use paranoid_boot::{BootInfo, ExitCode};

use crate::report::{self, fail, Fields, Outcome};

/// A named check the harness selects with `test=NAME`.
pub struct Scenario {
    /// The name on the command line and in the result line.
    pub name: &'static str,
    /// Runs the checks.
    pub run: fn(&'static BootInfo) -> Outcome,
}

impl Scenario {
    /// The scenario `name`, checked by `run`.
    pub const fn new(name: &'static str, run: fn(&'static BootInfo) -> Outcome) -> Self {
        Self { name, run }
    }
}

/// The scenario of `all` called `name`.
pub fn find<'a>(all: &'a [Scenario], name: &str) -> Option<&'a Scenario> {
    all.iter().find(|s| s.name == name)
}

/// Runs the scenario of `all` called `name` and prints its result line; a name
/// `all` does not know fails with `reason=unknown-scenario`.
pub fn run(boot: &'static BootInfo, all: &[Scenario], name: &str) -> ExitCode {
    let outcome = match find(all, name) {
        Some(scenario) => (scenario.run)(boot),
        None => Err(fail(Fields::new(), "unknown-scenario")),
    };
    report::finish(name, outcome)
}

/// A device test kernel's `main`: runs the scenario `test=NAME` names (`none`
/// when the command line has no `test=`, which fails as unknown).
pub fn main(boot: &'static BootInfo, all: &[Scenario]) -> ExitCode {
    let name = boot.cmdline().get("test").unwrap_or("none");
    run(boot, all, name)
}

/// The entry point of a device test kernel: its scenario table and a `main`
/// that dispatches on `test=NAME` through [`main`].
///
/// ```ignore
/// paranoid_test_kernel::scenario_kernel! {
///     "nvme-init" => scenario::init,
///     "e1000-pair" => |boot| scenario::pair(boot, false),
/// }
/// ```
#[macro_export]
macro_rules! scenario_kernel {
    ($($name:literal => $run:expr),+ $(,)?) => {
        /// The scenarios, by the `test=NAME` that selects them.
        // Closures here return an `Outcome`, whose failure carries its result
        // line in a fixed buffer (no allocator).
        #[expect(clippy::result_large_err, reason = "InitFailure carries the fixed-size init trace and the driver back (paranoid::init has no heap)")]
        static SCENARIOS: &[$crate::dispatch::Scenario] =
            &[$($crate::dispatch::Scenario::new($name, $run)),+];

        /// Runs the scenario the command line names.
        fn scenario_main(
            boot: &'static $crate::__boot::BootInfo,
        ) -> $crate::__boot::ExitCode {
            $crate::dispatch::main(boot, SCENARIOS)
        }

        $crate::__boot::entry!(scenario_main);
    };
}
