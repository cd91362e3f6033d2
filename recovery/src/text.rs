//! Text built without a heap: a command line, a result line, a device's state.

/// Up to `N` bytes of UTF-8 text; a write that does not fit fails (and writes
/// nothing), so a cut-off line is never mistaken for a whole one. The result
/// line's text buffer, [`paranoid_result_line::Text`].
pub use paranoid_result_line::Text as Line;

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
