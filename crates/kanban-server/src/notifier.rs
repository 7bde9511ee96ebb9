//! The gateway's notifier: delivers the events of `kanban_notify_subs`
//! subscriptions (reference §7.4) for the platforms this gateway can reach
//! by itself:
//!
//! - `webhook`: one HTTP POST per event to the subscription's `chat_id`
//!   (an `http(s)://` URL), JSON body, [`DELIVERY_TIMEOUT`];
//! - `exec`: runs the command `kanban.notify_exec.<chat_id>` of
//!   `config.yaml` once per event, the event JSON on its stdin.
//!
//! Subscriptions on any other platform (telegram, discord, ...) belong to a
//! Hermes gateway: they are never claimed, so their cursors never move.
//!
//! Cursor semantics are the reference's, through [`NotifyStore`]: claim
//! the unseen events atomically (so a Hermes gateway on the same board
//! cannot send them too), send them in order, and on a failure put the
//! cursor back after the last event delivered; three consecutive failures
//! drop the subscription. After a complete delivery a subscription whose
//! task is done or archived is removed.
//!
//! A round runs when any open board changes (the hub's change signal) and
//! every [`NOTIFY_POLL_INTERVAL`] (boards no watcher looks at, retries).
//! The notifier keeps one store per board, its own connection, so slow
//! sends never hold the connection API requests use.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kanban_core::NotifySub;
use kanban_core::{Event, Task};
use kanban_hermes::config::{KanbanConfig, open_request};
use kanban_hermes::layout::{ProcessEnv, Root};
use kanban_store::NotifyKey;
use kanban_store::backend::open_board;
use kanban_store::notify_ops::{
    DeliveredOutcome, DeliveryFailure, FailureOutcome, NOTIFY_KINDS, NotifyStore,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::hub::BoardHub;

/// Fallback wake-up when no board change arrives: picks up boards no
/// watcher follows and retries failed deliveries.
pub const NOTIFY_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Longest one webhook POST or one exec command may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the list of boards is re-read.
pub const BOARD_RESCAN_INTERVAL: Duration = Duration::from_secs(1);
/// Subscriptions delivered at the same time (one slow endpoint must not
/// hold up every other subscription).
pub const MAX_PARALLEL_DELIVERIES: usize = 8;
/// Characters of an exec command's stderr kept in the failure message.
const STDERR_EXCERPT_CHARS: usize = 300;

/// Subscription platform delivered by HTTP POST to `chat_id`.
pub const PLATFORM_WEBHOOK: &str = "webhook";
/// Subscription platform delivered by running `kanban.notify_exec.<chat_id>`.
pub const PLATFORM_EXEC: &str = "exec";
/// The platforms this gateway delivers; every other one is left alone.
pub const DELIVERABLE_PLATFORMS: [&str; 2] = [PLATFORM_WEBHOOK, PLATFORM_EXEC];

/// `kanban.notify_exec: {name: [argv...]}`: commands for `exec` subs.
pub const CONFIG_NOTIFY_EXEC: &str = "notify_exec";
/// `kanban.notify_in_gateway`: run the notifier (default: follows
/// `dispatch_in_gateway`, as in Hermes 0.19.0 where one flag gates both).
pub const CONFIG_NOTIFY_IN_GATEWAY: &str = "notify_in_gateway";

/// Environment given to `exec` commands (besides the event on stdin).
pub const ENV_NOTIFY_TASK: &str = "KANBAN_NOTIFY_TASK_ID";
pub const ENV_NOTIFY_KIND: &str = "KANBAN_NOTIFY_EVENT_KIND";
pub const ENV_NOTIFY_BOARD: &str = "KANBAN_NOTIFY_BOARD";

/// Tunables (tests shorten them).
#[derive(Debug, Clone)]
pub struct NotifierOptions {
    pub poll_interval: Duration,
    pub timeout: Duration,
    /// Open every board of the root in the hub. Off in a gateway whose
    /// dispatcher loop already does: two threads opening one board at the
    /// same moment would both run the SQLite backend's first open, whose header read
    /// drops this process's SQLite locks on the file.
    pub open_boards: bool,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            poll_interval: NOTIFY_POLL_INTERVAL,
            timeout: DELIVERY_TIMEOUT,
            open_boards: true,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Events delivered.
    pub delivered: usize,
    /// Subscriptions whose delivery failed and will be retried.
    pub failed: usize,
    /// Subscriptions dropped after too many consecutive failures.
    pub dropped: usize,
    /// Subscriptions removed because their task is finished.
    pub unsubscribed: usize,
}

impl RoundReport {
    fn add(&mut self, o: RoundReport) {
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.dropped += o.dropped;
        self.unsubscribed += o.unsubscribed;
    }
}

/// Notifier settings read from `config.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifySettings {
    pub enabled: bool,
    /// `kanban.notify_exec`: name → argv.
    pub exec: BTreeMap<String, Vec<String>>,
}

