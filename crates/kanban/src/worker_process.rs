//! Ending the worker process group of a task that was completed, blocked,
//! scheduled, reclaimed, reassigned or archived from outside (SPEC §4).
//!
//! The decision is the dispatcher library's [`kanban_dispatch::end_worker`]:
//! the worker is identified by the run's recorded pid *and* process start
//! time (a recycled pid is never signalled), a worker on another machine or
//! boot is left alone, and the caller's own session (a worker finishing its
//! own task) is never signalled. What this module adds is the short-lived
//! process problem: the library's terminator escalates SIGTERM → SIGKILL on
//! a background thread, which a CLI would kill by exiting. So the CLI waits
//! a moment for the usual quick exit and otherwise hands the escalation to
//! a detached reaper process; a long-lived multi-threaded caller (the MCP
//! server) keeps one terminator for its lifetime instead.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kanban_dispatch::log_cap::{self, CappedLog, ENV_LOG_MAX_RUN_BYTES, RunLogCap};
use kanban_dispatch::log_mirror::{LOG_MIRROR_BATCH_BYTES, LOG_MIRROR_INTERVAL, LogMirror};
use kanban_dispatch::recording::write_exit_record;
use kanban_dispatch::terminate::{KILL_WAIT, TERMINATE_GRACE};
use kanban_dispatch::{EndOutcome, Liveness, ProcLiveness, Terminator, WorkerExit, WorkerIdentity};
use kanban_store::EndedWorker;
use kanban_store::dispatch_ops::DispatchStore;
use nix::unistd::{ForkResult, fork};

/// How long the CLI waits for a signalled worker to exit before handing the
/// SIGKILL escalation to a detached reaper (most workers exit on SIGTERM).
const QUICK_EXIT_WAIT: Duration = Duration::from_millis(300);

/// The claim lock this process takes: `<host>:<pid>`, the host being
/// `KANBAN_HOST_ID` when set, else the host name (as the reference writes).
pub fn claimer_id() -> String {
    use kanban_store::host_identity::{claimer_id, local_host};
    claimer_id(&local_host(
        kanban_hermes::host::process_host_id().as_deref(),
    ))
}

/// True when this process is the dispatcher-spawned worker of `task_id`.
pub fn is_own_task(task_id: &str) -> bool {
    std::env::var("HERMES_KANBAN_TASK").ok().as_deref() == Some(task_id)
}

/// End the worker a transition detached from its task. `run_id` is the run
/// the transition closed (its recorded identity is checked); `own_task` is
/// true when this process is that task's worker (never signalled: the
/// dispatcher ends it if it lingers). `store` is the board's store as the
/// factory opened it: the worker records live behind its dispatch
/// interface, on every backend.
pub fn end_worker(
    store: &dyn DispatchStore,
    run_id: Option<i64>,
    worker: &EndedWorker,
    own_task: bool,
) -> EndOutcome {
    if own_task {
        return EndOutcome::OwnSession;
    }
    let liveness: Arc<dyn Liveness> = Arc::new(ProcLiveness::new());
    if !single_threaded() {
        // A long-lived server: its terminator thread does the escalation.
        let term = shared_terminator();
        return kanban_dispatch::end_worker(store, &*liveness, term, run_id, worker)
            .unwrap_or(EndOutcome::NotLocal);
    }
    let term = Terminator::new(liveness.clone());
    let outcome = match kanban_dispatch::end_worker(store, &*liveness, &term, run_id, worker) {
        Ok(o) => o,
        Err(_) => return EndOutcome::NotLocal,
    };
    if outcome == EndOutcome::Signalled && !term.wait_idle(QUICK_EXIT_WAIT) {
        let identity = recorded_identity(store, run_id, worker);
        // Joins the terminator thread: the process is single-threaded
        // again, so forking the reaper is safe.
        drop(term);
        if let Some(id) = identity {
            spawn_reaper(id);
        }
    }
    outcome
}

