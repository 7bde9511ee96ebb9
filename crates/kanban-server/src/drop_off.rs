//! Closing a board's store off the async runtime (a PostgreSQL
//! connection closes by blocking).

/// Drop `value` where dropping may block: on a thread of its own when
/// called from the async runtime, else right here. A PostgreSQL store's
/// connection closes by blocking on a runtime of its own, which panics on
/// a thread that drives tokio's (and aborts when already unwinding).
pub fn drop_off_runtime<T: Send + 'static>(value: T) {
    if tokio::runtime::Handle::try_current().is_err() {
        drop(value);
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("kanban-drop".into())
        .spawn(move || drop(value));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start a thread to close a board's connections");
    }
}

/// A value dropped by [`drop_off_runtime`] whenever it goes: for async
/// code that may hold the last reference to a board.
pub struct DropOffRuntime<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> DropOffRuntime<T> {
    pub fn new(value: T) -> DropOffRuntime<T> {
        DropOffRuntime(Some(value))
    }
}

impl<T: Send + 'static> std::ops::Deref for DropOffRuntime<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("present until dropped")
    }
}

impl<T: Send + 'static> Drop for DropOffRuntime<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            drop_off_runtime(value);
        }
    }
}
