//! `kanban_request_review` and `kanban_request_changes`: the review flow's
//! two worker tools, on the same store state changes as the
//! `request-review` / `request-changes` verbs.

use kanban_store::{ChangesRequest, ReviewRequest, StoreError};
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
    match cx.store.request_review(&req) {
        Ok(t) => {
            if let Some(w) = &t.ended_worker {
                end_worker(cx.store, t.run_id, w, cx.env.is_own_task(&tid));
            }
            Ok(ok(json!({
                "task_id": tid,
                "run_id": t.run_id,
                "status": t.to.as_str(),
                "reviewer": t.task.assignee,
            })))
        }
        Err(StoreError::Refused { reason, .. } | StoreError::Stale { reason, .. }) => Err(err(
            format!("could not request review for {tid} ({reason})"),
        )),
        Err(e) => Err(store_err(TOOL)(e)),
    }
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
    match cx.store.request_changes(&req) {
        Ok(t) => {
            if let Some(w) = &t.ended_worker {
                end_worker(cx.store, t.run_id, w, cx.env.is_own_task(&tid));
            }
            Ok(ok(json!({
                "task_id": tid,
                "run_id": t.run_id,
                "status": t.to.as_str(),
                "assignee": t.task.assignee,
            })))
        }
        Err(StoreError::Refused { reason, .. } | StoreError::Stale { reason, .. }) => Err(err(
            format!("could not request changes on {tid} ({reason})"),
        )),
        Err(e) => Err(store_err(TOOL)(e)),
    }
}
