//! Where a Hermes-compatible installation keeps its boards, resolved exactly
//! as the 0.19.0 reference does (reference §7.6, §8), so a Python process and
//! ours always agree on which file is "the board".
//!
//! Everything here takes the environment as an explicit [`Env`] so tests
//! never mutate the process environment, and nothing here opens a database:
//! the store decides how a board file is initialised. Which boards exist
//! is the board catalogue's answer (`crate::catalogue`): these directories
//! without a database, the database's catalogue with one (the current-board
//! pointer stays a file of this root either way).
//!
//! ```text
//! <root>/config.yaml                         kanban: section (crate::config)
//! <root>/kanban.db                           default board (legacy path)
//! <root>/kanban/{workspaces,logs,attachments}/   default board's files
//! <root>/kanban/boards/default/board.json    default board's metadata
//! <root>/kanban/boards/<slug>/{kanban.db,board.json,workspaces/,logs/,attachments/}
//! <root>/kanban/boards/_archived/<slug>-<ts>[-n]/
//! <root>/kanban/current                      current-board pointer
//! <root>/kanban/.dispatcher.lock             gateway singleton lock
//! <root>/profiles/<name>/                    Hermes profiles
//! ```

mod boards;
mod env;

use std::path::{Path, PathBuf};

use kanban_core::CoreError;
use kanban_core::validate::normalize_board_slug;
use kanban_store::backend::{
    BoardCatalogue, BoardLocation, CatalogueError, PostgresLocation, board_not_found_message,
};
use thiserror::Error;

pub use boards::{
    BoardMeta, CreatedBoard, MetaUpdate, clear_current_board, create_board, default_display_name,
    list_boards, read_board_metadata, remove_board, rename_board, set_current_board_in,
    set_default_workdir, write_board_metadata,
};
pub use env::{Env, MapEnv, ProcessEnv};
/// What removing a board did (the catalogue's types).
pub use kanban_store::backend::{RemoveAction, RemovedBoard};
/// File modes of everything written under the root (SPEC §4); the store
/// applies the same ones to the database it creates.
pub use kanban_store::private_fs::{PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};

/// Slug of the board that keeps the pre-boards legacy paths.
pub const DEFAULT_BOARD: &str = "default";
/// Overrides the shared root (blank ignored).
pub const ENV_KANBAN_HOME: &str = "HERMES_KANBAN_HOME";
/// The Hermes home; a profile home `<root>/profiles/<name>` maps to `<root>`.
pub const ENV_HERMES_HOME: &str = "HERMES_HOME";
/// Selects the board when no `--board` is given.
pub const ENV_KANBAN_BOARD: &str = "HERMES_KANBAN_BOARD";
/// Pins the database file (set by the dispatcher for its workers).
pub const ENV_KANBAN_DB: &str = "HERMES_KANBAN_DB";
/// Pins the scratch-workspace root.
pub const ENV_KANBAN_WORKSPACES_ROOT: &str = "HERMES_KANBAN_WORKSPACES_ROOT";
/// Pins the attachments root.
pub const ENV_KANBAN_ATTACHMENTS_ROOT: &str = "HERMES_KANBAN_ATTACHMENTS_ROOT";
/// Set in a worker's environment: marks the caller as a fenced worker.
pub const ENV_KANBAN_TASK: &str = "HERMES_KANBAN_TASK";
/// A `postgres://` URL: boards live in that database instead of SQLite
/// files (overrides `kanban.database_url` in config.yaml; `--db` sets it).
pub const ENV_KANBAN_DATABASE_URL: &str = "HERMES_KANBAN_DATABASE_URL";

/// File name of a board database.
pub const DB_FILE_NAME: &str = "kanban.db";
/// File name of a board's display metadata.
pub const BOARD_JSON_FILE_NAME: &str = "board.json";
/// Directory (under `kanban/boards/`) that receives archived boards.
pub const ARCHIVED_DIR_NAME: &str = "_archived";

