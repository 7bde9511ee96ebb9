//! Open boards of one root, each with its store and its change watcher.
//!
//! A board's store is opened (and migrated if needed) once, on first use,
//! and cached: requests never re-run migrations or integrity checks. Each
//! open board gets exactly one watcher thread that polls the store's
//! [`ChangeProbe`] and, when something was committed by anyone, reads the
//! new events once and fans them out to every WebSocket client through a
//! broadcast channel, and bumps the board's change generation (the
//! dispatcher's wake-up signal).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kanban_core::Event;
use kanban_core::defaults::EVENT_BATCH_LIMIT;
use kanban_hermes::catalogue::for_root;
use kanban_hermes::config::open_request;
use kanban_hermes::layout::{BoardPaths, DEFAULT_BOARD, ProcessEnv, Root, require_slug};
use kanban_store::backend::{BoardCatalogue, BoardHandle, BoardLocation, open_board};
use kanban_store::dispatch_ops::DispatchStore;
use kanban_store::watch::ChangeProbe;
use kanban_store::{Clock, EventQuery};
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use utoipa::ToSchema;

use crate::config_cache::FileStamp;
use crate::error::{ApiError, ApiResult};
use crate::wake::PokeWake;

pub use crate::drop_off::{DropOffRuntime, drop_off_runtime};

/// How often a watcher asks the board's change probe whether it changed.
pub const CHANGE_POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Batches kept for slow WebSocket clients before they must re-read the store.
const EVENT_CHANNEL_CAPACITY: usize = 256;
/// First wait after a failed change probe (the database went away);
/// doubled on every further failure up to [`PROBE_RETRY_MAX`].
pub const PROBE_RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest wait between two probes of an unreachable database.
pub const PROBE_RETRY_MAX: Duration = Duration::from_secs(2);

/// One message of the event feed: events in id order and the new cursor.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventBatch {
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Event>,
    /// Id of the last event in `events` (resume with `since=<cursor>`).
    pub cursor: i64,
}

/// A board whose database cannot be opened, or an open board whose
/// database is unreachable right now (`/healthz` lists both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BoardFault {
    /// The board's slug.
    pub board: String,
    /// Its database: the SQLite file, or the PostgreSQL URL with its
    /// password redacted.
    pub db: String,
    /// What is wrong.
    pub error: String,
}

/// Open boards whose database their watcher cannot reach, by slug.
type Outages = Arc<Mutex<BTreeMap<String, BoardFault>>>;

/// The open boards, by slug (the hub's; a watcher drops its own board
/// from it when the board left the catalogue).
type OpenBoards = Arc<Mutex<HashMap<String, Arc<Board>>>>;

/// The end of what the gateway logs when it closes a board that left the
/// catalogue.
const LEFT_CATALOGUE: &str = "left the catalogue (archived or deleted); closed";

/// What a failed open remembers: the fault and the file it was about, so
/// the same unchanged file is not re-read (and re-hashed) on every
/// rescan, and the fault is logged once.
struct Broken {
    fault: BoardFault,
    file: Option<FileStamp>,
    status: axum::http::StatusCode,
}

/// An open board.
pub struct Board {
    pub slug: String,
    pub paths: BoardPaths,
    /// The board's store; `DispatchStore` so the dispatcher shares it.
    pub store: Arc<dyn DispatchStore>,
    /// The board as the backend factory opened it.
    handle: BoardHandle,
    events: broadcast::Sender<Arc<EventBatch>>,
    changed: watch::Sender<u64>,
    closed: Arc<AtomicBool>,
    /// Diagnostics facts, refreshed from the tasks changed since the last read.
    pub diagnostics: Mutex<kanban_store::diagnostics::DiagnosticsIndex>,
}

impl Board {
    /// Where the board lives (another component opens its own connection there).
    pub fn location(&self) -> &BoardLocation {
        self.handle.location()
    }

    /// Live event batches committed after the call.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Arc<EventBatch>> {
        self.events.subscribe()
    }
    /// A generation counter bumped on every detected change.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
    pub fn change_generation(&self) -> u64 {
        *self.changed.borrow()
    }

    /// The board as the backend factory opened it.
    pub fn handle(&self) -> &BoardHandle {
        &self.handle
    }
}