impl NotifySettings {
    /// Our keys from the `kanban:` section of a config text. Invalid
    /// entries are skipped with a warning (the rest of the config is the
    /// typed loader's business).
    pub fn from_yaml(text: &str, dispatch_in_gateway: bool) -> NotifySettings {
        let mut out = NotifySettings {
            enabled: dispatch_in_gateway,
            exec: BTreeMap::new(),
        };
        let Ok(doc) = serde_norway::from_str::<serde_norway::Value>(text) else {
            return out;
        };
        let Some(kanban) = doc.get("kanban") else {
            return out;
        };
        match kanban.get(CONFIG_NOTIFY_IN_GATEWAY) {
            Some(serde_norway::Value::Bool(b)) => out.enabled = *b,
            Some(serde_norway::Value::String(s)) => {
                out.enabled = !matches!(
                    s.trim().to_lowercase().as_str(),
                    "0" | "false" | "no" | "off"
                )
            }
            _ => {}
        }
        let Some(serde_norway::Value::Mapping(map)) = kanban.get(CONFIG_NOTIFY_EXEC) else {
            return out;
        };
        for (name, cmd) in map {
            let Some(name) = name.as_str() else { continue };
            let argv: Option<Vec<String>> = match cmd {
                serde_norway::Value::String(s) => Some(vec![s.clone()]),
                serde_norway::Value::Sequence(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect(),
                _ => None,
            };
            match argv.filter(|a| a.first().is_some_and(|p| !p.trim().is_empty())) {
                Some(argv) => {
                    out.exec.insert(name.to_string(), argv);
                }
                None => tracing::warn!(
                    entry = name,
                    "kanban notifier: kanban.notify_exec entry must be a list of strings; ignored"
                ),
            }
        }
        out
    }
}

/// Where one subscription's events go.
#[derive(Debug, Clone)]
enum Target {
    Webhook(String),
    Exec(Vec<String>),
}

/// One open board.
struct NotifyBoard {
    slug: String,
    store: Arc<dyn NotifyStore>,
}

/// The notifier of one root.
pub struct Notifier {
    hub: Arc<BoardHub>,
    root: Root,
    opts: NotifierOptions,
    /// Blocking client (ureq, shared with the rest of the binary), used on
    /// tokio's blocking pool; a webhook is one small POST.
    http: ureq::Agent,
    /// Open boards by location identity (two slugs on one file: once).
    boards: HashMap<String, NotifyBoard>,
    next_rescan: Instant,
    settings: NotifySettings,
    /// (mtime, len) of the config file the settings were read from.
    settings_stamp: Option<Option<(SystemTime, u64)>>,
    /// `exec` names already reported as missing (warn once each).
    warned_exec: HashSet<String>,
}

impl Notifier {
    /// The notifier of the hub's root. Boards are opened (created and
    /// migrated) through the hub, then get a connection of their own.
    pub fn new(hub: Arc<BoardHub>, opts: NotifierOptions) -> Notifier {
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .timeout_connect(Some(opts.timeout))
            // A redirect would turn the POST into a GET: report it instead.
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("kanban-notifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Notifier {
            root: hub.root().clone(),
            hub,
            opts,
            http,
            boards: HashMap::new(),
            next_rescan: Instant::now(),
            settings: NotifySettings::default(),
            settings_stamp: None,
            warned_exec: HashSet::new(),
        }
    }

