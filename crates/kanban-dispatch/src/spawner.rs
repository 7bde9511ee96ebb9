//! Starting worker processes.
//!
//! A worker runs in its own session (so its whole process group can be
//! ended, and a terminal's Ctrl-C or hang-up never reaches it), with stdin
//! on `/dev/null` and stdout+stderr appended to the task's private log,
//! rotated at spawn. The spawner reaps its own children as soon as they
//! exit (one small waiter thread each) and remembers how they ended, so
//! crash detection can tell a protocol violation (exit 0), a rate limit
//! (exit 75), a crash and a kill apart.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kanban_core::defaults::{WORKER_LOG_BACKUP_COUNT, WORKER_LOG_ROTATE_BYTES};

use crate::env::EnvPlan;
use crate::error::{DispatchError, Result};
use crate::fork_server::{ForkServer, Note, ServerEvent, StartAnswer, StartError, WrapperStart};
use crate::liveness::{Liveness, ProcLiveness, StaticLiveness, WorkerIdentity};
use crate::reap::{ExitRegistry, WorkerExit};
use crate::session_spawn::{SessionSpawn, spawn_in_new_session, wait_child};

/// Stack of a waiter thread: it only blocks in `wait()`.
const WAITER_STACK_BYTES: usize = 64 * 1024;

/// Where a worker's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    /// `<logs_dir>/<task_id>.log`
    pub path: PathBuf,
    /// Rotate at spawn when the log is larger than this.
    pub rotate_bytes: u64,
    /// Rotated generations kept (`.log.1` ...); 0 deletes the old log.
    pub backup_count: u32,
}

impl LogSpec {
    /// `<logs_dir>/<task_id>.log` with the default rotation.
    pub fn for_task(logs_dir: &Path, task_id: &str) -> Self {
        LogSpec {
            path: logs_dir.join(format!("{task_id}.log")),
            rotate_bytes: WORKER_LOG_ROTATE_BYTES,
            backup_count: WORKER_LOG_BACKUP_COUNT,
        }
    }
}

/// Everything needed to start one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSpec {
    pub task_id: String,
    pub run_id: Option<i64>,
    /// Program and arguments; never passed through a shell.
    pub argv: Vec<String>,
    pub env: EnvPlan,
    /// Working directory; ignored unless it is an existing directory.
    pub cwd: Option<PathBuf>,
    pub log: LogSpec,
    /// Appended to the "executable not found" error (what to install or fix).
    pub not_found_hint: String,
}

/// A started worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnedWorker {
    pub pid: i32,
    /// Start time (clock ticks since boot); `None` only if the process was
    /// already gone before it could be read.
    pub start_time: Option<u64>,
}

impl SpawnedWorker {
    pub fn identity(&self) -> WorkerIdentity {
        WorkerIdentity {
            pid: self.pid,
            start_time: self.start_time,
        }
    }
}

/// Starts workers and reports how they ended.
pub trait Spawner: Send + Sync {
    fn spawn(&self, spec: &WorkerSpec) -> Result<SpawnedWorker>;

    /// Start several workers: one result per spec, in order. A spawner
    /// that can overlap the starts (the fork server) does; by default they
    /// start one after another.
    fn spawn_all(&self, specs: &[WorkerSpec]) -> Vec<Result<SpawnedWorker>> {
        specs.iter().map(|spec| self.spawn(spec)).collect()
    }

    /// Collect children that exited since the last call (reaping any the
    /// spawner has not reaped yet). Returns their pids and exits.
    fn reap(&self) -> Vec<(i32, WorkerExit)> {
        Vec::new()
    }

    /// How a recently exited child ended; `None` when unknown (not ours,
    /// still running, or reaped too long ago).
    fn exit_status(&self, _id: &WorkerIdentity) -> Option<WorkerExit> {
        None
    }

    /// When a recently exited child ended (as known to `exit_status`).
    fn exited_at(&self, _id: &WorkerIdentity) -> Option<Instant> {
        None
    }

    /// How the children that ended between `from` and `to` ended (to see
    /// workers killed together).
    fn exits_between(&self, _from: Instant, _to: Instant) -> Vec<WorkerExit> {
        Vec::new()
    }

