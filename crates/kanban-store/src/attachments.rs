//! Attachment file names and blob placement, shared by every adapter that
//! stores a file for a task (REST upload, CLI, MCP), so the rules cannot
//! drift between them.
//!
//! Unlike the reference, which silently reduces `../../etc/passwd` to
//! `passwd`, a name that tries to leave its directory is refused (SPEC §6:
//! bad input gets a clear error and changes nothing).

use std::path::{Path, PathBuf};

use kanban_core::defaults::ATTACHMENT_NAME_MAX_CHARS;

use crate::StoreError;

/// The name as stored and shown, or why it is refused: empty, longer than
/// [`ATTACHMENT_NAME_MAX_CHARS`], containing a path separator, `..`, NUL or
/// another control character, or starting with a dot (no hidden files).
pub fn safe_attachment_name(raw: &str) -> Result<String, StoreError> {
    let name = raw.trim();
    let refuse = |why: &str| {
        Err(StoreError::invalid(format!(
            "invalid attachment filename {raw:?}: {why}"
        )))
    };
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.chars().count() > ATTACHMENT_NAME_MAX_CHARS {
        return refuse(&format!(
            "longer than {ATTACHMENT_NAME_MAX_CHARS} characters"
        ));
    }
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return refuse("path components ('/', '\\', '..') are not allowed");
    }
    if name.chars().any(char::is_control) {
        return refuse("control characters (NUL, newline, ...) are not allowed");
    }
    if name.starts_with('.') {
        return refuse("it must not start with a dot");
    }
    Ok(name.to_string())
}

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
    fn names_that_leave_the_directory_are_refused() {
        assert_eq!(safe_attachment_name(" report.pdf ").unwrap(), "report.pdf");
        assert_eq!(safe_attachment_name("é ü.txt").unwrap(), "é ü.txt");
        for bad in [
            "",
            "  ",
            "..",
            "../etc/passwd",
            "a/b.txt",
            "a\\b.txt",
            "x\0y",
            "line\nbreak",
            ".bashrc",
            "a..b",
        ] {
            assert!(safe_attachment_name(bad).is_err(), "{bad:?} accepted");
        }
        let long = "a".repeat(ATTACHMENT_NAME_MAX_CHARS + 1);
        assert!(safe_attachment_name(&long).is_err());
        let max = "a".repeat(ATTACHMENT_NAME_MAX_CHARS);
        assert!(safe_attachment_name(&max).is_ok());
    }

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
