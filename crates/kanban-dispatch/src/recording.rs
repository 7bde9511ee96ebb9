//! Exit records: how a worker ended, readable by a dispatcher process that
//! did not spawn it (the next cron `kanban dispatch`, a gateway restarted
//! after `kill -9`). Without them such a dispatcher only sees "not alive"
//! and must count exit 0 (protocol violation), 75 (rate limited) and a
//! crash alike.
//!
//! The worker runs under a wrapper program given by the caller (the
//! `kanban` binary's hidden `__worker-exec` verb). The wrapper is the
//! session leader the dispatcher records; it runs the worker as its child,
//! waits, and writes `<logs>/.exits/<pid>-<start>.exit` with
//! [`write_exit_record`] before ending the way its worker did. The
//! spawner calls it as `PREFIX... --record-dir <dir> -- WORKER_ARGV...`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::liveness::WorkerIdentity;
use crate::reap::WorkerExit;
use crate::spawner::{ProcessSpawner, SpawnedWorker, Spawner, WorkerSpec, spawn_one};

/// Directory (under the board's logs) of the exit records.
pub const EXIT_RECORD_DIR: &str = ".exits";
/// Records older than this are pruned when a worker is spawned.
pub const EXIT_RECORD_KEEP: Duration = Duration::from_secs(24 * 3600);
/// A spawner looks for old records at most this often (the directory holds
/// a record per worker of the last day: reading it at every spawn made a
/// busy board's spawns slower the more it had run).
pub const EXIT_RECORD_PRUNE_INTERVAL: Duration = Duration::from_secs(600);
/// The wrapper option naming the record directory.
pub const RECORD_DIR_FLAG: &str = "--record-dir";

/// The exit-record directory of a board whose worker logs are in `logs_dir`.
pub fn exit_record_dir(logs_dir: &Path) -> PathBuf {
    logs_dir.join(EXIT_RECORD_DIR)
}

/// `<dir>/<pid>-<start>.exit`; `None` without a start time (a pid alone
/// could name a recycled process).
pub fn record_path(dir: &Path, id: &WorkerIdentity) -> Option<PathBuf> {
    Some(dir.join(format!("{}-{}.exit", id.pid, id.start_time?)))
}

/// The record's text: `exited <code>` or `signaled <signal>`.
pub fn encode_exit(exit: WorkerExit) -> String {
    match exit {
        WorkerExit::Exited(c) => format!("exited {c}\n"),
        WorkerExit::Signaled(s) => format!("signaled {s}\n"),
    }
}

/// Parse [`encode_exit`]'s text.
pub fn decode_exit(text: &str) -> Option<WorkerExit> {
    let (kind, n) = text.trim().split_once(' ')?;
    let n = n.parse().ok()?;
    match kind {
        "exited" => Some(WorkerExit::Exited(n)),
        "signaled" => Some(WorkerExit::Signaled(n)),
        _ => None,
    }
}

/// Record how the wrapper `id` (its worker) ended. Written whole to a
/// temporary name and renamed, so a reader never sees half a record.
pub fn write_exit_record(dir: &Path, id: &WorkerIdentity, exit: WorkerExit) -> std::io::Result<()> {
    let Some(path) = record_path(dir, id) else {
        return Ok(());
    };
    let tmp = path.with_extension("exit.tmp");
    // Private like every file under the root (SPEC §4).
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(encode_exit(exit).as_bytes())?;
    drop(file);
    std::fs::rename(&tmp, &path)
}

/// How the wrapper `id` ended, if it left a record.
pub fn read_exit_record(dir: &Path, id: &WorkerIdentity) -> Option<WorkerExit> {
    let text = std::fs::read_to_string(record_path(dir, id)?).ok()?;
    decode_exit(&text)
}

/// A spawner whose workers run under the exit-recording wrapper. Exits of
/// its own children come from the inner spawner; others from the records.
pub struct RecordingSpawner {
    inner: Arc<dyn Spawner>,
    wrapper: Vec<String>,
    dir: PathBuf,
    /// When this spawner last pruned old records.
    pruned_at: std::sync::Mutex<Option<std::time::Instant>>,
}

