//! The worker context: the markdown a spawned worker reads to understand its
//! task (reference §5.3). Pure text building from plain data, so the CLI
//! (`kanban context`), the dispatcher's prompt templates and the MCP server
//! all render the same text. Callers gather the rows and pass a timestamp
//! formatter (local time is I/O, which this crate does not do).

use serde_json::Value;

use crate::defaults::{
    CONTEXT_BODY_BYTES, CONTEXT_COMMENT_BYTES, CONTEXT_COMMENTS, CONTEXT_FIELD_BYTES,
    CONTEXT_PRIOR_RUNS, TERMINAL_TIMEOUT_HEADROOM_SECONDS,
};
use crate::{Attachment, Comment, Run, Task};

/// A finished parent's handoff, as the child worker sees it.
#[derive(Debug, Clone, Default)]
pub struct ParentHandoff {
    pub task_id: String,
    /// Summary of the parent's latest `completed` run, if any.
    pub summary: Option<String>,
    /// Metadata of that run.
    pub metadata: Option<Value>,
    /// `tasks.result`, the fallback for tasks completed without a run.
    pub result: Option<String>,
    /// When the handoff was produced (run end, else task completion).
    pub completed_at: Option<i64>,
}

/// One recent completed run of the same assignee on another task.
#[derive(Debug, Clone, Default)]
pub struct RecentWork {
    pub task_id: String,
    pub title: String,
    pub summary: Option<String>,
    pub ended_at: i64,
}

/// Everything the context text is built from.
pub struct WorkerContextInput<'a> {
    pub task: &'a Task,
    /// Unix seconds used for every relative age in one rendering.
    pub now: i64,
    /// The `TERMINAL_TIMEOUT` the caller's environment carries, if any.
    pub terminal_timeout_env: Option<&'a str>,
    pub attachments: &'a [Attachment],
    /// All runs of the task, oldest first (open runs are skipped).
    pub runs: &'a [Run],
    /// Handoffs of parents that are done, in parent-id order.
    pub parents: &'a [ParentHandoff],
    /// Up to `CONTEXT_RECENT_ROLE_RUNS` recent completions by the assignee.
    pub recent_work: &'a [RecentWork],
    /// All comments, oldest first.
    pub comments: &'a [Comment],
    /// Renders a timestamp as `YYYY-MM-DD HH:MM` in the reader's zone.
    pub format_ts: &'a dyn Fn(i64) -> String,
}

/// Coarse age (`just now`, `5m ago`, `18h ago`, `3d ago`): a bare date does
/// not make a model question whether old handoffs still hold.
pub fn relative_age(ts: i64, now: i64) -> String {
    let delta = now - ts;
    if delta < 60 {
        "just now".to_string()
    } else if delta < 3_600 {
        format!("{}m ago", delta / 60)
    } else if delta < 86_400 {
        format!("{}h ago", delta / 3_600)
    } else {
        format!("{}d ago", delta / 86_400)
    }
}

/// Trimmed text cut to `limit` characters with a visible marker, so one
/// giant summary cannot crowd out the rest of the prompt.
pub fn cap(s: Option<&str>, limit: usize) -> String {
    let Some(s) = s else { return String::new() };
    let s = s.trim();
    let total = s.chars().count();
    if total <= limit {
        return s.to_string();
    }
    let head: String = s.chars().take(limit).collect();
    format!("{head}… [truncated, {} chars omitted]", total - limit)
}

/// The terminal timeout a worker gets: its runtime cap minus headroom,
/// unless the environment already allows at least that much.
pub fn worker_terminal_timeout(max_runtime: Option<i64>, current: Option<&str>) -> Option<String> {
    let runtime = max_runtime.filter(|r| *r > 0)?;
    let desired = (runtime - TERMINAL_TIMEOUT_HEADROOM_SECONDS).max(1);
    let existing = current
        .and_then(|c| c.trim().parse::<i64>().ok())
        .unwrap_or(0);
    (existing < desired).then(|| desired.to_string())
}

fn non_blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|v| !v.trim().is_empty())
}

fn metadata_line(meta: &Value) -> Option<String> {
    if meta.is_null() || meta.as_object().is_some_and(|m| m.is_empty()) {
        return None;
    }
    let text = python_json(meta);
    Some(format!(
        "_metadata_: `{}`",
        cap(Some(&text), CONTEXT_FIELD_BYTES)
    ))
}

/// JSON the way Python's `json.dumps(..., sort_keys=True)` writes it
/// (`", "` and `": "` separators), so both implementations render the
/// same prompt bytes. serde_json's map is already key-ordered.
pub fn python_json(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(python_json).collect::<Vec<_>>().join(", ")
            )
        }
        // The reference dumps with `sort_keys=True`.
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", Value::String((*k).clone()), python_json(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        other => other.to_string(),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

