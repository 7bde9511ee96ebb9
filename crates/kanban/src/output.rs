//! Shared text formatting of the human output, matching the reference
//! byte for byte where scripts may read it.

use chrono::{Local, TimeZone};
use serde_json::Value;

use kanban_core::Task;
use kanban_store::TaskLineRef;

/// `YYYY-MM-DD HH:MM` in local time; empty for a missing/zero timestamp.
pub fn fmt_ts(ts: Option<i64>) -> String {
    match ts {
        Some(t) if t != 0 => Local
            .timestamp_opt(t, 0)
            .single()
            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// One `kanban list` line: `icon id  status  assignee [tenant]  title`.
/// Appends `icon id  status    assignee              [tenant]  title` to
/// `out`. Padding is done by hand: `format!("{:<20}")` costs several times
/// more, which shows on a 100k-task `kanban list`.
pub fn push_task_line(out: &mut String, t: &TaskLineRef<'_>) {
    fn pad(out: &mut String, s: &str, width: usize) {
        out.push_str(s);
        for _ in s.chars().count()..width {
            out.push(' ');
        }
    }
    out.push_str(t.status.icon());
    out.push(' ');
    out.push_str(&t.id);
    out.push_str("  ");
    pad(out, t.status.as_str(), 8);
    out.push_str("  ");
    pad(out, t.assignee.as_deref().unwrap_or("(unassigned)"), 20);
    if let Some(tenant) = t.tenant.as_deref() {
        out.push_str(" [");
        out.push_str(tenant);
        out.push(']');
    }
    out.push_str("  ");
    out.push_str(&t.title);
}

/// Event payloads in human output, rendered the way the reference prints a
/// Python dict (`{'status': 'todo'}`) so both tools read alike.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A payload is shown only when it carries something (Python truthiness).
pub fn payload_suffix(v: &Value) -> String {
    let empty = match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
    };
    if empty {
        String::new()
    } else {
        format!(" {}", py_repr(v))
    }
}

/// Author label of interactive CLI calls.
pub fn profile_author() -> String {
    for var in ["HERMES_PROFILE_NAME", "HERMES_PROFILE"] {
        if let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return v;
        }
    }
    "user".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_style_payloads() {
        assert_eq!(
            py_repr(&json!({"status": "todo", "n": 1, "ok": true, "x": null, "l": ["a"]})),
            // Insertion order, as Python prints a dict loaded from the payload.
            "{'status': 'todo', 'n': 1, 'ok': True, 'x': None, 'l': ['a']}"
        );
        assert_eq!(py_repr(&json!("it's")), "\"it's\"");
        assert_eq!(payload_suffix(&json!({})), "");
        assert_eq!(payload_suffix(&Value::Null), "");
    }
}

/// The reference's task dict (`_task_to_dict`) with its key order, so
/// `--json` output is byte-identical to the Python CLI's.
#[derive(serde::Serialize)]
pub struct CliTask<'a> {
    id: &'a str,
    title: &'a str,
    body: &'a Option<String>,
    assignee: &'a Option<String>,
    status: &'a str,
    priority: i64,
    tenant: &'a Option<String>,
    workspace_kind: &'a str,
    workspace_path: &'a Option<String>,
    branch_name: &'a Option<String>,
    project_id: &'a Option<String>,
    created_by: &'a Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    result: &'a Option<String>,
    skills: &'a [String],
    max_retries: Option<i64>,
    session_id: &'a Option<String>,
    workflow_template_id: &'a Option<String>,
    current_step_key: &'a Option<String>,
}

impl<'a> From<&'a Task> for CliTask<'a> {
    fn from(t: &'a Task) -> Self {
        CliTask {
            id: &t.id,
            title: &t.title,
            body: &t.body,
            assignee: &t.assignee,
            status: t.status.as_str(),
            priority: t.priority,
            tenant: &t.tenant,
            workspace_kind: &t.workspace_kind,
            workspace_path: &t.workspace_path,
            branch_name: &t.branch_name,
            project_id: &t.project_id,
            created_by: &t.created_by,
            created_at: t.created_at,
            started_at: t.started_at,
            completed_at: t.completed_at,
            result: &t.result,
            skills: t.skills.as_deref().unwrap_or(&[]),
            max_retries: t.max_retries,
            session_id: &t.session_id,
            workflow_template_id: &t.workflow_template_id,
            current_step_key: &t.current_step_key,
        }
    }
}

/// Pretty JSON, two-space indent (the reference's `indent=2`), keys in
/// declaration order.
pub fn print_json<T: serde::Serialize + ?Sized>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(_) => println!("null"),
    }
}
