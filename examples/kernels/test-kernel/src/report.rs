//! Result lines: `PARANOID-RESULT test=NAME verdict=pass|fail key=value ...`.

use core::fmt::{self, Write};

use paranoid_boot::{println, ExitCode};

/// Capacity of a result line's key=value part.
pub const LINE_CAPACITY: usize = 1024;

/// Key=value pairs of a result line, in a fixed buffer (no allocator).
///
/// Values containing spaces are quoted; a pair that does not fit is dropped
/// and the line ends with `truncated=1`.
pub struct Fields {
    buf: [u8; LINE_CAPACITY],
    len: usize,
    truncated: bool,
}

impl Default for Fields {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes into a slice, failing when full.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Renders a value into a small buffer to see whether it needs quotes.
struct Probe {
    buf: [u8; 256],
    len: usize,
    overflow: bool,
}

impl Write for Probe {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = b;
                    self.len += 1;
                }
                None => self.overflow = true,
            }
        }
        Ok(())
    }
}

impl Fields {
    /// No pairs yet.
    pub const fn new() -> Self {
        Self {
            buf: [0; LINE_CAPACITY],
            len: 0,
            truncated: false,
        }
    }

    /// Appends `key=value` (quoted when the value has spaces, `"` become `'`).
    pub fn add(&mut self, key: &str, value: impl fmt::Display) -> &mut Self {
        let mut probe = Probe {
            buf: [0; 256],
            len: 0,
            overflow: false,
        };
        let _ = write!(probe, "{value}");
        let text = core::str::from_utf8(probe.buf.get(..probe.len).unwrap_or(&[])).unwrap_or("?");
        let quote = text.contains(' ') || text.is_empty();
        let start = self.len;
        let mut w = SliceWriter {
            buf: &mut self.buf,
            len: start,
        };
        let ok = (|| -> fmt::Result {
            if start != 0 {
                w.write_char(' ')?;
            }
            w.write_str(key)?;
            w.write_char('=')?;
            if quote {
                w.write_char('"')?;
            }
            for c in text.chars() {
                w.write_char(if c == '"' { '\'' } else { c })?;
            }
            if probe.overflow {
                w.write_str("...")?;
            }
            if quote {
                w.write_char('"')?;
            }
            Ok(())
        })();
        match ok {
            Ok(()) => self.len = w.len,
            Err(_) => self.truncated = true,
        }
        self
    }

    /// The pairs as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str(" truncated=1")?;
        }
        Ok(())
    }
}

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
        Ok(fields) => {
            println!("PARANOID-RESULT test={test} verdict=pass {fields}");
            ExitCode::Success
        }
        Err(Failure { fields }) => {
            println!("PARANOID-RESULT test={test} verdict=fail {fields}");
            ExitCode::Failure
        }
    }
}
