//! A task's scratch workspace at completion (reference §5.4): the files
//! the worker declared as `artifacts` that live inside its managed scratch
//! directory are copied into `<attachments_root>/<task_id>/` (and recorded
//! as attachments) in the completion's transaction; once it has committed
//! the scratch directory is deleted. A declared scratch file that cannot be
//! kept (missing, not a regular file, too large) refuses the completion:
//! the task stays in flight, its workspace untouched.
//!
//! Only directories strictly below a managed workspaces root are ever
//! deleted: never a `dir:` or `worktree:` workspace, never a root itself,
//! never through a symbolic link.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use kanban_core::Task;
use kanban_core::defaults::ATTACHMENT_MAX_BYTES;
use serde_json::Value;

use crate::private_fs::create_private_dir;

/// How a refused completion's reason starts when artifacts could not be
/// kept (surfaces word their message from it).
pub const ARTIFACT_REFUSAL: &str = "could not preserve the declared artifacts";
/// `uploaded_by` of the attachments a completion keeps.
pub const ARTIFACT_UPLOADER: &str = "kanban_complete";
/// Kind of the workspaces a completion deletes.
const SCRATCH_KIND: &str = "scratch";
/// Characters trimmed from the end of a path found in prose.
const PROSE_PATH_TRAILERS: &[char] = &['.', ',', ';', ':', '!', '?', ')', ']', '}'];

pub use crate::params::BoardFiles;

impl BoardFiles {
    /// `raw` with a leading `~` replaced by the caller's home directory
    /// (the store reads no environment: `home` comes with the paths).
    pub fn expand_home(&self, raw: &str) -> PathBuf {
        match (raw, self.home.as_deref()) {
            ("~", Some(h)) => h.to_path_buf(),
            (r, Some(h)) if r.starts_with("~/") => h.join(&r[2..]),
            (r, _) => PathBuf::from(r),
        }
    }

    /// `p` lies strictly below a managed workspaces root.
    pub fn is_managed(&self, p: &Path) -> bool {
        let p = resolve_lenient(p);
        self.scratch_roots
            .iter()
            .map(|r| resolve_lenient(r))
            .any(|root| p != root && p.starts_with(&root))
    }

    /// The task's scratch workspace when it is one this board manages.
    pub fn managed_scratch(&self, task: &Task) -> Option<PathBuf> {
        if task.workspace_kind != SCRATCH_KIND {
            return None;
        }
        let raw = task.workspace_path.as_deref().filter(|p| !p.is_empty())?;
        let ws = self.expand_home(raw);
        self.is_managed(&ws).then_some(ws)
    }
}

/// Absolute (against the current directory), symbolic links of the
/// longest existing prefix followed, the rest folded lexically (Python's
/// non-strict `Path.resolve`).
pub fn resolve_lenient(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let mut existing = abs.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(mut out) = existing.canonicalize() {
            for name in rest.iter().rev() {
                match name.to_str() {
                    Some("..") => {
                        out.pop();
                    }
                    Some(".") => {}
                    _ => out.push(name),
                }
            }
            return out;
        }
        match existing.components().next_back() {
            Some(Component::Normal(n)) => rest.push(n.to_os_string()),
            Some(Component::ParentDir) => rest.push("..".into()),
            Some(Component::CurDir) => rest.push(".".into()),
            _ => return abs,
        }
        if !existing.pop() {
            return abs;
        }
    }
}

