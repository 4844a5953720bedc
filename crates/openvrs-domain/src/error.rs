//! The one error type for values that fail validation.

use std::fmt;

/// Why a value was rejected. The message is Japanese first, then English, and never repeats
/// the rejected value: the value may be personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Short machine-readable kind, e.g. `my_number.check_digit`.
    pub kind: &'static str,
    pub ja: &'static str,
    pub en: &'static str,
}

impl Invalid {
    pub const fn new(kind: &'static str, ja: &'static str, en: &'static str) -> Self {
        Self { kind, ja, en }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.ja, self.en)
    }
}

impl std::error::Error for Invalid {}
