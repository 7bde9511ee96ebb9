use kanban_store::StoreError;
use thiserror::Error;

/// Everything the dispatcher can fail with. Spawn and workspace errors are
/// recorded on the task as its `last_failure_error` (spawn-failure path), so
/// their messages are written for an operator reading `kanban show`.
#[derive(Debug, Error)]
pub enum DispatchError {
    /// The worker command's program is not on `PATH` (or the given path
    /// does not exist).
    #[error("`{program}` executable not found on PATH. {hint}")]
    ExecutableNotFound { program: String, hint: String },
    /// The program exists but may not be executed.
    #[error("`{program}` is not executable: {source}")]
    NotExecutable {
        program: String,
        source: std::io::Error,
    },
    /// Any other failure to start the worker process.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// A worker command could not be built (empty command, bad template).
    #[error("worker command: {0}")]
    Command(String),
    /// The task's workspace could not be resolved or created. The message
    /// is what the reference stores after its `workspace: ` prefix.
    #[error("{0}")]
    Workspace(String),
    /// A git command behind a worktree workspace failed or timed out.
    #[error("{0}")]
    Git(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl DispatchError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DispatchError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = DispatchError> = std::result::Result<T, E>;