/// The identity `kanban_dispatch::end_worker` verified: the run's record
/// when it names this pid, else the bare pid (host-local claim).
fn recorded_identity(
    store: &dyn DispatchStore,
    run_id: Option<i64>,
    worker: &EndedWorker,
) -> Option<WorkerIdentity> {
    let pid = i32::try_from(worker.pid).ok().filter(|p| *p > 1)?;
    let record = run_id
        .and_then(|r| store.worker_record(r).ok().flatten())
        .filter(|w| w.pid == worker.pid);
    Some(WorkerIdentity {
        pid,
        start_time: record
            .and_then(|r| r.start_time)
            .and_then(|t| u64::try_from(t).ok()),
    })
}

fn shared_terminator() -> &'static Terminator {
    static TERM: OnceLock<Terminator> = OnceLock::new();
    TERM.get_or_init(|| Terminator::new(Arc::new(ProcLiveness::new())))
}

/// Whether this process runs a single thread (then `fork` is safe).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse::<u32>().ok())
        })
        == Some(1)
}

/// A detached child that finishes the termination (identity re-checked
/// before every signal), so the CLI returns at once.
fn spawn_reaper(id: WorkerIdentity) {
    // SAFETY: called only while this process is single-threaded, so the
    // child may allocate and start threads like any fresh process.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = nix::unistd::setsid();
            detach_stdio();
            let term = Terminator::new(Arc::new(ProcLiveness::new()));
            term.begin(id, "reaper");
            term.wait_idle(TERMINATE_GRACE + KILL_WAIT);
            // SAFETY: _exit skips destructors and atexit handlers that
            // belong to the parent (its store, its buffered output).
            unsafe { libc::_exit(0) };
        }
        Ok(ForkResult::Parent { .. }) => {}
        Err(_) => {
            // No reaper: SIGTERM was still delivered; a dispatcher ends a
            // lingering worker later.
        }
    }
}

/// Point stdin/stdout/stderr at /dev/null so the reaper does not hold the
/// caller's pipes open (a script reading our output would wait for it).
fn detach_stdio() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

// ---- exit records: classifying workers across dispatcher processes -------

/// Hidden verb that runs a worker and records how it exited
/// (`kanban_dispatch::recording`).
pub const WORKER_EXEC_VERB: &str = "__worker-exec";
/// Hidden verb of the gateway's helper that forks worker wrappers.
pub const FORK_SERVER_VERB: &str = "__worker-forkserver";

/// The wrapper argv prefix for `kanban_dispatch::RecordingSpawner`: this
/// executable and [`WORKER_EXEC_VERB`]; `None` if the executable cannot be
/// located (then workers run unwrapped).
pub fn worker_exec_prefix() -> Option<Vec<String>> {
    let exe = std::env::current_exe().ok()?;
    Some(vec![
        exe.display().to_string(),
        WORKER_EXEC_VERB.to_string(),
    ])
}

/// Internal: run a worker command and record its exit for later passes.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerExecArgs {
    /// Directory of the exit records.
    #[arg(long)]
    pub record_dir: PathBuf,
    /// The worker's argv.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub argv: Vec<String>,
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// After the worker exits, how long the wrapper keeps copying output that
/// processes it left behind still write (the exit record waits for it).
const LOG_DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The wrapper's stdout (the task's log, opened by the dispatcher) as a
/// capped writer; `None` when it is not a regular file (then the worker
/// writes to it directly, uncapped).
fn capped_stdout(cap: RunLogCap) -> Option<CappedLog> {
    const STDOUT: &str = "/proc/self/fd/1";
    if !std::fs::metadata(STDOUT).ok()?.is_file() {
        return None;
    }
    // A description of our own, without O_APPEND: cuts write at offsets.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(STDOUT)
        .ok()?;
    CappedLog::new(file, cap).ok()
}

