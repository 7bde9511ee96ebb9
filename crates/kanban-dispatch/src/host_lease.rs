//! A gateway's host lease on a board (`DispatchStore::renew_host_lease`):
//! renewed by its dispatcher's passes, read by the others before they
//! release a claim of that host.
//!
//! A claim of another host is released on its TTL only when that host's
//! lease has expired or it has none (a Python dispatcher, a one-shot
//! `kanban dispatch`): while its gateway is alive it extends the claims of
//! its live workers itself, and no one else can see those workers. The
//! lease spans [`HOST_LEASE_TICKS`] dispatch ticks, so a live gateway
//! renews it several times before it runs out.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kanban_core::defaults::CLAIM_TTL_SECONDS;
use kanban_store::dispatch_ops::{HostLease, HostRecord};

use crate::dispatcher::Dispatcher;
use crate::error::Result;
use crate::options::DispatchOptions;

/// Dispatch ticks one lease spans.
pub const HOST_LEASE_TICKS: u32 = 3;
/// The shortest lease, whatever the tick.
pub const HOST_LEASE_MIN_SECONDS: i64 = 5;
/// The lease of a gateway whose ticker is off (it renews only on board
/// changes): as long as a claim.
pub const HOST_LEASE_UNTICKED_SECONDS: i64 = CLAIM_TTL_SECONDS;
/// Renew once this fraction of the lease has passed.
const RENEW_AFTER_FRACTION: u32 = 4;

/// The lease of a gateway ticking every `tick` (`None`: no ticker).
pub fn host_lease_seconds(tick: Option<Duration>) -> i64 {
    match tick {
        Some(t) => {
            let ticks = t.as_secs_f64() * f64::from(HOST_LEASE_TICKS);
            (ticks.ceil() as i64).max(HOST_LEASE_MIN_SECONDS)
        }
        None => HOST_LEASE_UNTICKED_SECONDS,
    }
}

/// When this process first registered a lease (its `started_at` on every
/// board).
static STARTED_AT: OnceLock<i64> = OnceLock::new();

/// The host part of a `host:pid` claim lock.
pub(crate) fn lock_host(lock: &str) -> Option<&str> {
    lock.rsplit_once(':').map(|(host, _)| host)
}

/// Whether `host`'s gateway holds a live lease at `now` in `hosts`.
pub(crate) fn lease_live(hosts: &[HostRecord], host: &str, now: i64) -> bool {
    hosts.iter().any(|h| h.host_id == host && h.lease_live(now))
}

impl Dispatcher {
    /// Renew this host's lease when `opts` asks for one and a quarter of
    /// it has passed since the last renewal. A failure is logged, not
    /// fatal: the pass that follows reports the database's state.
    pub(crate) fn renew_host_lease_if_due(&self, opts: &DispatchOptions) {
        let Some(lease_seconds) = opts.host_lease_seconds.filter(|_| !opts.dry_run) else {
            return;
        };
        let every = Duration::from_secs(lease_seconds.max(1) as u64) / RENEW_AFTER_FRACTION;
        if self
            .state()
            .last_lease_renewal
            .is_some_and(|at| at.elapsed() < every)
        {
            return;
        }
        let lease = HostLease {
            host_id: self.liveness.hostname(),
            gateway_pid: i64::from(std::process::id()),
            started_at: *STARTED_AT.get_or_init(|| self.store.now()),
            lease_seconds,
        };
        match self.store.renew_host_lease(&lease) {
            Ok(_) => self.state().last_lease_renewal = Some(Instant::now()),
            Err(e) => {
                tracing::warn!(board = %self.board.slug, "cannot renew the host lease: {e}");
            }
        }
    }

    /// The board's hosts, read once per pass when first needed.
    pub(crate) fn hosts_once<'a>(
        &self,
        cache: &'a mut Option<Vec<HostRecord>>,
    ) -> Result<&'a [HostRecord]> {
        if cache.is_none() {
            *cache = Some(self.store.hosts()?);
        }
        Ok(cache.as_deref().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_span_several_ticks_with_a_floor() {
        assert_eq!(host_lease_seconds(Some(Duration::from_secs(60))), 180);
        assert_eq!(
            host_lease_seconds(Some(Duration::from_secs(1))),
            HOST_LEASE_MIN_SECONDS
        );
        assert_eq!(host_lease_seconds(None), HOST_LEASE_UNTICKED_SECONDS);
        assert!(host_lease_seconds(Some(Duration::from_secs(60))) > 60);
    }

    #[test]
    fn the_host_of_a_lock_is_before_its_last_colon() {
        assert_eq!(lock_host("node-a:12"), Some("node-a"));
        assert_eq!(lock_host("nolock"), None);
        let hosts = [HostRecord {
            host_id: "node-a".into(),
            gateway_pid: 1,
            started_at: 0,
            lease_expires: 100,
            last_seen: 90,
        }];
        assert!(lease_live(&hosts, "node-a", 100));
        assert!(!lease_live(&hosts, "node-a", 101));
        assert!(!lease_live(&hosts, "node-b", 50));
    }
}

#[cfg(test)]
#[path = "host_lease_tests.rs"]
mod host_lease_tests;
