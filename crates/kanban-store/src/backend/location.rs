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
    /// A `postgres://` URL whose `board` parameter is not a board name
    /// (redacted URL).
    #[error("bad board name in {0}: use lowercase letters, digits, '-' and '_' (at most 64)")]
    BadPostgresBoard(String),
    /// Some other `scheme://` (redacted).
    #[error("unsupported board location {0}: expected a file path, sqlite:<path> or postgres://…")]
    UnknownScheme(String),
}

/// A board's storage location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BoardLocation {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A board inside a PostgreSQL database.
    Postgres(PostgresLocation),
}

/// Query parameter of a `postgres://` location naming the board; the rest
/// of the URL is handed to the PostgreSQL client as it is.
pub const POSTGRES_BOARD_PARAM: &str = "board";
/// Board of a `postgres://` location without a `board` parameter.
pub const POSTGRES_DEFAULT_BOARD: &str = "default";
/// Longest board name: a board slug's limit (the backend shortens long
/// names to fit PostgreSQL's 63-byte identifiers).
const POSTGRES_BOARD_MAX: usize = 64;

/// One board in a PostgreSQL database: the connection URL (which may hold
/// a password: never print it, use [`BoardLocation::redacted`]) and the
/// board's name, which selects its schema.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PostgresLocation {
    url: String,
    board: String,
}

impl fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLocation")
            .field("url", &redact_url(&self.url))
            .field("board", &self.board)
            .finish()
    }
}

impl PostgresLocation {
    /// Board `board` of the database at `url` (without a `board` parameter).
    pub fn new(url: &str, board: &str) -> Result<PostgresLocation, LocationError> {
        if !valid_board_name(board) {
            return Err(LocationError::BadPostgresBoard(redact_url(url)));
        }
        Ok(PostgresLocation {
            url: url.to_string(),
            board: board.to_string(),
        })
    }

    /// The connection URL, secrets included: for the PostgreSQL client only.
    pub fn connection_url(&self) -> &str {
        &self.url
    }

    /// The board's name.
    pub fn board(&self) -> &str {
        &self.board
    }

    /// The same database, another board.
    pub fn with_board(&self, board: &str) -> Result<PostgresLocation, LocationError> {
        PostgresLocation::new(&self.url, board)
    }

    /// `url?board=<name>` (or `&board=`), the form [`BoardLocation::parse`] reads back.
    pub fn to_url_with_board(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{POSTGRES_BOARD_PARAM}={}", self.url, self.board)
    }
}

/// Lowercase letters, digits, `-`, `_`; starts with a letter or digit.
fn valid_board_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= POSTGRES_BOARD_MAX
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Split the `board` parameter off a `postgres://` URL.
fn split_board_param(raw: &str) -> (String, Option<String>) {
    let Some((base, query)) = raw.split_once('?') else {
        return (raw.to_string(), None);
    };
    let mut board = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((k, v)) if k == POSTGRES_BOARD_PARAM => {
                board = Some(v.to_string());
                false
            }
            _ => !pair.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, board)
}

impl BoardLocation {
    /// The SQLite file at `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> BoardLocation {
        BoardLocation::Sqlite(path.into())
    }

    /// Parse an operator-given location: `sqlite:<path>` or a plain path is
    /// a SQLite file; `postgres://…` (optionally `?board=<name>`) is a
    /// board in a PostgreSQL database.
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
            let (url, board) = split_board_param(raw);
            let board = board.unwrap_or_else(|| POSTGRES_DEFAULT_BOARD.to_string());
            return PostgresLocation::new(&url, &board).map(BoardLocation::Postgres);
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
            BoardLocation::Postgres(_) => "postgres",
        }
    }

    /// The SQLite file, when this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            BoardLocation::Sqlite(p) => Some(p),
            BoardLocation::Postgres(_) => None,
        }
    }

    /// The location for messages and logs, secrets removed.
    pub fn redacted(&self) -> String {
        match self {
            BoardLocation::Sqlite(p) => p.display().to_string(),
            BoardLocation::Postgres(pg) => {
                format!("{} (board {})", redact_url(&pg.url), pg.board)
            }
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
            BoardLocation::Postgres(pg) => Some(format!("{}#{}", redact_url(&pg.url), pg.board)),
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
    fn postgres_urls_name_a_board_and_never_print_the_password() {
        let loc = BoardLocation::parse(
            "postgres://kanban:s3cret@db.example:5432/kb?sslmode=require&board=ops&password=x",
        )
        .unwrap();
        let BoardLocation::Postgres(pg) = &loc else {
            panic!("{loc:?}")
        };
        assert_eq!(pg.board(), "ops");
        assert_eq!(
            pg.connection_url(),
            "postgres://kanban:s3cret@db.example:5432/kb?sslmode=require&password=x"
        );
        assert_eq!(loc.backend(), "postgres");
        for shown in [loc.to_string(), format!("{loc:?}")] {
            assert!(
                !shown.contains("s3cret") && !shown.contains("password=x"),
                "{shown}"
            );
        }
        assert_eq!(
            loc.to_string(),
            "postgres://kanban:***@db.example:5432/kb?*** (board ops)"
        );
        let plain = BoardLocation::parse("POSTGRESQL://u@h/b").unwrap();
        let BoardLocation::Postgres(pg) = &plain else {
            panic!()
        };
        assert_eq!(pg.board(), POSTGRES_DEFAULT_BOARD);
        assert_eq!(
            BoardLocation::parse(&pg.with_board("x-1").unwrap().to_url_with_board()).unwrap(),
            BoardLocation::Postgres(pg.with_board("x-1").unwrap())
        );
        let err = BoardLocation::parse("postgres://u:pw@h/b?board=Bad!").unwrap_err();
        assert!(matches!(err, LocationError::BadPostgresBoard(ref r) if !r.contains("pw")));
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
