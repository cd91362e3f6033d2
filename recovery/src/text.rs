//! Text built without a heap: a command line, a result line, a device's state.

use core::fmt;

/// Up to `N` bytes of UTF-8 text; a write that does not fit fails (and writes
/// nothing), so a cut-off line is never mistaken for a whole one.
#[derive(Clone, Copy)]
pub struct Line<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Line<N> {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for Line<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for Line<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn overflow_fails_and_keeps_what_fit() {
        let mut l = Line::<8>::new();
        write!(l, "abc {}", 12).unwrap();
        assert_eq!(l.as_str(), "abc 12");
        assert!(write!(l, "xyz").is_err());
        assert_eq!(l.as_str(), "abc 12");
        assert!(l.write_str("é").is_ok());
        assert_eq!(l.as_str(), "abc 12é");
    }
}
