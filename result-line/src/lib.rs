//! The result line: how a paranoid kernel says how its run ended, and how the
//! harness reads it back from the serial log.
//!
//! ```text
//! PARANOID-RESULT test=NAME verdict=pass|fail key=value key="a b" flag ...
//! ```
//!
//! One schema for both ends: the kernels build the line with [`Fields`] and
//! print it as a [`Record`] (fixed capacity, no allocator), the harness reads
//! it with [`parse`] (one line) or [`single`] (a whole serial log), and every
//! way a line can be wrong is a typed [`ParseError`], [`LogError`] or
//! [`ValueError`].
//!
//! The format:
//! - the marker [`MARKER`], one space, then space-separated pairs;
//! - a pair is `key=value`, `key="quoted value"` (ends at the next `"`; there
//!   is no escape, so the writer turns `"` inside a value into `'`), or a bare
//!   `key` (its value is empty);
//! - `test` and `verdict` (`pass` or `fail`) are required, each once;
//! - `truncated=1` says the writer dropped pairs that did not fit.
//!
//! ```
//! use paranoid_result_line::{parse, Fields, Record, Verdict};
//!
//! let mut fields = Fields::<128>::new();
//! fields.add("n", 3).add("reason", "disk full").quoted("step", "dump");
//! # use core::fmt::Write;
//! let mut text = paranoid_result_line::Text::<256>::new();
//! write!(text, "{}", Record { test: "boot", verdict: Verdict::Fail, fields: &fields }).unwrap();
//! assert_eq!(text.as_str(), "PARANOID-RESULT test=boot verdict=fail n=3 reason=\"disk full\" step=\"dump\"");
//!
//! let parsed = parse(text.as_str()).unwrap();
//! assert_eq!(parsed.test(), "boot");
//! assert_eq!(parsed.verdict(), Verdict::Fail);
//! assert_eq!(parsed.value::<u32>("n"), Ok(3));
//! assert_eq!(parsed.get("reason"), Some("disk full"));
//! ```
#![no_std]
#![deny(missing_docs)]

use core::fmt::{self, Write};
use core::str::FromStr;

/// The marker that starts a result line.
pub const MARKER: &str = "PARANOID-RESULT";
/// The marker of a kernel panic line.
pub const PANIC_MARKER: &str = "PARANOID-PANIC";
/// The pair the writer appends when pairs were dropped.
pub const TRUNCATED: &str = "truncated";
/// Bytes of one value the writer keeps; a longer value is cut and ends with
/// `...`.
pub const MAX_VALUE: usize = 256;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `verdict=pass`.
    Pass,
    /// `verdict=fail`.
    Fail,
}

impl Verdict {
    /// The value on the line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
        }
    }

    /// `Pass` when `ok`.
    pub const fn from_ok(ok: bool) -> Self {
        if ok {
            Self::Pass
        } else {
            Self::Fail
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text in a fixed buffer of `N` bytes: a `fmt::Write` whose write that does
/// not fit fails and writes nothing, so a cut-off text is never mistaken for a
/// whole one.
#[derive(Clone, Copy)]
pub struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    /// Empty.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..self.len).unwrap_or(&[]);
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            // A character cut at the end of a full buffer: keep the valid part.
            Err(e) => {
                core::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or("")
            }
        }
    }

    /// Bytes written.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was written.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> Write for Text<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Renders a value into [`MAX_VALUE`] bytes, noting whether it was longer.
struct Probe {
    text: Text<MAX_VALUE>,
    overflow: bool,
}

impl Write for Probe {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.overflow || self.text.write_char(c).is_err() {
                self.overflow = true;
            }
        }
        Ok(())
    }
}

/// True for a key the parser reads back as written: not empty, no space, `=`
/// or `"`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && !key.contains([' ', '=', '"', '\r', '\n'])
}