/// Why a root or board could not be resolved or changed.
#[derive(Debug, Error)]
pub enum LayoutError {
    /// Not a valid slug (message from `normalize_board_slug`).
    #[error(transparent)]
    InvalidSlug(#[from] CoreError),
    /// A blank slug where one is required.
    #[error("board slug is required")]
    SlugRequired,
    /// A non-default board with neither a DB nor a `board.json`.
    #[error("{}", board_not_found_message(.0))]
    BoardNotFound(String),
    #[error("the 'default' board cannot be removed")]
    DefaultNotRemovable,
    /// `default_workdir` must be an absolute path to an existing directory.
    #[error("default workdir {path:?} {reason}")]
    BadWorkdir { path: String, reason: &'static str },
    /// Neither `HERMES_KANBAN_HOME`, `HERMES_HOME` nor a home directory.
    #[error(
        "cannot locate the Hermes root: set HERMES_KANBAN_HOME or HERMES_HOME (no home directory found)"
    )]
    NoHome,
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The configured database URL is not a `postgres://` URL (message
    /// redacted).
    #[error("{origin} must be a postgres:// URL: {detail}")]
    BadDatabaseUrl { origin: String, detail: String },
    /// The board catalogue (a database) could not answer.
    #[error(transparent)]
    Catalogue(CatalogueError),
}

impl From<CatalogueError> for LayoutError {
    fn from(e: CatalogueError) -> LayoutError {
        match e {
            CatalogueError::NotFound { slug } => LayoutError::BoardNotFound(slug),
            other => LayoutError::Catalogue(other),
        }
    }
}

impl LayoutError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LayoutError::Io {
            context: context.into(),
            source,
        }
    }

    /// CLI exit code for this error: usage errors (bad or missing slug, bad
    /// workdir value) are 2, everything else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            LayoutError::InvalidSlug(_)
            | LayoutError::SlugRequired
            | LayoutError::BadWorkdir { .. }
            | LayoutError::BadDatabaseUrl { .. } => 2,
            LayoutError::Catalogue(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// Validate and normalise a board slug; blank is [`LayoutError::SlugRequired`].
pub fn require_slug(slug: &str) -> Result<String, LayoutError> {
    normalize_board_slug(slug)?.ok_or(LayoutError::SlugRequired)
}

/// The shared Hermes root every profile and board hangs off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    dir: PathBuf,
    /// The PostgreSQL database holding this installation's boards, when
    /// one is configured (its `default` board; each board is a schema).
    database: Option<PostgresLocation>,
}

impl Root {
    /// A root at a known directory (tests, `--root`-style overrides).
    pub fn at(dir: impl Into<PathBuf>) -> Root {
        Root {
            dir: dir.into(),
            database: None,
        }
    }

