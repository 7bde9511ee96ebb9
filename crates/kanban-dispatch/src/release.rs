//! A release decided by the pass (TTL, stale heartbeat, max runtime) and
//! waiting for its worker to be gone. The dispatcher's pass state holds
//! these between passes, and the decision is recorded with the attempt
//! (`record_intent`) so any process can finish it.

use kanban_store::dispatch_ops::TerminationIntent;
use serde_json::{Value, json};

/// Why a task is released once its worker is gone.
#[derive(Debug, Clone)]
pub(crate) enum ReleaseWhy {
    /// Claim expired while the worker was alive but silent.
    Ttl { payload: Value },
    /// No heartbeat for too long.
    Stale { payload: Value, error: String },
    /// Over its max runtime.
    Timeout { elapsed: i64, limit: i64 },
}

impl ReleaseWhy {
    /// `kind` of the recorded intent.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ReleaseWhy::Ttl { .. } => "ttl",
            ReleaseWhy::Stale { .. } => "stale",
            ReleaseWhy::Timeout { .. } => "timeout",
        }
    }

    pub(crate) fn detail(&self) -> Value {
        match self {
            ReleaseWhy::Ttl { payload } => json!({"payload": payload}),
            ReleaseWhy::Stale { payload, error } => json!({"payload": payload, "error": error}),
            ReleaseWhy::Timeout { elapsed, limit } => json!({"elapsed": elapsed, "limit": limit}),
        }
    }

    /// The decision a recorded intent carries (`None`: not one of ours).
    pub(crate) fn from_intent(i: &TerminationIntent) -> Option<ReleaseWhy> {
        let d = &i.detail;
        let payload = || d.get("payload").cloned().unwrap_or(Value::Null);
        Some(match i.kind.as_str() {
            "ttl" => ReleaseWhy::Ttl { payload: payload() },
            "stale" => ReleaseWhy::Stale {
                payload: payload(),
                error: d.get("error")?.as_str()?.to_string(),
            },
            "timeout" => ReleaseWhy::Timeout {
                elapsed: d.get("elapsed")?.as_i64()?,
                limit: d.get("limit")?.as_i64()?,
            },
            _ => return None,
        })
    }
}

/// A release waiting for a termination to finish.
#[derive(Debug, Clone)]
pub(crate) struct PendingRelease {
    pub(crate) task_id: String,
    pub(crate) claim_lock: Option<String>,
    pub(crate) run_id: Option<i64>,
    pub(crate) worker_pid: Option<i64>,
    /// The worker ran on this machine (it could be signalled).
    pub(crate) host_local: bool,
    pub(crate) why: ReleaseWhy,
}
