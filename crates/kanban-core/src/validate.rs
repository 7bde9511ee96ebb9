//! Input validation and normalisation shared by every adapter (CLI, HTTP,
//! MCP). Messages name the problem and the fix.

use crate::CoreError;

/// Validation of a whole new task.
pub mod new_task;

/// Longest board slug.
const SLUG_MAX_LEN: usize = 64;

/// `[a-z0-9][a-z0-9_-]{0,63}`, checked by hand: every CLI process resolves
/// its board, and compiling a regex for it cost more than the rest of the
/// resolution.
fn is_valid_slug(s: &str) -> bool {
    let b = s.as_bytes();
    let body = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_');
    match b.split_first() {
        Some((first, rest)) => {
            b.len() <= SLUG_MAX_LEN
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.iter().all(body)
        }
        None => false,
    }
}

/// Board slug: trimmed and lower-cased; `None` for blank input.
pub fn normalize_board_slug(slug: &str) -> Result<Option<String>, CoreError> {
    let s = slug.trim().to_lowercase();
    if s.is_empty() {
        return Ok(None);
    }
    if !is_valid_slug(&s) {
        return Err(CoreError::invalid(format!(
            "invalid board slug {slug:?}: must be 1-64 chars, lowercase alphanumerics / \
             hyphens / underscores, not starting with '-' or '_'"
        )));
    }
    Ok(Some(s))
}

/// Assignee/profile name as stored: trimmed, lower-cased (`Default` → `default`).
/// `none`, `-`, `null` and blank mean "unassigned".
pub fn normalize_assignee(name: Option<&str>) -> Option<String> {
    let s = name?.trim();
    if s.is_empty() || matches!(s.to_lowercase().as_str(), "none" | "-" | "null") {
        return None;
    }
    Some(s.to_lowercase())
}

/// Title: trimmed and non-empty.
pub fn normalize_title(title: &str) -> Result<String, CoreError> {
    let t = title.trim();
    if t.is_empty() {
        return Err(CoreError::invalid(
            "title is required: pass a non-empty title",
        ));
    }
    Ok(t.to_string())
}

