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
    /// Any other backend failure; the backend's own error is its source.
    #[error("storage error: {0}")]
    Backend(#[source] BackendError),
}

/// A backend's own error (e.g. `rusqlite::Error`), kept as it was raised
/// so callers can inspect it ([`BackendError::get_ref`], `downcast_ref`).
///
/// Its message already includes what its causes say, so it reports no
/// further source: the CLI prints an error's chain on one line, and the
/// driver's internal cause (`Error code 1: SQL logic error`) would only
/// repeat it.
#[derive(Debug)]
pub struct BackendError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl BackendError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        BackendError(Box::new(e))
    }

    /// A failure the backend itself detected, with no underlying error.
    pub fn msg(msg: impl Into<String>) -> Self {
        BackendError(msg.into().into())
    }

    /// The backend's error prefixed with what was being done.
    pub fn context(
        context: impl Into<String>,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        BackendError::new(Contextual {
            context: context.into(),
            source: Box::new(e),
        })
    }

    /// The backend's error.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The backend's error, if it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>().or_else(|| {
            self.0
                .downcast_ref::<Contextual>()
                .and_then(|c| c.source.downcast_ref::<T>())
        })
    }

    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.0
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BackendError {}

/// An error with what was being done (`<path>: <error>`).
#[derive(Debug, Error)]
#[error("{context}: {source}")]
struct Contextual {
    context: String,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl StoreError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        StoreError::Invalid(CoreError::invalid(msg))
    }
    /// A backend failure, keeping the backend's error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(BackendError::new(e))
    }
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn backend_errors_keep_their_source_and_their_message() {
        let sql = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(1),
            Some("no such table: t".into()),
        );
        let e = StoreError::backend(sql);
        assert_eq!(e.to_string(), "storage error: no such table: t");
        // One cause, whose text the message already ends with: the CLI's
        // one-line rendering of the chain prints it once, as before.
        let cause = e.source().expect("source kept");
        assert_eq!(cause.to_string(), "no such table: t");
        assert!(cause.source().is_none());
        let StoreError::Backend(b) = &e else {
            panic!("{e:?}")
        };
        assert!(b.downcast_ref::<rusqlite::Error>().is_some());

        let ctx = StoreError::Backend(BackendError::context(
            "/b/kanban.db",
            rusqlite::Error::InvalidQuery,
        ));
        assert_eq!(
            ctx.to_string(),
            "storage error: /b/kanban.db: Query is not read-only"
        );
        let StoreError::Backend(b) = &ctx else {
            panic!("{ctx:?}")
        };
        assert!(matches!(
            b.downcast_ref::<rusqlite::Error>(),
            Some(rusqlite::Error::InvalidQuery)
        ));
        let msg = StoreError::Backend(BackendError::msg("could not draw an unused task id"));
        assert_eq!(
            msg.to_string(),
            "storage error: could not draw an unused task id"
        );
    }
}