/// Every board of a root this process has opened.
pub struct BoardHub {
    root: Root,
    /// The root's boards: its directories, or its database's catalogue
    /// (every host sees the same boards).
    catalogue: Arc<dyn BoardCatalogue>,
    clock: Arc<dyn Clock>,
    poll: Duration,
    boards: OpenBoards,
    shutdown: Arc<AtomicBool>,
    /// Bumped whenever any board changes: one wake-up for the dispatcher.
    any_change: watch::Sender<u64>,
    /// Whether this process dispatches right now: the dispatcher loop sets
    /// it from the config it acts on (hot reload), and the create warning,
    /// `gateway.json` and the start-up line all read it. One source of truth.
    dispatching: watch::Sender<bool>,
    /// Boards that failed to open, by slug.
    broken: Mutex<BTreeMap<String, Broken>>,
    /// Open boards whose database is unreachable (set by their watchers).
    outages: Outages,
    /// Whether the watchers listen for pokes (the gateway's hub).
    pokes: PokeWake,
}

impl BoardHub {
    pub fn new(root: Root, clock: Arc<dyn Clock>, poll: Duration) -> BoardHub {
        BoardHub {
            catalogue: Arc::from(for_root(&root)),
            root,
            clock,
            poll,
            boards: OpenBoards::default(),
            shutdown: Arc::new(AtomicBool::new(false)),
            any_change: watch::channel(0).0,
            dispatching: watch::channel(false).0,
            broken: Mutex::new(BTreeMap::new()),
            outages: Arc::default(),
            pokes: PokeWake::Off,
        }
    }

    /// Let the watchers of the boards opened from now on listen for pokes.
    pub fn with_pokes(mut self, pokes: PokeWake) -> BoardHub {
        self.pokes = pokes;
        self
    }

    /// Record whether the dispatcher dispatches now (see `dispatching`).
    pub fn set_dispatching(&self, on: bool) {
        self.dispatching
            .send_if_modified(|v| std::mem::replace(v, on) != on);
    }

    /// Whether the dispatcher dispatches now.
    pub fn dispatching(&self) -> bool {
        *self.dispatching.borrow()
    }

    /// Wakes whenever [`BoardHub::dispatching`] changes.
    pub fn subscribe_dispatching(&self) -> watch::Receiver<bool> {
        self.dispatching.subscribe()
    }

    /// Boards that could not be opened, then open boards whose database
    /// is unreachable right now, each by slug.
    pub fn unhealthy_boards(&self) -> Vec<BoardFault> {
        let mut faults: Vec<BoardFault> = self
            .broken_lock()
            .values()
            .map(|b| b.fault.clone())
            .collect();
        faults.extend(lock_outages(&self.outages).values().cloned());
        faults
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The boards of the root (list, locate, create, remove).
    pub fn catalogue(&self) -> &dyn BoardCatalogue {
        &*self.catalogue
    }

    /// The root's current board (`HERMES_KANBAN_BOARD` › this root's
    /// pointer › `default`), checked against the catalogue. Blocking.
    pub fn current_board(&self) -> String {
        self.root.current_board_in(&ProcessEnv, &*self.catalogue)
    }

    /// Wakes whenever any open board changes.
    pub fn subscribe_any_change(&self) -> watch::Receiver<u64> {
        self.any_change.subscribe()
    }

    /// Resolve `?board=` (absent = the root's current board) and open it.
    /// Bad slug → 400, missing non-default board → 404. Blocking.
    pub fn board(&self, requested: Option<&str>) -> ApiResult<Arc<Board>> {
        let slug = self.resolve_slug(requested)?;
        self.open(&slug)
    }

    /// The slug `?board=` names, validated, without opening anything.
    pub fn resolve_slug(&self, requested: Option<&str>) -> ApiResult<String> {
        match requested.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(self.current_board()),
            Some(raw) => {
                let slug = require_slug(raw)?;
                if !self.catalogue.contains(&slug)? {
                    return Err(ApiError::not_found(format!(
                        "board '{slug}' does not exist"
                    )));
                }
                Ok(slug)
            }
        }
    }

    /// Open (once) a board whose slug is already validated. Blocking.
    /// A board that cannot be opened is marked unhealthy (logged once,
    /// listed by `/healthz`) until its file changes and opens; one that
    /// vanished meanwhile (archived, removed) is a 404.
    pub fn open(&self, slug: &str) -> ApiResult<Arc<Board>> {
        if let Some(b) = self.lock().get(slug) {
            return Ok(b.clone());
        }
        let paths = self.root.board_paths(slug);
        if let Some(err) = self.still_broken(slug, &paths.db) {
            return Err(err);
        }
        match self.open_fresh(slug, paths.clone()) {
            Ok(board) => {
                self.mark_healthy(slug);
                Ok(board)
            }
            Err(_) if slug != DEFAULT_BOARD && !self.catalogue.exists(slug) => {
                self.broken_lock().remove(slug);
                Err(ApiError::not_found(format!(
                    "board '{slug}' does not exist"
                )))
            }
            // Busy is a moment, not a broken board: just retry later.
            Err(e) if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE => Err(e),
            Err(e) => {
                self.mark_broken(slug, &paths, &e);
                Err(e)
            }
        }
    }