    /// The settings in force, re-read when `config.yaml` changed.
    pub fn settings(&mut self) -> &NotifySettings {
        let path = self.root.config_file();
        let stamp = std::fs::metadata(&path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if self.settings_stamp != Some(stamp) {
            let config = KanbanConfig::load(&self.root, &ProcessEnv).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "kanban notifier: cannot read config; using defaults");
                let mut c = KanbanConfig::default();
                c.apply_env(&ProcessEnv);
                c
            });
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut s = NotifySettings::from_yaml(&text, config.dispatch_in_gateway);
            if config.dispatch_disabled_by_env {
                // The reference's env switch turns the notifier off too.
                s.enabled = false;
            }
            self.settings = s;
            self.settings_stamp = Some(stamp);
            self.warned_exec.clear();
        }
        &self.settings
    }

    /// One pass over every board: deliver what is pending. Never fails;
    /// problems are logged and retried on a later round.
    pub async fn round(&mut self) -> RoundReport {
        self.settings();
        self.rescan_boards().await;
        let mut jobs: Vec<(String, Arc<dyn NotifyStore>, NotifySub, Target)> = Vec::new();
        let boards: Vec<(String, Arc<dyn NotifyStore>)> = self
            .boards
            .values()
            .map(|b| (b.slug.clone(), b.store.clone()))
            .collect();
        for (slug, board_store) in boards {
            let store = board_store.clone();
            let pending =
                blocking(move || store.pending_notify_subs(&DELIVERABLE_PLATFORMS, &NOTIFY_KINDS))
                    .await;
            let subs = match pending {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(board = %slug, error = %e, "kanban notifier: cannot read subscriptions");
                    continue;
                }
            };
            for sub in subs {
                if let Some(target) = self.target_of(&sub) {
                    jobs.push((slug.clone(), board_store.clone(), sub, target));
                }
            }
        }
        let mut report = RoundReport::default();
        if jobs.is_empty() {
            return report;
        }
        let permits = Arc::new(Semaphore::new(MAX_PARALLEL_DELIVERIES));
        let mut set = JoinSet::new();
        for (slug, store, sub, target) in jobs {
            let (http, permits) = (self.http.clone(), permits.clone());
            let timeout = self.opts.timeout;
            set.spawn(async move {
                let _permit = permits.acquire_owned().await;
                deliver_sub(&http, timeout, &slug, store, sub, target).await
            });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(r) => report.add(r),
                Err(e) => tracing::error!(error = %e, "kanban notifier: delivery task failed"),
            }
        }
        report
    }

    /// Run rounds until `shutdown` flips to true: on every change signal
    /// and every poll interval.
    pub async fn run(
        mut self,
        mut changes: Option<watch::Receiver<u64>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut was_enabled = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let enabled = self.settings().enabled;
            if was_enabled != Some(enabled) {
                tracing::info!(
                    enabled,
                    "kanban notifier: {}",
                    if enabled { "on" } else { "off" }
                );
                was_enabled = Some(enabled);
            }
            if enabled {
                let r = self.round().await;
                if r != RoundReport::default() {
                    tracing::debug!(?r, "kanban notifier: round");
                }
            }
            let change = async {
                match changes.as_mut() {
                    Some(c) => c.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            let woke = tokio::select! {
                r = shutdown.changed() => Wake::Shutdown(r.is_err()),
                alive = change => Wake::Change(alive),
                _ = tokio::time::sleep(self.opts.poll_interval) => Wake::Tick,
            };
            match woke {
                Wake::Shutdown(true) => return,
                // The hub is gone: keep polling.
                Wake::Change(false) => changes = None,
                _ => {}
            }
        }
    }

    fn target_of(&mut self, sub: &NotifySub) -> Option<Target> {
        match sub.platform.to_lowercase().as_str() {
            PLATFORM_WEBHOOK => Some(Target::Webhook(sub.chat_id.clone())),
            PLATFORM_EXEC => match self.settings.exec.get(&sub.chat_id) {
                Some(argv) => Some(Target::Exec(argv.clone())),
                None => {
                    // Not claimed: the events wait until the command is
                    // configured, like a Hermes sub whose adapter is offline.
                    if self.warned_exec.insert(sub.chat_id.clone()) {
                        tracing::warn!(
                            task = %sub.task_id,
                            name = %sub.chat_id,
                            "kanban notifier: exec subscription names no kanban.notify_exec entry; waiting"
                        );
                    }
                    None
                }
            },
            _ => None,
        }
    }

    async fn rescan_boards(&mut self) {
        if Instant::now() < self.next_rescan {
            return;
        }
        self.next_rescan = Instant::now() + BOARD_RESCAN_INTERVAL;
        let (hub, open_missing) = (self.hub.clone(), self.opts.open_boards);
        let known: HashSet<String> = self.boards.keys().cloned().collect();
        let opened =
            tokio::task::spawn_blocking(move || open_boards(&hub, &known, open_missing)).await;
        let Ok((opened, live)) = opened else { return };
        let (kept, gone) = std::mem::take(&mut self.boards)
            .into_iter()
            .partition(|(id, _)| live.contains(id));
        self.boards = kept;
        crate::hub::drop_off_runtime::<HashMap<String, NotifyBoard>>(gone);
        for (id, board) in opened {
            self.boards.entry(id).or_insert(board);
        }
    }
}

