//! The knobs of one dispatch pass ([`DispatchOptions`]): ceilings, the
//! failure limit, timeouts and log sizes, from the reference's defaults or
//! from `config.yaml` and the environment.

use std::collections::BTreeMap;
use std::time::Duration;

use kanban_core::defaults::{
    CLAIM_TTL_SECONDS, CRASH_GRACE_SECONDS, FAILURE_LIMIT, RATE_LIMIT_COOLDOWN_SECONDS,
    WORKER_LOG_BACKUP_COUNT, WORKER_LOG_ROTATE_BYTES,
};
use kanban_core::transitions::ceilings;
use kanban_core::transitions::dispatcher::SpawnRetryPolicy;
use kanban_hermes::config::{EnvTunables, KanbanConfig};
use kanban_store::Ceilings;

/// Knobs of one pass. `Default` is the reference's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchOptions {
    /// Decide and report, write nothing, signal nothing, spawn nothing.
    pub dry_run: bool,
    /// Live ceiling on running tasks (`kanban.max_spawn` / `--max`).
    pub max_spawn: Option<i64>,
    pub max_in_progress: Option<i64>,
    pub max_in_progress_per_profile: Option<i64>,
    /// Per-profile ceilings (`kanban.profile_limits`), winning over the above.
    pub profile_limits: BTreeMap<String, i64>,
    pub failure_limit: i64,
    pub default_assignee: Option<String>,
    pub claim_ttl_seconds: i64,
    /// 0 disables stale-heartbeat reclaim.
    pub stale_timeout_seconds: i64,
    pub crash_grace_seconds: i64,
    pub rate_limit_cooldown_seconds: i64,
    pub log_rotate_bytes: u64,
    pub log_backup_count: u32,
    /// Per-run cap on a worker's log (0 = none), enforced by the wrapper.
    pub log_max_run_bytes: u64,
    /// How template agents are told to invoke this board's CLI.
    pub kanban_command: String,
    /// Short-lived callers (one-shot `kanban dispatch`): wait this long at
    /// the end for terminations to finish and release their tasks.
    pub settle_terminations: Option<Duration>,
    /// Backoff of retries after a failed spawn (`kanban.spawn_retry_*`).
    pub spawn_retry: SpawnRetryPolicy,
    /// This dispatcher lives on and watches the workers it starts (the
    /// gateway): if it dies with them, their deaths are not the tasks'
    /// failures. A one-shot `kanban dispatch` does not.
    pub supervises_workers: bool,
    /// Renew this host's lease on the board for this many seconds (a
    /// gateway: `host_lease::host_lease_seconds` of its tick); `None`
    /// registers nothing (a one-shot `kanban dispatch`).
    pub host_lease_seconds: Option<i64>,
    /// Spawn reviewers for unclaimed cards in Review (`kanban.review_dispatch`);
    /// off, they wait for a human verdict.
    pub review_dispatch: bool,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            dry_run: false,
            max_spawn: None,
            max_in_progress: None,
            max_in_progress_per_profile: None,
            profile_limits: BTreeMap::new(),
            failure_limit: FAILURE_LIMIT,
            default_assignee: None,
            claim_ttl_seconds: CLAIM_TTL_SECONDS,
            stale_timeout_seconds: 0,
            crash_grace_seconds: CRASH_GRACE_SECONDS,
            rate_limit_cooldown_seconds: RATE_LIMIT_COOLDOWN_SECONDS,
            log_rotate_bytes: WORKER_LOG_ROTATE_BYTES,
            log_backup_count: WORKER_LOG_BACKUP_COUNT,
            log_max_run_bytes: kanban_core::defaults::WORKER_LOG_MAX_RUN_BYTES,
            kanban_command: "kanban".into(),
            settle_terminations: None,
            spawn_retry: SpawnRetryPolicy::default(),
            supervises_workers: true,
            host_lease_seconds: None,
            review_dispatch: kanban_hermes::config::REVIEW_DISPATCH,
        }
    }
}

impl DispatchOptions {
    /// From the `kanban:` config and the env tunables.
    pub fn from_config(cfg: &KanbanConfig, tun: &EnvTunables) -> Self {
        DispatchOptions {
            max_spawn: cfg.max_spawn.map(i64::from),
            max_in_progress: cfg.max_in_progress.map(i64::from),
            max_in_progress_per_profile: cfg.max_in_progress_per_profile.map(i64::from),
            profile_limits: cfg
                .profile_limits
                .iter()
                .map(|(k, v)| (k.clone(), i64::from(*v)))
                .collect(),
            failure_limit: cfg.failure_limit,
            default_assignee: cfg.default_assignee.clone(),
            claim_ttl_seconds: tun.claim_ttl_seconds,
            stale_timeout_seconds: cfg.dispatch_stale_timeout_seconds,
            crash_grace_seconds: tun.crash_grace_seconds,
            rate_limit_cooldown_seconds: tun.rate_limit_cooldown_seconds,
            log_rotate_bytes: cfg.worker_log_rotate_bytes,
            log_backup_count: cfg.worker_log_backup_count,
            log_max_run_bytes: cfg.worker_log_max_run_bytes,
            spawn_retry: SpawnRetryPolicy {
                base_seconds: cfg.spawn_retry_base_seconds,
                max_seconds: cfg.spawn_retry_max_seconds,
            },
            review_dispatch: cfg.review_dispatch,
            ..Default::default()
        }
    }

    /// The ceilings the store checks inside the claim transaction.
    pub fn ceilings(&self) -> Ceilings {
        Ceilings {
            max_running: self.max_spawn,
            max_in_progress: self.max_in_progress,
            max_per_profile: self.max_in_progress_per_profile,
            profile_limits: self.profile_limits.clone(),
        }
    }

    /// Running ceiling of one profile, as the store applies it (one rule:
    /// `kanban_core::transitions::ceilings::profile_cap`).
    pub fn profile_cap(&self, assignee: &str) -> Option<i64> {
        ceilings::profile_cap(
            &self.profile_limits,
            self.max_in_progress_per_profile,
            assignee,
        )
        .map(|(_, cap)| cap)
    }

    /// Lowest global ceiling.
    pub(crate) fn global_cap(&self) -> Option<i64> {
        Ceilings {
            max_running: self.max_spawn,
            max_in_progress: self.max_in_progress,
            ..Ceilings::default()
        }
        .global_cap()
    }
}