/// The pairs of a result line, built in a fixed buffer of `N` bytes (no
/// allocator).
///
/// [`add`](Self::add) quotes a value that has spaces or is empty,
/// [`quoted`](Self::quoted) always quotes; `"` inside a value becomes `'` and
/// line breaks become spaces, a value longer than [`MAX_VALUE`] bytes is cut
/// and ends with `...`. A pair that does not fit, whose key is not
/// [`valid_key`], or whose key is already on the line (the parser rejects a
/// key twice) is dropped and the line ends with `truncated=1`.
pub struct Fields<const N: usize> {
    text: Text<N>,
    truncated: bool,
    prefix: &'static str,
}

impl<const N: usize> Default for Fields<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Fields<N> {
    /// No pairs yet.
    pub const fn new() -> Self {
        Self {
            text: Text::new(),
            truncated: false,
            prefix: "",
        }
    }

    /// Writes every later key as `prefix` followed by the key (`""`: as given).
    /// A step that runs twice on one line (a second bring-up after a handoff)
    /// reports its second run under other keys, since a key may appear once.
    pub fn set_prefix(&mut self, prefix: &'static str) -> &mut Self {
        self.prefix = prefix;
        self
    }

    /// Appends `key=value`, quoted when the value has spaces or is empty.
    pub fn add(&mut self, key: &str, value: impl fmt::Display) -> &mut Self {
        self.push(key, value, false)
    }

    /// Appends `key="value"`, quoted whatever the value.
    pub fn quoted(&mut self, key: &str, value: impl fmt::Display) -> &mut Self {
        self.push(key, value, true)
    }

    fn push(&mut self, key: &str, value: impl fmt::Display, always_quote: bool) -> &mut Self {
        let prefix = self.prefix;
        let is_this_key = |k: &str| {
            k.len() == prefix.len() + key.len() && k.starts_with(prefix) && k.ends_with(key)
        };
        if !valid_key(key)
            || !(prefix.is_empty() || valid_key(prefix))
            || pairs(self.text.as_str()).any(|(k, _)| is_this_key(k))
        {
            self.truncated = true;
            return self;
        }
        let mut probe = Probe {
            text: Text::new(),
            overflow: false,
        };
        let _ = write!(probe, "{value}");
        let value = probe.text.as_str();
        let quote = always_quote || value.is_empty() || value.contains([' ', '\r', '\n']);
        let start = self.text.len;
        let w = &mut self.text;
        let written = (|| -> fmt::Result {
            if start != 0 {
                w.write_char(' ')?;
            }
            w.write_str(prefix)?;
            w.write_str(key)?;
            w.write_char('=')?;
            if quote {
                w.write_char('"')?;
            }
            for c in value.chars() {
                w.write_char(match c {
                    '"' => '\'',
                    '\r' | '\n' => ' ',
                    c => c,
                })?;
            }
            if probe.overflow {
                w.write_str("...")?;
            }
            if quote {
                w.write_char('"')?;
            }
            Ok(())
        })();
        if written.is_err() {
            self.text.len = start;
            self.truncated = true;
        }
        self
    }

    /// The pairs as text (without the `truncated=1` mark).
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    /// True when a pair was dropped.
    pub const fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// True when no pair was written (or kept).
    pub const fn is_empty(&self) -> bool {
        self.text.is_empty() && !self.truncated
    }
}

impl<const N: usize> fmt::Display for Fields<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            if !self.text.is_empty() {
                f.write_char(' ')?;
            }
            write!(f, "{TRUNCATED}=1")?;
        }
        Ok(())
    }
}

/// A whole result line: `PARANOID-RESULT test=… verdict=… pairs…` (no line
/// break; the kernel's `println!` adds it).
pub struct Record<'a, const N: usize> {
    /// The `test=` value.
    pub test: &'a str,
    /// The verdict.
    pub verdict: Verdict,
    /// The other pairs.
    pub fields: &'a Fields<N>,
}

