//! Validation of a new task, once for every surface (CLI, API, MCP) and
//! every backend: what the store may insert, normalised, or why not.
//! Checks run in a fixed order so the first problem reported is the same
//! whoever creates the task.

use super::{WORKSPACE_DEFAULT_KIND, validate_workspace};
use super::{normalize_assignee, normalize_branch, normalize_skills, normalize_title};
use crate::CoreError;

/// A new task as an adapter received it (strings as given).
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskDraft<'a> {
    pub title: &'a str,
    pub assignee: Option<&'a str>,
    /// `None`: [`WORKSPACE_DEFAULT_KIND`].
    pub workspace_kind: Option<&'a str>,
    pub workspace_path: Option<&'a str>,
    /// The board's default workdir, inherited by a `dir`/`worktree` task
    /// without a path of its own.
    pub default_workdir: Option<&'a str>,
    pub branch_name: Option<&'a str>,
    pub skills: Option<&'a [String]>,
    pub parents: &'a [String],
    pub project_id: Option<&'a str>,
    pub model_override: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

/// A new task the store may insert: every field normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidTask {
    pub title: String,
    /// Lower-cased; `None` for unassigned.
    pub assignee: Option<String>,
    pub workspace_kind: String,
    pub workspace_path: Option<String>,
    pub branch_name: Option<String>,
    pub skills: Option<Vec<String>>,
    /// Trimmed, blanks dropped, in the given order.
    pub parents: Vec<String>,
    pub project_id: Option<String>,
    pub model_override: Option<String>,
    /// `None` when blank.
    pub idempotency_key: Option<String>,
}

fn trimmed(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Check and normalise a new task. Parents are not looked up here (the
/// store knows which exist); everything else is decided.
pub fn validate_new_task(d: &TaskDraft<'_>) -> Result<ValidTask, CoreError> {
    let title = normalize_title(d.title)?;
    let assignee = normalize_assignee(d.assignee);
    let kind = trimmed(d.workspace_kind).unwrap_or_else(|| WORKSPACE_DEFAULT_KIND.into());
    let mut workspace_path = trimmed(d.workspace_path);
    // Only persistent kinds inherit the board's workdir: a scratch dir is
    // deleted on completion and must never point at a user's tree.
    if workspace_path.is_none() && (kind == "dir" || kind == "worktree") {
        workspace_path = trimmed(d.default_workdir);
    }
    // A spec the dispatcher could never spawn is refused now rather than
    // failing at each spawn.
    validate_workspace(&kind, workspace_path.as_deref())?;
    let branch_name = match trimmed(d.branch_name) {
        Some(b) => Some(normalize_branch(&b)?),
        None => None,
    };
    if branch_name.is_some() && kind != "worktree" {
        return Err(CoreError::invalid(
            "branch_name is only valid for worktree workspaces",
        ));
    }
    let skills = match d.skills {
        Some(s) => Some(normalize_skills(s)?),
        None => None,
    };
    let parents = d
        .parents
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    Ok(ValidTask {
        title,
        assignee,
        workspace_kind: kind,
        workspace_path,
        branch_name,
        skills,
        parents,
        project_id: trimmed(d.project_id),
        model_override: trimmed(d.model_override),
        idempotency_key: d
            .idempotency_key
            .filter(|k| !k.is_empty())
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(title: &str) -> TaskDraft<'_> {
        TaskDraft {
            title,
            ..TaskDraft::default()
        }
    }

    #[test]
    fn defaults_and_normalisation() {
        let parents = vec![" t_1 ".to_string(), "  ".to_string(), "t_2".to_string()];
        let skills = vec!["a".to_string(), " a ".to_string(), "".to_string()];
        let t = validate_new_task(&TaskDraft {
            assignee: Some(" Alice "),
            parents: &parents,
            skills: Some(&skills),
            project_id: Some("  "),
            idempotency_key: Some(""),
            ..draft("  hi  ")
        })
        .unwrap();
        assert_eq!(t.title, "hi");
        assert_eq!(t.assignee.as_deref(), Some("alice"));
        assert_eq!(t.workspace_kind, "scratch");
        assert_eq!(t.workspace_path, None);
        assert_eq!(t.parents, ["t_1", "t_2"]);
        assert_eq!(t.skills, Some(vec!["a".to_string()]));
        assert_eq!((t.project_id, t.idempotency_key), (None, None));
    }

    #[test]
    fn persistent_workspaces_inherit_the_board_workdir() {
        let with = |kind| {
            validate_new_task(&TaskDraft {
                workspace_kind: Some(kind),
                default_workdir: Some("/srv/board"),
                ..draft("t")
            })
            .unwrap()
            .workspace_path
        };
        assert_eq!(with("dir").as_deref(), Some("/srv/board"));
        assert_eq!(with("worktree").as_deref(), Some("/srv/board"));
        assert_eq!(with("scratch"), None);
    }

    #[test]
    fn refusals_in_order() {
        let err = |d: TaskDraft<'_>| validate_new_task(&d).unwrap_err().to_string();
        assert!(err(draft(" ")).contains("title is required"));
        assert!(
            err(TaskDraft {
                workspace_kind: Some("dir"),
                ..draft("t")
            })
            .contains("needs a path")
        );
        assert_eq!(
            err(TaskDraft {
                branch_name: Some("feat"),
                ..draft("t")
            }),
            "branch_name is only valid for worktree workspaces"
        );
        assert!(
            err(TaskDraft {
                workspace_kind: Some("worktree"),
                branch_name: Some("-x"),
                ..draft("t")
            })
            .contains("must not start with '-'")
        );
        let skills = vec!["web".to_string()];
        assert!(
            err(TaskDraft {
                skills: Some(&skills),
                ..draft("t")
            })
            .contains("toolset name")
        );
        // The title is checked before the workspace.
        assert!(
            err(TaskDraft {
                workspace_kind: Some("cloud"),
                ..draft("")
            })
            .contains("title is required")
        );
    }
}