    /// A child of this spawner that may have died but whose exit is not
    /// recorded yet (its waiter has not run): judging its death now would
    /// miss how it ended.
    fn exit_pending(&self, _id: &WorkerIdentity) -> bool {
        false
    }
}

/// One worker through [`Spawner::spawn_all`]: the `spawn` of a spawner
/// whose batch is its real path.
pub fn spawn_one<S: Spawner + ?Sized>(spawner: &S, spec: &WorkerSpec) -> Result<SpawnedWorker> {
    spawner
        .spawn_all(std::slice::from_ref(spec))
        .pop()
        .unwrap_or_else(|| Err(DispatchError::Command("no worker started".into())))
}

/// Callback run (on a waiter thread) when a worker exits: lets a gateway
/// wake its dispatcher at once instead of on the next tick.
pub type ExitHook = Arc<dyn Fn(i32, WorkerExit) + Send + Sync>;

#[derive(Default)]
struct Shared {
    exits: Mutex<ExitRegistry>,
    /// Exits not yet handed out by `reap()`.
    fresh: Mutex<Vec<(i32, WorkerExit)>>,
    /// Children without a waiter thread (thread creation failed): polled.
    unwatched: Mutex<HashMap<i32, Option<u64>>>,
    /// Children whose waiter thread has not recorded their exit yet.
    waiting: Mutex<std::collections::HashSet<i32>>,
    /// Wrappers started by the fork server whose exit it has not reported.
    served: Mutex<std::collections::HashSet<i32>>,
    hook: Mutex<Option<ExitHook>>,
}