impl RecordingSpawner {
    /// `wrapper` is the argv prefix that runs the wrapper (e.g. the
    /// `kanban` executable and `__worker-exec`); records go to
    /// `<logs_dir>/.exits`. Spawns through its own [`ProcessSpawner`].
    pub fn new(wrapper: Vec<String>, logs_dir: &Path) -> RecordingSpawner {
        Self::with_inner(Arc::new(ProcessSpawner::new()), wrapper, logs_dir)
    }

    /// Spawn through `inner` (one spawner shared by several boards, so one
    /// place reaps every child).
    pub fn with_inner(
        inner: Arc<dyn Spawner>,
        wrapper: Vec<String>,
        logs_dir: &Path,
    ) -> RecordingSpawner {
        RecordingSpawner {
            inner,
            wrapper,
            dir: exit_record_dir(logs_dir),
            pruned_at: std::sync::Mutex::new(None),
        }
    }

    /// Where the records go.
    pub fn record_dir(&self) -> &Path {
        &self.dir
    }

    /// The worker's program exists (else the inner spawner reports the
    /// missing executable as a spawn failure, as without the wrapper).
    fn program_found(spec: &WorkerSpec) -> bool {
        let Some(program) = spec.argv.first() else {
            return false;
        };
        if program.contains('/') {
            return Path::new(program).is_file();
        }
        let path = spec
            .env
            .get("PATH")
            .map(str::to_string)
            .or_else(|| std::env::var("PATH").ok());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        crate::command::which_no_cwd(program, path.as_deref(), home.as_deref()).is_some()
    }

    /// Remove records older than [`EXIT_RECORD_KEEP`], at most once per
    /// [`EXIT_RECORD_PRUNE_INTERVAL`].
    fn prune(&self) {
        {
            let mut last = self.pruned_at.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < EXIT_RECORD_PRUNE_INTERVAL) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > EXIT_RECORD_KEEP);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn wrapped(&self, spec: &WorkerSpec) -> WorkerSpec {
        let mut wrapped = spec.clone();
        wrapped.argv = self
            .wrapper
            .iter()
            .cloned()
            .chain([
                RECORD_DIR_FLAG.to_string(),
                self.dir.display().to_string(),
                "--".to_string(),
            ])
            .chain(spec.argv.iter().cloned())
            .collect();
        wrapped
    }
}

impl Spawner for RecordingSpawner {
    fn spawn(&self, spec: &WorkerSpec) -> Result<SpawnedWorker> {
        spawn_one(self, spec)
    }

    fn spawn_all(&self, specs: &[WorkerSpec]) -> Vec<Result<SpawnedWorker>> {
        let wrap = !self.wrapper.is_empty()
            && kanban_hermes::layout::create_private_dir(&self.dir).is_ok();
        if wrap {
            self.prune();
        }
        let specs: Vec<WorkerSpec> = specs
            .iter()
            .map(|spec| {
                if wrap && Self::program_found(spec) {
                    self.wrapped(spec)
                } else {
                    spec.clone()
                }
            })
            .collect();
        self.inner.spawn_all(&specs)
    }

    fn reap(&self) -> Vec<(i32, WorkerExit)> {
        self.inner.reap()
    }

    fn exit_status(&self, id: &WorkerIdentity) -> Option<WorkerExit> {
        self.inner
            .exit_status(id)
            .or_else(|| read_exit_record(&self.dir, id))
    }

    fn exited_at(&self, id: &WorkerIdentity) -> Option<std::time::Instant> {
        self.inner.exited_at(id)
    }

    fn exits_between(&self, from: std::time::Instant, to: std::time::Instant) -> Vec<WorkerExit> {
        self.inner.exits_between(from, to)
    }

