//! This machine's identity as claim locks (`host:pid`) and worker records
//! spell it, so every process of the workspace (store, dispatcher, CLI,
//! gateway) agrees on it: a claim taken by one must be recognised as local
//! by the others.
//!
//! The host part is the operator's host id (`KANBAN_HOST_ID`, read by the
//! binary and dispatcher layers and handed in: the store reads no
//! environment) or else the host name, which is what the Python reference
//! writes. Several "hosts" sharing one kernel (containers, network and PID
//! namespaces) share the host name, so they need distinct host ids.
//!
//! It lives in the lowest crate that may ask the operating system
//! (`kanban-core` stays free of it); everything above uses it.

use thiserror::Error;

/// The host part written when the name cannot be read (the reference
/// would fail instead; a lock naming no real host is never local).
pub const UNKNOWN_HOST: &str = "unknown";

/// Longest host id accepted (a claim lock is `host:pid`).
pub const HOST_ID_MAX_CHARS: usize = 128;

/// Why a host id is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HostIdError {
    #[error("the host id is empty")]
    Empty,
    #[error("the host id {0:?} contains ':' or whitespace (claim locks are `host:pid`)")]
    BadCharacter(String),
    #[error("the host id is longer than {HOST_ID_MAX_CHARS} characters")]
    TooLong,
}

/// A host id as `KANBAN_HOST_ID` may set it: non-empty, no `:` (the
/// separator of `host:pid`), no whitespace or control characters.
pub fn validate_host_id(id: &str) -> Result<(), HostIdError> {
    if id.is_empty() {
        return Err(HostIdError::Empty);
    }
    if id.chars().count() > HOST_ID_MAX_CHARS {
        return Err(HostIdError::TooLong);
    }
    if id
        .chars()
        .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(HostIdError::BadCharacter(id.to_string()));
    }
    Ok(())
}

/// This machine's host name, as Python's `socket.gethostname()` reports
/// it; [`UNKNOWN_HOST`] when it is unreadable, empty or not UTF-8.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| UNKNOWN_HOST.to_string())
}

/// The host part of this process's claim locks: the host id when one is
/// set, else the host name.
pub fn local_host(host_id: Option<&str>) -> String {
    host_id.map_or_else(hostname, str::to_string)
}

/// `host:pid`: the claim lock a process with this pid takes on `host`.
pub fn claim_lock_for(host: &str, pid: u32) -> String {
    format!("{host}:{pid}")
}

/// The claim lock this process takes as `host` (`<host>:<pid>`).
pub fn claimer_id(host: &str) -> String {
    claim_lock_for(host, std::process::id())
}

pub use kanban_core::payload::lock_is_on_host;

/// Whether a claim lock was taken on `local_host` (see [`local_host`]).
pub fn lock_is_local(lock: &str, local_host: &str) -> bool {
    lock_is_on_host(lock, local_host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_name_is_never_empty_and_locks_round_trip() {
        let host = hostname();
        assert!(!host.is_empty());
        assert!(lock_is_local(&claimer_id(&host), &host));
        assert_eq!(claim_lock_for("box", 12), "box:12");
        assert!(
            !lock_is_local(&claim_lock_for("elsewhere-host", 1), &host) || host == "elsewhere-host"
        );
    }

    #[test]
    fn a_host_id_replaces_the_host_name() {
        assert_eq!(local_host(Some("node-b")), "node-b");
        assert_eq!(local_host(None), hostname());
        assert!(lock_is_local("node-b:5", "node-b"));
        assert!(!lock_is_local("node-a:5", "node-b"));
    }

    #[test]
    fn host_ids_are_validated() {
        assert_eq!(validate_host_id("node-a.example_1"), Ok(()));
        assert_eq!(validate_host_id(""), Err(HostIdError::Empty));
        assert!(matches!(
            validate_host_id("a:b"),
            Err(HostIdError::BadCharacter(_))
        ));
        assert!(matches!(
            validate_host_id("a b"),
            Err(HostIdError::BadCharacter(_))
        ));
        assert!(matches!(
            validate_host_id("a\tb"),
            Err(HostIdError::BadCharacter(_))
        ));
        assert_eq!(
            validate_host_id(&"x".repeat(HOST_ID_MAX_CHARS + 1)),
            Err(HostIdError::TooLong)
        );
    }
}