    fn open_fresh(&self, slug: &str, paths: BoardPaths) -> ApiResult<Arc<Board>> {
        let handle = self.open_or_create(slug, &paths)?;
        let mut probe = handle.change_probe()?;
        let cursor = handle.store().latest_event_id()?;
        let store = handle.dispatch();
        let mut boards = self.lock();
        // Another request may have opened it meanwhile: keep the first.
        if let Some(b) = boards.get(slug) {
            return Ok(b.clone());
        }
        let board = Arc::new(Board {
            slug: slug.to_string(),
            paths,
            store,
            handle,
            events: broadcast::channel(EVENT_CHANNEL_CAPACITY).0,
            changed: watch::channel(0).0,
            closed: Arc::new(AtomicBool::new(false)),
            diagnostics: Mutex::default(),
        });
        // Only the probe kept binds the poke socket.
        self.pokes.apply(probe.as_mut());
        self.spawn_watcher(board.clone(), probe, cursor);
        boards.insert(slug.to_string(), board.clone());
        Ok(board)
    }

    /// Open the board's storage; create it only while the catalogue lists
    /// the board, so that a board deleted since the caller saw it listed
    /// (by another host, or the CLI) does not come back.
    fn open_or_create(&self, slug: &str, paths: &BoardPaths) -> ApiResult<BoardHandle> {
        let location = paths.location();
        let existing = open_request(false).with_clock(self.clock.clone());
        let first = match open_board(&location, &existing) {
            Ok(handle) => {
                paths.ensure_dirs()?;
                return Ok(handle);
            }
            Err(e) => e,
        };
        let listed = slug == DEFAULT_BOARD || matches!(self.catalogue.contains(slug), Ok(true));
        if !listed {
            return Err(first.into());
        }
        paths.ensure_dirs()?;
        let create = open_request(true).with_clock(self.clock.clone());
        Ok(open_board(&location, &create)?)
    }

    /// The remembered error of a broken board whose file has not changed.
    fn still_broken(&self, slug: &str, db: &std::path::Path) -> Option<ApiError> {
        let broken = self.broken_lock();
        let b = broken.get(slug)?;
        (b.file.is_some() && b.file == FileStamp::of(db))
            .then(|| ApiError::new(b.status, b.fault.error.clone()))
    }

    fn mark_broken(&self, slug: &str, paths: &BoardPaths, err: &ApiError) {
        let fault = BoardFault {
            board: slug.to_string(),
            // Redacted: a PostgreSQL URL without its password.
            db: paths.location().to_string(),
            error: err.detail.clone(),
        };
        let entry = Broken {
            fault: fault.clone(),
            // No file on PostgreSQL: every open tries again.
            file: FileStamp::of(&paths.db),
            status: err.status,
        };
        let newly = self
            .broken_lock()
            .insert(slug.to_string(), entry)
            .is_none_or(|old| old.fault != fault);
        if newly {
            log_warning(&format!(
                "board '{slug}' is unhealthy: cannot open {}: {}",
                fault.db, fault.error
            ));
        }
    }

    fn mark_healthy(&self, slug: &str) {
        if self.broken_lock().remove(slug).is_some() {
            log_info(&format!("board '{slug}' is healthy again"));
        }
    }

    fn broken_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Broken>> {
        self.broken.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Boards opened so far.
    pub fn open_boards(&self) -> Vec<Arc<Board>> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by(|a, b| a.slug.cmp(&b.slug));
        v
    }

    /// Drop a board (removed or archived on disk) and stop its watcher.
    /// Its running workers are left alone. Whether it was open or broken.
    pub fn forget(&self, slug: &str) -> bool {
        let open = close_board(&self.boards, slug, None);
        let broken = self.broken_lock().remove(slug).is_some();
        lock_outages(&self.outages).remove(slug);
        open || broken
    }

