//! Prometheus metrics (`/metrics`), through the `metrics` facade so the
//! dispatcher and store can record their own with the same macros.
//!
//! Task counts are gauges refreshed at scrape time from each open board's
//! stats: cheap, and always true even when other processes write.
//!
//! Gateways on several hosts can share a board, so every series carries a
//! constant `host` label: this gateway's host id (`KANBAN_HOST_ID`, else
//! the host name, as in its claim locks and host lease). The fleet gauges
//! describe the board's hosts as the database knows them, read at scrape
//! time (one read per board): each host's lease and running tasks, labelled
//! `host_id` (the host described; `host` stays the gateway reporting).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use kanban_store::backend::{HostLoad, PoolStatus};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::hub::Board;

pub const TASKS: &str = "kanban_tasks";
pub const DISPATCH_PASSES: &str = "kanban_dispatch_passes_total";
pub const DISPATCH_PASS_ERRORS: &str = "kanban_dispatch_pass_errors_total";
pub const TICK_DURATION: &str = "kanban_dispatch_tick_duration_seconds";
pub const SPAWNS: &str = "kanban_spawns_total";
pub const CRASHES: &str = "kanban_crashes_total";
pub const RECLAIMS: &str = "kanban_reclaims_total";
pub const TIMEOUTS: &str = "kanban_timeouts_total";
pub const CLAIM_LATENCY: &str = "kanban_claim_latency_seconds";
pub const PICKUP_LATENCY: &str = "kanban_pickup_latency_seconds";
pub const HTTP_REQUESTS: &str = "kanban_http_requests_total";
pub const WS_CLIENTS: &str = "kanban_ws_clients";
pub const HOST_LEASE_EXPIRES_IN: &str = "kanban_host_lease_expires_in_seconds";
pub const HOST_RUNNING_RUNS: &str = "kanban_host_running_runs";
pub const POOL_CONNECTIONS: &str = "kanban_pool_connections";
pub const POOL_SIZE: &str = "kanban_pool_size";

/// Constant label of every series: the host of the gateway serving them.
pub const HOST_LABEL: &str = "host";
/// Label of the fleet gauges: the host a series is about.
pub const HOST_ID_LABEL: &str = "host_id";

/// Histogram buckets, seconds: sub-millisecond passes up to slow spawns.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the process-wide recorder once; `None` if another recorder was
/// installed first (an embedding program's own).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .ok()?
                .add_global_label(HOST_LABEL, this_host());
            let handle = builder.install_recorder().ok()?;
            describe();
            start_sample_thread();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(TASKS, "Tasks per board and status");
    describe_counter!(DISPATCH_PASSES, "Dispatch passes run by this gateway");
    describe_counter!(DISPATCH_PASS_ERRORS, "Dispatch passes that failed");
    describe_histogram!(
        TICK_DURATION,
        Unit::Seconds,
        "Duration of one dispatch pass over one board"
    );
    describe_counter!(SPAWNS, "Workers spawned");
    describe_counter!(CRASHES, "Workers detected as crashed");
    describe_counter!(RECLAIMS, "Claims reclaimed (TTL expired)");
    describe_counter!(TIMEOUTS, "Workers killed for exceeding max runtime");
    describe_histogram!(
        CLAIM_LATENCY,
        Unit::Seconds,
        "Time to claim a task inside a pass"
    );
    describe_histogram!(
        PICKUP_LATENCY,
        Unit::Seconds,
        "From a board change being seen to the pass that spawned for it finishing"
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests served");
    describe_gauge!(WS_CLIENTS, "Open WebSocket event feeds");
    describe_gauge!(
        HOST_LEASE_EXPIRES_IN,
        Unit::Seconds,
        "Per board and host (host_id): seconds until its gateway's lease runs out (negative: expired)"
    );
    describe_gauge!(
        HOST_RUNNING_RUNS,
        "Per board and host (host_id): running tasks claimed by that host"
    );
    describe_gauge!(
        POOL_CONNECTIONS,
        "Open database connections of this process's pools, idle or busy"
    );
    describe_gauge!(POOL_SIZE, "Most connections this process's pools open");
}

/// This gateway's host id: `KANBAN_HOST_ID`, else the host name.
pub fn this_host() -> String {
    kanban_store::host_identity::local_host(kanban_hermes::host::process_host_id().as_deref())
}

