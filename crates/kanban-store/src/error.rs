use std::path::PathBuf;

use kanban_core::CoreError;
use thiserror::Error;

/// Everything a store operation can refuse or fail with. Adapters turn
/// these into exit codes / HTTP statuses in one place.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Bad input (empty title, unknown parent, cycle, self-link, ...).
    #[error(transparent)]
    Invalid(#[from] CoreError),
    /// No task with that id (message: `no such task: <id>`).
    #[error("no such task: {0}")]
    TaskNotFound(String),
    /// The task exists but the transition does not apply now.
    #[error("cannot {action} {task_id}: {reason}")]
    Refused {
        action: &'static str,
        task_id: String,
        reason: String,
    },
    /// A compare-and-swap lost: the run/claim the caller presented is no
    /// longer the task's current one.
    #[error("cannot {action} {task_id}: {reason}")]
    Stale {
        action: &'static str,
        task_id: String,
        reason: String,
    },
    /// The file exists but is not a SQLite database. Nothing was changed.
    #[error("{path}: file is not a database: {detail}")]
    NotADatabase { path: PathBuf, detail: String },
    /// Integrity check failed; a byte-identical backup was written.
    #[error(
        "{path}: database is corrupt ({detail}); a byte-identical backup was saved to {backup}; the original was left untouched"
    )]
    Corrupt {
        path: PathBuf,
        backup: PathBuf,
        detail: String,
    },
    /// The database stayed locked/busy past every retry.
    #[error("database is busy: {0}")]
    Busy(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// Any other backend failure, with its message.
    #[error("storage error: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        StoreError::Invalid(CoreError::invalid(msg))
    }
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}
