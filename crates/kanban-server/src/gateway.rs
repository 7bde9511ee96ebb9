//! The gateway runtime: one per root. Holds the root's dispatcher lock for
//! its whole life, serves the API, runs the dispatcher loop, and stops
//! cleanly on SIGTERM/SIGINT within [`SHUTDOWN_GRACE`] (workers run in
//! their own sessions and keep running).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::{ProcessEnv, Root};
use kanban_store::{Clock, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::dispatch::{DispatchPass, run_loop};
use crate::hosts::AllowedHosts;
use crate::hub::{BoardHub, CHANGE_POLL_INTERVAL};
use crate::lock::{GatewayLock, GatewayRecord, LockError, RecordPublisher};
use crate::state::{AppState, DEFAULT_BODY_LIMIT_BYTES, DispatcherPresence, ServerOptions};
use crate::worker::WorkerEnder;

/// Default listen address: loopback only.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default port (`kanban gateway run --port`, `kanban.gateway.port`).
pub const DEFAULT_PORT: u16 = 8765;
/// Environment variable holding the API token.
pub const ENV_GATEWAY_TOKEN: &str = "KANBAN_GATEWAY_TOKEN";
/// Longest a stop waits for open requests and the current pass.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(
        "refusing to listen on {host} without a token: set --token, kanban.gateway.token or \
         {ENV_GATEWAY_TOKEN} (only loopback addresses may run without one)"
    )]
    TokenRequired { host: String },
    #[error("invalid listen host {0:?}: use an IP address or localhost")]
    BadHost(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] kanban_hermes::config::ConfigError),
    #[error(transparent)]
    AllowedHost(#[from] crate::hosts::BadAllowedHost),
    #[error("{path}: kanban.gateway.allowed_hosts must be a list of host names")]
    AllowedHostsConfig { path: String },
    #[error(
        "the default board's database {db} cannot be opened, so the gateway does not start: \
         {detail}"
    )]
    BrokenDefaultBoard { db: String, detail: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a gateway is started with.
#[derive(Clone)]
pub struct GatewayConfig {
    pub root: Root,
    pub host: String,
    pub port: u16,
    pub token: Option<String>,
    /// The dispatch pass the loop runs; `None` = API only (with a warning).
    pub dispatch: Option<Arc<dyn DispatchPass>>,
    pub body_limit: usize,
    pub poll_interval: Duration,
    /// `--allowed-host` values; `kanban.gateway.allowed_hosts` is added at
    /// start (see [`crate::hosts::AllowedHosts`]).
    pub allowed_hosts: Vec<String>,
    /// Ends detached workers (see [`ServerOptions::workers`]).
    pub workers: Option<Arc<dyn WorkerEnder>>,
}

impl GatewayConfig {
    /// Command line › environment › `kanban.gateway.*` › defaults.
    pub fn resolve(
        root: Root,
        host: Option<String>,
        port: Option<u16>,
        token: Option<String>,
        config: &KanbanConfig,
    ) -> GatewayConfig {
        let blank = |s: &String| s.trim().is_empty();
        let token = token
            .filter(|t| !blank(t))
            .or_else(|| std::env::var(ENV_GATEWAY_TOKEN).ok().filter(|t| !blank(t)))
            .or_else(|| config.gateway.token.clone().filter(|t| !blank(t)));
        GatewayConfig {
            root,
            host: host
                .or_else(|| config.gateway.host.clone())
                .unwrap_or_else(|| DEFAULT_HOST.into()),
            port: port.or(config.gateway.port).unwrap_or(DEFAULT_PORT),
            token,
            dispatch: None,
            body_limit: DEFAULT_BODY_LIMIT_BYTES,
            poll_interval: CHANGE_POLL_INTERVAL,
            allowed_hosts: Vec::new(),
            workers: None,
        }
    }
}

/// `kanban.gateway.allowed_hosts` of `<root>/config.yaml`: a list of host
/// names (or one name). Read here rather than in the typed config, whose
/// `gateway` section predates it; a missing file or key is an empty list.
pub fn configured_allowed_hosts(root: &Root) -> Result<Vec<String>, GatewayError> {
    let path = root.config_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(GatewayError::Io(e)),
    };
    let bad = || GatewayError::AllowedHostsConfig {
        path: path.display().to_string(),
    };
    let doc: serde_norway::Value = serde_norway::from_str(&text).map_err(|_| bad())?;
    let value = doc
        .get("kanban")
        .and_then(|k| k.get("gateway"))
        .and_then(|g| g.get("allowed_hosts"));
    match value {
        None | Some(serde_norway::Value::Null) => Ok(Vec::new()),
        Some(serde_norway::Value::String(s)) => Ok(vec![s.clone()]),
        Some(serde_norway::Value::Sequence(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// Open every board before serving. The default board (what requests
/// without `?board=` use) must open, else the gateway does not start; a
/// broken named board is marked unhealthy (logged once, `/healthz` 503).
async fn check_boards(hub: &Arc<BoardHub>) -> Result<(), GatewayError> {
    let hub = hub.clone();
    tokio::task::spawn_blocking(move || {
        let root = hub.root().clone();
        let default = root.current_board(&ProcessEnv);
        if let Err(e) = hub.open(&default) {
            return Err(GatewayError::BrokenDefaultBoard {
                // Redacted: a PostgreSQL URL without its password.
                db: root.board_paths(&default).location().to_string(),
                detail: e.detail,
            });
        }
        for entry in hub.catalogue().boards(false) {
            // Failures are recorded (and logged once) by the hub.
            let _ = hub.open(&entry.slug);
        }
        Ok(())
    })
    .await
    .map_err(|e| GatewayError::Io(std::io::Error::other(e)))?
}

/// Keep `gateway.json`'s `dispatch` equal to the live dispatch state.
async fn publish_dispatch_changes(
    mut dispatching: watch::Receiver<bool>,
    publisher: RecordPublisher,
    mut record: GatewayRecord,
) {
    while dispatching.changed().await.is_ok() {
        let on = *dispatching.borrow_and_update();
        if on == record.dispatch {
            continue;
        }
        record.dispatch = on;
        if let Err(e) = publisher.write(&record) {
            crate::hub::log_warning(&format!("cannot update the gateway state file: {e}"));
        }
    }
}

fn parse_host(host: &str) -> Result<IpAddr, GatewayError> {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    h.parse().map_err(|_| GatewayError::BadHost(host.into()))
}

fn url_for(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V6(ip) => format!("http://[{ip}]:{}", addr.port()),
        IpAddr::V4(ip) => format!("http://{ip}:{}", addr.port()),
    }
}

/// The API server alone (no lock, no dispatcher): for embedding and tests.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub url: String,
    pub hub: Arc<BoardHub>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Serve `opts` on an already bound listener.
    pub fn spawn(opts: ServerOptions, listener: TcpListener) -> std::io::Result<RunningServer> {
        let clock: Arc<dyn Clock> = opts.clock.clone();
        let hub = Arc::new(BoardHub::new(opts.root.clone(), clock, opts.poll_interval));
        RunningServer::spawn_with_hub(opts, listener, hub)
    }

    /// Serve `opts` with boards already opened in `hub`.
    pub fn spawn_with_hub(
        opts: ServerOptions,
        listener: TcpListener,
        hub: Arc<BoardHub>,
    ) -> std::io::Result<RunningServer> {
        let addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let _ = crate::metrics::handle();
        let state = AppState::new(&opts, hub.clone(), rx.clone());
        let app = crate::routes::router(state, opts.body_limit);
        let mut stop = rx;
        let task = tokio::spawn(async move {
            let graceful = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(graceful)
                .await
            {
                tracing::error!(error = %e, "gateway server error");
            }
        });
        Ok(RunningServer {
            addr,
            url: url_for(addr),
            hub,
            shutdown,
            task,
        })
    }

    /// A receiver that flips to true when the server stops.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stop: open WebSockets close, in-flight requests get until `deadline`.
    pub async fn stop(self, deadline: Instant) {
        let _ = self.shutdown.send(true);
        self.hub.close();
        let mut task = self.task;
        if tokio::time::timeout_at(deadline.into(), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// A running gateway.
pub struct Gateway {
    server: RunningServer,
    dispatcher: Option<JoinHandle<()>>,
    /// Delivers webhook/exec notify subscriptions (`crate::notifier`).
    notifier: Option<JoinHandle<()>>,
    /// Rewrites `gateway.json` when the live dispatch state changes.
    publisher: JoinHandle<()>,
    _lock: GatewayLock,
}

impl Gateway {
    /// Take the root's lock, check every board, bind, publish the pidfile
    /// and `gateway.json`, then serve and dispatch. Fails (changing
    /// nothing) when another gateway runs or the default board is broken.
    pub async fn start(cfg: GatewayConfig) -> Result<Gateway, GatewayError> {
        let ip = parse_host(&cfg.host)?;
        if !ip.is_loopback() && cfg.token.is_none() {
            return Err(GatewayError::TokenRequired {
                host: cfg.host.clone(),
            });
        }
        let config = KanbanConfig::load(&cfg.root, &ProcessEnv)?;
        let mut allowed_hosts = cfg.allowed_hosts.clone();
        allowed_hosts.extend(configured_allowed_hosts(&cfg.root)?);
        AllowedHosts::parse(&allowed_hosts)?;
        let lock = GatewayLock::acquire(&cfg.root)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let hub = Arc::new(
            BoardHub::new(cfg.root.clone(), clock.clone(), cfg.poll_interval)
                .with_pokes(crate::wake::PokeWake::for_gateway()),
        );
        // On failure the opened boards' watchers must stop with us.
        let close_on_err = |e: GatewayError| {
            hub.close();
            e
        };
        check_boards(&hub).await.map_err(close_on_err)?;
        let addr = SocketAddr::new(ip, cfg.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| GatewayError::Bind {
                addr: addr.to_string(),
                source,
            })
            .map_err(close_on_err)?;
        let presence = match (&cfg.dispatch, config.dispatch_disabled_by_env) {
            (_, true) => DispatcherPresence::DisabledByEnv,
            (None, false) => DispatcherPresence::NoDispatcher,
            (Some(_), false) => DispatcherPresence::Hosted,
        };
        let hosted = presence == DispatcherPresence::Hosted;
        hub.set_dispatching(hosted && config.dispatch_in_gateway);
        // Published before the first request is served: whoever sees this
        // gateway running (`gateway status`, the create warning) reads a
        // current record.
        let local = listener.local_addr()?;
        let record = GatewayRecord {
            pid: std::process::id(),
            url: url_for(local),
            host: cfg.host.clone(),
            port: local.port(),
            started_at: clock.now(),
            dispatch: hub.dispatching(),
        };
        lock.write_record(&record)?;
        let publisher = tokio::spawn(publish_dispatch_changes(
            hub.subscribe_dispatching(),
            lock.publisher(),
            record,
        ));
        let opts = ServerOptions {
            root: cfg.root.clone(),
            token: cfg.token.clone(),
            dispatch: cfg.dispatch.clone(),
            presence,
            body_limit: cfg.body_limit,
            poll_interval: cfg.poll_interval,
            clock,
            allowed_hosts,
            workers: cfg.workers.clone(),
        };
        let server = RunningServer::spawn_with_hub(opts, listener, hub)?;
        log_started(&server, &cfg);
        let dispatcher = match (&cfg.dispatch, hosted) {
            (Some(pass), true) => Some(tokio::spawn(run_loop(
                server.hub.clone(),
                pass.clone(),
                server.shutdown_signal(),
            ))),
            _ => None,
        };
        // The dispatcher loop opens every board; otherwise the notifier does.
        let notifier = Some(crate::notifier::spawn(
            &server.hub,
            !hosted,
            server.shutdown_signal(),
        ));
        Ok(Gateway {
            server,
            dispatcher,
            notifier,
            publisher,
            _lock: lock,
        })
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
    /// Whether this gateway dispatches right now (the live
    /// `dispatch_in_gateway`, false without a dispatcher loop).
    pub fn dispatching(&self) -> bool {
        self.server.hub.dispatching()
    }

    /// Stop within [`SHUTDOWN_GRACE`]; the lock and pidfile are released.
    pub async fn stop(self) {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        // No state-file write may follow the lock's removal of it.
        self.publisher.abort();
        let _ = self.publisher.await;
        self.server.stop(deadline).await;
        if let Some(mut n) = self.notifier
            && tokio::time::timeout_at(deadline.into(), &mut n)
                .await
                .is_err()
        {
            // Mid-send: the claimed events are not re-sent (the reference's
            // at-most-once on a stop).
            n.abort();
        }
        if let Some(mut d) = self.dispatcher
            && tokio::time::timeout_at(deadline.into(), &mut d)
                .await
                .is_err()
        {
            // A pass still running in a blocking thread finishes on its own;
            // its writes are each one transaction, so stopping here is safe.
            d.abort();
        }
        tracing::info!("kanban gateway: stopped");
    }

    /// Start, print the URL, serve until SIGTERM or SIGINT, stop.
    pub async fn run(cfg: GatewayConfig) -> Result<(), GatewayError> {
        let gw = Gateway::start(cfg).await?;
        println!(
            "kanban gateway listening on {} (dispatcher: {})",
            gw.url(),
            if gw.dispatching() { "on" } else { "off" }
        );
        wait_for_signal().await?;
        tracing::info!("kanban gateway: stopping");
        gw.stop().await;
        Ok(())
    }
}

/// The start-up line of the gateway log (boards that cannot be opened are
/// logged by the hub as unhealthy).
fn log_started(server: &RunningServer, cfg: &GatewayConfig) {
    let mut boards: Vec<String> = server
        .hub
        .open_boards()
        .iter()
        .map(|b| b.slug.clone())
        .collect();
    boards.sort();
    tracing::info!(
        url = %server.url,
        root = %cfg.root.path().display(),
        boards = %boards.join(","),
        dispatching = server.hub.dispatching(),
        "kanban gateway: started"
    );
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
