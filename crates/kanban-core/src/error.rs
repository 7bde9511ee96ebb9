use thiserror::Error;

/// Errors raised by validation and transition rules. Messages follow the
/// reference implementation's wording where it has one, so scripts that grep
/// for them keep working.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    #[error("{0}")]
    Invalid(String),
}

impl CoreError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        CoreError::Invalid(msg.into())
    }
}