/// `30s` / `5m` / `2h` / `1d` or a bare number of seconds.
pub fn parse_duration_seconds(value: &str) -> Result<i64, CoreError> {
    let s = value.trim().to_lowercase();
    let bad = || {
        CoreError::invalid(format!(
            "malformed duration {value:?} (expected 30s, 5m, 2h, 1d, or a number of seconds)"
        ))
    };
    if let Ok(n) = s.parse::<i64>() {
        if n < 0 {
            return Err(bad());
        }
        return Ok(n);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(bad()),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    Ok((n * mult) as i64)
}

/// Workspace kinds a task can carry.
pub const WORKSPACE_KINDS: [&str; 3] = ["scratch", "worktree", "dir"];
/// Workspace kind of a task created without one.
pub const WORKSPACE_DEFAULT_KIND: &str = "scratch";

/// `--workspace` flag: `scratch`, `worktree`, `worktree:<path>`, `dir:<path>`.
/// Returns `(kind, path)`. `~` is expanded by the caller (it knows `$HOME`).
pub fn parse_workspace_flag(value: &str) -> Result<(String, Option<String>), CoreError> {
    let v = value.trim();
    if v.is_empty() || v == "scratch" || v == "worktree" {
        return Ok((if v.is_empty() { "scratch" } else { v }.to_string(), None));
    }
    for (prefix, kind) in [("dir:", "dir"), ("worktree:", "worktree")] {
        if let Some(rest) = v.strip_prefix(prefix) {
            let path = rest.trim();
            if path.is_empty() {
                return Err(CoreError::invalid(format!(
                    "--workspace {prefix} requires a path after the colon"
                )));
            }
            return Ok((kind.to_string(), Some(path.to_string())));
        }
    }
    Err(CoreError::invalid(format!(
        "unknown --workspace value {value:?}: use scratch, worktree, worktree:<path>, or dir:<path>"
    )))
}

/// A `dir:` workspace must be absolute: a relative path would depend on
/// whichever directory the dispatcher happens to run in.
pub fn require_absolute_dir(path: &str) -> Result<(), CoreError> {
    if !path.starts_with('/') {
        return Err(CoreError::invalid(format!(
            "dir: workspace path {path:?} is relative; use an absolute path (e.g. dir:/srv/project)"
        )));
    }
    Ok(())
}

/// A stored workspace path the dispatcher can use: absolute, or `~` /
/// `~/...` (expanded against `$HOME` at spawn, as the reference expands
/// it). Anything else would resolve against whichever directory the
/// dispatcher runs in (`worktree:../../wt`), so it is refused at create
/// instead of failing every spawn.
fn is_usable_workspace_path(path: &str) -> bool {
    path.starts_with('/') || path == "~" || path.starts_with("~/")
}

/// The workspace of a new task, checked once for every surface (CLI, API,
/// MCP) with the rules the dispatcher applies at spawn (reference §7.1):
/// a known kind; any path absolute (or `~/`); `dir` needs a path (its own
/// or the board's default workdir, which the caller has already applied).
/// A path-less `worktree` is accepted: it is anchored on the board's
/// default workdir when it is spawned, which may be set after create.
pub fn validate_workspace(kind: &str, path: Option<&str>) -> Result<(), CoreError> {
    if !WORKSPACE_KINDS.contains(&kind) {
        return Err(CoreError::invalid(format!(
            "workspace_kind must be one of ['dir', 'scratch', 'worktree'], got '{kind}'"
        )));
    }
    match path {
        None if kind == "dir" => Err(CoreError::invalid(
            "workspace kind dir needs a path: pass an absolute directory (dir:/srv/project, \
             or workspace_path) or set the board's default workdir \
             (kanban boards set-default-workdir)",
        )),
        None => Ok(()),
        Some(p) => validate_workspace_path(kind, p),
    }
}

/// The path half of [`validate_workspace`], for adapters that parse a
/// `kind:path` flag: no NUL, and absolute (or `~/`).
pub fn validate_workspace_path(kind: &str, path: &str) -> Result<(), CoreError> {
    if path.contains('\0') {
        return Err(CoreError::invalid(format!(
            "{kind} workspace path {path:?} contains a NUL byte"
        )));
    }
    if is_usable_workspace_path(path) {
        return Ok(());
    }
    let example = match kind {
        "dir" => "dir:/srv/project",
        "worktree" => "worktree:/srv/repo (a repo root) or worktree:/srv/repo/.worktrees/name",
        _ => "an absolute path, or no path for a managed scratch directory",
    };
    Err(CoreError::invalid(format!(
        "{kind} workspace path {path:?} is relative; use an absolute path (e.g. {example}): \
         a relative one would depend on where the dispatcher was started"
    )))
}

/// `--branch`: non-empty, no leading `-`, no whitespace.
pub fn normalize_branch(value: &str) -> Result<String, CoreError> {
    let b = value.trim();
    if b.is_empty() {
        return Err(CoreError::invalid("--branch requires a non-empty name"));
    }
    if b.starts_with('-') {
        return Err(CoreError::invalid("--branch must not start with '-'"));
    }
    if b.chars().any(char::is_whitespace) {
        return Err(CoreError::invalid("--branch must not contain whitespace"));
    }
    Ok(b.to_string())
}

/// Toolset names agents often confuse with skills (reference
/// `KNOWN_TOOLSET_NAMES`, the common ones).
const KNOWN_TOOLSET_NAMES: &[&str] = &[
    "web",
    "browser",
    "terminal",
    "file",
    "files",
    "code_execution",
    "vision",
    "image_gen",
    "kanban",
    "memory",
    "delegation",
    "search",
    "tts",
    "skills",
    "todo",
    "cronjob",
    "moa",
];

/// Skills: trimmed, blanks dropped, de-duplicated in order; commas and
/// toolset names refused with the whole list of mistakes at once.
pub fn normalize_skills<S: AsRef<str>>(skills: &[S]) -> Result<Vec<String>, CoreError> {
    let mut out: Vec<String> = Vec::new();
    let mut toolsets = Vec::new();
    for s in skills {
        let name = s.as_ref().trim();
        if name.is_empty() {
            continue;
        }
        if name.contains(',') {
            return Err(CoreError::invalid(format!(
                "skill name cannot contain comma: {name:?} (pass --skill once per skill)"
            )));
        }
        if KNOWN_TOOLSET_NAMES.contains(&name.to_lowercase().as_str()) {
            toolsets.push(format!("{name:?}"));
            continue;
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    if !toolsets.is_empty() {
        let noun = if toolsets.len() == 1 {
            "is a toolset name"
        } else {
            "are toolset names"
        };
        return Err(CoreError::invalid(format!(
            "{} {noun}, not skill name(s). Put toolsets in the assignee profile's `toolsets:` \
             config instead of per-task skills.",
            toolsets.join(", ")
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(
            normalize_board_slug(" Proj_1 ").unwrap().as_deref(),
            Some("proj_1")
        );
        assert_eq!(
            normalize_board_slug("atm10-server").unwrap().as_deref(),
            Some("atm10-server")
        );
        assert_eq!(normalize_board_slug("  ").unwrap(), None);
        for bad in ["..", "a/b", "-x", "_x", "a b", &"x".repeat(65)] {
            assert!(normalize_board_slug(bad).is_err(), "{bad}");
        }
        // The longest slug, digits first, and what only looks ASCII.
        let longest = "9".repeat(64);
        assert_eq!(
            normalize_board_slug(&longest).unwrap().as_deref(),
            Some(longest.as_str())
        );
        for bad in ["proj\u{e9}", "a\nb", "a.b", "\u{130}x"] {
            assert!(normalize_board_slug(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_seconds("300").unwrap(), 300);
        assert_eq!(parse_duration_seconds("90s").unwrap(), 90);
        assert_eq!(parse_duration_seconds("30m").unwrap(), 1800);
        assert_eq!(parse_duration_seconds("2h").unwrap(), 7200);
        assert_eq!(parse_duration_seconds("1d").unwrap(), 86400);
        assert_eq!(parse_duration_seconds("1.5h").unwrap(), 5400);
        for bad in ["", "abc", "10x", "-5", "m", "-1m"] {
            let e = parse_duration_seconds(bad).unwrap_err().to_string();
            assert!(e.contains("malformed duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn workspaces() {
        assert_eq!(
            parse_workspace_flag("scratch").unwrap(),
            ("scratch".into(), None)
        );
        assert_eq!(
            parse_workspace_flag("worktree").unwrap(),
            ("worktree".into(), None)
        );
        assert_eq!(
            parse_workspace_flag("dir:/tmp/x").unwrap(),
            ("dir".into(), Some("/tmp/x".into()))
        );
        assert!(parse_workspace_flag("dir:").is_err());
        assert!(
            parse_workspace_flag("cloud")
                .unwrap_err()
                .to_string()
                .contains("unknown --workspace")
        );
        assert!(
            require_absolute_dir("rel/path")
                .unwrap_err()
                .to_string()
                .contains("absolute")
        );
    }

    #[test]
    fn workspace_specs_checked_at_create() {
        for (kind, path) in [
            ("scratch", None),
            ("worktree", None),
            ("worktree", Some("/srv/repo")),
            ("worktree", Some("~/repo")),
            ("dir", Some("/srv/x")),
            ("dir", Some("~")),
            ("scratch", Some("/tmp/s")),
        ] {
            assert!(validate_workspace(kind, path).is_ok(), "{kind} {path:?}");
        }
        let err = |kind, path| validate_workspace(kind, path).unwrap_err().to_string();
        assert!(err("cloud", None).contains("workspace_kind must be one of"));
        let e = err("dir", None);
        assert!(
            e.contains("needs a path") && e.contains("set-default-workdir"),
            "{e}"
        );
        let e = err("worktree", Some("../../wt"));
        assert!(e.contains("\"../../wt\" is relative"), "{e}");
        assert!(e.contains("worktree:/srv/repo"), "{e}");
        assert!(err("dir", Some("rel")).contains("dir:/srv/project"));
        assert!(err("scratch", Some("x")).contains("absolute"));
        assert!(err("dir", Some("~bob/x")).contains("relative"));
        assert!(err("dir", Some("/a\0b")).contains("NUL"));
    }

    #[test]
    fn assignees_and_skills() {
        assert_eq!(
            normalize_assignee(Some(" Coder ")).as_deref(),
            Some("coder")
        );
        assert_eq!(normalize_assignee(Some("none")), None);
        assert_eq!(normalize_assignee(Some("-")), None);
        assert_eq!(
            normalize_skills(&["a", " a", "b", ""]).unwrap(),
            vec!["a", "b"]
        );
        assert!(normalize_skills(&["a,b"]).is_err());
        assert!(
            normalize_skills(&["web", "browser"])
                .unwrap_err()
                .to_string()
                .contains("toolset names")
        );
        assert!(normalize_branch("-x").is_err());
        assert!(normalize_branch("a b").is_err());
        assert!(normalize_title("   ").is_err());
    }
}