impl<const N: usize> fmt::Display for Record<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MARKER} test={} verdict={}", self.test, self.verdict)?;
        if !self.fields.is_empty() {
            write!(f, " {}", self.fields)?;
        }
        Ok(())
    }
}

/// What follows the marker on a result line (`None`: not a result line).
///
/// The marker may follow other text (a kernel's output interleaved on the
/// serial port) and must be followed by a space.
pub fn body(line: &str) -> Option<&str> {
    let line = line.trim_end_matches(['\r', '\n']);
    let start = line.find(MARKER)?;
    line.get(start + MARKER.len()..)?.strip_prefix(' ')
}

/// The pairs of `s` in order, read leniently: a quote that is never closed
/// takes the rest of the text (and [`Pairs::cut_short`] says so), a bare word
/// has an empty value.
pub fn pairs(s: &str) -> Pairs<'_> {
    Pairs {
        rest: s,
        cut_short: false,
    }
}

/// Iterator over `(key, value)` pairs; see [`pairs`].
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    rest: &'a str,
    cut_short: bool,
}

impl Pairs<'_> {
    /// True once a pair with an unterminated quote was read.
    pub const fn cut_short(&self) -> bool {
        self.cut_short
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.rest.trim_start();
            if rest.is_empty() {
                self.rest = rest;
                return None;
            }
            let key_end = rest.find(['=', ' ']).unwrap_or(rest.len());
            let (key, mut rest) = rest.split_at(key_end);
            let value = if let Some(after_eq) = rest.strip_prefix('=') {
                if let Some(quoted) = after_eq.strip_prefix('"') {
                    match quoted.find('"') {
                        Some(end) => {
                            rest = quoted.get(end + 1..).unwrap_or("");
                            quoted.get(..end).unwrap_or("")
                        }
                        None => {
                            self.cut_short = true;
                            rest = "";
                            quoted
                        }
                    }
                } else {
                    let end = after_eq.find(' ').unwrap_or(after_eq.len());
                    let (value, after) = after_eq.split_at(end);
                    rest = after;
                    value
                }
            } else {
                ""
            };
            self.rest = rest;
            if !key.is_empty() {
                return Some((key, value));
            }
        }
    }
}

/// Why a line is not a well-formed result line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// No [`MARKER`] followed by a space.
    NotAResultLine,
    /// A quoted value is never closed: the line was cut short.
    Unterminated {
        /// The pair's key.
        key: &'a str,
    },
    /// The writer dropped pairs that did not fit (`truncated=1`).
    Truncated,
    /// No `test=` pair, or an empty one.
    MissingTest,
    /// No `verdict=` pair.
    MissingVerdict,
    /// `verdict=` is neither `pass` nor `fail`.
    BadVerdict {
        /// What it says.
        value: &'a str,
    },
    /// A key appears twice.
    Duplicate {
        /// The key.
        key: &'a str,
    },
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAResultLine => write!(f, "not a result line (no `{MARKER} `)"),
            Self::Unterminated { key } => {
                write!(
                    f,
                    "the quoted value of `{key}` is never closed (line cut short)"
                )
            }
            Self::Truncated => write!(f, "the kernel dropped pairs that did not fit (truncated=1)"),
            Self::MissingTest => write!(f, "no test= pair"),
            Self::MissingVerdict => write!(f, "no verdict= pair"),
            Self::BadVerdict { value } => write!(f, "verdict={value:?} is neither pass nor fail"),
            Self::Duplicate { key } => write!(f, "`{key}` appears twice"),
        }
    }
}

/// Why a value cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueError<'a> {
    /// The line has no such key.
    Missing {
        /// The key asked for.
        key: &'a str,
    },
    /// The value does not parse as the type asked for.
    Bad {
        /// The key.
        key: &'a str,
        /// Its value.
        value: &'a str,
    },
}

impl fmt::Display for ValueError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { key } => write!(f, "no {key}= on the result line"),
            Self::Bad { key, value } => write!(f, "{key}={value:?} is not a valid value"),
        }
    }
}

