//! Shared text formatting of the human output, matching the reference
//! byte for byte where scripts may read it.

use std::borrow::Cow;

use chrono::{Local, TimeZone};
use serde_json::Value;

use kanban_core::Task;
use kanban_store::{TaskLineRef, TaskRow};

/// Where a piece of text sits in human output, which decides the control
/// characters it may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One line or one column (titles, names, ids, first lines): every
    /// control character is escaped, newline and tab included.
    Line,
    /// A block printed on lines of its own (bodies, results, summaries,
    /// comments, worker logs): newline, tab and CR before a newline stay.
    Block,
}

/// C0 controls, DEL and C1 controls: the characters that can move the
/// cursor, recolour, retitle or otherwise drive a terminal.
pub fn is_terminal_control(c: char) -> bool {
    matches!(c as u32, 0x00..=0x1f | 0x7f..=0x9f)
}

/// `\xNN`: the notation of every escaped control character in human
/// output, Python's `repr` notation, so text fields and payload dicts read
/// alike. Backslashes themselves are left as they are.
fn push_hex_escape(out: &mut String, c: char) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = c as u32;
    out.push_str("\\x");
    out.push(HEX[(n >> 4) as usize & 0xf] as char);
    out.push(HEX[n as usize & 0xf] as char);
}

/// Whether `c` (followed by `next`) is shown as it is in `layout`.
fn shown_raw(c: char, next: Option<char>, layout: Layout) -> bool {
    !is_terminal_control(c)
        || (layout == Layout::Block
            && (c == '\n' || c == '\t' || (c == '\r' && next == Some('\n'))))
}

/// Whether `s` has anything to escape in `layout`.
fn needs_escaping(s: &str, layout: Layout) -> bool {
    // Most text has no byte that can begin a control character (a C0
    // byte, DEL, or 0xC2, the lead byte of the C1 range): one byte scan
    // answers without decoding a char.
    if !kanban_core::bytescan::may_hold_control(s) {
        return false;
    }
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if !shown_raw(c, chars.peek().copied(), layout) {
            return true;
        }
    }
    false
}

/// Append `s` to `out` with its control characters escaped for `layout`.
/// The one rule every human renderer applies to text it did not write
/// itself (titles, bodies, comments, summaries, names, logs), so nothing a
/// task carries reaches a terminal raw; `--json` output stays exact.
pub fn push_term(out: &mut String, s: &str, layout: Layout) {
    if !needs_escaping(s, layout) {
        out.push_str(s);
        return;
    }
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if shown_raw(c, chars.peek().copied(), layout) {
            out.push(c);
        } else {
            push_hex_escape(out, c);
        }
    }
}

/// [`push_term`] as a value; borrows when there is nothing to escape.
pub fn term(s: &str, layout: Layout) -> Cow<'_, str> {
    if !needs_escaping(s, layout) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_term(&mut out, s, layout);
    Cow::Owned(out)
}

/// A one-line field: [`term`] with [`Layout::Line`].
pub fn line(s: &str) -> Cow<'_, str> {
    term(s, Layout::Line)
}

/// A block of text: [`term`] with [`Layout::Block`].
pub fn block(s: &str) -> Cow<'_, str> {
    term(s, Layout::Block)
}

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
        const SPACES: &str = "                    ";
        out.push_str(s);
        let short = width.saturating_sub(s.chars().count());
        out.push_str(&SPACES[..short.min(SPACES.len())]);
    }
    out.push_str(t.status.icon());
    out.push(' ');
    push_term(out, &t.id, Layout::Line);
    out.push_str("  ");
    pad(out, t.status.as_str(), 8);
    out.push_str("  ");
    pad(
        out,
        &line(t.assignee.as_deref().unwrap_or("(unassigned)")),
        20,
    );
    if let Some(tenant) = t.tenant.as_deref() {
        out.push_str(" [");
        push_term(out, tenant, Layout::Line);
        out.push(']');
    }
    out.push_str("  ");
    push_term(out, &t.title, Layout::Line);
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
            c if is_terminal_control(c) => push_hex_escape(&mut out, c),
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

/// The reference's task dict (`_task_to_dict`) with its key order, so
/// `--json` output is byte-identical to the Python CLI's. Its keys and
/// values are listed once, in [`CliTask::fields`], for serde and for the
/// listing writer alike.
pub struct CliTask<'a> {
    id: &'a str,
    title: &'a str,
    body: Option<&'a str>,
    assignee: Option<&'a str>,
    status: &'a str,
    priority: i64,
    tenant: Option<&'a str>,
    workspace_kind: &'a str,
    workspace_path: Option<&'a str>,
    branch_name: Option<&'a str>,
    project_id: Option<&'a str>,
    created_by: Option<&'a str>,
    created_at: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    result: Option<&'a str>,
    skills: &'a [String],
    max_retries: Option<i64>,
    session_id: Option<&'a str>,
    workflow_template_id: Option<&'a str>,
    current_step_key: Option<&'a str>,
}