    /// Open every board of the catalogue, and close the open (or broken)
    /// ones that left it: archived or deleted by another process or host.
    /// A catalogue that cannot be read closes nothing. `who` names the
    /// caller in the log. Blocking.
    pub fn sync_with_catalogue(&self, who: &str) {
        let entries = self.catalogue.boards(false);
        let listed: HashSet<&str> = entries.iter().map(|e| e.slug.as_str()).collect();
        let mut known: BTreeSet<String> = self.lock().keys().cloned().collect();
        known.extend(self.broken_lock().keys().cloned());
        for slug in known.iter().filter(|s| !listed.contains(s.as_str())) {
            self.close_if_departed(slug);
        }
        for entry in entries {
            if let Err(e) = self.open(&entry.slug) {
                // Every rescan: a broken board is warned about once (`mark_broken`).
                tracing::debug!(board = %entry.slug, error = %e.detail, "{who}: cannot open board");
            }
        }
    }

    /// Close the board when the catalogue says it is gone (asked afresh:
    /// a listing may be older than a board opened meanwhile, or the
    /// fallback of a catalogue that cannot be read). Whether it is gone
    /// (closed now or before). Blocking.
    pub fn close_if_departed(&self, slug: &str) -> bool {
        if !matches!(self.catalogue.contains(slug), Ok(false)) {
            return false;
        }
        if self.forget(slug) {
            log_info(&format!("board '{slug}' {LEFT_CATALOGUE}"));
        }
        true
    }

    /// Stop every watcher (gateway shutdown).
    pub fn close(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Board>>> {
        lock_boards(&self.boards)
    }

    fn spawn_watcher(&self, board: Arc<Board>, probe: Box<dyn ChangeProbe>, cursor: i64) {
        let watcher = Watcher {
            store: board.store.clone(),
            events: board.events.clone(),
            changed: board.changed.clone(),
            any_change: self.any_change.clone(),
            closed: board.closed.clone(),
            shutdown: self.shutdown.clone(),
            poll: self.pokes.poll(self.poll),
            pokes: self.pokes,
            slug: board.slug.clone(),
            board: board.handle.clone(),
            outages: self.outages.clone(),
            catalogue: self.catalogue.clone(),
            open_boards: self.boards.clone(),
        };
        let name = format!("kanban-watch-{}", board.slug);
        if let Err(e) = std::thread::Builder::new()
            .name(name)
            .spawn(move || watcher.run(probe, cursor))
        {
            tracing::error!(board = %board.slug, error = %e, "cannot start the board watcher");
        }
    }
}

impl Drop for BoardHub {
    /// The last hub reference often goes away in async code (the
    /// gateway's stop): its boards' stores must not close there.
    fn drop(&mut self) {
        let boards = std::mem::take(&mut *self.lock());
        drop_off_runtime(boards);
    }
}

/// A notice for the gateway log, like [`log_warning`].
fn log_info(message: &str) {
    tracing::info!("{message}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("kanban gateway: {message}");
    }
}

fn lock_boards(b: &OpenBoards) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Board>>> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

/// Take the board `slug` out of `boards` and stop its watcher; with
/// `only`, only when it is still that board (not one opened since under
/// the same slug). Whether it was there.
fn close_board(boards: &OpenBoards, slug: &str, only: Option<&Arc<AtomicBool>>) -> bool {
    let board = {
        let mut open = lock_boards(boards);
        match open.get(slug) {
            Some(b) if only.is_none_or(|c| Arc::ptr_eq(c, &b.closed)) => open.remove(slug),
            _ => None,
        }
    };
    let Some(board) = board else {
        return false;
    };
    board.closed.store(true, Ordering::SeqCst);
    drop_off_runtime(board);
    true
}

/// A warning for the gateway log: through `tracing` when the embedding
/// program installed a subscriber, else on stderr (which `gateway start`
/// appends to `gateway.log`).
pub fn log_warning(message: &str) {
    tracing::warn!("{message}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("kanban gateway: warning: {message}");
    }
}

fn lock_outages(o: &Outages) -> std::sync::MutexGuard<'_, BTreeMap<String, BoardFault>> {
    o.lock().unwrap_or_else(|p| p.into_inner())
}

