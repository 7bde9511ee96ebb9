//! The connection pool of a database: one per database URL per process,
//! shared by every board (schema) of that database the process opens, so a
//! gateway's hub, dispatcher, notifier and API requests on any number of
//! boards run concurrently on at most [`DEFAULT_POOL_SIZE`] connections
//! (`OpenRequest::pool_size`).
//!
//! r2d2 keeps the pool; our manager yields [`Conn`]s (their statement
//! cache, their close-off-the-runtime drop). A connection serves any
//! board: the store puts the board's schema on its `search_path` at each
//! checkout ([`Conn::use_schema`], a round trip only when the board
//! changes) and the statement cache is kept per schema.
//!
//! What never enters the pool: a change probe's `LISTEN` connection
//! (`watch`) and the sessions holding a session advisory lock (the
//! dispatch lock in `lock`, the migration lock), because a connection
//! handed to the next caller must carry nothing of the last one.
//!
//! Broken connections:
//! - a connection idle for [`ALIVE_BYPASS`] or more, or idle since another
//!   connection of the pool was found broken, is pinged (one round trip)
//!   before it is lent and dropped if dead, so the call after a restart or
//!   `pg_terminate_backend` gets a fresh connection. One given back more
//!   recently is lent unchecked: a busy pool pays nothing, and a call on a
//!   connection that died meanwhile fails (as with the single connection
//!   before), which sends its idle siblings to the ping. (The blocking
//!   client only reads its socket inside a call, so a dead session cannot
//!   be seen without one.)
//! - a connection that broke while lent is dropped when it comes back;
//! - a failed connect does not make the caller wait out a timeout: the
//!   manager yields a stand-in carrying the error ([`Conn::failed`]),
//!   which wakes a waiting caller at once; the caller reports the error
//!   and the stand-in is dropped. While the database is away every call
//!   that needs a new connection tries one connect and fails promptly, as
//!   with the single connection before; no reconnect loop runs in the
//!   background.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use kanban_store::backend::PoolStatus;
use kanban_store::{BackendError, StoreError};
use postgres::{Config, NoTls};
use scheduled_thread_pool::{OnPoolDropBehavior, ScheduledThreadPool};

use crate::conn::Conn;
use crate::conn::error_chain;

/// Connections per database per process unless configured.
pub const DEFAULT_POOL_SIZE: u32 = 8;
/// `application_name` of pooled connections (the dedicated ones are
/// `kanban`), so `pg_stat_activity` tells them apart.
pub const POOL_APPLICATION_NAME: &str = "kanban-pool";
/// How long a caller waits for a connection while every one is lent.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle connection unused this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// r2d2's helper threads per pool (connects, closing idle connections).
const HELPER_THREADS: usize = 2;
/// A connection given back less than this ago is lent without a ping.
pub(crate) const ALIVE_BYPASS: Duration = Duration::from_millis(500);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a pooled connection was not usable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error(transparent)]
    Sql(#[from] postgres::Error),
    #[error("the connection is closed")]
    Closed,
}

pub(crate) struct Manager {
    config: Config,
    /// When a connection was last found broken: the ones idle since then
    /// are suspect.
    broken_at: Mutex<Option<Instant>>,
}

