//! What `/metrics` shows of a board's hosts and of a backend's
//! connections: each host's lease and running tasks, and the state of the
//! connection pool a store draws from.

use std::collections::BTreeMap;

/// One host of a board: its gateway's lease and the running tasks it
/// claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLoad {
    /// The host part of claim locks (`KANBAN_HOST_ID` or the host name).
    pub host_id: String,
    /// When the host's gateway lease runs out (store clock); `None`: no
    /// gateway of that host registered (a one-shot `kanban dispatch`, the
    /// Python dispatcher).
    pub lease_expires: Option<i64>,
    /// Running tasks whose claim lock names this host.
    pub running: i64,
}

/// The host part of a `host:pid` claim lock; a lock without a colon is
/// all host.
pub fn claim_lock_host(lock: &str) -> &str {
    lock.rsplit_once(':').map_or(lock, |(host, _)| host)
}

/// One [`HostLoad`] per host, by host id, from the leases (`host_id`,
/// `lease_expires`) and the running tasks' claim locks with their counts.
pub fn host_loads(
    leases: impl IntoIterator<Item = (String, i64)>,
    running_locks: impl IntoIterator<Item = (String, i64)>,
) -> Vec<HostLoad> {
    let mut loads: BTreeMap<String, HostLoad> = BTreeMap::new();
    for (host_id, expires) in leases {
        slot(&mut loads, &host_id).lease_expires = Some(expires);
    }
    for (lock, n) in running_locks {
        slot(&mut loads, claim_lock_host(&lock)).running += n;
    }
    loads.into_values().collect()
}

fn slot<'a>(loads: &'a mut BTreeMap<String, HostLoad>, host_id: &str) -> &'a mut HostLoad {
    loads
        .entry(host_id.to_string())
        .or_insert_with(|| HostLoad {
            host_id: host_id.to_string(),
            lease_expires: None,
            running: 0,
        })
}

/// A connection pool's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Tells pools apart: every board of one database shares its pool.
    pub pool_id: u64,
    /// The most connections the pool opens.
    pub size: u32,
    /// Open and waiting for a caller.
    pub idle: u32,
    /// Open and lent to a caller.
    pub busy: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_and_claims_merge_by_host() {
        let loads = host_loads(
            [("node-b".to_string(), 50), ("node-a".to_string(), 40)],
            [
                ("node-a:12".to_string(), 2),
                ("node-a:13".to_string(), 1),
                ("node-c:7".to_string(), 1),
                ("bare".to_string(), 1),
            ],
        );
        let got: Vec<_> = loads
            .iter()
            .map(|h| (h.host_id.as_str(), h.lease_expires, h.running))
            .collect();
        assert_eq!(
            got,
            [
                ("bare", None, 1),
                ("node-a", Some(40), 3),
                ("node-b", Some(50), 0),
                ("node-c", None, 1),
            ]
        );
    }

    #[test]
    fn a_host_id_with_colons_keeps_them() {
        assert_eq!(claim_lock_host("a:b:42"), "a:b");
        assert_eq!(claim_lock_host("plain"), "plain");
    }
}
