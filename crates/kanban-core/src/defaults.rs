//! Every default number of the board in one place, named. Values match the
//! Hermes 0.19.0 reference (§9) unless a comment says otherwise.

/// Claim time-to-live when nothing overrides it (`HERMES_KANBAN_CLAIM_TTL_SECONDS`).
pub const CLAIM_TTL_SECONDS: i64 = 900;
/// A live worker whose heartbeat is older than this no longer extends its claim.
pub const LIVE_PID_HEARTBEAT_STALE_SECONDS: i64 = 3_600;
/// Extra time granted when a reclaimed worker survived termination.
pub const RECLAIM_DEFER_SECONDS: i64 = 120;
/// Workers younger than this are not declared crashed (`HERMES_KANBAN_CRASH_GRACE_SECONDS`).
pub const CRASH_GRACE_SECONDS: i64 = 30;
/// Stale-running detection in the gateway (`kanban.dispatch_stale_timeout_seconds`).
pub const GATEWAY_STALE_TIMEOUT_SECONDS: i64 = 14_400;
/// Circuit-breaker threshold when neither the task nor the config sets one.
pub const FAILURE_LIMIT: i64 = 2;
/// Consecutive exit-0-without-completion runs tolerated before blocking.
pub const PROTOCOL_VIOLATION_STREAK_LIMIT: i64 = 3;
/// How many runs back the protocol-violation streak scan looks.
pub const PROTOCOL_VIOLATION_SCAN_RUNS: i64 = 50;
/// Same-fingerprint crashes in one pass that mark a systemic failure.
pub const SYSTEMIC_CRASH_THRESHOLD: usize = 3;
/// Same-kind re-blocks after which a task is routed to triage.
pub const BLOCK_RECURRENCE_LIMIT: i64 = 2;
/// Exit status of a worker that hit a provider rate limit (EX_TEMPFAIL).
pub const RATE_LIMIT_EXIT_CODE: i32 = 75;
/// Cooldown after a rate-limited run before the task is spawned again.
pub const RATE_LIMIT_COOLDOWN_SECONDS: i64 = 300;
/// A completed run this recent guards against an accidental respawn.
pub const RECENT_SUCCESS_WINDOW_SECONDS: i64 = 3_600;
/// A pull-request URL commented this recently guards against a respawn.
pub const ACTIVE_PR_WINDOW_SECONDS: i64 = 86_400;
/// Headroom subtracted from max runtime for the worker's terminal timeout.
pub const TERMINAL_TIMEOUT_HEADROOM_SECONDS: i64 = 30;
/// Worker log size that triggers rotation at spawn.
pub const WORKER_LOG_ROTATE_BYTES: u64 = 2 * 1024 * 1024;
/// Rotated worker log generations kept.
pub const WORKER_LOG_BACKUP_COUNT: u32 = 1;
/// Most bytes one run may write into its worker log: past it the run's
/// head and latest output are kept around a cut note (0 = no cap).
pub const WORKER_LOG_MAX_RUN_BYTES: u64 = 8 * 1024 * 1024;
/// Bytes of a worker log that `kanban log` and the log route return when
/// no range is asked for (the latest ones).
pub const LOG_VIEW_DEFAULT_TAIL_BYTES: u64 = 256 * 1024;
/// Largest attachment accepted.
pub const ATTACHMENT_MAX_BYTES: u64 = 25 * 1024 * 1024;
/// Longest attachment file name accepted.
pub const ATTACHMENT_NAME_MAX_CHARS: usize = 200;
/// `last_failure_error` is truncated to this many characters.
pub const FAILURE_ERROR_MAX_CHARS: usize = 500;
/// First line of a summary kept in the `completed` event payload.
pub const COMPLETED_EVENT_SUMMARY_CHARS: usize = 400;
/// Busy timeout of every SQLite connection (`HERMES_KANBAN_BUSY_TIMEOUT_MS`).
pub const BUSY_TIMEOUT_MS: u64 = 120_000;
/// Gateway dispatch tick (`kanban.dispatch_interval_seconds`).
pub const DISPATCH_INTERVAL_SECONDS: u64 = 60;
/// Health telemetry: bad ticks before the "dispatcher stuck" warning.
pub const STUCK_WARNING_BAD_TICKS: u32 = 6;
/// Health telemetry: minimum seconds between two "stuck" warnings.
pub const STUCK_WARNING_INTERVAL_SECONDS: u64 = 300;
/// Worker context caps (reference §5.3).
pub const CONTEXT_PRIOR_RUNS: usize = 10;
pub const CONTEXT_COMMENTS: usize = 30;
pub const CONTEXT_FIELD_BYTES: usize = 4 * 1024;
pub const CONTEXT_BODY_BYTES: usize = 8 * 1024;
pub const CONTEXT_COMMENT_BYTES: usize = 2 * 1024;
pub const CONTEXT_RECENT_ROLE_RUNS: usize = 5;
/// Garbage collection defaults.
pub const GC_EVENT_RETENTION_DAYS: i64 = 30;
pub const GC_LOG_RETENTION_DAYS: i64 = 30;
/// Events returned per poll by feeds (`watch`, WebSocket).
pub const EVENT_BATCH_LIMIT: usize = 200;
/// Default and ceiling of the `kanban_list` tool page.
pub const TOOL_LIST_DEFAULT_LIMIT: usize = 50;
pub const TOOL_LIST_MAX_LIMIT: usize = 200;
/// Spawn-failure retries: first delay (doubled per consecutive failure),
/// `kanban.spawn_retry_base_seconds`. Ours: the reference retries on every tick.
pub const SPAWN_RETRY_BASE_SECONDS: i64 = 5;
/// Longest delay between two spawn attempts (`kanban.spawn_retry_max_seconds`).
pub const SPAWN_RETRY_MAX_SECONDS: i64 = 300;
/// Jitter: each delay is shortened by up to this fraction (per task and
/// attempt), so tasks that failed together do not retry together.
pub const SPAWN_RETRY_JITTER: f64 = 0.25;
/// Workers killed by an outside signal within one window that make a
/// "mass death" (OOM kill of a cgroup, an operator's kill of the lot).
pub const MASS_DEATH_MIN_WORKERS: usize = 3;
/// The window of a mass death, and how long a signal death waits before it
/// is judged (so every death of that window is known).
pub const MASS_DEATH_WINDOW_MS: u64 = 1_000;
/// Consecutive deaths of one task excused by the host or the gateway going
/// away; past it they count again, so a task that takes its host down
/// with it still trips the breaker.
pub const EXCUSED_DEATH_STREAK_LIMIT: i64 = 3;
