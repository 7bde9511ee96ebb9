//! Where a worker runs (reference §7.1): a private scratch directory, an
//! operator-given absolute directory, or a real linked git worktree.
//!
//! Deleting is the dangerous half: [`remove_scratch_workspace`] only ever
//! removes a directory strictly below a managed workspaces root, never the
//! root itself, never through a symbolic link.

use std::ffi::OsStr;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;

use crate::error::{DispatchError, Result};

/// Longest a git command behind a worktree workspace may take.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Directory (inside a repo) that holds per-task worktrees.
pub const WORKTREES_DIR: &str = ".worktrees";

/// The task facts a workspace is resolved from.
#[derive(Debug, Clone, Copy)]
pub struct WorkspaceRequest<'a> {
    pub task_id: &'a str,
    /// `scratch`, `dir` or `worktree` (`tasks.workspace_kind`).
    pub kind: &'a str,
    /// `tasks.workspace_path`, as stored.
    pub path: Option<&'a str>,
    pub branch_name: Option<&'a str>,
    /// The board's scratch root.
    pub workspaces_root: &'a Path,
    pub board: &'a str,
    /// The board's `default_workdir`: anchor of path-less worktree tasks.
    pub default_workdir: Option<&'a str>,
}

/// A ready-to-use workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedWorkspace {
    pub path: PathBuf,
    /// The worktree's branch (worktree workspaces only).
    pub branch: Option<String>,
}

/// Resolve, and create when needed, the workspace of a task.
pub fn resolve_workspace(req: &WorkspaceRequest<'_>) -> Result<ResolvedWorkspace> {
    let id = req.task_id;
    let stored = req.path.map(str::trim).filter(|p| !p.is_empty());
    match req.kind {
        "" | "scratch" => {
            let path = match stored {
                Some(p) => {
                    let p = expand_home(p);
                    if !p.is_absolute() {
                        return Err(ws_err(format!(
                            "task {id}: workspace path {:?} is relative; workspace paths must be absolute",
                            p.display().to_string()
                        )));
                    }
                    p
                }
                None => req.workspaces_root.join(safe_component(id)?),
            };
            // A gateway moves a ready-made empty directory into place (see
            // `spare`); `mkdir -p` then finds it, or makes it as before.
            if stored.is_none() {
                crate::spare::place(&path, crate::spare::SpareKind::Dir);
            }
            create_private_dir(&path)?;
            Ok(ResolvedWorkspace { path, branch: None })
        }
        "dir" => {
            let Some(raw) = stored else {
                return Err(ws_err(format!(
                    "task {id}: workspace kind is dir but no path was given"
                )));
            };
            let path = expand_home(raw);
            if !path.is_absolute() {
                return Err(ws_err(format!(
                    "task {id}: workspace path {raw:?} is relative; use an absolute path \
                     (a relative one would depend on where the dispatcher was started)"
                )));
            }
            create_private_dir(&path)?;
            Ok(ResolvedWorkspace { path, branch: None })
        }
        "worktree" => resolve_worktree(req, stored),
        other => Err(ws_err(format!(
            "task {id}: unknown workspace kind {other:?}"
        ))),
    }
}