/// Point the worker's stdout and stderr at a new pipe; its read end.
fn pipe_output(cmd: &mut std::process::Command) -> Option<std::io::PipeReader> {
    let (reader, writer) = std::io::pipe().ok()?;
    let err = writer.try_clone().ok()?;
    cmd.stdout(writer).stderr(err);
    Some(reader)
}

/// Copy the pipe into the log on a thread; the receiver hears when the
/// pipe reached its end (every writer gone). With a mirror, the log is
/// also copied into the board (`kanban_dispatch::log_mirror`).
fn start_pump(
    reader: std::io::PipeReader,
    log: CappedLog,
    mirror: Option<MirrorTarget>,
) -> (std::sync::mpsc::Receiver<()>, Option<MirrorHandle>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let Some(target) = mirror else {
        let mut log = log;
        std::thread::spawn(move || {
            let _ = log_cap::pump(reader, &mut log);
            let _ = tx.send(());
        });
        return (rx, None);
    };
    let log = Arc::new(std::sync::Mutex::new(log));
    // `false`: a batch waits; `true`: the run is over, flush and stop.
    let (wake, wakes) = std::sync::mpsc::channel::<bool>();
    let (finished_tx, finished) = std::sync::mpsc::channel();
    let shared = log.clone();
    let pump_wake = wake.clone();
    let mut signalled_at = 0u64;
    std::thread::spawn(move || {
        let _ = log_cap::pump_with(reader, |data| {
            let mut log = shared.lock().unwrap_or_else(|p| p.into_inner());
            let out = log.write_all(data);
            // Early flush once a batch waits (one wake per batch).
            if log.run_len() >= signalled_at + LOG_MIRROR_BATCH_BYTES {
                signalled_at = log.run_len();
                let _ = pump_wake.send(false);
            }
            out
        });
        let _ = tx.send(());
    });
    std::thread::spawn(move || {
        target.run(&log, &wakes);
        let _ = finished_tx.send(());
    });
    (
        rx,
        Some(MirrorHandle {
            wake: Some(wake),
            finished,
        }),
    )
}

/// The run whose log is copied into the board, and how to reach it.
struct MirrorTarget {
    task_id: String,
    run_id: i64,
}

impl MirrorTarget {
    /// For a worker of a board that keeps logs (a database board: the
    /// worker environment names the database); `None` otherwise.
    fn from_env() -> Option<MirrorTarget> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        env(kanban_dispatch::env::ENV_DATABASE_URL)?;
        Some(MirrorTarget {
            task_id: env(kanban_dispatch::env::ENV_TASK)?,
            run_id: env(kanban_dispatch::env::ENV_RUN_ID)?.trim().parse().ok()?,
        })
    }

    /// The board, opened as the worker's own verbs open it (on the mirror
    /// thread: the worker never waits for the connection).
    fn open(&self) -> Option<kanban_store::backend::BoardHandle> {
        let ctx = crate::context::Ctx::resolve(None, None).ok()?;
        crate::context::open_board(&ctx.board, Arc::new(kanban_store::SystemClock)).ok()
    }

    /// Flush every interval, on a batch, and once more at the end. A board
    /// that cannot be opened yet is tried again at the next flush; errors
    /// are never reported: the wrapper's stderr is this very log.
    fn run(self, log: &std::sync::Mutex<CappedLog>, wakes: &std::sync::mpsc::Receiver<bool>) {
        let mut mirror = LogMirror::new(self.task_id.clone(), self.run_id);
        let mut board = None;
        loop {
            let last = match wakes.recv_timeout(LOG_MIRROR_INTERVAL) {
                Ok(finish) => finish,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => true,
            };
            if board.is_none() {
                board = self.open();
            }
            if let Some(handle) = &board {
                let store = handle.store();
                if !store.keeps_worker_logs() {
                    return;
                }
                let _ = mirror.flush(log, &*store);
            }
            if last {
                return;
            }
        }
    }
}

/// The running mirror.
struct MirrorHandle {
    wake: Option<std::sync::mpsc::Sender<bool>>,
    finished: std::sync::mpsc::Receiver<()>,
}

