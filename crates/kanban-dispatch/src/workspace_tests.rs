//! Workspace tests against real directories and real git repositories.

use std::os::unix::fs::PermissionsExt;

use super::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repo with one commit on `main`.
fn repo(parent: &Path) -> PathBuf {
    let r = parent.join("repo");
    std::fs::create_dir_all(&r).unwrap();
    git(&r, &["init", "-q"]);
    std::fs::write(r.join("README"), "hi\n").unwrap();
    git(&r, &["add", "README"]);
    git(&r, &["commit", "-q", "-m", "init"]);
    r.canonicalize().unwrap()
}

fn req<'a>(kind: &'a str, path: Option<&'a str>, root: &'a Path) -> WorkspaceRequest<'a> {
    WorkspaceRequest {
        task_id: "t_0000abcd",
        kind,
        path,
        branch_name: None,
        workspaces_root: root,
        board: "default",
        default_workdir: None,
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn scratch_is_a_private_dir_under_the_workspaces_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("workspaces");
    let ws = resolve_workspace(&req("scratch", None, &root)).unwrap();
    assert_eq!(ws.path, root.join("t_0000abcd"));
    assert_eq!(ws.branch, None);
    assert!(ws.path.is_dir());
    assert_eq!(mode(&ws.path), 0o700);
    // Idempotent.
    assert_eq!(resolve_workspace(&req("", None, &root)).unwrap(), ws);
    let bad = WorkspaceRequest {
        task_id: "../x",
        ..req("scratch", None, &root)
    };
    assert!(resolve_workspace(&bad).is_err());
    let err = resolve_workspace(&req("scratch", Some("rel/x"), &root))
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be absolute"), "{err}");
}

#[test]
fn dir_workspaces_must_be_absolute_and_are_created() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("a/b");
    let ws = resolve_workspace(&req("dir", Some(target.to_str().unwrap()), tmp.path())).unwrap();
    assert_eq!(ws.path, target);
    assert!(target.is_dir());
    let err = resolve_workspace(&req("dir", Some("../../tmp/attacker"), tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("use an absolute path"), "{err}");
    assert!(!tmp.path().join("tmp").exists());
    assert!(resolve_workspace(&req("dir", None, tmp.path())).is_err());
    assert!(
        resolve_workspace(&req("cloud", None, tmp.path()))
            .unwrap_err()
            .to_string()
            .contains("unknown workspace kind")
    );
}

#[test]
fn worktree_at_repo_root_goes_under_dot_worktrees_on_a_new_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path());
    let ws = resolve_workspace(&req("worktree", Some(r.to_str().unwrap()), tmp.path())).unwrap();
    assert_eq!(ws.path, r.join(".worktrees/t_0000abcd"));
    assert_eq!(ws.branch.as_deref(), Some("wt/t_0000abcd"));
    assert_eq!(
        git(&ws.path, &["branch", "--show-current"]),
        "wt/t_0000abcd"
    );
    assert!(ws.path.join("README").is_file());
    // Second resolution reuses the worktree.
    let again = resolve_workspace(&req("worktree", Some(r.to_str().unwrap()), tmp.path())).unwrap();
    assert_eq!(again, ws);
    // And naming the linked worktree itself reuses it with its own branch.
    let named = WorkspaceRequest {
        branch_name: Some("other"),
        ..req("worktree", Some(ws.path.to_str().unwrap()), tmp.path())
    };
    let reused = resolve_workspace(&named).unwrap();
    assert_eq!(reused.path, ws.path);
    assert_eq!(reused.branch.as_deref(), Some("wt/t_0000abcd"));
}

#[test]
fn worktree_uses_an_existing_branch_and_any_path_inside_the_repo() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path());
    git(&r, &["branch", "feature/x"]);
    let target = r.join("trees/feat");
    let request = WorkspaceRequest {
        branch_name: Some(" feature/x "),
        ..req("worktree", Some(target.to_str().unwrap()), tmp.path())
    };
    let ws = resolve_workspace(&request).unwrap();
    assert_eq!(ws.path, target);
    assert_eq!(ws.branch.as_deref(), Some("feature/x"));
    assert_eq!(git(&target, &["branch", "--show-current"]), "feature/x");
}