fn resolve_worktree(req: &WorkspaceRequest<'_>, stored: Option<&str>) -> Result<ResolvedWorkspace> {
    let id = req.task_id;
    let branch = req
        .branch_name
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("wt/{id}"));
    let Some(raw) = stored else {
        // No path: anchor on the board's default workdir, never on the
        // dispatcher's own working directory.
        let anchor = req
            .default_workdir
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| {
                ws_err(format!(
                    "task {id} wants a git worktree but has no path, and board {:?} has no default \
                 workdir; set one (kanban boards set-default-workdir) or create the task with \
                 --workspace worktree:<absolute repo path>",
                    req.board
                ))
            })?;
        let anchor = expand_home(anchor);
        if !anchor.is_absolute() {
            return Err(ws_err(format!(
                "board {:?} default workdir {:?} is relative; use an absolute path to a git repo",
                req.board,
                anchor.display().to_string()
            )));
        }
        let repo = git_toplevel(&anchor)?.ok_or_else(|| {
            ws_err(format!(
                "task {id} wants a git worktree but board {:?} default workdir {} is not inside a git repo",
                req.board,
                anchor.display()
            ))
        })?;
        let target = repo.join(WORKTREES_DIR).join(safe_component(id)?);
        ensure_worktree(&repo, &target, &branch)?;
        return Ok(ResolvedWorkspace {
            path: target,
            branch: Some(branch),
        });
    };
    let requested = expand_home(raw);
    if !requested.is_absolute() {
        return Err(ws_err(format!(
            "task {id}: worktree path {raw:?} is relative; use an absolute path"
        )));
    }
    if requested.exists() && is_linked_worktree(&requested)? {
        // An existing linked worktree is reused as is; its branch wins.
        let current =
            git_stdout(&requested, &["branch", "--show-current"])?.filter(|b| !b.is_empty());
        let path = requested.canonicalize().unwrap_or(requested);
        return Ok(ResolvedWorkspace {
            path,
            branch: Some(current.unwrap_or(branch)),
        });
    }
    if let Some(repo) = git_toplevel(&requested)?
        && requested.canonicalize().is_ok_and(|c| c == repo)
    {
        let target = repo.join(WORKTREES_DIR).join(safe_component(id)?);
        ensure_worktree(&repo, &target, &branch)?;
        return Ok(ResolvedWorkspace {
            path: target,
            branch: Some(branch),
        });
    }
    let repo = enclosing_repo(requested.parent().unwrap_or(&requested))?.ok_or_else(|| {
        ws_err(format!(
            "task {id}: worktree path {} is neither inside a git repo nor a repo root",
            requested.display()
        ))
    })?;
    ensure_worktree(&repo, &requested, &branch)?;
    Ok(ResolvedWorkspace {
        path: requested,
        branch: Some(branch),
    })
}

/// Make `target` a linked worktree of `repo` on `branch` (created from
/// HEAD when missing); an existing worktree of the same repo is reused.
fn ensure_worktree(repo: &Path, target: &Path, branch: &str) -> Result<()> {
    let repo_common = git_common_dir(repo)?;
    if target.exists() && repo_common.is_some() && git_common_dir(target)? == repo_common {
        return Ok(());
    }
    if let Some(parent) = target.parent() {
        create_private_dir(parent)?;
    }
    let branch_ref = format!("refs/heads/{branch}");
    let exists = run_git(repo, &["show-ref", "--verify", "--quiet", &branch_ref])?
        .status
        .success();
    let t = target.as_os_str();
    let args: Vec<&OsStr> = if exists {
        vec!["worktree".as_ref(), "add".as_ref(), t, branch.as_ref()]
    } else {
        vec![
            "worktree".as_ref(),
            "add".as_ref(),
            "-b".as_ref(),
            branch.as_ref(),
            t,
            "HEAD".as_ref(),
        ]
    };
    let out = run_git(repo, &args)?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(if out.stderr.is_empty() {
            &out.stdout
        } else {
            &out.stderr
        });
        return Err(DispatchError::Git(format!(
            "git worktree add {} (branch {branch}) failed: {}",
            target.display(),
            msg.trim()
        )));
    }
    Ok(())
}

fn is_linked_worktree(path: &Path) -> Result<bool> {
    let git_dir = git_stdout(path, &["rev-parse", "--path-format=absolute", "--git-dir"])?;
    let common = git_stdout(
        path,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?;
    Ok(matches!((git_dir, common), (Some(d), Some(c)) if canonical(&d) != canonical(&c)))
}

fn git_common_dir(path: &Path) -> Result<Option<PathBuf>> {
    Ok(git_stdout(
        path,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    )?
    .map(|d| canonical(&d)))
}

fn git_toplevel(path: &Path) -> Result<Option<PathBuf>> {
    if !path.exists() {
        return Ok(None);
    }
    Ok(git_stdout(path, &["rev-parse", "--show-toplevel"])?.map(|d| canonical(&d)))
}

/// The repo containing `path` or its nearest existing ancestor.
fn enclosing_repo(path: &Path) -> Result<Option<PathBuf>> {
    for dir in path.ancestors().filter(|d| d.exists()) {
        if let Some(repo) = git_toplevel(dir)? {
            return Ok(Some(repo));
        }
    }
    Ok(None)
}

fn canonical(p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    p.canonicalize().unwrap_or(p)
}

/// Trimmed stdout of a successful git command run in `dir`; `None` when it
/// fails (not a repo, unknown ref).
fn git_stdout(dir: &Path, args: &[&str]) -> Result<Option<String>> {
    let out = run_git(dir, args)?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

/// `git -C <dir> <args>` with [`GIT_TIMEOUT`]; on timeout the command's
/// process group is killed.
fn run_git<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<Output> {
    run_with_timeout(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0"),
        GIT_TIMEOUT,
    )
}

pub(crate) fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let what = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                DispatchError::Git("`git` executable not found on PATH".into())
            }
            _ => DispatchError::io(format!("cannot run git {what}"), e),
        })?;
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.map_err(|e| DispatchError::io("git", e)),
        Err(_) => {
            // The waiter still owns the unreaped child, so the pid (and
            // group id) cannot have been recycled yet.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = rx.recv();
            Err(DispatchError::Git(format!(
                "git {what} timed out after {}s",
                timeout.as_secs()
            )))
        }
    }
}