impl Manager {
    fn found_broken(&self) {
        *lock(&self.broken_at) = Some(Instant::now());
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = ConnError;

    fn connect(&self) -> Result<Conn, ConnError> {
        Ok(match self.config.connect(NoTls) {
            Ok(client) => Conn::new(client),
            // Not an error to r2d2, which would make the caller wait and
            // retry in the background (see the module).
            Err(e) => Conn::failed(error_chain(&e)),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), ConnError> {
        if conn.connect_error.is_some() {
            return Ok(()); // lent so that its error is reported
        }
        if conn.broken || conn.client.is_closed() {
            self.found_broken();
            return Err(ConnError::Closed);
        }
        let suspect = lock(&self.broken_at).is_some_and(|at| at >= conn.idle_since);
        if (suspect || conn.idle_since.elapsed() >= ALIVE_BYPASS)
            && let Err(e) = conn.client.simple_query("")
        {
            self.found_broken();
            return Err(e.into());
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        if conn.connect_error.is_some() {
            return true;
        }
        let broken = conn.broken || conn.client.is_closed();
        if broken {
            self.found_broken();
        }
        conn.idle_since = Instant::now();
        broken
    }
}

/// A connection lent by the pool; back to it when dropped.
pub(crate) type Pooled = r2d2::PooledConnection<Manager>;

/// r2d2 reports each idle connection it found dead and dropped; that is
/// routine after a restart, so the log hears of it at debug level only.
#[derive(Debug)]
struct QuietErrors;

impl r2d2::HandleError<ConnError> for QuietErrors {
    fn handle_error(&self, error: ConnError) {
        tracing::debug!("dropped a pooled PostgreSQL connection: {error}");
    }
}

/// Why [`Pool::checkout`] lent nothing.
#[derive(Debug)]
pub(crate) enum CheckoutError {
    /// Connecting failed (the error chain; the caller adds where to).
    Connect(String),
    /// Every connection stayed lent for this long.
    Busy { size: u32, waited: Duration },
}

impl CheckoutError {
    /// The store's error, naming `at` (a redacted location).
    pub(crate) fn at(self, at: &str) -> StoreError {
        match self {
            CheckoutError::Connect(message) => {
                StoreError::Backend(BackendError::msg(format!("{at}: {message}")))
            }
            CheckoutError::Busy { size, waited } => StoreError::Busy(format!(
                "{at}: all {size} connections of the pool stayed busy for {}s",
                waited.as_secs()
            )),
        }
    }
}

/// One database's pool (see the module).
pub(crate) struct Pool {
    inner: r2d2::Pool<Manager>,
    id: u64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("id", &self.id)
            .field("size", &self.inner.max_size())
            .finish_non_exhaustive()
    }
}

/// Pools of this process by connection URL; a pool lives while a store
/// of its database does.
fn registry() -> &'static Mutex<HashMap<String, Weak<Pool>>> {
    static POOLS: OnceLock<Mutex<HashMap<String, Weak<Pool>>>> = OnceLock::new();
    POOLS.get_or_init(Default::default)
}

/// The pool of the database at `url` (the connection URL, board part
/// removed), created with `config` and `size` (`None` or 0: the default)
/// when this process has none yet.
pub(crate) fn shared(url: &str, config: &Config, size: Option<u32>) -> Arc<Pool> {
    let mut pools = lock(registry());
    if let Some(pool) = pools.get(url).and_then(Weak::upgrade) {
        return pool;
    }
    pools.retain(|_, p| p.strong_count() > 0);
    let size = size.filter(|n| *n > 0).unwrap_or(DEFAULT_POOL_SIZE);
    let pool = Arc::new(Pool::new(config, size));
    pools.insert(url.to_string(), Arc::downgrade(&pool));
    pool
}

impl Pool {
    fn new(config: &Config, size: u32) -> Pool {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let mut config = config.clone();
        config.application_name(POOL_APPLICATION_NAME);
        let manager = Manager {
            config,
            broken_at: Mutex::new(None),
        };
        let helpers = ScheduledThreadPool::builder()
            .num_threads(HELPER_THREADS)
            .thread_name_pattern("kanban-pg-pool-{}")
            // A dropped pool needs no more connects.
            .on_drop_behavior(OnPoolDropBehavior::DiscardPendingScheduled)
            .build();
        let inner = r2d2::Pool::builder()
            .max_size(size)
            // Connections open on demand; none is kept idle on purpose.
            .min_idle(Some(0))
            .test_on_check_out(true)
            .connection_timeout(CHECKOUT_TIMEOUT)
            .idle_timeout(Some(IDLE_TIMEOUT))
            .error_handler(Box::new(QuietErrors))
            .thread_pool(Arc::new(helpers))
            // Unchecked: connecting is the first checkout's job, which
            // reports a failure at once.
            .build_unchecked(manager);
        Pool {
            inner,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A connection: an idle one that still works, else a new one (up to
    /// the size), else the next one given back. Fails at once when
    /// connecting fails (see the module).
    pub(crate) fn checkout(&self) -> Result<Pooled, CheckoutError> {
        let conn = self
            .inner
            .get_timeout(CHECKOUT_TIMEOUT)
            .map_err(|_| CheckoutError::Busy {
                size: self.inner.max_size(),
                waited: CHECKOUT_TIMEOUT,
            })?;
        match &conn.connect_error {
            // Dropping the stand-in frees its place in the pool.
            Some(e) => Err(CheckoutError::Connect(e.clone())),
            None => Ok(conn),
        }
    }

    /// Open connections, idle and lent, right now.
    pub(crate) fn status(&self) -> PoolStatus {
        let state = self.inner.state();
        PoolStatus {
            pool_id: self.id,
            size: self.inner.max_size(),
            idle: state.idle_connections,
            busy: state.connections - state.idle_connections,
        }
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