/// Existing files of the task's managed scratch workspace named by an
/// absolute path in the summary or result: older workers only wrote the
/// deliverable's path there, so they are declared too (deduplicated,
/// after the explicitly declared ones).
pub fn with_prose_artifacts(
    files: &BoardFiles,
    task: &Task,
    metadata: Option<&Value>,
    prose: &[Option<&str>],
) -> Option<Value> {
    let unchanged = || metadata.cloned();
    let Some(ws) = files.managed_scratch(task) else {
        return unchanged();
    };
    let text = prose
        .iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    if text.is_empty() {
        return unchanged();
    }
    let found: Vec<String> = paths_below(&text, &ws.to_string_lossy())
        .map(|m| m.trim_end_matches(PROSE_PATH_TRAILERS).to_string())
        .filter(|p| Path::new(p).is_file())
        .collect();
    if found.is_empty() {
        return unchanged();
    }
    let mut out = match metadata {
        Some(Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    let mut merged: Vec<Value> = match out.get("artifacts") {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    for p in found {
        if !merged.iter().any(|v| v.as_str() == Some(p.as_str())) {
            merged.push(Value::String(p));
        }
    }
    out.insert("artifacts".into(), Value::Array(merged));
    Some(Value::Object(out))
}

/// A declared artifact copied into the task's attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptArtifact {
    pub filename: String,
    /// Absolute path of the copy.
    pub stored_path: PathBuf,
    pub size: u64,
}

/// `<dir>/<name>`, else `<stem>_1<suffix>`, `<stem>_2<suffix>`, ... (the
/// reference's scheme for completion artifacts).
fn unique_destination(dir: &Path, name: &str, used: &[PathBuf]) -> PathBuf {
    let free = |p: &PathBuf| !used.contains(p) && std::fs::symlink_metadata(p).is_err();
    let name = if name.is_empty() { "artifact" } else { name };
    let first = dir.join(name);
    if free(&first) {
        return first;
    }
    let (stem, suffix) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (1..)
        .map(|n| dir.join(format!("{stem}_{n}{suffix}")))
        .find(free)
        .expect("an unused name exists")
}

/// Copy at most the attachment limit; `Err` text names the artifact.
fn copy_capped(src: &Path, dest: &Path, artifact: &str) -> Result<(), String> {
    let mut input = File::open(src)
        .map_err(|e| format!("could not preserve declared scratch artifact {artifact}: {e}"))?;
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| format!("could not preserve declared scratch artifact {artifact}: {e}"))?;
    let mut buf = vec![0u8; 1024 * 1024];
    let mut copied = 0u64;
    loop {
        let n = input
            .read(&mut buf)
            .map_err(|e| format!("could not preserve declared scratch artifact {artifact}: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        copied += n as u64;
        if copied > ATTACHMENT_MAX_BYTES {
            return Err(format!(
                "declared scratch artifact grew beyond the size limit: {artifact}"
            ));
        }
        output
            .write_all(&buf[..n])
            .map_err(|e| format!("could not preserve declared scratch artifact {artifact}: {e}"))?;
    }
}

/// Copy the declared artifacts that live in the task's managed scratch
/// workspace into `<attachments_root>/<task_id>/`, rewriting
/// `metadata.artifacts` to the copies' paths. Artifacts elsewhere stay as
/// declared. On `Err` (the reason, without [`ARTIFACT_REFUSAL`]) every copy
/// made is removed again.
pub fn keep_scratch_artifacts(
    files: &BoardFiles,
    task: &Task,
    metadata: &mut Option<Value>,
) -> Result<Vec<KeptArtifact>, String> {
    let Some(Value::Array(declared)) = metadata.as_ref().and_then(|m| m.get("artifacts")) else {
        return Ok(Vec::new());
    };
    let Some(ws) = files.managed_scratch(task) else {
        return Ok(Vec::new());
    };
    let Ok(ws_root) = ws.canonicalize() else {
        return Ok(Vec::new());
    };
    let dir = files.attachments_root.join(&task.id);
    let mut kept: Vec<KeptArtifact> = Vec::new();
    let mut persisted: Vec<Value> = Vec::new();
    let discard = |kept: &[KeptArtifact]| {
        for k in kept {
            let _ = std::fs::remove_file(&k.stored_path);
        }
        let _ = std::fs::remove_dir(&dir);
    };
    for item in declared {
        let Some(artifact) = item.as_str().map(str::trim).filter(|a| !a.is_empty()) else {
            continue;
        };
        let src = resolve_lenient(&files.expand_home(artifact));
        if !src.starts_with(&ws_root) {
            persisted.push(Value::String(artifact.to_string()));
            continue;
        }
        let meta = std::fs::metadata(&src).ok().filter(|m| m.is_file());
        let Some(meta) = meta else {
            discard(&kept);
            return Err(format!(
                "declared scratch artifact is unavailable or not a regular file: {artifact}"
            ));
        };
        if meta.len() > ATTACHMENT_MAX_BYTES {
            discard(&kept);
            return Err(format!(
                "declared scratch artifact exceeds the {ATTACHMENT_MAX_BYTES}-byte limit: {artifact}"
            ));
        }
        if let Err(e) = create_private_dir(&dir) {
            discard(&kept);
            return Err(format!(
                "could not preserve declared scratch artifact {artifact}: cannot create {}: {e}",
                dir.display()
            ));
        }
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let used: Vec<PathBuf> = kept.iter().map(|k| k.stored_path.clone()).collect();
        let dest = unique_destination(&dir, &name, &used);
        if let Err(e) = copy_capped(&src, &dest, artifact) {
            let _ = std::fs::remove_file(&dest);
            discard(&kept);
            return Err(e);
        }
        let stored_path = dest.canonicalize().unwrap_or(dest);
        let size = std::fs::metadata(&stored_path).map_or(0, |m| m.len());
        persisted.push(Value::String(stored_path.to_string_lossy().into_owned()));
        kept.push(KeptArtifact {
            filename: stored_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            stored_path,
            size,
        });
    }
    if !kept.is_empty()
        && let Some(Value::Object(m)) = metadata.as_mut()
    {
        m.insert("artifacts".into(), Value::Array(persisted));
    }
    Ok(kept)
}

/// Paths below `dir` written out in `text`, in order: `dir`, a slash or
/// backslash, then at least one character up to whitespace, a quote, a
/// backtick, `<` or `>` (the reference's regex). A scan: compiling that
/// regex per completion cost more than the rest of the completion's work.
fn paths_below<'a>(text: &'a str, dir: &str) -> impl Iterator<Item = &'a str> {
    let stop = |c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'' | '<' | '>');
    let mut from = 0;
    std::iter::from_fn(move || {
        if dir.is_empty() {
            return None;
        }
        while let Some(at) = text[from..].find(dir).map(|i| from + i) {
            let rest = &text[at + dir.len()..];
            if rest.starts_with(['/', '\\']) {
                let tail = rest[1..].find(stop).unwrap_or(rest.len() - 1);
                if tail > 0 {
                    let end = at + dir.len() + 1 + tail;
                    from = end;
                    return Some(&text[at..end]);
                }
            }
            // No match here: look again from the next character.
            from = at + text[at..].chars().next().map_or(1, char::len_utf8);
        }
        None
    })
}