#[test]
fn worktree_without_path_anchors_on_the_board_default_workdir() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo(tmp.path());
    let err = resolve_workspace(&req("worktree", None, tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no default workdir"), "{err}");
    let sub = r.join("src");
    std::fs::create_dir(&sub).unwrap();
    let request = WorkspaceRequest {
        default_workdir: Some(sub.to_str().unwrap()),
        ..req("worktree", None, tmp.path())
    };
    let ws = resolve_workspace(&request).unwrap();
    assert_eq!(ws.path, r.join(".worktrees/t_0000abcd"));
    let request = WorkspaceRequest {
        default_workdir: Some("relative/repo"),
        ..req("worktree", None, tmp.path())
    };
    assert!(
        resolve_workspace(&request)
            .unwrap_err()
            .to_string()
            .contains("absolute")
    );
}

#[test]
fn worktree_outside_any_repo_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("nowhere/wt");
    let err = resolve_workspace(&req("worktree", Some(target.to_str().unwrap()), tmp.path()))
        .unwrap_err();
    assert!(
        err.to_string().contains("not inside a git repo")
            || err.to_string().contains("neither inside"),
        "{err}"
    );
    assert!(
        resolve_workspace(&req("worktree", Some("rel/wt"), tmp.path()))
            .unwrap_err()
            .to_string()
            .contains("absolute")
    );
}

#[test]
fn scratch_cleanup_only_deletes_strictly_below_a_managed_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("kanban/workspaces");
    let ws = root.join("t_1");
    std::fs::create_dir_all(ws.join("deep")).unwrap();
    std::fs::write(ws.join("deep/f"), "x").unwrap();
    let user = tmp.path().join("src");
    std::fs::create_dir_all(&user).unwrap();
    let roots = vec![root.clone()];
    assert!(matches!(
        remove_scratch_workspace(&user, &roots).unwrap(),
        ScratchCleanup::Refused(_)
    ));
    assert!(matches!(
        remove_scratch_workspace(&root, &roots).unwrap(),
        ScratchCleanup::Refused(_)
    ));
    assert!(matches!(
        remove_scratch_workspace(tmp.path(), &roots).unwrap(),
        ScratchCleanup::Refused(_)
    ));
    assert!(matches!(
        remove_scratch_workspace(&root.join("../workspaces"), &roots).unwrap(),
        ScratchCleanup::Refused(_)
    ));
    assert!(matches!(
        remove_scratch_workspace(&root.join("t_1/../../.."), &roots).unwrap(),
        ScratchCleanup::Refused(_)
    ));
    // A link inside the root pointing at user data is never followed.
    let link = root.join("t_2");
    std::os::unix::fs::symlink(&user, &link).unwrap();
    assert!(matches!(
        remove_scratch_workspace(&link, &roots).unwrap(),
        ScratchCleanup::Refused(_)
    ));
    assert!(user.is_dir());
    assert!(matches!(
        remove_scratch_workspace(Path::new("relative"), &roots).unwrap(),
        ScratchCleanup::Refused(_)
    ));
    assert_eq!(
        remove_scratch_workspace(&ws, &roots).unwrap(),
        ScratchCleanup::Removed
    );
    assert!(!ws.exists() && root.is_dir());
    assert_eq!(
        remove_scratch_workspace(&ws, &roots).unwrap(),
        ScratchCleanup::Missing
    );
}

#[test]
fn slow_commands_are_killed_at_the_timeout() {
    let t0 = std::time::Instant::now();
    let err = run_with_timeout(
        Command::new("sh").args(["-c", "sleep 30"]),
        Duration::from_millis(200),
    )
    .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn only_a_default_scratch_workspace_is_made_ahead_of_its_claim() {
    let root = tempfile::tempdir().unwrap();
    let ws = root.path().join("workspaces");
    let dir = |kind, stored, id| default_scratch_dir(&ws, kind, stored, id);
    assert_eq!(dir("scratch", None, "t_1"), Some(ws.join("t_1")));
    assert_eq!(dir("", Some("  "), "t_1"), Some(ws.join("t_1")));
    assert_eq!(dir("scratch", Some("/srv/mine"), "t_1"), None);
    assert_eq!(dir("dir", None, "t_1"), None);
    assert_eq!(dir("worktree", None, "t_1"), None);
    assert_eq!(dir("scratch", None, "../escape"), None);
    assert_eq!(dir("scratch", None, ".."), None);

    let ahead = vec![ws.join("t_1"), ws.join("t_2")];
    make_scratch_dirs_ahead(&ahead);
    // Made private, and made again (`mkdir -p`) by the claim's resolution.
    let mode = std::fs::metadata(&ahead[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let again = resolve_workspace(&WorkspaceRequest {
        task_id: "t_2",
        kind: "scratch",
        path: None,
        branch_name: None,
        workspaces_root: &ws,
        board: "default",
        default_workdir: None,
    })
    .unwrap();
    assert_eq!(again.path, ahead[1]);
}