/// Refresh the gauges read from the open boards at scrape time: task
/// counts, each host's lease and running tasks, the connection pools. A
/// board whose read fails keeps its last values. Blocking: call it off the
/// async runtime.
pub fn refresh_from_boards(boards: &[Arc<Board>]) {
    let mut pools = BTreeMap::new();
    for board in boards {
        if let Ok(stats) = board.store.stats() {
            set_task_counts(&board.slug, &stats.by_status);
        }
        if let Ok(loads) = board.handle().host_loads() {
            set_host_loads(&board.slug, board.store.now(), &loads);
        }
        // Boards of one database share its pool: count it once.
        if let Some(pool) = board.handle().pool_status() {
            pools.insert(pool.pool_id, pool);
        }
    }
    set_pool_status(pools.values());
}

/// Set the fleet gauges of a board (`now`: the store's clock). A host
/// seen before whose running tasks all ended no longer shows in the read:
/// its count drops to 0 rather than keeping its last value.
pub fn set_host_loads(board: &str, now: i64, loads: &[HostLoad]) {
    static SEEN: OnceLock<Mutex<HashMap<String, BTreeSet<String>>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let known = seen.entry(board.to_string()).or_default();
    let running = |host: &str| metrics::gauge!(HOST_RUNNING_RUNS, "board" => board.to_string(), HOST_ID_LABEL => host.to_string());
    for h in loads {
        if let Some(expires) = h.lease_expires {
            metrics::gauge!(HOST_LEASE_EXPIRES_IN, "board" => board.to_string(), HOST_ID_LABEL => h.host_id.clone())
                .set((expires - now) as f64);
        }
        running(&h.host_id).set(h.running as f64);
        known.insert(h.host_id.clone());
    }
    for gone in known
        .iter()
        .filter(|k| !loads.iter().any(|h| &h.host_id == *k))
    {
        running(gone).set(0.0);
    }
}

/// Set the pool gauges from this process's pools (none: not set at all).
pub fn set_pool_status<'a>(pools: impl IntoIterator<Item = &'a PoolStatus>) {
    let (mut idle, mut busy, mut size, mut any) = (0, 0, 0, false);
    for p in pools {
        (idle, busy, size, any) = (idle + p.idle, busy + p.busy, size + p.size, true);
    }
    if !any {
        return;
    }
    metrics::gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
    metrics::gauge!(POOL_CONNECTIONS, "state" => "busy").set(f64::from(busy));
    metrics::gauge!(POOL_SIZE).set(f64::from(size));
}

/// What one successful pass did, as the metrics count it. The caller reads
/// it from the pass's result, so this module knows nothing of its shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassCounts {
    pub spawned: u64,
    pub crashed: u64,
    pub reclaimed: u64,
    pub timed_out: u64,
    /// Seconds each claim of the pass took; `None` when the pass reports no
    /// claim timings at all (the histogram is then left untouched).
    pub claim_seconds: Option<Vec<f64>>,
}

/// Record one finished pass (`None`: the pass failed).
pub fn record_pass(board: &str, took: Duration, counts: Option<&PassCounts>) {
    let b = board.to_string();
    record_histogram(TICK_DURATION, b.clone(), &[took.as_secs_f64()]);
    metrics::counter!(DISPATCH_PASSES, "board" => b.clone()).increment(1);
    let Some(c) = counts else {
        metrics::counter!(DISPATCH_PASS_ERRORS, "board" => b).increment(1);
        return;
    };
    metrics::counter!(SPAWNS, "board" => b.clone()).increment(c.spawned);
    metrics::counter!(CRASHES, "board" => b.clone()).increment(c.crashed);
    metrics::counter!(RECLAIMS, "board" => b.clone()).increment(c.reclaimed);
    metrics::counter!(TIMEOUTS, "board" => b.clone()).increment(c.timed_out);
    if let Some(claims) = &c.claim_seconds {
        record_histogram(CLAIM_LATENCY, b, claims);
    }
}

/// Record how long a change took to turn into a spawn.
pub fn record_pickup(board: &str, took: Duration) {
    record_histogram(PICKUP_LATENCY, board.to_string(), &[took.as_secs_f64()]);
}

