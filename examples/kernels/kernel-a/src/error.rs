//! Why kernel A could not arm its crash: the step that failed and the error
//! it got (kernel A fails only before the crash is armed, and says so on its
//! result line).

use core::fmt;

use paranoid::init::Note;

/// A failed step: what kernel A was doing, and the error it got.
#[derive(Debug, Clone, Copy)]
pub struct Why {
    /// What kernel A was doing (`nvme init`, `recovery load`, ...).
    pub step: &'static str,
    /// The error it got, in the error type's own words (its `Debug`);
    /// `None` when the step found something missing or failed a check of
    /// kernel A's own.
    pub cause: Option<Note>,
}

impl Why {
    /// `step` failed without an error value.
    pub const fn new(step: &'static str) -> Self {
        Self { step, cause: None }
    }

    /// `step` failed with `error`.
    pub fn with(step: &'static str, error: impl fmt::Debug) -> Self {
        Self {
            step,
            cause: Some(Note::format(format_args!("{error:?}"))),
        }
    }
}

impl From<&'static str> for Why {
    fn from(step: &'static str) -> Self {
        Self::new(step)
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            None => f.write_str(self.step),
            Some(c) => write!(f, "{}: {}", self.step, c.as_str()),
        }
    }
}

/// Names the step a fallible value belongs to, keeping its error.
pub trait Context<T> {
    /// The value, or a [`Why`] for `step` carrying the error.
    fn context(self, step: &'static str) -> Result<T, Why>;
}

impl<T, E: fmt::Debug> Context<T> for Result<T, E> {
    fn context(self, step: &'static str) -> Result<T, Why> {
        self.map_err(|e| Why::with(step, e))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, step: &'static str) -> Result<T, Why> {
        self.ok_or(Why::new(step))
    }
}
