//! The SQLite backend: Hermes 0.19.0 schema, pragmas and semantics.
//! (Implementation in progress.)

/// Options for opening a board database.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Create the file (and parent directory) when missing.
    pub create: bool,
    /// Busy timeout override in milliseconds.
    pub busy_timeout_ms: Option<u64>,
}
