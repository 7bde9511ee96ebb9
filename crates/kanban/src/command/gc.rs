//! `kanban gc`: scratch dirs of archived tasks (only under this board's
//! workspaces root), old events of finished tasks, old worker logs.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use kanban_core::Status;
use kanban_store::TaskQuery;

use crate::cli::GcArgs;
use crate::context::Ctx;

const SECONDS_PER_DAY: i64 = 86_400;

/// Remove a scratch dir only when it resolves strictly inside `root`:
/// a stored path could point anywhere, and gc must never leave its root.
fn remove_scratch(path: &Path, root: &Path) -> bool {
    let (Ok(p), Ok(r)) = (path.canonicalize(), root.canonicalize()) else {
        return false;
    };
    if p == r || !p.starts_with(&r) || !p.is_dir() {
        return false;
    }
    std::fs::remove_dir_all(&p).is_ok()
}

/// Delete regular files in `dir` last modified before `cutoff`.
fn remove_old_files(dir: &Path, cutoff: SystemTime) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .filter(|e| {
            e.metadata()
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| t < cutoff)
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

pub fn run(args: GcArgs, ctx: &Ctx) -> Result<i32> {
    let store = ctx.store()?;
    let archived = store.list_tasks(&TaskQuery {
        status: Some(Status::Archived),
        include_archived: true,
        ..Default::default()
    })?;
    let root = &ctx.board.workspaces_root;
    let removed_ws = archived
        .iter()
        .filter(|t| t.workspace_kind == "scratch")
        .filter(|t| {
            let path = t
                .workspace_path
                .as_deref()
                .map(Into::into)
                .unwrap_or_else(|| ctx.board.scratch_workspace(&t.id));
            remove_scratch(&path, root)
        })
        .count();
    let event_cutoff = ctx.now() - args.event_retention_days * SECONDS_PER_DAY;
    let removed_events = store.gc_events(event_cutoff)?;
    let log_age = Duration::from_secs((args.log_retention_days * SECONDS_PER_DAY) as u64);
    let log_cutoff = SystemTime::now()
        .checked_sub(log_age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let removed_logs = remove_old_files(&ctx.board.logs_dir, log_cutoff);
    println!(
        "GC complete: {removed_ws} workspace(s), {removed_events} event row(s), \
         {removed_logs} log file(s) removed"
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_removal_stays_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("workspaces");
        let inside = root.join("t_1");
        let outside = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        assert!(!remove_scratch(&outside, &root));
        assert!(!remove_scratch(&root.join("t_1/../../elsewhere"), &root));
        assert!(!remove_scratch(&root, &root));
        assert!(remove_scratch(&inside, &root));
        assert!(outside.exists() && !inside.exists());
    }
}
