//! Payloads of the events a backend appends, built in one place so every
//! backend writes the same keys in the same order (the reference's keys;
//! the stored JSON text is shared with the Python implementation).
//!
//! Builders take plain values and return the payload; `None` means "no
//! payload" (stored as NULL, as the reference stores an empty one).

use serde_json::{Map, Value, json};

use crate::defaults::{BLOCK_RECURRENCE_LIMIT, COMPLETED_EVENT_SUMMARY_CHARS};
use crate::{EventKind, Status};

/// Reason recorded in the `blocked` event of a task created blocked.
pub const CREATED_BLOCKED_REASON: &str = "created blocked (initial_status=blocked)";
/// Reason of the `claim_rejected` event of a ready task whose parents are
/// not finished.
pub const PARENTS_NOT_DONE: &str = "parents_not_done";
/// Reason recorded on children a reopened parent pushes back to todo.
pub const PARENT_REOPENED: &str = "parent_reopened";
/// Characters of the summary kept in `completion_blocked_hallucination`.
pub const HALLUCINATION_PREVIEW_CHARS: usize = 200;

/// Python's `str.splitlines()` separators, so the first line matches.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\x0b'
            | '\x0c'
            | '\x1c'
            | '\x1d'
            | '\x1e'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// First line of the stripped text, at most `max` characters; `None` if blank.
pub fn first_line_n(text: &str, max: usize) -> Option<String> {
    let line: String = text
        .trim()
        .split(is_line_break)
        .next()?
        .chars()
        .take(max)
        .collect();
    if line.is_empty() { None } else { Some(line) }
}

/// First line for event payloads (400 characters).
pub fn first_line(text: &str) -> Option<String> {
    first_line_n(text, COMPLETED_EVENT_SUMMARY_CHARS)
}

/// `base` with every key of `extra` set (both objects; otherwise `base`).
pub fn merge(mut base: Value, extra: &Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

/// What a `created` event records.
#[derive(Debug, Clone, Copy)]
pub struct CreatedFacts<'a> {
    pub assignee: Option<&'a str>,
    pub status: Status,
    pub parents: &'a [String],
    pub tenant: Option<&'a str>,
    pub branch_name: Option<&'a str>,
    pub skills: Option<&'a [String]>,
    pub goal_mode: bool,
}

pub fn created(f: &CreatedFacts<'_>) -> Value {
    json!({
        "assignee": f.assignee,
        "status": f.status.as_str(),
        "parents": f.parents,
        "tenant": f.tenant,
        "branch_name": f.branch_name,
        "skills": f.skills.filter(|s| !s.is_empty()),
        "goal_mode": if f.goal_mode { Some(true) } else { None },
    })
}

/// The `blocked` event written with a task created blocked.
pub fn created_blocked() -> Value {
    json!({"reason": CREATED_BLOCKED_REASON, "kind": null, "recurrences": 0})
}

pub fn claimed(lock: &str, expires: i64, run_id: i64, from_review: bool) -> Value {
    let mut p = json!({"lock": lock, "expires": expires, "run_id": run_id});
    if from_review {
        p["source_status"] = json!(Status::Review.as_str());
    }
    p
}

pub fn claim_rejected() -> Value {
    json!({"reason": PARENTS_NOT_DONE})
}

pub fn heartbeat(note: Option<&str>) -> Option<Value> {
    note.filter(|n| !n.is_empty()).map(|n| json!({"note": n}))
}

/// Payload of the block `event` a decision named (`blocked`,
/// `dependency_wait`, `block_loop_detected`).
pub fn blocked(
    event: EventKind,
    reason: Option<&str>,
    kind: Option<&str>,
    recurrences: Option<i64>,
) -> Value {
    match event {
        EventKind::DependencyWait => json!({"reason": reason, "kind": kind}),
        EventKind::BlockLoopDetected => json!({
            "reason": reason, "kind": kind, "recurrences": recurrences,
            "limit": BLOCK_RECURRENCE_LIMIT,
        }),
        _ => json!({"reason": reason, "kind": kind, "recurrences": recurrences}),
    }
}

/// `unblocked`: the status only when it is not `ready` (parents pending).
pub fn unblocked(to: Status, reason: Option<&str>) -> Value {
    let mut p = Map::new();
    if to != Status::Ready {
        p.insert("status".into(), json!(to.as_str()));
    }
    if let Some(r) = reason.filter(|r| !r.is_empty()) {
        p.insert("reason".into(), json!(r));
    }
    Value::Object(p)
}

pub fn scheduled(reason: Option<&str>) -> Value {
    json!({"reason": reason})
}

pub fn promoted_manual(actor: Option<&str>, reason: Option<&str>, forced: bool) -> Value {
    json!({
        "actor": actor.unwrap_or("user"),
        "reason": reason,
        "forced": forced,
    })
}

/// An operator reclaim: the event payload, the run's error and metadata.
#[derive(Debug, Clone, Copy)]
pub struct ManualReclaim<'a> {
    pub reason: Option<&'a str>,
    pub prev_lock: Option<&'a str>,
    pub prev_pid: Option<i64>,
    /// The claim was taken on this host.
    pub host_local: bool,
}

