//! Parsing `PARANOID-RESULT test=NAME verdict=pass key=value key="a b" ...`.

/// The marker that starts a result line.
pub const MARKER: &str = "PARANOID-RESULT";
/// The marker of a kernel panic line.
pub const PANIC_MARKER: &str = "PARANOID-PANIC";

/// A parsed result line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine {
    /// All key=value pairs in order (`test` and `verdict` included).
    pub fields: Vec<(String, String)>,
}

impl ResultLine {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `test=` field.
    pub fn test(&self) -> Option<&str> {
        self.get("test")
    }

    /// True for `verdict=pass`.
    pub fn passed(&self) -> bool {
        self.get("verdict") == Some("pass")
    }
}

/// Splits `key=value key="quoted value"` into pairs; a bare word has an empty value.
pub fn parse_pairs(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let key_end = rest.find(['=', ' ']).unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let value = if let Some(after_eq) = rest.strip_prefix('=') {
            if let Some(quoted) = after_eq.strip_prefix('"') {
                let end = quoted.find('"').unwrap_or(quoted.len());
                rest = quoted.get(end + 1..).unwrap_or("");
                &quoted[..end]
            } else {
                let end = after_eq.find(' ').unwrap_or(after_eq.len());
                rest = &after_eq[end..];
                &after_eq[..end]
            }
        } else {
            ""
        };
        if !key.is_empty() {
            out.push((key.to_string(), value.to_string()));
        }
        rest = rest.trim_start();
    }
    out
}

/// Parses one line, if it is a result line.
pub fn parse(line: &str) -> Option<ResultLine> {
    let line = line.trim_end_matches(['\r', '\n']);
    let start = line.find(MARKER)?;
    let rest = line[start + MARKER.len()..].strip_prefix(' ')?;
    Some(ResultLine {
        fields: parse_pairs(rest),
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
    fn finds_panics() {
        assert_eq!(
            panic_message("a\nPARANOID-PANIC panicked at src/x.rs:1:1:\nboom\n").as_deref(),
            Some("panicked at src/x.rs:1:1:")
        );
        assert_eq!(panic_message("fine"), None);
    }
}
