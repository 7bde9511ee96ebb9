//! The gateway runtime: one per root. Holds the root's dispatcher lock for
//! its whole life, serves the API, runs the dispatcher loop, and stops
//! cleanly on SIGTERM/SIGINT within [`SHUTDOWN_GRACE`] (workers run in
//! their own sessions and keep running).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kanban_store::config::KanbanConfig;
use kanban_store::layout::{ProcessEnv, Root};
use kanban_store::{Clock, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::dispatch::{DispatchPass, run_loop};
use crate::hub::{BoardHub, CHANGE_POLL_INTERVAL};
use crate::lock::{GatewayLock, GatewayRecord, LockError};
use crate::state::{AppState, DEFAULT_BODY_LIMIT_BYTES, DispatcherPresence, ServerOptions};

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
    Config(#[from] kanban_store::config::ConfigError),
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
        let addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let clock: Arc<dyn Clock> = opts.clock.clone();
        let hub = Arc::new(BoardHub::new(opts.root.clone(), clock, opts.poll_interval));
        let _ = crate::metrics::handle();
        let state = AppState {
            hub: hub.clone(),
            token: opts.token.as_deref().map(Arc::from),
            dispatch: opts.dispatch.clone(),
            presence: opts.presence,
            shutdown: rx.clone(),
        };
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
    dispatching: bool,
    _lock: GatewayLock,
}

impl Gateway {
    /// Take the root's lock, bind, write the pidfile and start serving and
    /// dispatching. Fails (changing nothing) when another gateway runs.
    pub async fn start(cfg: GatewayConfig) -> Result<Gateway, GatewayError> {
        let ip = parse_host(&cfg.host)?;
        if !ip.is_loopback() && cfg.token.is_none() {
            return Err(GatewayError::TokenRequired {
                host: cfg.host.clone(),
            });
        }
        let config = KanbanConfig::load(&cfg.root, &ProcessEnv)?;
        let lock = GatewayLock::acquire(&cfg.root)?;
        let addr = SocketAddr::new(ip, cfg.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| GatewayError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let presence = match (&cfg.dispatch, config.dispatch_disabled_by_env) {
            (_, true) => DispatcherPresence::DisabledByEnv,
            (None, false) => DispatcherPresence::NoDispatcher,
            (Some(_), false) => DispatcherPresence::Hosted,
        };
        let opts = ServerOptions {
            root: cfg.root.clone(),
            token: cfg.token.clone(),
            dispatch: cfg.dispatch.clone(),
            presence,
            body_limit: cfg.body_limit,
            poll_interval: cfg.poll_interval,
            clock: Arc::new(SystemClock),
        };
        let server = RunningServer::spawn(opts, listener)?;
        let dispatching = presence == DispatcherPresence::Hosted;
        let dispatcher = match (&cfg.dispatch, dispatching) {
            (Some(pass), true) => Some(tokio::spawn(run_loop(
                server.hub.clone(),
                pass.clone(),
                server.shutdown_signal(),
            ))),
            _ => None,
        };
        // The dispatcher loop opens every board; otherwise the notifier does.
        let notifier = crate::notifier::spawn(&server.hub, !dispatching, server.shutdown_signal());
        let record = GatewayRecord {
            pid: std::process::id(),
            url: server.url.clone(),
            host: cfg.host.clone(),
            port: server.addr.port(),
            started_at: SystemClock.now(),
            dispatch: dispatching && config.dispatch_in_gateway,
        };
        lock.write_record(&record)?;
        Ok(Gateway {
            server,
            dispatcher,
            notifier,
            dispatching,
            _lock: lock,
        })
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
    /// Whether the dispatcher loop runs in this gateway.
    pub fn dispatching(&self) -> bool {
        self.dispatching
    }

    /// Stop within [`SHUTDOWN_GRACE`]; the lock and pidfile are released.
    pub async fn stop(self) {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
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
    }

    /// Start, print the URL, serve until SIGTERM or SIGINT, stop.
    pub async fn run(cfg: GatewayConfig) -> Result<(), GatewayError> {
        let gw = Gateway::start(cfg).await?;
        println!(
            "kanban gateway listening on {} (dispatcher: {})",
            gw.url(),
            if gw.dispatching { "on" } else { "off" }
        );
        wait_for_signal().await?;
        tracing::info!("kanban gateway: stopping");
        gw.stop().await;
        Ok(())
    }
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