impl Shared {
    fn record(&self, pid: i32, start_time: Option<u64>, exit: WorkerExit) {
        lock(&self.exits).record(pid, start_time, exit, Instant::now());
        lock(&self.fresh).push((pid, exit));
        let hook = lock(&self.hook).clone();
        if let Some(hook) = hook {
            hook(pid, exit);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The real spawner: operating-system processes.
#[derive(Clone, Default)]
pub struct ProcessSpawner {
    shared: Arc<Shared>,
    liveness: ProcLiveness,
    fork_server: Arc<Mutex<Option<Arc<ForkServer>>>>,
}

impl std::fmt::Debug for ProcessSpawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessSpawner").finish_non_exhaustive()
    }
}

impl ProcessSpawner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start wrappers through `server` from now on (see
    /// [`crate::fork_server`]); its exits are recorded like those of our
    /// own children.
    pub fn use_fork_server(&self, server: ForkServer) -> std::io::Result<()> {
        let shared = Arc::clone(&self.shared);
        server.listen(move |event| match event {
            ServerEvent::Note(Note::Started { pid, .. }) => {
                // Before the request sees its answer: the exit report
                // cannot come first.
                lock(&shared.served).insert(pid);
                lock(&shared.waiting).insert(pid);
            }
            ServerEvent::Note(Note::Exited {
                pid,
                start_time,
                status,
            }) => {
                if lock(&shared.served).remove(&pid) {
                    shared.record(pid, start_time, exit_of(status));
                    lock(&shared.waiting).remove(&pid);
                }
            }
            ServerEvent::Note(Note::Failed { .. }) => {}
            ServerEvent::Lost => {
                // Their exits will not be reported: judge them by their
                // exit records, as a restarted gateway would.
                let orphans = std::mem::take(&mut *lock(&shared.served));
                let mut waiting = lock(&shared.waiting);
                for pid in orphans {
                    waiting.remove(&pid);
                }
                drop(waiting);
                tracing::warn!("the worker fork server ended; wrappers start directly again");
            }
        })?;
        *lock(&self.fork_server) = Some(Arc::new(server));
        Ok(())
    }

    /// The fork server's pid, while one is in use.
    pub fn fork_server_pid(&self) -> Option<i32> {
        lock(&self.fork_server).as_ref().map(|s| s.server_pid())
    }

    /// Start through the fork server every spec it serves, all requests
    /// sent before the first answer is awaited. `None` for the specs it
    /// does not serve, and for requests that never reached it: those are
    /// started directly.
    fn spawn_served(
        &self,
        specs: &[WorkerSpec],
        logs: &[Result<File>],
    ) -> Vec<Option<Result<SpawnedWorker>>> {
        let mut out: Vec<Option<Result<SpawnedWorker>>> = specs.iter().map(|_| None).collect();
        let Some(server) = lock(&self.fork_server).clone() else {
            return out;
        };
        let served: Vec<(usize, &File)> = specs
            .iter()
            .zip(logs)
            .enumerate()
            .filter_map(|(i, (spec, log))| {
                let log = log.as_ref().ok()?;
                server.serves(&spec.argv).then_some((i, log))
            })
            .collect();
        let starts: Vec<WrapperStart<'_>> = served
            .iter()
            .map(|&(i, log)| WrapperStart {
                args: &specs[i].argv[server.prefix_len()..],
                env: &specs[i].env,
                cwd: specs[i].cwd.as_deref().filter(|c| c.is_dir()),
                log,
            })
            .collect();
        for ((i, _), answer) in served.iter().zip(server.start_wrappers(&starts)) {
            out[*i] = served_result(&specs[*i], answer);
        }
        out
    }

    /// Start `spec` as our own child, in a new session.
    fn spawn_direct(&self, spec: &WorkerSpec, log: &File) -> Result<SpawnedWorker> {
        let (program, args) = spec
            .argv
            .split_first()
            .ok_or_else(|| DispatchError::Command("empty worker command".into()))?;
        let pid = spawn_in_new_session(&SessionSpawn {
            program,
            args,
            env: &spec.env,
            cwd: spec.cwd.as_deref().filter(|c| c.is_dir()),
            output: log,
            pass_fd: None,
        })
        .map_err(|e| spawn_error(program, &spec.not_found_hint, e))?;
        // Read before the waiter can reap it: a zombie still has its stat.
        let start_time = self.liveness.stat(pid).map(|s| s.start_time);
        self.watch(pid, start_time);
        tracing::debug!(task = %spec.task_id, pid, "worker spawned");
        Ok(SpawnedWorker { pid, start_time })
    }

    /// Run `hook` whenever one of our workers exits.
    pub fn on_exit(&self, hook: ExitHook) {
        *lock(&self.shared.hook) = Some(hook);
    }

    fn watch(&self, pid: i32, start_time: Option<u64>) {
        let shared = Arc::clone(&self.shared);
        lock(&self.shared.waiting).insert(pid);
        let started = std::thread::Builder::new()
            .name(format!("kanban-wait-{pid}"))
            .stack_size(WAITER_STACK_BYTES)
            .spawn(move || {
                // Record the exit while the child is still a zombie, then
                // reap it: whoever sees the pid dead can classify it.
                if let Some(exit) = exit_without_reaping(pid) {
                    shared.record(pid, start_time, exit);
                    lock(&shared.waiting).remove(&pid);
                    let _ = wait_child(pid, false);
                    return;
                }
                if let Ok(Some(status)) = wait_child(pid, false) {
                    shared.record(pid, start_time, exit_of(status));
                }
                lock(&shared.waiting).remove(&pid);
            });
        if started.is_err() {
            lock(&self.shared.waiting).remove(&pid);
            lock(&self.shared.unwatched).insert(pid, start_time);
        }
    }
}

/// A raw `waitpid` status as a worker exit.
fn exit_of(status: i32) -> WorkerExit {
    WorkerExit::from_status(ExitStatus::from_raw(status))
}

/// What a fork-server answer means for one spec: `None` when the request
/// never reached the helper (start it directly then).
fn served_result(spec: &WorkerSpec, answer: StartAnswer) -> Option<Result<SpawnedWorker>> {
    match answer {
        Ok((pid, start_time)) => {
            tracing::debug!(task = %spec.task_id, pid, "worker spawned by the fork server");
            Some(Ok(SpawnedWorker { pid, start_time }))
        }
        Err(StartError::Unsent(e)) => {
            tracing::debug!(task = %spec.task_id, "fork server not used: {e}");
            None
        }
        Err(StartError::Refused(e)) => Some(Err(DispatchError::Spawn {
            program: spec.argv[0].clone(),
            source: e,
        })),
        // A wrapper may have started: starting another could run the
        // task twice. Fail this spawn; the task is claimed again later.
        Err(StartError::Lost) => Some(Err(DispatchError::Spawn {
            program: spec.argv[0].clone(),
            source: std::io::Error::other("the worker fork server did not answer"),
        })),
    }
}

impl Spawner for ProcessSpawner {
    fn spawn(&self, spec: &WorkerSpec) -> Result<SpawnedWorker> {
        spawn_one(self, spec)
    }

