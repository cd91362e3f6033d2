//! Result lines: `PARANOID-RESULT test=NAME verdict=pass|fail key=value ...`.

use core::fmt;

use paranoid_boot::result::{self, Verdict};
use paranoid_boot::ExitCode;

/// Capacity of a result line's key=value part.
pub const LINE_CAPACITY: usize = result::CAPACITY;

/// Key=value pairs of a result line, in a fixed buffer (no allocator): the
/// boot crate's result-line writer.
///
/// Values containing spaces are quoted; a pair that does not fit is dropped
/// and the line ends with `truncated=1`.
pub use paranoid_boot::result::Fields;

/// A failed scenario: why, plus whatever was measured before.
pub struct Failure {
    /// Pairs gathered so far, ending with `reason=...`.
    pub fields: Fields,
}

/// What a scenario returns: its pairs on pass, or a failure.
pub type Outcome = Result<Fields, Failure>;

/// Ends `fields` with `reason=...` and returns the failure.
pub fn fail(mut fields: Fields, reason: impl fmt::Display) -> Failure {
    fields.add("reason", reason);
    Failure { fields }
}

/// Fails the scenario with `reason` unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($fields:expr, $cond:expr, $($reason:tt)+) => {
        if !$cond {
            return Err($crate::report::fail($fields, format_args!($($reason)+)));
        }
    };
}

/// Unwraps a `Result`, failing the scenario with the error otherwise.
#[macro_export]
macro_rules! check {
    ($fields:expr, $result:expr, $what:literal) => {
        match $result {
            Ok(v) => v,
            Err(e) => {
                return Err($crate::report::fail(
                    $fields,
                    format_args!(concat!($what, ": {:?}"), e),
                ))
            }
        }
    };
}

/// Prints the result line and picks the exit code.
pub fn finish(test: &str, outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(fields) => result::finish(test, Verdict::Pass, &fields),
        Err(Failure { fields }) => result::finish(test, Verdict::Fail, &fields),
    }
}