impl Drop for Notifier {
    /// Runs in async code (the end of [`Notifier::run`], or an abort):
    /// the stores' connections close elsewhere.
    fn drop(&mut self) {
        crate::hub::drop_off_runtime(std::mem::take(&mut self.boards));
    }
}

/// Why the run loop woke up.
enum Wake {
    /// `true` when the shutdown sender is gone.
    Shutdown(bool),
    /// `false` when the change signal is gone.
    Change(bool),
    Tick,
}

/// Attach to the hub's boards not attached yet; returns them and the
/// identity of every live board (a board the hub closed is not). Slugs
/// sharing one DB file are served once. With `open_missing`, the hub
/// first opens every board of the root and closes the departed ones.
fn open_boards(
    hub: &BoardHub,
    known: &HashSet<String>,
    open_missing: bool,
) -> (Vec<(String, NotifyBoard)>, HashSet<String>) {
    if open_missing {
        // Also closes the boards that left the catalogue: they drop out
        // of `live` below, and so out of the notifier.
        hub.sync_with_catalogue("kanban notifier");
    }
    let mut opened = Vec::new();
    let mut live = HashSet::new();
    for board in hub.open_boards() {
        let Some(real) = board.location().identity() else {
            continue;
        };
        if !live.insert(real.clone()) || known.contains(&real) {
            continue;
        }
        // Our own connection, so slow sends never hold the one API requests
        // use. A second open of a board this process has open is safe: the
        // store reads the file header only on a process's first open.
        match open_board(board.location(), &open_request(false)) {
            Ok(handle) => opened.push((
                real,
                NotifyBoard {
                    slug: board.slug.clone(),
                    store: handle.notify(),
                },
            )),
            Err(e) => {
                live.remove(&real);
                tracing::warn!(board = %board.slug, error = %e, "kanban notifier: cannot open board");
            }
        }
    }
    (opened, live)
}

/// Run a store call on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> kanban_store::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn key_of(sub: &NotifySub) -> NotifyKey {
    NotifyKey {
        task_id: sub.task_id.clone(),
        platform: sub.platform.clone(),
        chat_id: sub.chat_id.clone(),
        thread_id: Some(sub.thread_id.clone()),
    }
}

/// The JSON delivered for one event: the event row, a task summary and
/// the board slug.
pub fn event_body(event: &Event, task: Option<&Task>, board: &str) -> Value {
    let task = match task {
        Some(t) => json!({
            "id": t.id,
            "title": t.title,
            "status": t.status.as_str(),
            "assignee": t.assignee,
        }),
        None => json!({ "id": event.task_id, "title": null, "status": null, "assignee": null }),
    };
    json!({
        "id": event.id,
        "task_id": event.task_id,
        "run_id": event.run_id,
        "kind": event.kind,
        "payload": event.payload,
        "created_at": event.created_at,
        "task": task,
        "board": board,
    })
}