    fn spawn_all(&self, specs: &[WorkerSpec]) -> Vec<Result<SpawnedWorker>> {
        let logs: Vec<Result<File>> = specs
            .iter()
            .map(|spec| {
                if spec.argv.is_empty() {
                    return Err(DispatchError::Command("empty worker command".into()));
                }
                open_worker_log(&spec.log)
            })
            .collect();
        let served = self.spawn_served(specs, &logs);
        specs
            .iter()
            .zip(logs)
            .zip(served)
            .map(|((spec, log), served)| match served {
                Some(result) => result,
                None => self.spawn_direct(spec, &log?),
            })
            .collect()
    }

    fn reap(&self) -> Vec<(i32, WorkerExit)> {
        let polled: Vec<(i32, Option<u64>, WorkerExit)> = {
            let mut unwatched = lock(&self.shared.unwatched);
            let mut done = Vec::new();
            unwatched.retain(|pid, start| match wait_child(*pid, true) {
                Ok(Some(status)) => {
                    done.push((*pid, *start, exit_of(status)));
                    false
                }
                Ok(None) => true,
                Err(_) => false,
            });
            done
        };
        for (pid, start, exit) in polled {
            self.shared.record(pid, start, exit);
        }
        std::mem::take(&mut *lock(&self.shared.fresh))
    }

    fn exit_status(&self, id: &WorkerIdentity) -> Option<WorkerExit> {
        lock(&self.shared.exits).get(id.pid, id.start_time, Instant::now())
    }

    fn exit_pending(&self, id: &WorkerIdentity) -> bool {
        lock(&self.shared.waiting).contains(&id.pid)
    }

    fn exited_at(&self, id: &WorkerIdentity) -> Option<Instant> {
        lock(&self.shared.exits).exited_at(id.pid, id.start_time, Instant::now())
    }

    fn exits_between(&self, from: Instant, to: Instant) -> Vec<WorkerExit> {
        lock(&self.shared.exits).between(from, to)
    }
}

/// Wait for child `pid` to end and read how, leaving it a zombie (Linux
/// `waitid(WNOWAIT)`); `None` where that is not possible.
fn exit_without_reaping(pid: i32) -> Option<WorkerExit> {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    loop {
        match waitid(Id::Pid(nix::unistd::Pid::from_raw(pid)), flags) {
            Ok(WaitStatus::Exited(_, code)) => return Some(WorkerExit::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Some(WorkerExit::Signaled(sig as i32)),
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

fn spawn_error(program: &str, hint: &str, e: io::Error) -> DispatchError {
    match e.kind() {
        io::ErrorKind::NotFound => DispatchError::ExecutableNotFound {
            program: program.to_string(),
            hint: hint.to_string(),
        },
        io::ErrorKind::PermissionDenied => DispatchError::NotExecutable {
            program: program.to_string(),
            source: e,
        },
        _ => DispatchError::Spawn {
            program: program.to_string(),
            source: e,
        },
    }
}

fn log_error(path: &Path, e: io::Error) -> DispatchError {
    DispatchError::io(format!("worker log {}", path.display()), e)
}

/// `<log>.<generation>`, e.g. `t_1.log.1`.
pub fn rotated_log_path(log: &Path, generation: u32) -> PathBuf {
    let mut name = log.as_os_str().to_os_string();
    name.push(format!(".{generation}"));
    PathBuf::from(name)
}

/// Rotate `log` when it is larger than `max_bytes`: `.log` → `.log.1`,
/// older generations shift up, the oldest beyond `backup_count` is dropped.
/// Returns whether a rotation happened.
pub fn rotate_log(log: &Path, max_bytes: u64, backup_count: u32) -> io::Result<bool> {
    match std::fs::metadata(log) {
        Ok(m) if m.len() > max_bytes => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    if backup_count == 0 {
        std::fs::remove_file(log)?;
        return Ok(true);
    }
    let oldest = rotated_log_path(log, backup_count);
    match std::fs::remove_file(&oldest) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    for generation in (1..backup_count).rev() {
        let src = rotated_log_path(log, generation);
        if src.exists() {
            std::fs::rename(&src, rotated_log_path(log, generation + 1))?;
        }
    }
    std::fs::rename(log, rotated_log_path(log, 1))?;
    Ok(true)
}

/// Create the log directory (0700), rotate, and open the log for append
/// (0600: worker output holds prompts and tool results).
pub fn open_worker_log(spec: &LogSpec) -> Result<File> {
    if let Some(dir) = spec.path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                DispatchError::io(format!("cannot create log directory {}", dir.display()), e)
            })?;
    }
    rotate_log(&spec.path, spec.rotate_bytes, spec.backup_count)
        .map_err(|e| log_error(&spec.path, e))?;
    // A gateway moves a ready-made empty file into place (see `spare`);
    // the open below then finds it, or creates the log as before.
    crate::spare::place(&spec.path, crate::spare::SpareKind::File);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&spec.path)
        .map_err(|e| log_error(&spec.path, e))?;
    let meta = file.metadata().map_err(|e| log_error(&spec.path, e))?;
    if meta.permissions().mode() & 0o777 != 0o600 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| log_error(&spec.path, e))?;
    }
    Ok(file)
}