/// What [`remove_scratch_dir`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScratchRemoval {
    Removed,
    /// Nothing there.
    Missing,
    /// Not a managed scratch directory: left alone.
    Refused(String),
}

/// Delete a completed task's scratch directory: only a real directory
/// strictly below a managed workspaces root, never through a symlink.
pub fn remove_scratch_dir(files: &BoardFiles, path: &Path) -> std::io::Result<ScratchRemoval> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ScratchRemoval::Missing),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return Ok(ScratchRemoval::Refused(format!(
            "{} is not a directory (or is a symbolic link)",
            path.display()
        )));
    }
    if !path.is_absolute() || !files.is_managed(path) {
        return Ok(ScratchRemoval::Refused(format!(
            "{} is outside every managed workspaces root",
            path.display()
        )));
    }
    std::fs::remove_dir_all(path)?;
    Ok(ScratchRemoval::Removed)
}

/// Remove the scratch directories a completion released (best effort,
/// as the reference: a failure never undoes the completion).
pub fn remove_released_scratch(files: &BoardFiles, dirs: &[PathBuf]) {
    for d in dirs {
        match remove_scratch_dir(files, d) {
            Ok(ScratchRemoval::Refused(why)) => {
                tracing::warn!("scratch workspace kept: {why}");
            }
            Err(e) => tracing::warn!("cannot remove scratch workspace {}: {e}", d.display()),
            Ok(_) => {}
        }
    }
}

