//! The backend factory: the one place that turns a board location into
//! everything a process needs from its board. Callers never name a
//! backend type; they get a [`BoardHandle`] from [`open_board`] (or from a
//! [`BoardCatalogue`] by slug) and take from it
//!
//! - the store, as [`Store`], [`DispatchStore`], [`NotifyStore`] or
//!   [`ActivityStore`]: one object implementing them all, so a verb that
//!   ends a worker and the dispatcher share one connection;
//! - a [`ChangeProbe`] for live feeds and the dispatcher's wake-up;
//! - the board's [`DispatchLock`] (one dispatch pass at a time).
//!
//! Adding a backend means a [`BoardLocation`] variant, one arm in
//! [`open_board`] and a type implementing [`BoardStore`]; nothing above
//! this module changes.

mod board_meta;
mod catalogue;
mod fleet;
mod location;
mod sqlite;

use std::fmt;
use std::sync::{Arc, OnceLock};

pub use crate::dispatch_ops::{DispatchLock, HeldDispatchLock};
pub use crate::sqlite::dispatch_lock::dispatch_lock_path;
pub use board_meta::{
    BoardMeta, CreatedBoard, MetaUpdate, default_display_name, now_secs, workdir_problem,
    workdir_refusal,
};
pub use catalogue::{
    BoardCatalogue, CatalogueEntry, CatalogueError, DEFAULT_BOARD_SLUG, DEFAULT_NOT_REMOVABLE,
    RemoveAction, RemovedBoard, board_not_found_message, check_update, require_board_slug,
};
pub use fleet::{HostLoad, PoolStatus, claim_lock_host, host_loads};
pub use location::{
    BoardLocation, LocationError, POSTGRES_BOARD_PARAM, POSTGRES_DEFAULT_BOARD, POSTGRES_SCHEMES,
    PostgresLocation, SQLITE_SCHEME,
};

use crate::activity::ActivityStore;
use crate::dispatch_ops::DispatchStore;
use crate::dump::BoardDump;
use crate::notify_ops::NotifyStore;
use crate::watch::ChangeProbe;
use crate::{Clock, Result, Store, SystemClock};

/// How to open a board. The store reads no environment: whatever the
/// operator configured (busy timeout, clock for tests) comes in here.
#[derive(Clone)]
pub struct OpenRequest {
    /// Create the board's storage (and schema) when missing; otherwise a
    /// missing board is an error.
    pub create: bool,
    /// Time source of every timestamp the store writes.
    pub clock: Arc<dyn Clock>,
    /// How long a write waits for another writer, in milliseconds
    /// (`None` or 0: the backend's default).
    pub busy_timeout_ms: Option<u64>,
    /// The host part of this process's claim locks (`KANBAN_HOST_ID`, read
    /// by the caller); `None`: the host name. The store only uses it to
    /// tell whether a lock it releases was taken here.
    pub local_host: Option<String>,
    /// Most connections to one database this process keeps (PostgreSQL:
    /// every board of the database shares them); `None` or 0: the
    /// backend's default. The first store to open a database sets it.
    pub pool_size: Option<u32>,
}

impl fmt::Debug for OpenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenRequest")
            .field("create", &self.create)
            .field("busy_timeout_ms", &self.busy_timeout_ms)
            .field("local_host", &self.local_host)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl Default for OpenRequest {
    fn default() -> Self {
        OpenRequest::existing()
    }
}

impl OpenRequest {
    /// Open a board that must exist, with the system clock.
    pub fn existing() -> OpenRequest {
        OpenRequest {
            create: false,
            clock: Arc::new(SystemClock),
            busy_timeout_ms: None,
            local_host: None,
            pool_size: None,
        }
    }

    /// Open a board, creating (and migrating) it when needed.
    pub fn create() -> OpenRequest {
        OpenRequest {
            create: true,
            ..OpenRequest::existing()
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> OpenRequest {
        self.clock = clock;
        self
    }

    pub fn with_busy_timeout_ms(mut self, ms: Option<u64>) -> OpenRequest {
        self.busy_timeout_ms = ms;
        self
    }

    /// The host part of this process's claim locks (see [`OpenRequest::local_host`]).
    pub fn with_local_host(mut self, host: Option<String>) -> OpenRequest {
        self.local_host = host;
        self
    }

    /// See [`OpenRequest::pool_size`].
    pub fn with_pool_size(mut self, size: Option<u32>) -> OpenRequest {
        self.pool_size = size;
        self
    }

    /// [`OpenRequest::local_host`], or the host name when none was given.
    pub fn local_host_or_hostname(&self) -> String {
        crate::host_identity::local_host(self.local_host.as_deref())
    }
}

/// Everything one backend provides for one open board: the store
/// traits on one object, plus the board's change probe and dispatch lock.
pub trait BoardStore: DispatchStore + NotifyStore + ActivityStore {
    /// A new probe with a connection of its own that sees every commit
    /// to the board, this store's included (see [`ChangeProbe`]).
    fn open_change_probe(&self) -> Result<Box<dyn ChangeProbe>>;
    /// Every table of the board (see [`crate::dump`]), read in one snapshot.
    fn dump_board(&self) -> Result<BoardDump>;
    /// Write `dump` into this board in one transaction (all or nothing),
    /// keeping ids and continuing the id counters after them. Refuses
    /// (`StoreError::Refused`, nothing written) a board holding any row.
    fn load_board(&self, dump: &BoardDump) -> Result<()>;

    /// Each host of the board with its lease and running tasks, by host
    /// id (for `/metrics`). Backends answer in one read; this default
    /// takes two.
    fn host_loads(&self) -> Result<Vec<HostLoad>> {
        let leases = self
            .hosts()?
            .into_iter()
            .map(|h| (h.host_id, h.lease_expires));
        let running = self.running_tasks()?.into_iter();
        Ok(host_loads(
            leases,
            running.filter_map(|t| t.claim_lock.map(|lock| (lock, 1))),
        ))
    }

    /// The connection pool this store draws from (`None`: it has none).
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }
}

/// One open board. Cheap to clone: clones share the store.
#[derive(Clone)]
pub struct BoardHandle {
    store: Arc<dyn BoardStore>,
    location: BoardLocation,
}

impl fmt::Debug for BoardHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoardHandle")
            .field("location", &self.location.redacted())
            .finish_non_exhaustive()
    }
}

