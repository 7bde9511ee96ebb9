//! `kanban_request_review` and `kanban_request_changes`: the review flow's
//! two worker tools, on the same store state changes as the
//! `request-review` / `request-changes` verbs.

use kanban_store::{ChangesRequest, ReviewRequest, StoreError, Transitioned};
use serde_json::{Value, json};

use super::args::{RequestChangesArgs, RequestReviewArgs};
use super::handlers::{ToolCx, ToolResult, err, json_type, ok, store_err, text};
use crate::worker_process::end_worker;

pub fn request_review(cx: &ToolCx<'_>, a: RequestReviewArgs) -> ToolResult {
    const TOOL: &str = "kanban_request_review";
    let tid = cx.env.task_or_own(a.task_id.as_deref())?;
    cx.env.check_lifecycle(&tid)?;
    let Some(summary) = text(&a.summary) else {
        return Err(err(
            "summary is required: say what you did and what the reviewer should check",
        ));
    };
    let metadata = match a.metadata {
        None | Some(Value::Null) => None,
        Some(m @ Value::Object(_)) => Some(m),
        Some(other) => {
            return Err(err(format!(
                "metadata must be an object/dict, got {}",
                json_type(&other)
            )));
        }
    };
    let req = ReviewRequest {
        task_id: tid.clone(),
        summary,
        metadata,
        reviewer: a.reviewer,
        expected_run_id: cx.env.run_id_for(&tid),
    };
    let done = cx.store.request_review(&req);
    reply(
        cx,
        TOOL,
        &tid,
        done,
        "request review for",
        |t| json!({"reviewer": t.task.assignee}),
    )
}

pub fn request_changes(cx: &ToolCx<'_>, a: RequestChangesArgs) -> ToolResult {
    const TOOL: &str = "kanban_request_changes";
    let tid = cx.env.task_or_own(a.task_id.as_deref())?;
    cx.env.check_lifecycle(&tid)?;
    let Some(reason) = text(&a.reason) else {
        return Err(err(
            "reason is required: say what the implementer must change",
        ));
    };
    let req = ChangesRequest {
        task_id: tid.clone(),
        reason,
        expected_run_id: cx.env.run_id_for(&tid),
    };
    let done = cx.store.request_changes(&req);
    reply(
        cx,
        TOOL,
        &tid,
        done,
        "request changes on",
        |t| json!({"assignee": t.task.assignee}),
    )
}

/// The tool result of a review state change: the ended worker (if any) is
/// stopped; refusals name the task and the reason.
fn reply(
    cx: &ToolCx<'_>,
    tool: &str,
    tid: &str,
    done: Result<Transitioned, StoreError>,
    verb: &str,
    extra: impl Fn(&Transitioned) -> Value,
) -> ToolResult {
    match done {
        Ok(t) => {
            if let Some(w) = &t.ended_worker {
                end_worker(cx.store, t.run_id, w, cx.env.is_own_task(tid));
            }
            let mut fields = json!({"task_id": tid, "run_id": t.run_id, "status": t.to.as_str()});
            if let (Some(obj), Value::Object(more)) = (fields.as_object_mut(), extra(&t)) {
                obj.extend(more);
            }
            Ok(ok(fields))
        }
        Err(StoreError::Refused { reason, .. } | StoreError::Stale { reason, .. }) => {
            Err(err(format!("could not {verb} {tid} ({reason})")))
        }
        Err(e) => Err(store_err(tool)(e)),
    }
}