    /// A worker whose exit the inner waiter has not recorded yet is judged
    /// later, wrapped or not (a mass kill must not read as crashes).
    fn exit_pending(&self, id: &WorkerIdentity) -> bool {
        self.inner.exit_pending(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spawner::StubSpawner;

    #[test]
    fn records_round_trip() {
        for exit in [WorkerExit::Exited(75), WorkerExit::Signaled(9)] {
            assert_eq!(decode_exit(&encode_exit(exit)), Some(exit));
        }
        assert_eq!(decode_exit("garbage"), None);
        let dir = tempfile::tempdir().unwrap();
        let id = WorkerIdentity {
            pid: 42,
            start_time: Some(7),
        };
        write_exit_record(dir.path(), &id, WorkerExit::Exited(75)).unwrap();
        assert_eq!(
            read_exit_record(dir.path(), &id),
            Some(WorkerExit::Exited(75))
        );
        let no_start = WorkerIdentity {
            pid: 42,
            start_time: None,
        };
        assert_eq!(read_exit_record(dir.path(), &no_start), None);
    }

    #[test]
    fn old_records_are_pruned_on_the_first_spawn_then_at_most_every_interval() {
        let logs = tempfile::tempdir().unwrap();
        let stub = Arc::new(StubSpawner::new());
        let rec = RecordingSpawner::with_inner(
            stub,
            vec!["/bin/wrapper".into(), "__worker-exec".into()],
            logs.path(),
        );
        let old_record = |pid: i32| {
            let id = WorkerIdentity {
                pid,
                start_time: Some(1),
            };
            write_exit_record(rec.record_dir(), &id, WorkerExit::Exited(0)).unwrap();
            let path = record_path(rec.record_dir(), &id).unwrap();
            let long_ago =
                std::time::SystemTime::now() - EXIT_RECORD_KEEP - Duration::from_secs(60);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
            path
        };
        let spec = WorkerSpec {
            task_id: "t_1".into(),
            run_id: None,
            argv: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            env: Default::default(),
            cwd: None,
            log: crate::spawner::LogSpec::for_task(logs.path(), "t_1"),
            not_found_hint: String::new(),
        };
        std::fs::create_dir_all(rec.record_dir()).unwrap();
        let first = old_record(1);
        rec.spawn(&spec).unwrap();
        assert!(!first.exists(), "the first spawn prunes a day-old record");
        let second = old_record(2);
        rec.spawn(&spec).unwrap();
        assert!(
            second.exists(),
            "the next spawn within the interval does not read the directory again"
        );
    }

    #[test]
    fn wraps_found_programs_and_reads_records() {
        let logs = tempfile::tempdir().unwrap();
        let stub = Arc::new(StubSpawner::new());
        let rec = RecordingSpawner::with_inner(
            stub.clone(),
            vec!["/bin/wrapper".into(), "__worker-exec".into()],
            logs.path(),
        );
        let spec = |program: &str| WorkerSpec {
            task_id: "t_1".into(),
            run_id: None,
            argv: vec![program.into(), "-c".into(), "true".into()],
            env: Default::default(),
            cwd: None,
            log: crate::spawner::LogSpec::for_task(logs.path(), "t_1"),
            not_found_hint: String::new(),
        };
        let w = rec.spawn(&spec("/bin/sh")).unwrap();
        rec.spawn(&spec("/no/such/program")).unwrap();
        let argvs: Vec<Vec<String>> = stub.spawned().into_iter().map(|s| s.argv).collect();
        let dir = logs.path().join(EXIT_RECORD_DIR).display().to_string();
        assert_eq!(
            argvs[0],
            [
                "/bin/wrapper",
                "__worker-exec",
                "--record-dir",
                &dir,
                "--",
                "/bin/sh",
                "-c",
                "true"
            ]
        );
        assert_eq!(argvs[1][0], "/no/such/program");
        // The stub knows nothing of its "worker"'s exit: the record answers.
        let id = w.identity();
        write_exit_record(rec.record_dir(), &id, WorkerExit::Exited(75)).unwrap();
        assert_eq!(rec.exit_status(&id), Some(WorkerExit::Exited(75)));
    }
}
