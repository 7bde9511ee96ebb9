//! Everything a verb needs about where it runs: the Hermes root, the
//! resolved board and (opened once, on first use, through the backend
//! factory) its store.

use std::cell::OnceCell;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use kanban_hermes::catalogue::for_root;
use kanban_hermes::config::{KanbanConfig, open_request};
use kanban_hermes::layout::{BoardPaths, ENV_KANBAN_BOARD, LayoutError, ProcessEnv, Root};
use kanban_hermes::pool_size::{database_pool_size, use_database_pool_size};
use kanban_store::backend::{self, BoardCatalogue, BoardHandle};
use kanban_store::dispatch_ops::DispatchStore;
use kanban_store::{Clock, SystemClock};

use crate::error::UsageError;

pub struct Ctx {
    pub root: Root,
    pub board: BoardPaths,
    handle: OnceCell<BoardHandle>,
    config: OnceCell<Option<KanbanConfig>>,
    /// The root's board catalogue (the database's, with one configured).
    catalogue: OnceCell<Box<dyn BoardCatalogue>>,
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

/// Open (creating and migrating when needed) one board.
pub fn open_board(board: &BoardPaths, clock: Arc<dyn Clock>) -> Result<BoardHandle> {
    board
        .ensure_dirs()
        .map_err(anyhow::Error::new)
        .context("could not initialize database")?;
    // The store reads no environment: `HERMES_KANBAN_BUSY_TIMEOUT_MS` is ours to pass.
    let req = open_request(true).with_clock(clock);
    backend::open_board(&board.location(), &req).context("could not initialize database")
}

/// Resolve the root and where its boards live: `--db` ›
/// `HERMES_KANBAN_DATABASE_URL` › `kanban.database_url` in config.yaml ›
/// the SQLite files under the root.
pub fn resolve_root(database_url: Option<&str>) -> Result<Root> {
    Ok(resolve_root_and_config(database_url)?.0)
}

/// [`resolve_root`], plus the config it read to find the database (if it
/// read one), so the caller does not parse `config.yaml` twice.
fn resolve_root_and_config(
    database_url: Option<&str>,
) -> Result<(Root, OnceCell<Option<KanbanConfig>>)> {
    let mut root = Root::resolve(&ProcessEnv).map_err(layout_error)?;
    let config = OnceCell::new();
    if let Some(url) = database_url {
        root.use_database(url, "--db").map_err(layout_error)?;
    } else if root.database().is_none() {
        let loaded = config.get_or_init(|| KanbanConfig::load(&root, &ProcessEnv).ok());
        if let Some(url) = loaded.as_ref().and_then(|c| c.database_url.clone()) {
            let origin = format!("kanban.database_url in {}", root.config_file().display());
            root.use_database(&url, &origin).map_err(layout_error)?;
        }
    }
    if root.database().is_some() {
        // Before anything opens the database: its pool is sized once.
        let loaded = config.get_or_init(|| KanbanConfig::load(&root, &ProcessEnv).ok());
        let size = database_pool_size(
            loaded
                .as_ref()
                .and_then(|c| c.database_pool_size.as_deref()),
            &root.config_file(),
            &ProcessEnv,
        )
        .map_err(|e| UsageError(e.to_string()))?;
        use_database_pool_size(size);
    }
    Ok((root, config))
}

impl Ctx {
    /// Resolve root and board (`--board` › env › pointer › default), and
    /// the backend (see [`resolve_root`]).
    pub fn resolve(explicit_board: Option<&str>, database_url: Option<&str>) -> Result<Ctx> {
        let env = ProcessEnv;
        let (root, config) = resolve_root_and_config(database_url)?;
        let catalogue = OnceCell::new();
        let boards = catalogue.get_or_init(|| for_root(&root));
        let board = root
            .resolve_board_in(explicit_board, &env, &**boards)
            .map_err(|e| {
                // A slug error without `--board` came from the variable: say so,
                // since nothing on the command line names that board.
                let slug_error = matches!(
                    e,
                    LayoutError::InvalidSlug(_)
                        | LayoutError::SlugRequired
                        | LayoutError::BoardNotFound(_)
                );
                match root.env_board_value(explicit_board, &env) {
                    Some(value) if slug_error => layout_error(e).context(format!(
                        "{ENV_KANBAN_BOARD}={value:?} names no usable board (fix or unset it)"
                    )),
                    _ => layout_error(e),
                }
            })?;
        Ok(Ctx {
            root,
            board,
            handle: OnceCell::new(),
            config,
            catalogue,
            clock: Arc::new(SystemClock),
        })
    }

    /// The board, created and migrated on first use.
    pub fn board_handle(&self) -> Result<&BoardHandle> {
        if let Some(h) = self.handle.get() {
            return Ok(h);
        }
        let handle = open_board(&self.board, self.clock.clone())?;
        Ok(self.handle.get_or_init(|| handle))
    }

    /// The board's store, created and migrated on first use. A
    /// `DispatchStore` (and so a `Store`): verbs that detach a worker
    /// read its recorded identity to end it.
    pub fn store(&self) -> Result<&dyn DispatchStore> {
        Ok(self.board_handle()?.as_dispatch())
    }

    /// The root's board catalogue: which boards exist, their metadata.
    pub fn catalogue(&self) -> &dyn BoardCatalogue {
        &**self.catalogue.get_or_init(|| for_root(&self.root))
    }

    /// The board's default workdir (tasks created without a workspace
    /// path inherit it), as the catalogue records it.
    pub fn default_workdir(&self) -> Result<Option<String>> {
        kanban_hermes::catalogue::default_workdir(self.catalogue(), &self.board.slug)
            .context("cannot read the board's metadata")
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
