//! Where a board lives, as the operator names it: a SQLite file (plain
//! path or `sqlite:<path>`) today, a `postgres://` URL once that backend
//! exists. A location is printed only through [`BoardLocation::redacted`]
//! (its `Display`), so a password in a URL never reaches a message or log.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Prefix that names a SQLite file explicitly.
pub const SQLITE_SCHEME: &str = "sqlite:";
/// URL schemes of the PostgreSQL backend.
pub const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];
/// What replaces a secret in a redacted location.
const REDACTED: &str = "***";

/// Why a location string names no board this build can open.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LocationError {
    #[error("board location is empty")]
    Empty,
    /// A `postgres://` URL (redacted).
    #[error("PostgreSQL backend not built yet: cannot open {0}")]
    PostgresNotBuilt(String),
    /// Some other `scheme://` (redacted).
    #[error("unsupported board location {0}: expected a file path, sqlite:<path> or postgres://…")]
    UnknownScheme(String),
}

/// A board's storage location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BoardLocation {
    /// A SQLite database file.
    Sqlite(PathBuf),
}

impl BoardLocation {
    /// The SQLite file at `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> BoardLocation {
        BoardLocation::Sqlite(path.into())
    }

    /// Parse an operator-given location: `sqlite:<path>` or a plain path is
    /// a SQLite file; `postgres://…` is refused until that backend exists.
    pub fn parse(raw: &str) -> Result<BoardLocation, LocationError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(LocationError::Empty);
        }
        if let Some(path) = raw.strip_prefix(SQLITE_SCHEME) {
            // `sqlite://<path>` is accepted too (URL habit).
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(LocationError::Empty);
            }
            return Ok(BoardLocation::sqlite(path));
        }
        let lower = raw.to_ascii_lowercase();
        if POSTGRES_SCHEMES.iter().any(|s| lower.starts_with(s)) {
            return Err(LocationError::PostgresNotBuilt(redact_url(raw)));
        }
        if has_url_scheme(raw) {
            return Err(LocationError::UnknownScheme(redact_url(raw)));
        }
        Ok(BoardLocation::sqlite(raw))
    }

    /// Short backend name (`sqlite`), as `Store::backend` spells it.
    pub fn backend(&self) -> &'static str {
        match self {
            BoardLocation::Sqlite(_) => "sqlite",
        }
    }

    /// The SQLite file, when this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            BoardLocation::Sqlite(p) => Some(p),
        }
    }

    /// The location for messages and logs, secrets removed.
    pub fn redacted(&self) -> String {
        match self {
            BoardLocation::Sqlite(p) => p.display().to_string(),
        }
    }

    /// A key under which two locations naming the same board are equal
    /// (symbolic links and relative paths resolved); `None` when the
    /// board cannot be found.
    pub fn identity(&self) -> Option<String> {
        match self {
            BoardLocation::Sqlite(p) => p
                .canonicalize()
                .ok()
                .map(|c| format!("sqlite:{}", c.display())),
        }
    }
}

impl fmt::Display for BoardLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `scheme://` at the start (RFC 3986 scheme characters).
fn has_url_scheme(raw: &str) -> bool {
    let Some((scheme, _)) = raw.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// A URL with its password and query string hidden:
/// `postgres://kanban:***@db/board?***`.
fn redact_url(raw: &str) -> String {
    let (scheme, rest) = raw.split_once("://").unwrap_or(("", raw));
    let (rest, query) = match rest.split_once('?') {
        Some((r, _)) => (r, Some(REDACTED)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_sqlite_prefix_name_a_sqlite_file() {
        for (raw, path) in [
            ("/srv/kanban.db", "/srv/kanban.db"),
            ("rel/k.db", "rel/k.db"),
            ("sqlite:/srv/k.db", "/srv/k.db"),
            ("sqlite:///srv/k.db", "/srv/k.db"),
            ("  /padded.db ", "/padded.db"),
        ] {
            assert_eq!(
                BoardLocation::parse(raw).unwrap(),
                BoardLocation::sqlite(path),
                "{raw}"
            );
        }
        assert_eq!(BoardLocation::parse(" "), Err(LocationError::Empty));
        assert_eq!(BoardLocation::parse("sqlite:"), Err(LocationError::Empty));
        assert_eq!(BoardLocation::sqlite("/a.db").backend(), "sqlite");
        assert_eq!(BoardLocation::sqlite("/a.db").to_string(), "/a.db");
    }

    #[test]
    fn postgres_is_refused_clearly_without_leaking_the_password() {
        let err = BoardLocation::parse(
            "postgres://kanban:s3cret@db.example:5432/board?sslmode=require&password=x",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("PostgreSQL backend not built yet"), "{msg}");
        assert!(
            !msg.contains("s3cret") && !msg.contains("password=x"),
            "{msg}"
        );
        assert!(
            msg.contains("postgres://kanban:***@db.example:5432/board?***"),
            "{msg}"
        );
        let err = BoardLocation::parse("POSTGRESQL://u@h/b").unwrap_err();
        assert_eq!(
            err,
            LocationError::PostgresNotBuilt("POSTGRESQL://u@h/b".into())
        );
        let err = BoardLocation::parse("mysql://root:pw@h/b").unwrap_err();
        assert!(matches!(err, LocationError::UnknownScheme(ref r) if r == "mysql://root:***@h/b"));
    }

    #[test]
    fn identity_resolves_links_and_needs_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("k.db");
        assert_eq!(BoardLocation::sqlite(&db).identity(), None);
        std::fs::write(&db, b"").unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        assert_eq!(
            BoardLocation::sqlite(&db).identity(),
            BoardLocation::sqlite(&link).identity()
        );
    }
}