    /// Keep the boards in the PostgreSQL database at `url` (a `board`
    /// parameter in it is ignored: each board gets its own schema).
    /// `origin` names where the URL came from, for the error, which never
    /// repeats a password.
    pub fn use_database(&mut self, url: &str, origin: &str) -> Result<(), LayoutError> {
        let bad = |detail: String| LayoutError::BadDatabaseUrl {
            origin: origin.to_string(),
            detail,
        };
        match BoardLocation::parse(url) {
            Ok(BoardLocation::Postgres(pg)) => {
                self.database = Some(
                    pg.with_board(DEFAULT_BOARD)
                        .map_err(|e| bad(e.to_string()))?,
                );
                Ok(())
            }
            Ok(other) => Err(bad(format!("{other} is a file path"))),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// The configured database, if any (its `default` board).
    pub fn database(&self) -> Option<&PostgresLocation> {
        self.database.as_ref()
    }

    /// `HERMES_KANBAN_HOME` (blank ignored, `~` expanded) › `HERMES_HOME`
    /// (a profile home `<root>/profiles/<name>` and anything under `~/.hermes`
    /// map to the shared root) › `~/.hermes`.
    pub fn resolve(env: &dyn Env) -> Result<Root, LayoutError> {
        let mut root = Root::resolve_dir(env)?;
        if let Some(url) = env.non_blank(ENV_KANBAN_DATABASE_URL) {
            root.use_database(&url, ENV_KANBAN_DATABASE_URL)?;
        }
        Ok(root)
    }

    fn resolve_dir(env: &dyn Env) -> Result<Root, LayoutError> {
        if let Some(over) = env.non_blank(ENV_KANBAN_HOME) {
            return Ok(Root::at(absolute(&expand_tilde(&over, env))));
        }
        let home = env.home_dir();
        let native = home.as_ref().map(|h| h.join(".hermes"));
        // The reference tests emptiness without trimming here; a blank value
        // is treated as unset all the same since it cannot name a directory.
        let Some(hermes_home) = env.non_blank(ENV_HERMES_HOME) else {
            return native.map(Root::at).ok_or(LayoutError::NoHome);
        };
        let env_path = absolute(Path::new(&hermes_home));
        if let Some(native) = native
            && resolve_lenient(&env_path).starts_with(resolve_lenient(&native))
        {
            return Ok(Root::at(native));
        }
        // Custom/Docker layout: `<root>/profiles/<name>` walks up to `<root>`.
        if let Some(parent) = env_path.parent()
            && parent.file_name().is_some_and(|n| n == "profiles")
            && let Some(root) = parent.parent()
        {
            return Ok(Root::at(root));
        }
        Ok(Root::at(env_path))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
    /// `<root>/kanban`
    pub fn kanban_dir(&self) -> PathBuf {
        self.dir.join("kanban")
    }
    /// `<root>/kanban/boards`: parent of named boards (and of default's metadata).
    pub fn boards_root(&self) -> PathBuf {
        self.kanban_dir().join("boards")
    }
    /// `<root>/kanban/boards/_archived`
    pub fn archived_root(&self) -> PathBuf {
        self.boards_root().join(ARCHIVED_DIR_NAME)
    }
    /// `<root>/kanban/current`: the persisted current-board pointer.
    pub fn current_pointer(&self) -> PathBuf {
        self.kanban_dir().join("current")
    }
    /// `<root>/kanban/.dispatcher.lock`: held by whichever gateway dispatches.
    pub fn gateway_lock(&self) -> PathBuf {
        self.kanban_dir().join(".dispatcher.lock")
    }
    /// `<root>/config.yaml`
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config.yaml")
    }
    /// `<root>/profiles`
    pub fn profiles_dir(&self) -> PathBuf {
        self.dir.join("profiles")
    }
    /// Home of a Hermes profile: `<root>` for `default`, else
    /// `<root>/profiles/<name>`. `None` for names that could escape the
    /// profiles directory.
    pub fn profile_dir(&self, name: &str) -> Option<PathBuf> {
        if name == "default" {
            return Some(self.dir.clone());
        }
        let safe =
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
        safe.then(|| self.profiles_dir().join(name))
    }
    /// `<root>/kanban/boards/<slug>` (metadata-only for `default`). The slug
    /// must already be normalised.
    pub fn board_dir(&self, slug: &str) -> PathBuf {
        self.boards_root().join(slug)
    }

    /// `default` always exists; another board exists when its directory has
    /// a `board.json` or a `kanban.db`.
    pub fn board_exists(&self, slug: &str) -> bool {
        if slug == DEFAULT_BOARD {
            return true;
        }
        let d = self.board_dir(slug);
        d.join(BOARD_JSON_FILE_NAME).exists() || d.join(DB_FILE_NAME).exists()
    }

    /// The natural paths of a board (no env pins). The slug must already be
    /// normalised.
    pub fn board_paths(&self, slug: &str) -> BoardPaths {
        let meta_dir = self.board_dir(slug);
        let (db, files_dir) = if slug == DEFAULT_BOARD {
            (self.dir.join(DB_FILE_NAME), self.kanban_dir())
        } else {
            (meta_dir.join(DB_FILE_NAME), meta_dir.clone())
        };
        BoardPaths {
            slug: slug.to_string(),
            dispatch_lock: dispatch_lock_for(&db),
            db,
            workspaces_root: files_dir.join("workspaces"),
            logs_dir: files_dir.join("logs"),
            attachments_root: files_dir.join("attachments"),
            board_json: meta_dir.join(BOARD_JSON_FILE_NAME),
            source: BoardSource::Default,
            database: self
                .database
                .as_ref()
                .and_then(|pg| pg.with_board(slug).ok()),
        }
    }

    pub(crate) fn has_board_in(
        &self,
        slug: &str,
        catalogue: &dyn BoardCatalogue,
    ) -> Result<bool, LayoutError> {
        if slug == DEFAULT_BOARD {
            return Ok(true);
        }
        Ok(catalogue.contains(slug)?)
    }

    /// [`Root::pointer_board`], asking `catalogue` whether it exists.
    pub fn pointer_board_in(&self, catalogue: &dyn BoardCatalogue) -> Option<String> {
        let slug = self.pointer_slug()?;
        self.has_board_in(&slug, catalogue).ok()?.then_some(slug)
    }

    /// The valid slug the pointer file names, existing or not.
    pub fn pointer_slug(&self) -> Option<String> {
        let raw = std::fs::read_to_string(self.current_pointer()).ok()?;
        normalize_board_slug(&raw).ok()?
    }

    /// [`Root::current_board`], asking `catalogue` which boards exist.
    pub fn current_board_in(&self, env: &dyn Env, catalogue: &dyn BoardCatalogue) -> String {
        self.checked_env_board(env, catalogue)
            .ok()
            .flatten()
            .or_else(|| self.pointer_board_in(catalogue))
            .unwrap_or_else(|| DEFAULT_BOARD.into())
    }

    /// The `HERMES_KANBAN_BOARD` value [`Root::resolve_board`] obeys when
    /// no explicit board is given: when resolution fails with a slug error
    /// and this is `Some`, the variable is what named the bad board.
    pub fn env_board_value(&self, explicit: Option<&str>, env: &dyn Env) -> Option<String> {
        explicit
            .is_none()
            .then(|| env.non_blank(ENV_KANBAN_BOARD))
            .flatten()
    }

    /// `HERMES_KANBAN_BOARD` (blank = unset), refused like `--board` when
    /// it is not a valid slug or names a board that does not exist.
    fn checked_env_board(
        &self,
        env: &dyn Env,
        catalogue: &dyn BoardCatalogue,
    ) -> Result<Option<String>, LayoutError> {
        let Some(raw) = env.non_blank(ENV_KANBAN_BOARD) else {
            return Ok(None);
        };
        let slug = require_slug(&raw)?;
        if !self.has_board_in(&slug, catalogue)? {
            return Err(LayoutError::BoardNotFound(slug));
        }
        Ok(Some(slug))
    }

    /// [`Root::resolve_board`], asking `catalogue` which boards exist.
    pub fn resolve_board_in(
        &self,
        explicit: Option<&str>,
        env: &dyn Env,
        catalogue: &dyn BoardCatalogue,
    ) -> Result<BoardPaths, LayoutError> {
        let pins = Pins::from_env(env);
        if let Some(raw) = explicit {
            let slug = require_slug(raw)?;
            if !self.has_board_in(&slug, catalogue)? {
                return Err(LayoutError::BoardNotFound(slug));
            }
            let mut paths = self.board_paths(&slug);
            paths.source = BoardSource::Explicit;
            if env.non_blank(ENV_KANBAN_TASK).is_some() {
                pins.apply(&mut paths);
            }
            return Ok(paths);
        }
        let (slug, source) = if let Some(slug) = self.checked_env_board(env, catalogue)? {
            (slug, BoardSource::EnvBoard)
        } else if pins.db.is_some() {
            (DEFAULT_BOARD.to_string(), BoardSource::DbPin)
        } else if let Some(slug) = self.pointer_board_in(catalogue) {
            (slug, BoardSource::CurrentPointer)
        } else {
            (DEFAULT_BOARD.to_string(), BoardSource::Default)
        };
        let mut paths = self.board_paths(&slug);
        paths.source = source;
        pins.apply(&mut paths);
        Ok(paths)
    }
}

/// How [`Root::resolve_board`] picked the board (for diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardSource {
    Explicit,
    EnvBoard,
    DbPin,
    CurrentPointer,
    Default,
}

/// Every file and directory of one board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardPaths {
    pub slug: String,
    /// The SQLite file.
    pub db: PathBuf,
    /// Scratch workspaces: `<workspaces_root>/<task_id>/`.
    pub workspaces_root: PathBuf,
    /// Worker logs: `<logs_dir>/<task_id>.log`.
    pub logs_dir: PathBuf,
    /// Attachments: `<attachments_root>/<task_id>/`.
    pub attachments_root: PathBuf,
    /// Display metadata.
    pub board_json: PathBuf,
    /// `<db>.dispatch.lock`: held for one dispatch pass.
    pub dispatch_lock: PathBuf,
    pub source: BoardSource,
    /// The board in a PostgreSQL database, when one is configured; the
    /// SQLite file is then unused (workspaces, logs and attachments stay
    /// under the root of this host).
    pub database: Option<PostgresLocation>,
}