/// A well-formed result line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    body: &'a str,
    test: &'a str,
    verdict: Verdict,
}

impl<'a> Line<'a> {
    /// The `test=` value.
    pub const fn test(&self) -> &'a str {
        self.test
    }

    /// The verdict.
    pub const fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// True for `verdict=pass`.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }

    /// Every pair in order (`test` and `verdict` included).
    pub fn pairs(&self) -> Pairs<'a> {
        pairs(self.body)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The value of `key` as a `T`.
    ///
    /// # Errors
    ///
    /// [`ValueError::Missing`] without the key, [`ValueError::Bad`] when the
    /// value does not parse.
    pub fn value<T: FromStr>(&self, key: &'a str) -> Result<T, ValueError<'a>> {
        let value = self.get(key).ok_or(ValueError::Missing { key })?;
        value.parse().map_err(|_| ValueError::Bad { key, value })
    }
}

/// Parses one line strictly.
///
/// # Errors
///
/// Every [`ParseError`]: not a result line, cut short, truncated by the
/// writer, no test, no or a bad verdict, a key twice.
pub fn parse(line: &str) -> Result<Line<'_>, ParseError<'_>> {
    let body = body(line).ok_or(ParseError::NotAResultLine)?;
    let mut test = None;
    let mut verdict = None;
    let mut it = pairs(body);
    let mut seen = 0usize;
    while let Some((key, value)) = it.next() {
        if it.cut_short() {
            return Err(ParseError::Unterminated { key });
        }
        // A key twice: compare with every earlier pair (lines are short).
        if pairs(body).take(seen).any(|(k, _)| k == key) {
            return Err(ParseError::Duplicate { key });
        }
        seen += 1;
        match key {
            "test" => test = Some(value),
            "verdict" => verdict = Some(value),
            TRUNCATED => return Err(ParseError::Truncated),
            _ => {}
        }
    }
    let test = test
        .filter(|t| !t.is_empty())
        .ok_or(ParseError::MissingTest)?;
    let verdict = match verdict.ok_or(ParseError::MissingVerdict)? {
        "pass" => Verdict::Pass,
        "fail" => Verdict::Fail,
        value => return Err(ParseError::BadVerdict { value }),
    };
    Ok(Line {
        body,
        test,
        verdict,
    })
}

/// Why a serial log does not hold exactly one good result line for a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogError<'a> {
    /// No result line at all.
    Missing,
    /// More than one result line (a `fail` then a `pass` is not a pass).
    Several {
        /// How many.
        count: usize,
    },
    /// The one result line is malformed.
    Malformed(ParseError<'a>),
    /// The one result line is another test's.
    OtherTest {
        /// Its `test=` value.
        found: &'a str,
    },
}

impl fmt::Display for LogError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "no result line in the serial log"),
            Self::Several { count } => {
                write!(
                    f,
                    "{count} result lines in the serial log; exactly one expected"
                )
            }
            Self::Malformed(e) => write!(f, "malformed result line: {e}"),
            Self::OtherTest { found } => write!(f, "the result line is test={found}'s"),
        }
    }
}

