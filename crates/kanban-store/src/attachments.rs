//! Attachment file names, shared by the store and every adapter that
//! stores a file for a task (REST upload, CLI, MCP), so the rules cannot
//! drift between them. Where blobs are placed is the Hermes layout's
//! business (`kanban-hermes`), not the store's.
//!
//! Unlike the reference, which silently reduces `../../etc/passwd` to
//! `passwd`, a name that tries to leave its directory is refused (SPEC §6:
//! bad input gets a clear error and changes nothing).

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
}