impl BoardPaths {
    /// Where the board's store lives: the configured database, else its
    /// SQLite file (env pin included).
    pub fn location(&self) -> BoardLocation {
        match &self.database {
            Some(pg) => BoardLocation::Postgres(pg.clone()),
            None => BoardLocation::sqlite(&self.db),
        }
    }

    /// `<logs_dir>/<task_id>.log`
    pub fn log_file(&self, task_id: &str) -> PathBuf {
        self.logs_dir.join(format!("{task_id}.log"))
    }
    /// `<workspaces_root>/<task_id>`: a scratch workspace.
    pub fn scratch_workspace(&self, task_id: &str) -> PathBuf {
        self.workspaces_root.join(task_id)
    }
    /// `<attachments_root>/<task_id>`
    pub fn task_attachments_dir(&self, task_id: &str) -> PathBuf {
        self.attachments_root.join(task_id)
    }
    /// Create the DB's parent and the workspaces/logs/attachments roots
    /// (mode 0700 for the ones created here).
    pub fn ensure_dirs(&self) -> Result<(), LayoutError> {
        if let Some(parent) = self.db.parent() {
            create_private_dir(parent)?;
        }
        for d in [
            &self.workspaces_root,
            &self.logs_dir,
            &self.attachments_root,
        ] {
            create_private_dir(d)?;
        }
        Ok(())
    }
}

