//! Where attachment blobs live on a Hermes board: one directory per task,
//! `<attachments_root>/<task_id>/` (`BoardPaths::task_attachments_dir`),
//! named with the reference's collision scheme so both implementations lay
//! out a task's directory the same way. Name validation is the store's
//! ([`safe_attachment_name`], re-exported for the adapters that write blobs).

use std::path::{Path, PathBuf};

pub use kanban_store::attachments::safe_attachment_name;

/// A path in `dir` for `name` that does not exist yet: `a.pdf`, then
/// `a (1).pdf`, `a (2).pdf`, ... (the reference's scheme, so both
/// implementations lay out a task's directory the same way).
pub fn collision_free_path(dir: &Path, name: &str) -> PathBuf {
    let (stem, ext) = match name.split_once('.') {
        Some((s, e)) => (s, Some(e)),
        None => (name, None),
    };
    let mut candidate = dir.join(name);
    let mut n = 1;
    while candidate.exists() {
        let file = match ext {
            Some(e) => format!("{stem} ({n}).{e}"),
            None => format!("{stem} ({n})"),
        };
        candidate = dir.join(file);
        n += 1;
    }
    candidate
}

/// `path` resolves (symlinks followed) to a file strictly inside `root`:
/// a tampered `stored_path` must not make the server read other files.
pub fn resolved_under(root: &Path, path: &Path) -> Option<PathBuf> {
    let root = root.canonicalize().ok()?;
    let file = path.canonicalize().ok()?;
    (file.starts_with(&root) && file != root && file.is_file()).then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_get_a_counter_and_escapes_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let first = collision_free_path(dir.path(), "a.tar.gz");
        assert_eq!(first, dir.path().join("a.tar.gz"));
        std::fs::write(&first, b"x").unwrap();
        let second = collision_free_path(dir.path(), "a.tar.gz");
        assert_eq!(second, dir.path().join("a (1).tar.gz"));
        std::fs::write(&second, b"x").unwrap();
        assert_eq!(
            collision_free_path(dir.path(), "a.tar.gz"),
            dir.path().join("a (2).tar.gz")
        );
        assert!(resolved_under(dir.path(), &first).is_some());
        let outside = tempfile::NamedTempFile::new().unwrap();
        assert!(resolved_under(dir.path(), outside.path()).is_none());
        assert!(resolved_under(dir.path(), &dir.path().join("../x")).is_none());
    }
}