/// Claim, send in order, then record success or failure.
async fn deliver_sub(
    http: &ureq::Agent,
    timeout: Duration,
    board: &str,
    store: Arc<dyn NotifyStore>,
    sub: NotifySub,
    target: Target,
) -> RoundReport {
    let mut report = RoundReport::default();
    let key = key_of(&sub);
    let claimed = {
        let (store, key) = (store.clone(), key.clone());
        blocking(move || store.claim_notify_events(&key, &NOTIFY_KINDS)).await
    };
    let claimed = match claimed {
        Ok(c) if !c.events.is_empty() => c,
        Ok(_) => return report,
        Err(e) => {
            tracing::warn!(board, task = %sub.task_id, error = %e, "kanban notifier: claim failed");
            return report;
        }
    };
    let task = {
        let (store, id) = (store.clone(), sub.task_id.clone());
        blocking(move || kanban_store::Store::get_task(store.as_ref(), &id))
            .await
            .ok()
            .flatten()
    };
    let mut delivered_to = claimed.old_cursor;
    let mut failure = None;
    for event in &claimed.events {
        let body = event_body(event, task.as_ref(), board);
        let sent = match &target {
            Target::Webhook(url) => post_webhook(http, url, &body).await,
            Target::Exec(argv) => run_exec(argv, &body, event, board, timeout).await,
        };
        match sent {
            Ok(()) => {
                delivered_to = event.id;
                report.delivered += 1;
                tracing::debug!(board, task = %sub.task_id, kind = %event.kind, platform = %sub.platform, "kanban notifier: delivered");
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    match failure {
        Some(error) => {
            tracing::warn!(board, task = %sub.task_id, platform = %sub.platform, error = %error, "kanban notifier: send failed");
            let f = DeliveryFailure {
                key,
                old_cursor: claimed.old_cursor,
                claimed_cursor: claimed.new_cursor,
                rewind_to: delivered_to,
                error,
            };
            match blocking(move || store.notify_delivery_failed(&f)).await {
                Ok(FailureOutcome::Dropped { failures }) => {
                    report.dropped += 1;
                    tracing::warn!(board, task = %sub.task_id, platform = %sub.platform, failures, "kanban notifier: dropped subscription after consecutive send failures");
                }
                Ok(_) => report.failed += 1,
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(board, task = %sub.task_id, error = %e, "kanban notifier: cannot rewind cursor");
                }
            }
        }
        None => match blocking(move || store.notify_delivered(&key, &NOTIFY_KINDS)).await {
            Ok(DeliveredOutcome::Unsubscribed) => report.unsubscribed += 1,
            Ok(DeliveredOutcome::Kept) => {}
            Err(e) => {
                tracing::warn!(board, task = %sub.task_id, error = %e, "kanban notifier: cannot record delivery")
            }
        },
    }
    report
}

async fn post_webhook(http: &ureq::Agent, url: &str, body: &Value) -> Result<(), String> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| format!("invalid webhook URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("webhook URL must be http(s): {url}"));
    }
    let (agent, text) = (http.clone(), body.to_string());
    let status = tokio::task::spawn_blocking(move || {
        agent
            .post(uri)
            .header("Content-Type", "application/json")
            .send(text)
            .map(|resp| resp.status())
    })
    .await
    .map_err(|e| format!("POST failed: {e}"))?
    .map_err(|e| format!("POST failed: {e}"))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("webhook answered HTTP {status}"))
    }
}

async fn run_exec(
    argv: &[String],
    body: &Value,
    event: &Event,
    board: &str,
    timeout: Duration,
) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("empty notify_exec command")?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env(ENV_NOTIFY_TASK, &event.task_id)
        .env(ENV_NOTIFY_KIND, &event.kind)
        .env(ENV_NOTIFY_BOARD, board)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let mut text = body.to_string();
    text.push('\n');
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its stdin is fine: its exit
            // status decides.
            let _ = stdin.write_all(text.as_bytes()).await;
        }
        child.wait_with_output().await
    };
    let out = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("{program} timed out after {}s", timeout.as_secs()))?
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .chars()
        .take(STDERR_EXCERPT_CHARS)
        .collect();
    Err(format!(
        "{program} exited with {}: {}",
        out.status,
        stderr.trim()
    ))
}

/// Start the notifier of the hub's root, woken by the hub's board changes.
/// `open_boards`: see [`NotifierOptions::open_boards`].
pub fn spawn(
    hub: &Arc<BoardHub>,
    open_boards: bool,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let opts = NotifierOptions {
        open_boards,
        ..NotifierOptions::default()
    };
    let notifier = Notifier::new(hub.clone(), opts);
    tokio::spawn(notifier.run(Some(hub.subscribe_any_change()), shutdown))
}
