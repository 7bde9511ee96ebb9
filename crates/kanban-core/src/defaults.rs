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
/// Notifier: consecutive send failures before a subscription is dropped.
pub const NOTIFY_MAX_FAILURES: i64 = 3;
