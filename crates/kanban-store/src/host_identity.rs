//! This machine's identity as claim locks (`host:pid`) and worker records
//! spell it. The one place the host name is read, so every process of the
//! workspace (store, dispatcher, CLI, gateway) agrees on it: a claim taken
//! by one must be recognised as local by the others.
//!
//! It lives in the lowest crate that may ask the operating system
//! (`kanban-core` stays free of it); everything above uses it.

/// The host part written when the name cannot be read (the reference
/// would fail instead; a lock naming no real host is never local).
pub const UNKNOWN_HOST: &str = "unknown";

/// This machine's host name, as Python's `socket.gethostname()` reports
/// it; [`UNKNOWN_HOST`] when it is unreadable, empty or not UTF-8.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| UNKNOWN_HOST.to_string())
}

/// `host:pid`: the claim lock a process with this pid takes here.
pub fn claim_lock_for(host: &str, pid: u32) -> String {
    format!("{host}:{pid}")
}

/// The claim lock this process takes (`<hostname>:<pid>`).
pub fn claimer_id() -> String {
    claim_lock_for(&hostname(), std::process::id())
}

pub use kanban_core::payload::lock_is_on_host;

/// Whether a claim lock was taken on this machine.
pub fn lock_is_local(lock: &str) -> bool {
    lock_is_on_host(lock, &hostname())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_name_is_never_empty_and_locks_round_trip() {
        let host = hostname();
        assert!(!host.is_empty());
        assert!(lock_is_local(&claimer_id()));
        assert_eq!(claim_lock_for("box", 12), "box:12");
        assert!(!lock_is_local(&claim_lock_for("elsewhere-host", 1)) || host == "elsewhere-host");
    }
}
