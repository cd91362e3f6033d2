//! Parsing `PARANOID-RESULT test=NAME verdict=pass key=value key="a b" ...`.
//!
//! The format is `paranoid-result-line`'s (the kernels write it with the same
//! crate); this module keeps the harness's owned, lenient view of a line: a
//! run's log is judged even when its line is cut short (the verdict decides),
//! and [`ResultLine::check`] gives the strict reading with its typed error.

pub use paranoid_result_line::{LogError, ParseError, ValueError, MARKER, PANIC_MARKER};

/// A parsed result line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine {
    /// All key=value pairs in order (`test` and `verdict` included).
    pub fields: Vec<(String, String)>,
    /// The text after the marker, as printed.
    pub raw: String,
}

impl ResultLine {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` as a `T`: a typed error when it is missing or does
    /// not parse.
    pub fn value<'a, T: std::str::FromStr>(&'a self, key: &'a str) -> Result<T, ValueError<'a>> {
        let value = self.get(key).ok_or(ValueError::Missing { key })?;
        value.parse().map_err(|_| ValueError::Bad { key, value })
    }

    /// The `test=` field.
    pub fn test(&self) -> Option<&str> {
        self.get("test")
    }

    /// True for `verdict=pass`.
    pub fn passed(&self) -> bool {
        self.get("verdict") == Some("pass")
    }

    /// The strict reading of the line (cut short, truncated by the kernel, no
    /// test or verdict, a key twice: each a [`ParseError`]).
    pub fn check(&self) -> Result<(), String> {
        let line = format!("{MARKER} {}", self.raw);
        paranoid_result_line::parse(&line)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Splits `key=value key="quoted value"` into pairs; a bare word has an empty value.
pub fn parse_pairs(s: &str) -> Vec<(String, String)> {
    paranoid_result_line::pairs(s)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Parses one line, if it is a result line.
pub fn parse(line: &str) -> Option<ResultLine> {
    let rest = paranoid_result_line::body(line)?;
    Some(ResultLine {
        fields: parse_pairs(rest),
        raw: rest.to_string(),
    })
}

/// Every result line in a serial log, in order.
pub fn all(serial: &str) -> Vec<ResultLine> {
    serial.lines().filter_map(parse).collect()
}

/// The last result line for `test`.
pub fn find(serial: &str, test: &str) -> Option<ResultLine> {
    all(serial)
        .into_iter()
        .rev()
        .find(|r| r.test() == Some(test))
}

/// The first panic line's message, if the kernel panicked.
pub fn panic_message(serial: &str) -> Option<String> {
    serial.lines().find_map(|l| {
        let at = l.find(PANIC_MARKER)?;
        Some(l[at + PANIC_MARKER.len()..].trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_with_quotes_and_bare_words() {
        let r = parse(
            "noise PARANOID-RESULT test=boot verdict=pass cmdline=\"test=boot x=1\" flag n=3\r",
        )
        .unwrap();
        assert_eq!(r.test(), Some("boot"));
        assert!(r.passed());
        assert_eq!(r.get("cmdline"), Some("test=boot x=1"));
        assert_eq!(r.get("flag"), Some(""));
        assert_eq!(r.get("n"), Some("3"));
    }

    #[test]
    fn rejects_non_result_lines_and_finds_the_last_one() {
        assert!(parse("PARANOID-RESULTS test=x").is_none());
        assert!(parse("hello").is_none());
        let log = "PARANOID-RESULT test=a verdict=fail\nPARANOID-RESULT test=b verdict=pass\nPARANOID-RESULT test=a verdict=pass\n";
        assert!(find(log, "a").unwrap().passed());
        assert!(find(log, "c").is_none());
        assert_eq!(all(log).len(), 3);
    }

    #[test]
    fn unterminated_quote_takes_the_rest() {
        let r = parse("PARANOID-RESULT test=x reason=\"oops").unwrap();
        assert_eq!(r.get("reason"), Some("oops"));
        assert!(!r.passed());
    }

    #[test]
    fn strict_reading_and_typed_values() {
        let r = parse("PARANOID-RESULT test=x verdict=pass n=7 m=x1").unwrap();
        assert_eq!(r.check(), Ok(()));
        assert_eq!(r.value::<u64>("n"), Ok(7));
        assert_eq!(
            r.value::<u64>("m"),
            Err(ValueError::Bad {
                key: "m",
                value: "x1"
            })
        );
        assert_eq!(r.value::<u64>("k"), Err(ValueError::Missing { key: "k" }));
        let cut = parse("PARANOID-RESULT test=x verdict=fail reason=\"oops").unwrap();
        assert!(cut.check().unwrap_err().contains("never closed"));
        let full = parse("PARANOID-RESULT test=x verdict=pass a=1 truncated=1").unwrap();
        assert!(full.check().unwrap_err().contains("truncated"));
    }

    #[test]
    fn finds_panics() {
        assert_eq!(
            panic_message("a\nPARANOID-PANIC panicked at src/x.rs:1:1:\nboom\n").as_deref(),
            Some("panicked at src/x.rs:1:1:")
        );
        assert_eq!(panic_message("fine"), None);
    }
}
