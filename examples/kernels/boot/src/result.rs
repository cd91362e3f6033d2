//! The result line every kernel ends its run with:
//! `PARANOID-RESULT test=NAME verdict=pass|fail key=value ...` on the serial
//! port, in the format of `paranoid-result-line` (the harness in `tests/`
//! parses it with the same crate).
//!
//! A kernel gathers its pairs in [`Fields`] (a fixed buffer, no allocator)
//! and prints the line once, with [`finish`] (which also picks the exit code)
//! or [`print`].

use paranoid_result_line::Record;
pub use paranoid_result_line::{Text, Verdict};

use crate::{println, ExitCode};

/// Bytes of a result line's pairs (after `test=` and `verdict=`).
pub const CAPACITY: usize = 1024;

/// The pairs of a result line: `key=value`, quoted when the value has spaces
/// (see [`paranoid_result_line::Fields`] for the rules; a pair that does not
/// fit is dropped and the line ends with `truncated=1`).
pub type Fields = paranoid_result_line::Fields<CAPACITY>;

/// Prints the result line of `test`.
pub fn print(test: &str, verdict: Verdict, fields: &Fields) {
    println!(
        "{}",
        Record {
            test,
            verdict,
            fields
        }
    );
}

/// Prints the result line of `test` and returns the exit code its verdict
/// calls for.
pub fn finish(test: &str, verdict: Verdict, fields: &Fields) -> ExitCode {
    print(test, verdict, fields);
    match verdict {
        Verdict::Pass => ExitCode::Success,
        Verdict::Fail => ExitCode::Failure,
    }
}