/// A spawner that starts nothing: hands out fake pids, records the specs
/// it was given, and can be told to fail or how a "worker" exited. For
/// tests and benchmarks of the dispatch pass.
#[derive(Debug, Default)]
pub struct StubSpawner {
    next_pid: AtomicI32,
    spawned: Mutex<Vec<WorkerSpec>>,
    fail_with: Mutex<Option<String>>,
    exits: Mutex<HashMap<i32, WorkerExit>>,
    fresh: Mutex<Vec<(i32, WorkerExit)>>,
    liveness: Option<Arc<StaticLiveness>>,
}

/// First fake pid: above Linux's default pid_max so it can never name a
/// real process.
pub const STUB_FIRST_PID: i32 = 5_000_000;

impl StubSpawner {
    pub fn new() -> Self {
        StubSpawner {
            next_pid: AtomicI32::new(STUB_FIRST_PID),
            ..Default::default()
        }
    }

    /// Register every fake worker as a live process of `liveness`.
    pub fn with_liveness(liveness: Arc<StaticLiveness>) -> Self {
        StubSpawner {
            liveness: Some(liveness),
            ..Self::new()
        }
    }

    /// Every spec given to `spawn`, in order.
    pub fn spawned(&self) -> Vec<WorkerSpec> {
        lock(&self.spawned).clone()
    }

    /// Make every later `spawn` fail with this message (`None` to stop).
    pub fn fail_with(&self, message: Option<&str>) {
        *lock(&self.fail_with) = message.map(str::to_string);
    }

    /// Pretend worker `pid` exited this way (it stops being alive in the
    /// attached liveness).
    pub fn exit(&self, pid: i32, exit: WorkerExit) {
        lock(&self.exits).insert(pid, exit);
        lock(&self.fresh).push((pid, exit));
        if let Some(l) = &self.liveness {
            l.remove(pid);
        }
    }
}

impl Spawner for StubSpawner {
    fn spawn(&self, spec: &WorkerSpec) -> Result<SpawnedWorker> {
        if let Some(msg) = lock(&self.fail_with).clone() {
            return Err(DispatchError::Command(msg));
        }
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        lock(&self.spawned).push(spec.clone());
        let start_time = pid as u64;
        if let Some(l) = &self.liveness {
            l.add(pid, start_time);
        }
        Ok(SpawnedWorker {
            pid,
            start_time: Some(start_time),
        })
    }

    fn reap(&self) -> Vec<(i32, WorkerExit)> {
        std::mem::take(&mut *lock(&self.fresh))
    }

    fn exit_status(&self, id: &WorkerIdentity) -> Option<WorkerExit> {
        lock(&self.exits).get(&id.pid).copied()
    }
}

#[cfg(test)]
#[path = "spawner_tests.rs"]
mod tests;