impl ManualReclaim<'_> {
    pub fn event(&self) -> Value {
        json!({
            "manual": true, "reason": self.reason, "prev_lock": self.prev_lock,
            "prev_pid": self.prev_pid, "host_local": self.host_local,
        })
    }

    pub fn run_error(&self) -> String {
        match self.reason {
            Some(r) if !r.is_empty() => format!("manual_reclaim: {r}"),
            _ => format!("manual_reclaim lock={}", self.prev_lock.unwrap_or("None")),
        }
    }

    pub fn run_metadata(&self) -> Value {
        json!({"prev_pid": self.prev_pid, "host_local": self.host_local})
    }
}

/// A claim lock (`host:pid`) taken on `host`.
pub fn lock_is_on_host(lock: &str, host: &str) -> bool {
    lock.strip_prefix(host).is_some_and(|r| r.starts_with(':'))
}

/// `status` event of a direct move.
pub fn status_changed(to: Status) -> Value {
    json!({"status": to.as_str()})
}

/// Summary of the run a direct move closes.
pub fn status_changed_run_summary(to: Status) -> String {
    format!("status changed to {to} (dashboard/direct)")
}

/// `status` event of a ready child a reopened parent sent back to todo.
pub fn parent_reopened(to: Status, parent: &str) -> Value {
    json!({"status": to.as_str(), "reason": PARENT_REOPENED, "parent": parent})
}

/// What a `completed` event records.
#[derive(Debug, Clone, Default)]
pub struct CompletedFacts<'a> {
    pub result: Option<&'a str>,
    /// The summary, else the result.
    pub summary: Option<&'a str>,
    pub verified_cards: &'a [String],
    /// `metadata.artifacts` of the completion, if any.
    pub metadata: Option<&'a Value>,
}

pub fn completed(f: &CompletedFacts<'_>) -> Value {
    let mut p = json!({
        "result_len": f.result.map_or(0, |r| r.chars().count()),
        "summary": f.summary.and_then(first_line),
    });
    if !f.verified_cards.is_empty() {
        p["verified_cards"] = json!(f.verified_cards);
    }
    if let Some(Value::Array(items)) = f.metadata.and_then(|m| m.get("artifacts")) {
        let artifacts: Vec<&str> = items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if !artifacts.is_empty() {
            p["artifacts"] = json!(artifacts);
        }
    }
    p
}

pub fn completion_blocked_hallucination(
    phantom: &[String],
    verified: &[String],
    summary: Option<&str>,
) -> Value {
    let preview = summary.and_then(|s| first_line_n(s, HALLUCINATION_PREVIEW_CHARS));
    json!({"phantom_cards": phantom, "verified_cards": verified, "summary_preview": preview})
}

pub fn suspected_hallucinated_references(phantoms: &[String]) -> Value {
    json!({"phantom_refs": phantoms, "source": "completion_summary"})
}

/// `edited` after a back-fill of a done task's handoff.
pub fn edited_handoff(with_metadata: bool, result: Option<&str>, summary: Option<&str>) -> Value {
    let mut fields = vec!["result", "summary"];
    if with_metadata {
        fields.push("metadata");
    }
    json!({
        "fields": fields,
        "result_len": result.map_or(0, |r| r.chars().count()),
        "summary": summary.and_then(first_line),
    })
}

pub fn reprioritized(priority: i64) -> Value {
    json!({"priority": priority})
}

pub fn assigned(assignee: Option<&str>, source: Option<&str>) -> Value {
    let mut p = json!({"assignee": assignee});
    if let Some(src) = source {
        p["source"] = json!(src);
    }
    p
}

/// `linked` / `unlinked`.
pub fn link(parent: &str, child: &str) -> Value {
    json!({"parent": parent, "child": child})
}

pub fn commented(author: &str, body: &str) -> Value {
    json!({"author": author, "len": body.chars().count()})
}

pub fn attached(filename: &str, size: i64, by: Option<&str>) -> Value {
    json!({"filename": filename, "size": size, "by": by})
}

pub fn attachment_removed(filename: &str) -> Value {
    json!({"filename": filename})
}

pub fn spawned(pid: i64) -> Value {
    json!({"pid": pid})
}

pub fn spawn_failed(error: &str, failures: i64) -> Value {
    json!({"error": error, "failures": failures})
}

/// Metadata of the `spawn_failed` run below the breaker's limit.
pub fn spawn_failed_run_metadata(failures: i64) -> Value {
    json!({"failures": failures})
}

pub fn tip_scratch_workspace(message: &str) -> Value {
    json!({"message": message})
}

pub fn respawn_guarded(reason: &str) -> Value {
    json!({"reason": reason})
}

/// What a `claim_extended` event records (a live, heartbeating worker).
#[derive(Debug, Clone, Copy)]
pub struct ClaimExtension<'a> {
    pub worker_pid: Option<i64>,
    pub claim_lock: Option<&'a str>,
    pub claim_expires_was: Option<i64>,
    pub claim_expires_now: i64,
    pub last_heartbeat_at: Option<i64>,
}