/// Complete a task the way every surface must: with the board's files,
/// so declared scratch artifacts are kept, then remove the scratch
/// workspaces the completion released (after it committed).
pub fn complete_with_files(
    store: &dyn crate::Store,
    req: &crate::CompleteRequest,
    files: &BoardFiles,
) -> crate::Result<crate::Completion> {
    let req = crate::CompleteRequest {
        files: Some(files.clone()),
        ..req.clone()
    };
    let done = store.complete_task(&req)?;
    remove_released_scratch(files, &done.release_scratch);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan finds what the regex it replaces found.
    #[test]
    fn paths_below_match_the_regex() {
        let dir = "/tmp/ws/t_1";
        let re =
            regex::Regex::new(&format!(r#"{}(?:[/\\][^\s`"'<>]+)"#, regex::escape(dir))).unwrap();
        let texts = [
            "wrote /tmp/ws/t_1/out.txt and /tmp/ws/t_1/a/b.md.",
            "see `/tmp/ws/t_1/x` or \"/tmp/ws/t_1/y\" or </tmp/ws/t_1/z>",
            "/tmp/ws/t_1/ /tmp/ws/t_1 /tmp/ws/t_12/q /tmp/ws/t_1\\win\\p",
            "é/tmp/ws/t_1/é\u{3000}x /tmp/ws/t_1//tmp/ws/t_1/w\u{85}v",
            "",
        ];
        for text in texts {
            let want: Vec<&str> = re.find_iter(text).map(|m| m.as_str()).collect();
            let got: Vec<&str> = paths_below(text, dir).collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    fn task_in(ws: &Path) -> Task {
        serde_json::from_value(serde_json::json!({
            "id": "t_1", "title": "x", "status": "running", "priority": 0, "created_at": 0,
            "workspace_kind": SCRATCH_KIND, "workspace_path": ws, "consecutive_failures": 0,
            "goal_mode": false, "block_recurrences": 0,
        }))
        .unwrap()
    }

    fn files(root: &Path) -> BoardFiles {
        BoardFiles {
            attachments_root: root.join("attachments"),
            scratch_roots: vec![root.join("workspaces")],
            home: None,
        }
    }

    #[test]
    fn managed_means_strictly_below_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        std::fs::create_dir_all(dir.path().join("workspaces/t_1")).unwrap();
        assert!(f.is_managed(&dir.path().join("workspaces/t_1")));
        assert!(f.is_managed(&dir.path().join("workspaces/t_2/x")));
        assert!(!f.is_managed(&dir.path().join("workspaces")));
        assert!(!f.is_managed(&dir.path().join("workspaces/../elsewhere")));
        assert!(!f.is_managed(dir.path()));
    }

    #[test]
    fn artifacts_inside_scratch_are_copied_and_outside_ones_kept_as_declared() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let ws = dir.path().join("workspaces/t_1");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join("a.txt"), "one").unwrap();
        std::fs::write(ws.join("b.tar.gz"), "two").unwrap();
        std::fs::create_dir_all(dir.path().join("attachments/t_1")).unwrap();
        std::fs::write(dir.path().join("attachments/t_1/a.txt"), "taken").unwrap();
        let task = task_in(&ws);
        let mut md = Some(serde_json::json!({"artifacts": [
            ws.join("a.txt"), ws.join("b.tar.gz"), "/elsewhere/c.pdf", 7
        ]}));
        let kept = keep_scratch_artifacts(&f, &task, &mut md).unwrap();
        let names: Vec<&str> = kept.iter().map(|k| k.filename.as_str()).collect();
        assert_eq!(names, ["a_1.txt", "b.tar.gz"]);
        assert_eq!(
            std::fs::read_to_string(&kept[0].stored_path).unwrap(),
            "one"
        );
        let arts = md.unwrap()["artifacts"].clone();
        assert_eq!(arts[2], "/elsewhere/c.pdf");
        assert_eq!(arts.as_array().unwrap().len(), 3, "non-strings dropped");

        let mut missing =
            Some(serde_json::json!({"artifacts": [ws.join("b.tar.gz"), ws.join("no")]}));
        let err = keep_scratch_artifacts(&f, &task, &mut missing).unwrap_err();
        assert!(err.contains("unavailable or not a regular file"), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path().join("attachments/t_1"))
                .unwrap()
                .count(),
            3
        );
    }

    #[test]
    fn prose_paths_into_scratch_are_declared() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let ws = dir.path().join("workspaces/t_1");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join("r.md"), "x").unwrap();
        let task = task_in(&ws);
        let text = format!("see {}/r.md. and {}/gone.md", ws.display(), ws.display());
        let md = with_prose_artifacts(&f, &task, None, &[Some(&text), None]).unwrap();
        assert_eq!(md["artifacts"], serde_json::json!([ws.join("r.md")]));
        assert!(with_prose_artifacts(&f, &task, None, &[Some("nothing")]).is_none());
    }
}