/// Histogram samples taken before `quanta`'s clock is calibrated, on
/// their way to the `kanban-metrics` thread. The exporter stamps each
/// sample with that clock, whose first use calibrates it by spinning for
/// up to 200 ms: on a dispatch pass thread that stalled the first claims
/// of every gateway. The thread calibrates it at start-up; samples taken
/// after that are recorded where they are taken (waking a thread per
/// pass would put one more thread in the way of each worker's start).
enum Sample {
    Values {
        name: &'static str,
        board: String,
        values: Vec<f64>,
    },
    /// Answered once every sample sent before it is recorded.
    Flush(mpsc::SyncSender<()>),
}

static SAMPLES: OnceLock<mpsc::Sender<Sample>> = OnceLock::new();
/// Set once the clock is calibrated: samples are recorded in place.
static CLOCK_READY: AtomicBool = AtomicBool::new(false);

/// Stack of the sample thread: it calibrates a clock and records samples.
const METRICS_STACK_BYTES: usize = 128 * 1024;
/// Longest a scrape waits for the queued samples to be recorded.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

fn start_sample_thread() {
    let (tx, rx) = mpsc::channel::<Sample>();
    let started = std::thread::Builder::new()
        .name("kanban-metrics".into())
        .stack_size(METRICS_STACK_BYTES)
        .spawn(move || {
            let _ = quanta::Instant::now();
            CLOCK_READY.store(true, Ordering::Release);
            for sample in rx {
                match sample {
                    Sample::Values {
                        name,
                        board,
                        values,
                    } => record_now(name, board, &values),
                    Sample::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
    if started.is_ok() {
        let _ = SAMPLES.set(tx);
    }
}

fn record_now(name: &'static str, board: String, values: &[f64]) {
    let h = metrics::histogram!(name, "board" => board);
    for v in values {
        h.record(*v);
    }
}

/// Record `values` here once the clock is calibrated, else queue them for
/// the sample thread (recorded here too when it is not running: no
/// recorder of ours is installed, or it could not start).
fn record_histogram(name: &'static str, board: String, values: &[f64]) {
    if CLOCK_READY.load(Ordering::Acquire) {
        return record_now(name, board, values);
    }
    let sample = Sample::Values {
        name,
        board,
        values: values.to_vec(),
    };
    let unsent = match SAMPLES.get() {
        Some(tx) => match tx.send(sample) {
            Ok(()) => return,
            Err(mpsc::SendError(s)) => s,
        },
        None => sample,
    };
    if let Sample::Values {
        name,
        board,
        values,
    } = unsent
    {
        record_now(name, board, &values);
    }
}

/// Wait until every histogram sample queued so far is recorded, so a
/// scrape shows the passes that ended before it. Blocking.
pub fn flush() {
    let Some(tx) = SAMPLES.get() else { return };
    let (done, recorded) = mpsc::sync_channel(1);
    if tx.send(Sample::Flush(done)).is_ok() {
        let _ = recorded.recv_timeout(FLUSH_TIMEOUT);
    }
}

/// Set the per-status task gauges of a board.
pub fn set_task_counts(board: &str, by_status: &std::collections::BTreeMap<String, i64>) {
    for status in kanban_core::Status::ALL {
        let n = by_status.get(status.as_str()).copied().unwrap_or(0);
        metrics::gauge!(TASKS, "board" => board.to_string(), "status" => status.as_str())
            .set(n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples of a pass show in the scrape that follows it, whether they
    /// were queued (the clock not yet calibrated) or recorded in place.
    #[test]
    fn a_scrape_after_a_pass_shows_its_histogram_samples() {
        let handle = handle().expect("our recorder is the first");
        let counts = PassCounts {
            spawned: 2,
            claim_seconds: Some(vec![0.001, 0.002]),
            ..PassCounts::default()
        };
        record_pass("flushed", Duration::from_millis(3), Some(&counts));
        record_pickup("flushed", Duration::from_millis(4));
        flush();
        let text = handle.render();
        for series in [CLAIM_LATENCY, TICK_DURATION, PICKUP_LATENCY] {
            let want = if series == CLAIM_LATENCY { 2 } else { 1 };
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{series}_count{{"))
                        && l.contains("board=\"flushed\"")
                        && l.ends_with(&format!(" {want}"))),
                "{series}: {text}"
            );
        }
    }
}
