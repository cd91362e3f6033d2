//! Source files and the mapping from `proc_macro2` line/column positions to byte offsets.

use std::path::PathBuf;

/// One source file read from disk (or given in memory), with a line index.
#[derive(Debug)]
pub struct SourceFile {
    /// Path as shown in diagnostics (relative to the workspace root when possible).
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
    /// Whether the file belongs to a test, bench or example target of its package (a crate
    /// of its own that the library cannot call).
    pub aux: bool,
    line_starts: Vec<usize>,
}

/// A resolved region of a source file: byte offsets and 1-based line/column (columns in chars).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Span {
    /// Byte offset of the first byte.
    pub byte_start: usize,
    /// Byte offset one past the last byte.
    pub byte_end: usize,
    /// 1-based first line.
    pub line_start: usize,
    /// 1-based first column, in characters.
    pub column_start: usize,
    /// 1-based last line.
    pub line_end: usize,
    /// 1-based column one past the end, in characters.
    pub column_end: usize,
}

impl SourceFile {
    /// Wraps `text` shown as `path`.
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Self {
            path: path.into(),
            text,
            aux: false,
            line_starts,
        }
    }

    /// Marks the file as part of a test, bench or example target (or not).
    #[must_use]
    pub fn with_aux(mut self, aux: bool) -> Self {
        self.aux = aux;
        self
    }

    /// Number of lines in the file.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The text of 1-based line `line`, without its newline (empty when out of range).
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = line_starts_get(&self.line_starts, line) else {
            return "";
        };
        let end = line_starts_get(&self.line_starts, line + 1)
            .copied()
            .unwrap_or(self.text.len());
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }

    /// Byte offset of the first byte of 1-based `line` (clamped to the file).
    pub fn line_start_byte(&self, line: usize) -> usize {
        line_starts_get(&self.line_starts, line)
            .copied()
            .unwrap_or(self.text.len())
    }

    /// Byte offset of a 1-based line and 0-based char column, clamped to the file.
    pub fn offset(&self, line: usize, column: usize) -> usize {
        let start = self.line_start_byte(line);
        let rest = self.text.get(start..).unwrap_or("");
        let mut off = start;
        for (n, (i, ch)) in rest.char_indices().enumerate() {
            if n == column || ch == '\n' {
                return start + i;
            }
            off = start + i + ch.len_utf8();
        }
        off
    }

    /// Resolves a `proc_macro2` span of this file.
    pub fn span(&self, span: proc_macro2::Span) -> Span {
        let (s, e) = (span.start(), span.end());
        let byte_start = self.offset(s.line, s.column);
        let byte_end = self.offset(e.line, e.column).max(byte_start);
        Span {
            byte_start,
            byte_end,
            line_start: s.line.max(1),
            column_start: s.column + 1,
            line_end: e.line.max(s.line).max(1),
            column_end: e.column + 1,
        }
    }

    /// A span covering the whole of 1-based `line`.
    pub fn line_span(&self, line: usize) -> Span {
        let text = self.line_text(line);
        let byte_start = self.line_start_byte(line);
        Span {
            byte_start,
            byte_end: byte_start + text.len(),
            line_start: line,
            column_start: 1,
            line_end: line,
            column_end: text.chars().count() + 1,
        }
    }
}

fn line_starts_get(starts: &[usize], line: usize) -> Option<&usize> {
    line.checked_sub(1).and_then(|i| starts.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_chars() {
        let f = SourceFile::new("a.rs", "fn a() {}\nlet é = 1;\n".to_string());
        assert_eq!(f.offset(2, 0), 10);
        assert_eq!(f.offset(2, 5), 10 + "let é".len());
        assert_eq!(f.line_text(2), "let é = 1;");
        assert_eq!(f.offset(9, 3), f.text.len());
    }
}