pub fn claim_extended(f: &ClaimExtension<'_>) -> Value {
    json!({
        "reason": "pid_alive", "worker_pid": f.worker_pid, "claim_lock": f.claim_lock,
        "claim_expires_was": f.claim_expires_was, "claim_expires_now": f.claim_expires_now,
        "last_heartbeat_at": f.last_heartbeat_at,
    })
}

/// `reclaim_deferred`, with the termination facts in `extra`.
pub fn reclaim_deferred(
    reason: &str,
    claim_lock: Option<&str>,
    until: i64,
    extra: &Value,
) -> Value {
    merge(
        json!({"reason": reason, "claim_lock": claim_lock, "claim_expires_now": until}),
        extra,
    )
}

/// What the reference's `reclaimed` event of a released claim records.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRelease<'a> {
    pub stale_lock: Option<&'a str>,
    pub worker_pid: Option<i64>,
    pub claim_expires: Option<i64>,
    pub last_heartbeat_at: Option<i64>,
    pub now: i64,
    pub host_local: bool,
    pub heartbeat_stale: bool,
}

pub fn reclaimed(f: &ClaimRelease<'_>) -> Value {
    json!({
        "stale_lock": f.stale_lock, "worker_pid": f.worker_pid, "claim_expires": f.claim_expires,
        "last_heartbeat_at": f.last_heartbeat_at, "now": f.now,
        "host_local": f.host_local, "heartbeat_stale": f.heartbeat_stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_follows_python_splitlines() {
        assert_eq!(first_line("  one\u{2028}two").as_deref(), Some("one"));
        assert_eq!(first_line("a\rb").as_deref(), Some("a"));
        assert_eq!(first_line("   "), None);
        assert_eq!(first_line_n("abcdef", 3).as_deref(), Some("abc"));
    }

    #[test]
    fn key_order_is_the_references() {
        let parents = vec!["t_1".to_string()];
        let c = created(&CreatedFacts {
            assignee: Some("a"),
            status: Status::Todo,
            parents: &parents,
            tenant: None,
            branch_name: None,
            skills: Some(&[]),
            goal_mode: false,
        });
        assert_eq!(
            c.to_string(),
            r#"{"assignee":"a","status":"todo","parents":["t_1"],"tenant":null,"branch_name":null,"skills":null,"goal_mode":null}"#
        );
        assert_eq!(
            claimed("h:1", 9, 3, true).to_string(),
            r#"{"lock":"h:1","expires":9,"run_id":3,"source_status":"review"}"#
        );
        assert_eq!(
            blocked(
                EventKind::BlockLoopDetected,
                Some("r"),
                Some("capability"),
                Some(2)
            )
            .to_string(),
            r#"{"reason":"r","kind":"capability","recurrences":2,"limit":2}"#
        );
        assert_eq!(
            blocked(EventKind::DependencyWait, None, Some("dependency"), Some(1)).to_string(),
            r#"{"reason":null,"kind":"dependency"}"#
        );
    }

    #[test]
    fn unblocked_names_only_a_pending_status() {
        assert_eq!(unblocked(Status::Ready, None), json!({}));
        assert_eq!(
            unblocked(Status::Todo, Some("go")),
            json!({"status": "todo", "reason": "go"})
        );
        assert_eq!(unblocked(Status::Ready, Some("")), json!({}));
    }

    #[test]
    fn completed_keeps_verified_cards_and_artifacts() {
        let meta = json!({"artifacts": [" out.txt ", "", 3]});
        let cards = vec!["t_2".to_string()];
        let p = completed(&CompletedFacts {
            result: Some("résumé"),
            summary: Some("first\nsecond"),
            verified_cards: &cards,
            metadata: Some(&meta),
        });
        assert_eq!(
            p.to_string(),
            r#"{"result_len":6,"summary":"first","verified_cards":["t_2"],"artifacts":["out.txt"]}"#
        );
        assert_eq!(
            completed(&CompletedFacts::default()).to_string(),
            r#"{"result_len":0,"summary":null}"#
        );
    }

    #[test]
    fn manual_reclaim_texts() {
        let r = ManualReclaim {
            reason: None,
            prev_lock: Some("h:1"),
            prev_pid: Some(5),
            host_local: true,
        };
        assert_eq!(r.run_error(), "manual_reclaim lock=h:1");
        let with = ManualReclaim {
            reason: Some("stuck"),
            ..r
        };
        assert_eq!(with.run_error(), "manual_reclaim: stuck");
        assert_eq!(
            ManualReclaim {
                prev_lock: None,
                ..r
            }
            .run_error(),
            "manual_reclaim lock=None"
        );
        assert!(lock_is_on_host("box:12", "box"));
        assert!(!lock_is_on_host("boxer:12", "box"));
        assert!(!lock_is_on_host("box", "box"));
    }

    #[test]
    fn merge_sets_extra_keys() {
        assert_eq!(
            merge(json!({"a": 1, "b": 2}), &json!({"b": 3, "c": 4})),
            json!({"a": 1, "b": 3, "c": 4})
        );
        assert_eq!(merge(json!({"a": 1}), &Value::Null), json!({"a": 1}));
    }
}
