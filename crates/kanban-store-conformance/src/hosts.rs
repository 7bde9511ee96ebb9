//! Host leases (`renew_host_lease`, `hosts`): one row per host id, renewed
//! by an upsert that writes no event.

use kanban_store::dispatch_ops::*;

use crate::support::*;

fn lease(host: &str, pid: i64, started_at: i64, lease_seconds: i64) -> HostLease {
    HostLease {
        host_id: host.into(),
        gateway_pid: pid,
        started_at,
        lease_seconds,
    }
}

pub fn host_leases_are_renewed_per_host_without_events(s: &dyn DispatchStore) {
    // A board no gateway has registered on (SQLite: no table yet).
    assert!(s.hosts().unwrap().is_empty());
    create(s, "work");
    let events = s.latest_event_id().unwrap();
    let before = s.now();
    let a = s.renew_host_lease(&lease("node-a", 10, 100, 30)).unwrap();
    let after = s.now();
    assert_eq!(
        (a.host_id.as_str(), a.gateway_pid, a.started_at),
        ("node-a", 10, 100)
    );
    assert!((before..=after).contains(&a.last_seen), "{a:?}");
    assert_eq!(a.lease_expires, a.last_seen + 30);
    assert!(a.lease_live(a.last_seen + 30));
    assert!(!a.lease_live(a.last_seen + 31));
    let b = s.renew_host_lease(&lease("node-b", 10, 200, 5)).unwrap();
    // A restarted gateway of node-a replaces its row; pids of different
    // hosts may be equal.
    let a2 = s.renew_host_lease(&lease("node-a", 11, 300, 30)).unwrap();
    assert_eq!((a2.gateway_pid, a2.started_at), (11, 300));
    assert_eq!(s.hosts().unwrap(), vec![a2.clone(), b.clone()]);
    // Bookkeeping only: the event feed did not move.
    assert_eq!(s.latest_event_id().unwrap(), events);
    // Creating the dispatcher's tables later keeps them.
    s.prepare_dispatch().unwrap();
    assert_eq!(s.hosts().unwrap(), vec![a2, b]);
}