impl BoardHandle {
    /// A handle on a store a backend opened (backends and test doubles).
    pub fn new(store: Arc<dyn BoardStore>, location: BoardLocation) -> BoardHandle {
        BoardHandle { store, location }
    }

    /// Where the board lives.
    pub fn location(&self) -> &BoardLocation {
        &self.location
    }

    /// The store, for reading and editing the board.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The same store with the dispatcher's operations.
    pub fn dispatch(&self) -> Arc<dyn DispatchStore> {
        self.store.clone()
    }

    /// The same store with the notifier's operations.
    pub fn notify(&self) -> Arc<dyn NotifyStore> {
        self.store.clone()
    }

    /// The same store with the Activity view's reads.
    pub fn activity(&self) -> Arc<dyn ActivityStore> {
        self.store.clone()
    }

    /// The store borrowed as a [`DispatchStore`] (also a [`Store`]).
    pub fn as_dispatch(&self) -> &dyn DispatchStore {
        &*self.store
    }

    /// A new change probe on the board.
    pub fn change_probe(&self) -> Result<Box<dyn ChangeProbe>> {
        self.store.open_change_probe()
    }

    /// The board's dispatch lock (not taken).
    pub fn dispatch_lock(&self) -> Arc<dyn DispatchLock> {
        self.store.dispatch_lock()
    }

    /// Every table of the board, read in one snapshot.
    pub fn dump_board(&self) -> Result<BoardDump> {
        self.store.dump_board()
    }

    /// Copy `dump` into this (empty) board in one transaction.
    pub fn load_board(&self, dump: &BoardDump) -> Result<()> {
        self.store.load_board(dump)
    }

    /// Each host of the board with its lease and running tasks.
    pub fn host_loads(&self) -> Result<Vec<HostLoad>> {
        self.store.host_loads()
    }

    /// The connection pool the board's store draws from, if any.
    pub fn pool_status(&self) -> Option<PoolStatus> {
        self.store.pool_status()
    }
}

/// A backend that lives in a crate of its own (it depends on this one, so
/// this crate cannot name it): the binary registers it at start-up with
/// [`register_postgres_backend`], and [`open_board`] hands it the
/// locations of its kind, [`postgres_catalogue`] its databases.
pub trait BackendOpener: Send + Sync {
    /// Open (and with `req.create`, create and migrate) the board.
    fn open(&self, location: &PostgresLocation, req: &OpenRequest) -> Result<Arc<dyn BoardStore>>;
    /// The board catalogue kept in the database at `location` (its board
    /// part is ignored), on the connections `req` sizes (`pool_size`).
    /// Connects lazily: nothing is read here.
    fn catalogue(
        &self,
        location: &PostgresLocation,
        req: &OpenRequest,
    ) -> Result<Box<dyn BoardCatalogue>>;
}

static POSTGRES_BACKEND: OnceLock<Box<dyn BackendOpener>> = OnceLock::new();

/// Make `postgres://` locations openable in this process. The first
/// registration wins; later ones are ignored (tests register from many
/// threads).
pub fn register_postgres_backend(opener: Box<dyn BackendOpener>) {
    let _ = POSTGRES_BACKEND.set(opener);
}

/// The board catalogue of the PostgreSQL database at `location` (every
/// host using that database sees the same boards). It shares the
/// database's connections with the boards this process opens: `req`
/// sizes them when it comes first (see [`OpenRequest::pool_size`]).
pub fn postgres_catalogue(
    location: &PostgresLocation,
    req: &OpenRequest,
) -> Result<Box<dyn BoardCatalogue>> {
    match POSTGRES_BACKEND.get() {
        Some(opener) => opener.catalogue(location, req),
        None => Err(without_postgres(&BoardLocation::Postgres(location.clone()))),
    }
}

fn without_postgres(location: &BoardLocation) -> crate::StoreError {
    crate::StoreError::Backend(crate::BackendError::msg(format!(
        "cannot open {location}: this program was built without the PostgreSQL backend"
    )))
}

/// Open the board at `location`: refuses storage that is not a board or
/// is damaged, creates a missing one when `req.create`, and migrates a
/// board not yet migrated by this version.
pub fn open_board(location: &BoardLocation, req: &OpenRequest) -> Result<BoardHandle> {
    let store: Arc<dyn BoardStore> = match location {
        BoardLocation::Sqlite(path) => Arc::new(sqlite::open(path, req)?),
        BoardLocation::Postgres(pg) => match POSTGRES_BACKEND.get() {
            Some(opener) => opener.open(pg, req)?,
            None => return Err(without_postgres(location)),
        },
    };
    Ok(BoardHandle::new(store, location.clone()))
}

#[cfg(test)]
mod tests;
