//! The operator's host id (`KANBAN_HOST_ID`): the host part of this
//! process's claim locks and, with the boot id, its identity for worker
//! liveness. Needed where several "hosts" share a kernel and a host name
//! (containers, namespaces); unset, the host name and the machine id are
//! used. The store reads no environment, so it is read here and handed in.

use kanban_store::host_identity::{HostIdError, validate_host_id};

use crate::layout::{Env, ProcessEnv};

/// Overrides the host name in claim locks and the machine id in worker
/// liveness.
pub const ENV_HOST_ID: &str = "KANBAN_HOST_ID";

/// The host id `env` sets, validated; `Ok(None)` when unset. Set but
/// empty is an error, not "unset": a typo must not silently fall back to
/// the host name shared with other hosts.
pub fn host_id(env: &dyn Env) -> Result<Option<String>, HostIdError> {
    match env.var(ENV_HOST_ID) {
        None => Ok(None),
        Some(v) => validate_host_id(&v).map(|()| Some(v)),
    }
}

/// This process's valid host id. Binaries refuse to start with an invalid
/// one ([`check_process_host_id`]), so an invalid value is not seen here.
pub fn process_host_id() -> Option<String> {
    host_id(&ProcessEnv).ok().flatten()
}

/// Refuse an invalid `KANBAN_HOST_ID` with a message naming it.
pub fn check_process_host_id() -> Result<(), String> {
    host_id(&ProcessEnv)
        .map(|_| ())
        .map_err(|e| format!("invalid {ENV_HOST_ID}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MapEnv;

    #[test]
    fn the_host_id_is_optional_and_validated() {
        assert_eq!(host_id(&MapEnv::new()), Ok(None));
        let ok = MapEnv::new().with(ENV_HOST_ID, "node-a");
        assert_eq!(host_id(&ok), Ok(Some("node-a".into())));
        for bad in ["", "a:b", "a b", " node"] {
            let env = MapEnv::new().with(ENV_HOST_ID, bad);
            assert!(host_id(&env).is_err(), "{bad:?} accepted");
        }
    }
}