/// Build the worker context markdown.
pub fn build_worker_context(input: &WorkerContextInput<'_>) -> String {
    let t = input.task;
    let now = input.now;
    let stamp = |ts: i64| format!("{}, {}", (input.format_ts)(ts), relative_age(ts, now));
    let mut lines: Vec<String> = Vec::new();

    lines.push(format!("# Kanban task {}: {}", t.id, t.title));
    lines.push(String::new());
    lines.push(format!(
        "Assignee: {}",
        t.assignee.as_deref().unwrap_or("(unassigned)")
    ));
    lines.push(format!("Status:   {}", t.status));
    if let Some(tenant) = &t.tenant {
        lines.push(format!("Tenant:   {tenant}"));
    }
    lines.push(format!(
        "Workspace: {} @ {}",
        t.workspace_kind,
        t.workspace_path.as_deref().unwrap_or("(unresolved)")
    ));
    if let Some(max) = t.max_runtime_seconds {
        lines.push(format!("Max runtime: {max}s"));
        let effective = worker_terminal_timeout(Some(max), input.terminal_timeout_env)
            .or_else(|| input.terminal_timeout_env.map(str::to_string));
        if let Some(tt) = effective {
            lines.push(format!("Terminal timeout: {tt}s"));
        }
    }
    if let Some(branch) = &t.branch_name {
        lines.push(format!("Branch:   {branch}"));
    }
    lines.push(String::new());

    if let Some(body) = non_blank(&t.body) {
        lines.push("## Body".into());
        lines.push(cap(Some(body), CONTEXT_BODY_BYTES));
        lines.push(String::new());
    }

    if !input.attachments.is_empty() {
        lines.push("## Attachments".into());
        lines.push(
            "Files attached to this task. Read them with the file/terminal tools at the \
             absolute paths below:"
                .into(),
        );
        for a in input.attachments {
            let kb = if a.size > 0 {
                (a.size + 1023) / 1024
            } else {
                0
            };
            let size = if kb > 0 {
                format!(", {kb} KB")
            } else {
                String::new()
            };
            let ctype = a
                .content_type
                .as_deref()
                .map(|c| format!(", {c}"))
                .unwrap_or_default();
            lines.push(format!(
                "- `{}`{ctype}{size} → `{}`",
                a.filename, a.stored_path
            ));
        }
        lines.push(String::new());
    }

    let closed: Vec<&Run> = input.runs.iter().filter(|r| r.ended_at.is_some()).collect();
    let omitted = closed.len().saturating_sub(CONTEXT_PRIOR_RUNS);
    let shown = &closed[omitted..];
    if !shown.is_empty() {
        lines.push("## Prior attempts on this task".into());
        if omitted > 0 {
            lines.push(format!(
                "_({omitted} earlier {} omitted; showing most recent {})_",
                plural(omitted, "attempt"),
                shown.len()
            ));
        }
        for (i, run) in shown.iter().enumerate() {
            let outcome = run.outcome.as_deref().unwrap_or(&run.status);
            lines.push(format!(
                "### Attempt {} — {outcome} ({}, {})",
                omitted + i + 1,
                run.profile.as_deref().unwrap_or("(unknown)"),
                stamp(run.started_at)
            ));
            if let Some(s) = non_blank(&run.summary) {
                lines.push(cap(Some(s), CONTEXT_FIELD_BYTES));
            }
            if let Some(e) = non_blank(&run.error) {
                lines.push(format!("_error_: {}", cap(Some(e), CONTEXT_FIELD_BYTES)));
            }
            if let Some(m) = run.metadata.as_ref().and_then(metadata_line) {
                lines.push(m);
            }
            lines.push(String::new());
        }
    }

    if !input.parents.is_empty() {
        lines.push("## Parent task results".into());
        lines.push(
            "_Handoffs from upstream tasks, captured when each parent completed (see age \
             below). These are point-in-time snapshots, not live state — if a result drives \
             your current work and it's not recent, re-verify against the source before \
             acting on it as current._"
                .into(),
        );
        for p in input.parents {
            let age = p
                .completed_at
                .map(|ts| format!(" (completed {})", relative_age(ts, now)));
            lines.push(format!("### {}{}", p.task_id, age.unwrap_or_default()));
            if let Some(s) = non_blank(&p.summary) {
                lines.push(cap(Some(s), CONTEXT_FIELD_BYTES));
            } else if let Some(r) = p.result.as_deref().filter(|r| !r.is_empty()) {
                lines.push(cap(Some(r), CONTEXT_FIELD_BYTES));
            } else {
                lines.push("(no result recorded)".into());
            }
            if let Some(m) = p.metadata.as_ref().and_then(metadata_line) {
                lines.push(m);
            }
            lines.push(String::new());
        }
    }

    if let (Some(assignee), false) = (&t.assignee, input.recent_work.is_empty()) {
        lines.push(format!("## Recent work by @{assignee}"));
        for w in input.recent_work {
            let first: String = w
                .summary
                .as_deref()
                .and_then(|s| s.trim().lines().next())
                .map(|l| l.chars().take(200).collect())
                .unwrap_or_else(|| "(no summary)".to_string());
            lines.push(format!(
                "- {} — {} ({}): {first}",
                w.task_id,
                w.title,
                stamp(w.ended_at)
            ));
        }
        lines.push(String::new());
    }

    let omitted_c = input.comments.len().saturating_sub(CONTEXT_COMMENTS);
    let shown_c = &input.comments[omitted_c..];
    if !shown_c.is_empty() {
        lines.push("## Comment thread".into());
        if omitted_c > 0 {
            lines.push(format!(
                "_({omitted_c} earlier {} omitted; showing most recent {})_",
                plural(omitted_c, "comment"),
                shown_c.len()
            ));
        }
        for c in shown_c {
            // Framed as a worker comment so an author label like "system"
            // cannot pass for an instruction above the body.
            let author = c.author.replace('`', "");
            lines.push(format!(
                "comment from worker `{author}` at {}:",
                stamp(c.created_at)
            ));
            lines.push(cap(Some(&c.body), CONTEXT_COMMENT_BYTES));
            lines.push(String::new());
        }
    }

    let mut text = lines.join("\n").trim_end().to_string();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;

    fn task() -> Task {
        Task {
            id: "t_00000001".into(),
            title: "Write docs".into(),
            body: Some("Explain it".into()),
            assignee: Some("writer".into()),
            status: Status::Running,
            priority: 0,
            created_by: Some("user".into()),
            created_at: 0,
            started_at: None,
            completed_at: None,
            workspace_kind: "scratch".into(),
            workspace_path: None,
            branch_name: None,
            project_id: None,
            claim_lock: None,
            claim_expires: None,
            tenant: None,
            result: None,
            idempotency_key: None,
            consecutive_failures: 0,
            worker_pid: None,
            last_failure_error: None,
            max_runtime_seconds: Some(600),
            last_heartbeat_at: None,
            current_run_id: None,
            workflow_template_id: None,
            current_step_key: None,
            skills: None,
            model_override: None,
            max_retries: None,
            goal_mode: false,
            goal_max_turns: None,
            session_id: None,
            block_kind: None,
            block_recurrences: 0,
        }
    }

    fn comment(i: i64) -> Comment {
        Comment {
            id: i,
            task_id: "t_00000001".into(),
            author: "a`b".into(),
            body: format!("c{i}"),
            created_at: 0,
        }
    }

    #[test]
    fn renders_sections_and_caps() {
        let t = task();
        let comments: Vec<Comment> = (1..=32).map(comment).collect();
        let parents = vec![ParentHandoff {
            task_id: "t_00000002".into(),
            summary: Some("x".repeat(CONTEXT_FIELD_BYTES + 5)),
            metadata: Some(serde_json::json!({"b": 1, "a": 2})),
            result: None,
            completed_at: Some(100_000 - 7_200),
        }];
        let fmt = |_ts: i64| "2026-01-01 00:00".to_string();
        let text = build_worker_context(&WorkerContextInput {
            task: &t,
            now: 100_000,
            terminal_timeout_env: None,
            attachments: &[],
            runs: &[],
            parents: &parents,
            recent_work: &[],
            comments: &comments,
            format_ts: &fmt,
        });
        assert!(text.starts_with("# Kanban task t_00000001: Write docs\n\nAssignee: writer\n"));
        assert!(text.contains("Max runtime: 600s\nTerminal timeout: 570s\n"));
        assert!(text.contains("## Body\nExplain it\n"));
        assert!(text.contains("### t_00000002 (completed 2h ago)"));
        assert!(text.contains("… [truncated, 5 chars omitted]"));
        assert!(text.contains("_metadata_: `{\"a\": 2, \"b\": 1}`"));
        assert!(text.contains("_(2 earlier comments omitted; showing most recent 30)_"));
        assert!(text.contains("comment from worker `ab` at 2026-01-01 00:00, 1d ago:\nc3\n"));
        assert!(!text.contains("\nc2\n"));
        assert!(text.ends_with("c32\n"));
    }

    #[test]
    fn ages_and_timeouts() {
        assert_eq!(relative_age(100, 50), "just now");
        assert_eq!(relative_age(0, 59), "just now");
        assert_eq!(relative_age(0, 61), "1m ago");
        assert_eq!(relative_age(0, 3 * 86_400), "3d ago");
        assert_eq!(worker_terminal_timeout(Some(600), Some("900")), None);
        assert_eq!(
            worker_terminal_timeout(Some(10), None).as_deref(),
            Some("1")
        );
        assert_eq!(worker_terminal_timeout(None, None), None);
    }
}