impl MirrorHandle {
    /// Flush what is left and wait for it, at most `LOG_MIRROR_FINAL_WAIT`.
    fn finish(mut self) {
        if let Some(w) = self.wake.take() {
            let _ = w.send(true);
        }
        let _ = self.finished.recv_timeout(LOG_MIRROR_FINAL_WAIT);
    }
}

/// How long the wrapper waits for the log's last copy into the board.
const LOG_MIRROR_FINAL_WAIT: Duration = Duration::from_secs(3);

/// The wrapper process (`kanban __worker-exec`): the session leader the
/// dispatcher records. It runs the worker as its child in the same process
/// group (so ending the group ends both), copies the worker's output into
/// the task's log under the per-run cap (`kanban_dispatch::log_cap`), waits,
/// writes the exit record, then ends the same way its worker did.
pub fn run_worker_exec(args: WorkerExecArgs) -> anyhow::Result<i32> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    // A handler, not SIG_IGN: exec resets handlers, so the worker still
    // dies of SIGTERM while the wrapper stays to record it.
    let catch = SigAction::new(
        SigHandler::Handler(ignore_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler does nothing.
        let _ = unsafe { sigaction(sig, &catch) };
    }
    let (program, rest) = args
        .argv
        .split_first()
        .ok_or_else(|| crate::error::usage("a worker command is required"))?;
    let cap = RunLogCap::from_env_value(std::env::var(ENV_LOG_MAX_RUN_BYTES).ok().as_deref());
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest).env_remove(ENV_LOG_MAX_RUN_BYTES);
    let pump = cap
        .and_then(capped_stdout)
        .and_then(|log| pipe_output(&mut cmd).map(|reader| (reader, log)));
    let spawned = cmd.spawn();
    // Our copies of the pipe's write end go: the worker holds the only ones.
    drop(cmd);
    let exit = match spawned {
        Ok(mut child) => {
            let drained =
                pump.map(|(reader, log)| start_pump(reader, log, MirrorTarget::from_env()));
            let exit = child
                .wait()
                .map(WorkerExit::from_status)
                .unwrap_or(WorkerExit::Signaled(0));
            if let Some((done, mirror)) = drained {
                let _ = done.recv_timeout(LOG_DRAIN_GRACE);
                if let Some(m) = mirror {
                    m.finish();
                }
            }
            exit
        }
        Err(e) => {
            drop(pump);
            eprintln!("kanban: cannot start worker `{program}`: {e}");
            WorkerExit::Exited(127)
        }
    };
    let me = std::process::id() as i32;
    let identity = WorkerIdentity {
        pid: me,
        start_time: ProcLiveness::new().stat(me).map(|s| s.start_time),
    };
    let _ = write_exit_record(&args.record_dir, &identity, exit);
    Ok(match exit {
        WorkerExit::Exited(code) => code,
        WorkerExit::Signaled(sig) => {
            if let Ok(s) = Signal::try_from(sig) {
                let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
                // SAFETY: restoring the default disposition.
                let _ = unsafe { sigaction(s, &dfl) };
                let _ = nix::sys::signal::raise(s);
            }
            128 + sig
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_task_is_never_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let paths = kanban_hermes::layout::Root::at(dir.path()).board_paths("default");
        let board =
            crate::context::open_board(&paths, Arc::new(kanban_store::SystemClock)).unwrap();
        let store = board.as_dispatch();
        let w = EndedWorker {
            pid: 999_999,
            claim_lock: Some(format!("{}:1", kanban_store::host_identity::hostname())),
        };
        assert_eq!(end_worker(store, None, &w, true), EndOutcome::OwnSession);
        let remote = EndedWorker {
            pid: 999_999,
            claim_lock: Some("elsewhere-host-x:1".into()),
        };
        assert_eq!(
            end_worker(store, None, &remote, false),
            EndOutcome::NotLocal
        );
    }
}
