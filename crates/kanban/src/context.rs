//! Everything a verb needs about where it runs: the Hermes root, the
//! resolved board and (opened once, on first use) its store.

use std::cell::OnceCell;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use kanban_store::config::KanbanConfig;
use kanban_store::layout::{BoardPaths, LayoutError, ProcessEnv, Root};
use kanban_store::sqlite::{OpenOptions, SqliteStore};
use kanban_store::{Clock, Store, SystemClock};

use crate::error::UsageError;

pub struct Ctx {
    pub root: Root,
    pub board: BoardPaths,
    store: OnceCell<Box<dyn Store>>,
    config: OnceCell<Option<KanbanConfig>>,
    pub clock: Arc<dyn Clock>,
}

/// Bad or missing slugs are usage errors (exit 2); a missing board is a
/// refusal (exit 1), as in the reference.
pub fn layout_error(err: LayoutError) -> anyhow::Error {
    if err.exit_code() == 2 {
        anyhow::Error::new(UsageError(err.to_string()))
    } else {
        anyhow::Error::new(err)
    }
}

/// Open (creating and migrating when needed) the store of one board.
pub fn open_store(board: &BoardPaths, clock: Arc<dyn Clock>) -> Result<SqliteStore> {
    board
        .ensure_dirs()
        .map_err(anyhow::Error::new)
        .context("could not initialize database")?;
    let opts = OpenOptions {
        create: true,
        ..OpenOptions::default()
    };
    SqliteStore::open(&board.db, opts, clock).context("could not initialize database")
}

impl Ctx {
    /// Resolve root and board (`--board` › env › pointer › default).
    pub fn resolve(explicit_board: Option<&str>) -> Result<Ctx> {
        let env = ProcessEnv;
        let root = Root::resolve(&env).map_err(layout_error)?;
        let board = root
            .resolve_board(explicit_board, &env)
            .map_err(layout_error)?;
        Ok(Ctx {
            root,
            board,
            store: OnceCell::new(),
            config: OnceCell::new(),
            clock: Arc::new(SystemClock),
        })
    }

    /// The board's store, created and migrated on first use.
    pub fn store(&self) -> Result<&dyn Store> {
        if let Some(s) = self.store.get() {
            return Ok(s.as_ref());
        }
        let store = open_store(&self.board, self.clock.clone())?;
        Ok(self.store.get_or_init(|| Box::new(store)).as_ref())
    }

    /// The `kanban:` section of `config.yaml`; `None` when it cannot be
    /// read (verbs that only use it for defaults keep working).
    pub fn config(&self) -> Option<&KanbanConfig> {
        self.config
            .get_or_init(|| KanbanConfig::load(&self.root, &ProcessEnv).ok())
            .as_ref()
    }

    /// The board-wide circuit-breaker limit from config, if set.
    pub fn failure_limit(&self) -> Option<i64> {
        self.config().map(|c| c.failure_limit)
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