/// The per-board polling loop. A plain thread: the probe is a synchronous
/// store call and must never stall the async runtime.
///
/// A probe that fails means the database is unreachable (a PostgreSQL
/// restart) or the file was replaced: the board is listed by `/healthz`,
/// the probe is retried with a growing delay, and once it answers again
/// the board counts as changed (the dispatcher runs a pass at once and
/// the events committed meanwhile are published).
struct Watcher {
    store: Arc<dyn DispatchStore>,
    events: broadcast::Sender<Arc<EventBatch>>,
    changed: watch::Sender<u64>,
    any_change: watch::Sender<u64>,
    closed: Arc<AtomicBool>,
    shutdown: Arc<AtomicBool>,
    poll: Duration,
    pokes: PokeWake,
    slug: String,
    /// For a fresh probe when the old one fails.
    board: BoardHandle,
    outages: Outages,
    /// Asked when the probe fails: a board deleted elsewhere is closed,
    /// not reported as an outage.
    catalogue: Arc<dyn BoardCatalogue>,
    open_boards: OpenBoards,
}

impl Watcher {
    fn run(self, mut probe: Box<dyn ChangeProbe>, mut cursor: i64) {
        let mut last = probe.version().ok();
        let mut retry: Option<Duration> = None;
        while !self.closed.load(Ordering::Relaxed) && !self.shutdown.load(Ordering::Relaxed) {
            match retry {
                Some(wait) => std::thread::sleep(wait),
                // Wakes early on a backend's commit announcement
                // (PostgreSQL); the poll interval is the safety net.
                None => probe.wait_for_change(self.poll),
            }
            let version = match probe.version() {
                Ok(v) => v,
                Err(e) => {
                    if retry.is_none() && self.left_catalogue() {
                        break;
                    }
                    let wait = retry.map_or(PROBE_RETRY_MIN, |w| (w * 2).min(PROBE_RETRY_MAX));
                    if retry.is_none() {
                        self.report_outage(&e);
                    }
                    retry = Some(wait);
                    // A SQLite file may have been replaced: probe it afresh.
                    // (A PostgreSQL probe reconnects by itself.)
                    if let Ok(mut p) = self.board.change_probe() {
                        self.pokes.apply(p.as_mut());
                        probe = p;
                    }
                    // Whatever was committed meanwhile is a change.
                    last = None;
                    continue;
                }
            };
            if retry.take().is_some() {
                self.report_recovery();
            }
            if last == Some(version) {
                continue;
            }
            self.changed.send_modify(|g| *g += 1);
            self.any_change.send_modify(|g| *g += 1);
            match self.publish_events_after(cursor) {
                Ok(c) => {
                    cursor = c;
                    last = Some(version);
                }
                // Not seen yet: the next poll reads them again.
                Err(c) => cursor = c,
            }
        }
        lock_outages(&self.outages).remove(&self.slug);
    }

    /// When the board is no longer in the catalogue (its database went
    /// with it: a PostgreSQL board deleted by another host), close it and
    /// say so. Blocking.
    fn left_catalogue(&self) -> bool {
        if !matches!(self.catalogue.contains(&self.slug), Ok(false)) {
            return false;
        }
        self.closed.store(true, Ordering::SeqCst);
        if close_board(&self.open_boards, &self.slug, Some(&self.closed)) {
            log_info(&format!("board '{}' {LEFT_CATALOGUE}", self.slug));
        }
        true
    }

    fn report_outage(&self, e: &kanban_store::StoreError) {
        let fault = BoardFault {
            board: self.slug.clone(),
            db: self.board.location().to_string(),
            error: format!("the board's database is unreachable: {e}"),
        };
        log_warning(&format!(
            "board '{}': {} ({}); retrying every {}s at most",
            self.slug,
            fault.error,
            fault.db,
            PROBE_RETRY_MAX.as_secs()
        ));
        lock_outages(&self.outages).insert(self.slug.clone(), fault);
    }

    fn report_recovery(&self) {
        if lock_outages(&self.outages).remove(&self.slug).is_some() {
            log_info(&format!(
                "board '{}': the database is reachable again",
                self.slug
            ));
        }
    }

    /// Read every event after `cursor` and broadcast it: `Ok` with the new
    /// cursor, `Err` with the cursor reached when a read failed.
    fn publish_events_after(&self, mut cursor: i64) -> Result<i64, i64> {
        loop {
            let q = EventQuery {
                after_id: Some(cursor),
                limit: Some(EVENT_BATCH_LIMIT),
                ..Default::default()
            };
            let events = match self.store.events(&q) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(board = %self.slug, error = %e, "cannot read new events");
                    return Err(cursor);
                }
            };
            let Some(last) = events.last() else {
                return Ok(cursor);
            };
            cursor = last.id;
            let full = events.len() >= EVENT_BATCH_LIMIT;
            // No receiver is fine: nobody is listening right now.
            let _ = self.events.send(Arc::new(EventBatch { events, cursor }));
            if !full {
                return Ok(cursor);
            }
        }
    }
}