impl<'a> From<&'a Task> for CliTask<'a> {
    fn from(t: &'a Task) -> Self {
        CliTask {
            id: &t.id,
            title: &t.title,
            body: t.body.as_deref(),
            assignee: t.assignee.as_deref(),
            status: t.status.as_str(),
            priority: t.priority,
            tenant: t.tenant.as_deref(),
            workspace_kind: &t.workspace_kind,
            workspace_path: t.workspace_path.as_deref(),
            branch_name: t.branch_name.as_deref(),
            project_id: t.project_id.as_deref(),
            created_by: t.created_by.as_deref(),
            created_at: t.created_at,
            started_at: t.started_at,
            completed_at: t.completed_at,
            result: t.result.as_deref(),
            skills: t.skills.as_deref().unwrap_or(&[]),
            max_retries: t.max_retries,
            session_id: t.session_id.as_deref(),
            workflow_template_id: t.workflow_template_id.as_deref(),
            current_step_key: t.current_step_key.as_deref(),
        }
    }
}

/// The same dict from a streamed row (`kanban list --json`).
impl<'a, 'b: 'a> From<&'a TaskRow<'b>> for CliTask<'a> {
    fn from(t: &'a TaskRow<'b>) -> Self {
        CliTask {
            id: &t.id,
            title: &t.title,
            body: t.body.as_deref(),
            assignee: t.assignee.as_deref(),
            status: t.status.as_str(),
            priority: t.priority,
            tenant: t.tenant.as_deref(),
            workspace_kind: &t.workspace_kind,
            workspace_path: t.workspace_path.as_deref(),
            branch_name: t.branch_name.as_deref(),
            project_id: t.project_id.as_deref(),
            created_by: t.created_by.as_deref(),
            created_at: t.created_at,
            started_at: t.started_at,
            completed_at: t.completed_at,
            result: t.result.as_deref(),
            skills: t.skills.as_deref().unwrap_or(&[]),
            max_retries: t.max_retries,
            session_id: t.session_id.as_deref(),
            workflow_template_id: t.workflow_template_id.as_deref(),
            current_step_key: t.current_step_key.as_deref(),
        }
    }
}

impl serde::Serialize for CliTask<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        kanban_core::json_text::serialize_fields(s, "CliTask", &self.fields())
    }
}

impl CliTask<'_> {
    /// This dict's keys (the reference's order) and values.
    pub fn fields(&self) -> [(&'static str, kanban_core::json_text::Value<'_>); 21] {
        use kanban_core::json_text::Value::{Int, List, OptInt, OptStr, Str};
        [
            ("id", Str(self.id)),
            ("title", Str(self.title)),
            ("body", OptStr(self.body)),
            ("assignee", OptStr(self.assignee)),
            ("status", Str(self.status)),
            ("priority", Int(self.priority)),
            ("tenant", OptStr(self.tenant)),
            ("workspace_kind", Str(self.workspace_kind)),
            ("workspace_path", OptStr(self.workspace_path)),
            ("branch_name", OptStr(self.branch_name)),
            ("project_id", OptStr(self.project_id)),
            ("created_by", OptStr(self.created_by)),
            ("created_at", Int(self.created_at)),
            ("started_at", OptInt(self.started_at)),
            ("completed_at", OptInt(self.completed_at)),
            ("result", OptStr(self.result)),
            ("skills", List(self.skills)),
            ("max_retries", OptInt(self.max_retries)),
            ("session_id", OptStr(self.session_id)),
            ("workflow_template_id", OptStr(self.workflow_template_id)),
            ("current_step_key", OptStr(self.current_step_key)),
        ]
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
        assert_eq!(
            py_repr(&json!("a\u{1b}[2J\u{7}\u{9b}\n")),
            "'a\\x1b[2J\\x07\\x9b\\n'"
        );
    }

    #[test]
    fn control_characters_are_escaped_by_layout() {
        let raw = "a\u{1b}]0;pwned\u{7}b\u{8}\u{0}\u{7f}\u{85}\tc\nd\r\ne\rf";
        assert_eq!(
            line(raw),
            "a\\x1b]0;pwned\\x07b\\x08\\x00\\x7f\\x85\\x09c\\x0ad\\x0d\\x0ae\\x0df"
        );
        assert_eq!(
            block(raw),
            "a\\x1b]0;pwned\\x07b\\x08\\x00\\x7f\\x85\tc\nd\r\ne\\x0df"
        );
        assert!(matches!(line("plain é ✓"), Cow::Borrowed(_)));
        // 0xC2 leads both C1 controls and printable Latin-1 signs.
        assert!(matches!(line("© 2026 · ½"), Cow::Borrowed(_)));
        assert_eq!(line("csi \u{9b}2J"), "csi \\x9b2J");
        assert!(matches!(block("two\r\nlines\tok"), Cow::Borrowed(_)));
        assert!(matches!(block("lone\rcr"), Cow::Owned(_)));
    }
}