/// `HERMES_KANBAN_DB`, `HERMES_KANBAN_WORKSPACES_ROOT`,
/// `HERMES_KANBAN_ATTACHMENTS_ROOT` (blank ignored, `~` expanded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    pub db: Option<PathBuf>,
    pub workspaces_root: Option<PathBuf>,
    pub attachments_root: Option<PathBuf>,
}

impl Pins {
    pub fn from_env(env: &dyn Env) -> Pins {
        let pin = |k: &str| env.non_blank(k).map(|v| expand_tilde(&v, env));
        Pins {
            db: pin(ENV_KANBAN_DB),
            workspaces_root: pin(ENV_KANBAN_WORKSPACES_ROOT),
            attachments_root: pin(ENV_KANBAN_ATTACHMENTS_ROOT),
        }
    }

    fn apply(&self, paths: &mut BoardPaths) {
        if let Some(db) = &self.db {
            paths.dispatch_lock = dispatch_lock_for(db);
            paths.db = db.clone();
        }
        if let Some(w) = &self.workspaces_root {
            paths.workspaces_root = w.clone();
        }
        if let Some(a) = &self.attachments_root {
            paths.attachments_root = a.clone();
        }
    }
}

/// `<db>.dispatch.lock`, a sibling of the DB file.
pub fn dispatch_lock_for(db: &Path) -> PathBuf {
    kanban_store::backend::dispatch_lock_path(db)
}

/// `mkdir -p` with mode 0700 on the directories it creates: board data
/// (prompts, logs, attachments) is private to the operator.
pub fn create_private_dir(dir: &Path) -> Result<(), LayoutError> {
    kanban_store::private_fs::create_private_dir(dir)
        .map_err(|e| LayoutError::io(format!("cannot create {}", dir.display()), e))
}

/// `~` and `~/...` become the home directory (Python `expanduser`).
pub fn expand_tilde(raw: &str, env: &dyn Env) -> PathBuf {
    let home = || env.home_dir();
    if raw == "~" {
        if let Some(h) = home() {
            return h;
        }
    } else if let Some(rest) = raw.strip_prefix("~/")
        && let Some(h) = home()
    {
        return h.join(rest);
    }
    PathBuf::from(raw)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Python's non-strict `Path.resolve()`: follow symlinks of the longest
/// existing prefix, then append the rest with `.`/`..` folded lexically.
fn resolve_lenient(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for comp in rest.iter().rev() {
                match comp {
                    c if c == ".." => {
                        out.pop();
                    }
                    c if c == "." => {}
                    c => out.push(c),
                }
            }
            return out;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests;