fn ws_err(msg: String) -> DispatchError {
    DispatchError::Workspace(msg)
}

/// A task id used as one path component.
fn safe_component(id: &str) -> Result<&str> {
    if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\0']) {
        return Err(ws_err(format!(
            "task id {id:?} cannot name a workspace directory"
        )));
    }
    Ok(id)
}

fn expand_home(raw: &str) -> PathBuf {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    match (raw, home) {
        ("~", Some(h)) => h,
        (r, Some(h)) if r.starts_with("~/") => h.join(&r[2..]),
        (r, _) => PathBuf::from(r),
    }
}

/// Where a task's scratch workspace goes when it has no stored path (the
/// board's workspaces root and the task id); `None` for any other kind,
/// a stored path or an id that cannot name a directory.
pub(crate) fn default_scratch_dir(
    workspaces_root: &Path,
    kind: &str,
    stored: Option<&str>,
    task_id: &str,
) -> Option<PathBuf> {
    let stored = stored.map(str::trim).filter(|p| !p.is_empty());
    if !matches!(kind, "" | "scratch") || stored.is_some() {
        return None;
    }
    Some(workspaces_root.join(safe_component(task_id).ok()?))
}

/// Make scratch workspaces ahead of their claim (see `launch_batch`).
/// Errors are left to [`resolve_workspace`], which makes each again
/// (`mkdir -p`) once the task is claimed and reports what fails.
pub(crate) fn make_scratch_dirs_ahead(dirs: &[PathBuf]) {
    for dir in dirs {
        crate::spare::place(dir, crate::spare::SpareKind::Dir);
        let _ = create_private_dir(dir);
    }
}

/// `mkdir -p` with mode 0700 on the directories created.
fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ws_err(format!("cannot create workspace {}: {e}", dir.display())))
}

/// What [`remove_scratch_workspace`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScratchCleanup {
    Removed,
    /// Nothing there.
    Missing,
    /// Not a managed scratch directory: left alone.
    Refused(String),
}

/// Delete a scratch workspace, but only a real directory strictly below
/// one of the managed `roots` (the boards' workspaces roots).
pub fn remove_scratch_workspace(path: &Path, roots: &[PathBuf]) -> Result<ScratchCleanup> {
    if !path.is_absolute() {
        return Ok(ScratchCleanup::Refused(format!(
            "{} is not absolute",
            path.display()
        )));
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ScratchCleanup::Missing),
        Err(e) => {
            return Err(DispatchError::io(
                format!("cannot inspect {}", path.display()),
                e,
            ));
        }
    };
    if meta.file_type().is_symlink() {
        return Ok(ScratchCleanup::Refused(format!(
            "{} is a symbolic link",
            path.display()
        )));
    }
    if !meta.is_dir() {
        return Ok(ScratchCleanup::Refused(format!(
            "{} is not a directory",
            path.display()
        )));
    }
    let target = path
        .canonicalize()
        .map_err(|e| DispatchError::io(format!("cannot resolve {}", path.display()), e))?;
    let managed = roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|root| target != root && target.starts_with(&root));
    if !managed {
        return Ok(ScratchCleanup::Refused(format!(
            "{} is outside every managed workspaces root",
            path.display()
        )));
    }
    std::fs::remove_dir_all(&target)
        .map_err(|e| DispatchError::io(format!("cannot remove {}", target.display()), e))?;
    Ok(ScratchCleanup::Removed)
}

#[cfg(test)]
#[path = "workspace_tests.rs"]
mod tests;