/// The one result line of `log`, which must be `test`'s.
///
/// # Errors
///
/// [`LogError::Missing`], [`LogError::Several`], [`LogError::Malformed`],
/// [`LogError::OtherTest`].
pub fn single<'a>(log: &'a str, test: &str) -> Result<Line<'a>, LogError<'a>> {
    let mut lines = log.lines().filter(|l| body(l).is_some());
    let first = lines.next().ok_or(LogError::Missing)?;
    let more = lines.count();
    if more > 0 {
        return Err(LogError::Several { count: more + 1 });
    }
    let line = parse(first).map_err(LogError::Malformed)?;
    if line.test() != test {
        return Err(LogError::OtherTest { found: line.test() });
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render<const N: usize>(test: &str, verdict: Verdict, fields: &Fields<N>) -> Text<2048> {
        let mut t = Text::new();
        write!(
            t,
            "{}",
            Record {
                test,
                verdict,
                fields
            }
        )
        .unwrap();
        t
    }

    #[test]
    fn a_key_is_written_once_and_a_prefix_keeps_a_second_run_apart() {
        let mut f = Fields::<256>::new();
        f.add("init_us", 5).add("init_us", 6);
        assert_eq!(f.as_str(), "init_us=5");
        assert!(f.is_truncated(), "the refused pair is marked");
        let mut g = Fields::<256>::new();
        g.add("init_us", 5).set_prefix("second_").add("init_us", 6);
        g.set_prefix("").add("frames", 1);
        assert_eq!(g.as_str(), "init_us=5 second_init_us=6 frames=1");
        assert!(!g.is_truncated());
        let line = render("t", Verdict::Pass, &g);
        assert!(parse(line.as_str()).is_ok(), "{}", line.as_str());
    }

    #[test]
    fn writes_and_reads_back() {
        let mut f = Fields::<256>::new();
        f.add("n", 42u64)
            .add("why", "two words")
            .add("empty", "")
            .quoted("step", "config")
            .add("q", "say \"hi\"");
        let line = render("boot", Verdict::Pass, &f);
        assert_eq!(
            line.as_str(),
            "PARANOID-RESULT test=boot verdict=pass n=42 why=\"two words\" empty=\"\" step=\"config\" q=\"say 'hi'\""
        );
        let l = parse(line.as_str()).unwrap();
        assert_eq!(l.test(), "boot");
        assert!(l.passed());
        assert_eq!(l.value::<u64>("n"), Ok(42));
        assert_eq!(l.get("why"), Some("two words"));
        assert_eq!(l.get("empty"), Some(""));
        assert_eq!(l.get("step"), Some("config"));
        assert_eq!(l.get("q"), Some("say 'hi'"));
        assert_eq!(l.pairs().count(), 7);
    }

    #[test]
    fn no_pairs_no_trailing_space() {
        let f = Fields::<16>::new();
        assert_eq!(
            render("boot", Verdict::Fail, &f).as_str(),
            "PARANOID-RESULT test=boot verdict=fail"
        );
    }

    #[test]
    fn a_full_buffer_drops_the_pair_and_says_so() {
        let mut f = Fields::<12>::new();
        f.add("a", 1).add("bbbbbb", 123_456).add("c", 3);
        // "a=1 c=3" fits, the middle pair did not.
        assert_eq!(f.as_str(), "a=1 c=3");
        assert!(f.is_truncated());
        let line = render("x", Verdict::Pass, &f);
        assert!(line.as_str().ends_with("a=1 c=3 truncated=1"));
        assert_eq!(parse(line.as_str()), Err(ParseError::Truncated));
    }

    #[test]
    fn a_long_value_is_cut_with_an_ellipsis() {
        let long = [b'x'; 300];
        let long = core::str::from_utf8(&long).unwrap();
        let mut f = Fields::<1024>::new();
        f.add("v", long);
        let v = parse_fields(f.as_str());
        assert_eq!(v.len(), MAX_VALUE + 3);
        assert!(v.ends_with("x..."));
    }

    fn parse_fields(s: &str) -> &str {
        pairs(s).next().unwrap().1
    }

    #[test]
    fn a_bad_key_is_dropped() {
        let mut f = Fields::<64>::new();
        f.add("a b", 1).add("", 2).add("k=", 3).add("ok", 4);
        assert_eq!(f.as_str(), "ok=4");
        assert!(f.is_truncated());
        assert!(!valid_key("a\"b"));
        assert!(valid_key("dump_bytes"));
    }

    #[test]
    fn line_breaks_in_values_stay_on_the_line() {
        let mut f = Fields::<64>::new();
        f.add("r", "a\nb");
        assert_eq!(f.as_str(), "r=\"a b\"");
    }

    #[test]
    fn malformed_lines_are_typed_errors() {
        assert_eq!(parse("hello"), Err(ParseError::NotAResultLine));
        assert_eq!(
            parse("PARANOID-RESULTS test=x"),
            Err(ParseError::NotAResultLine)
        );
        assert_eq!(
            parse("PARANOID-RESULT verdict=pass"),
            Err(ParseError::MissingTest)
        );
        assert_eq!(
            parse("PARANOID-RESULT test= verdict=pass"),
            Err(ParseError::MissingTest)
        );
        assert_eq!(
            parse("PARANOID-RESULT test=x"),
            Err(ParseError::MissingVerdict)
        );
        assert_eq!(
            parse("PARANOID-RESULT test=x verdict=maybe"),
            Err(ParseError::BadVerdict { value: "maybe" })
        );
        assert_eq!(
            parse("PARANOID-RESULT test=x verdict=pass n=1 n=2"),
            Err(ParseError::Duplicate { key: "n" })
        );
        // Cut short in the middle of a quoted value.
        assert_eq!(
            parse("PARANOID-RESULT test=x verdict=fail reason=\"disk fu"),
            Err(ParseError::Unterminated { key: "reason" })
        );
    }

    #[test]
    fn bad_values_are_typed_errors() {
        let l = parse("noise PARANOID-RESULT test=x verdict=pass n=12a m=7\r").unwrap();
        assert_eq!(l.value::<u64>("m"), Ok(7));
        assert_eq!(
            l.value::<u64>("n"),
            Err(ValueError::Bad {
                key: "n",
                value: "12a"
            })
        );
        assert_eq!(l.value::<u64>("k"), Err(ValueError::Missing { key: "k" }));
        assert_eq!(l.value::<u8>("m"), Ok(7));
    }

    #[test]
    fn lenient_pairs_take_the_rest_of_an_open_quote() {
        let mut it = pairs("a=1 flag b=\"x y");
        assert_eq!(it.next(), Some(("a", "1")));
        assert_eq!(it.next(), Some(("flag", "")));
        assert!(!it.cut_short());
        assert_eq!(it.next(), Some(("b", "x y")));
        assert!(it.cut_short());
        assert_eq!(it.next(), None);
        // A stray `=` (an empty key) is skipped.
        let mut it = pairs(" =v k=1");
        assert_eq!(it.next(), Some(("k", "1")));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn one_line_per_log() {
        let one = "boot ok\nPARANOID-RESULT test=boot verdict=pass n=3\n";
        assert_eq!(single(one, "boot").unwrap().value::<u32>("n"), Ok(3));
        assert_eq!(single("boot ok\n", "boot"), Err(LogError::Missing));
        let two = "PARANOID-RESULT test=boot verdict=fail reason=x\nPARANOID-RESULT test=boot verdict=pass\n";
        assert_eq!(single(two, "boot"), Err(LogError::Several { count: 2 }));
        assert_eq!(
            single("PARANOID-RESULT test=pci verdict=pass\n", "boot"),
            Err(LogError::OtherTest { found: "pci" })
        );
        assert_eq!(
            single(
                "PARANOID-RESULT test=boot verdict=pass reason=\"cut",
                "boot"
            ),
            Err(LogError::Malformed(ParseError::Unterminated {
                key: "reason"
            }))
        );
    }

    #[test]
    fn text_keeps_what_fits() {
        let mut t = Text::<4>::new();
        assert!(t.write_str("abc").is_ok());
        assert!(t.write_str("de").is_err());
        assert_eq!(t.as_str(), "abc");
        // A multi-byte character that would be cut is not written at all.
        let mut t = Text::<2>::new();
        assert!(t.write_str("é").is_ok());
        assert!(t.write_str("é").is_err());
        assert_eq!(t.as_str(), "é");
    }
}
