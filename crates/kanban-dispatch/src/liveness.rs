//! Is a worker still running, and is it still *our* worker?
//!
//! A pid alone is not an identity: after a worker dies the kernel may hand
//! its pid to an unrelated process, and a dispatcher that only asks "is pid
//! N alive?" then extends a ghost claim forever (reference §10.1, #43468).
//! A [`WorkerIdentity`] pairs the pid with the process start time (field 22
//! of `/proc/<pid>/stat`, clock ticks since boot), which no later process
//! with the same pid can share within one boot. The boot id
//! (`/proc/sys/kernel/random/boot_id`) tells identities of another boot (or
//! another machine) apart, so locality no longer depends on the hostname.
//!
//! Several "hosts" on one kernel (containers, `unshare --pid` namespaces)
//! share the boot id, the host name and their pid numbers, so a worker is
//! recorded with an *instance id*: `<host id or machine id>/<boot id>`
//! ([`Liveness::instance_id`]). Records of earlier versions hold a plain
//! boot id and are still compared the old way, so an upgrade does not
//! misjudge the workers it finds running.
//!
//! Zombies (exited, not yet reaped) count as dead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A worker process as the dispatcher knows it: pid plus start time.
/// `start_time` is `None` for workers we did not spawn ourselves (e.g. the
/// Python dispatcher's, which only stores `worker_pid`); those fall back to
/// a pid-only check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkerIdentity {
    pub pid: i32,
    pub start_time: Option<u64>,
}

impl WorkerIdentity {
    pub fn new(pid: i32, start_time: u64) -> Self {
        WorkerIdentity {
            pid,
            start_time: Some(start_time),
        }
    }

    /// An identity known only by pid (legacy rows).
    pub fn pid_only(pid: i32) -> Self {
        WorkerIdentity {
            pid,
            start_time: None,
        }
    }

    /// Text form `<pid>@<start_time>` (or `<pid>` without a start time),
    /// for logs and event payloads.
    pub fn encode(&self) -> String {
        match self.start_time {
            Some(t) => format!("{}@{t}", self.pid),
            None => self.pid.to_string(),
        }
    }

    /// Inverse of [`WorkerIdentity::encode`].
    pub fn decode(s: &str) -> Option<Self> {
        let (pid, start) = match s.split_once('@') {
            Some((p, t)) => (p, Some(t.parse().ok()?)),
            None => (s, None),
        };
        let pid: i32 = pid.parse().ok()?;
        (pid > 0).then_some(WorkerIdentity {
            pid,
            start_time: start,
        })
    }
}

/// The fields of `/proc/<pid>/stat` the dispatcher uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// One-letter state (`R`, `S`, `D`, `Z`, `X`, ...).
    pub state: char,
    pub ppid: i32,
    /// Process group id.
    pub pgrp: i32,
    /// Session id.
    pub session: i32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

impl ProcStat {
    /// Running in any sense; zombies (`Z`) and dead (`X`/`x`) are not.
    pub fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parse one `/proc/<pid>/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from its *last* `)`.
pub fn parse_proc_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); field 22 (starttime) is f[19].
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// What became of a worker identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Our worker is running.
    Alive,
    /// Exited, waiting to be reaped: dead for every decision.
    Zombie,
    /// No such process.
    Gone,
    /// The pid now belongs to another process (different start time).
    Replaced,
}

impl WorkerState {
    pub fn is_alive(self) -> bool {
        self == WorkerState::Alive
    }
}

/// Process facts the dispatcher needs, behind a trait so the dispatch pass
/// can be driven in tests without real processes.
pub trait Liveness: Send + Sync {
    /// `/proc/<pid>/stat` facts, `None` when there is no such process.
    fn stat(&self, pid: i32) -> Option<ProcStat>;
    /// Live (non-zombie) processes whose process group is `pgid`.
    fn group_members(&self, pgid: i32) -> Vec<i32>;
    /// The host part of `host:pid` claim locks and of worker records: the
    /// host id (`KANBAN_HOST_ID`) when set, else the hostname as
    /// `socket.gethostname()` reports it.
    fn hostname(&self) -> String;
    /// Identifier of the current boot; `None` when the platform has none.
    fn boot_id(&self) -> Option<String>;

    /// This instance (host and boot) as worker records store it in their
    /// `boot_id` field: `<host id or machine id>/<boot id>`, or the plain
    /// boot id where no host or machine id is known.
    fn instance_id(&self) -> Option<String> {
        self.boot_id()
    }

    /// Whether a recorded `boot_id` field names this instance; `None` when
    /// either side is unknown. A record of an earlier version (a plain boot
    /// id, no [`INSTANCE_SEPARATOR`]) is compared with the boot id, as it
    /// was then.
    fn same_instance(&self, recorded: Option<&str>) -> Option<bool> {
        let recorded = recorded?;
        let ours = if recorded.contains(INSTANCE_SEPARATOR) {
            self.instance_id()?
        } else {
            self.boot_id()?
        };
        Some(ours == recorded)
    }

    /// The pid exists and is not a zombie.
    fn pid_alive(&self, pid: i32) -> bool {
        pid > 0 && self.stat(pid).is_some_and(|s| s.is_live())
    }

    /// Start time of a live process.
    fn start_time(&self, pid: i32) -> Option<u64> {
        self.stat(pid).filter(|s| s.is_live()).map(|s| s.start_time)
    }

    /// The identity of the process now running as `pid`.
    fn identify(&self, pid: i32) -> Option<WorkerIdentity> {
        self.start_time(pid).map(|t| WorkerIdentity::new(pid, t))
    }

    /// Classify an identity. Without a recorded start time only the pid
    /// can be checked.
    fn worker_state(&self, id: &WorkerIdentity) -> WorkerState {
        if id.pid <= 0 {
            return WorkerState::Gone;
        }
        match self.stat(id.pid) {
            None => WorkerState::Gone,
            Some(s) if id.start_time.is_some_and(|t| t != s.start_time) => WorkerState::Replaced,
            Some(s) if !s.is_live() => WorkerState::Zombie,
            Some(_) => WorkerState::Alive,
        }
    }

    /// A live process of this machine started for attempt `run_id` of
    /// `task_id` (its environment carries both `HERMES_KANBAN_TASK` and
    /// `HERMES_KANBAN_RUN_ID`): the worker of a dispatcher that died before
    /// recording it. The oldest match is the session leader. `None` where
    /// processes cannot be inspected.
    fn find_attempt_worker(&self, _task_id: &str, _run_id: i64) -> Option<WorkerIdentity> {
        None
    }

    /// `worker_state(id) == Alive`.
    fn worker_alive(&self, id: &WorkerIdentity) -> bool {
        self.worker_state(id).is_alive()
    }

    /// `host:pid` of this process: the claim lock the reference writes.
    fn claimer_id(&self) -> String {
        format!("{}:{}", self.hostname(), std::process::id())
    }

    /// A claim lock written on this host (`<hostname>:` prefix).
    fn lock_is_host_local(&self, claim_lock: &str) -> bool {
        claim_lock
            .strip_prefix(&self.hostname())
            .is_some_and(|r| r.starts_with(':'))
    }
}

/// Separates the host part from the boot id in an instance id (boot ids
/// are UUIDs, host ids hold no whitespace or `:`, machine ids are hex).
pub const INSTANCE_SEPARATOR: char = '/';

/// Where the machine id is read, in order (systemd's, then D-Bus's).
pub const MACHINE_ID_PATHS: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/// This machine's id (`/etc/machine-id`, else `/var/lib/dbus/machine-id`).
pub fn machine_id() -> Option<String> {
    MACHINE_ID_PATHS.iter().find_map(|p| {
        let raw = std::fs::read_to_string(p).ok()?;
        let id = raw.trim();
        (!id.is_empty()).then(|| id.to_string())
    })
}

/// The real thing: reads `/proc`.
#[derive(Debug, Clone)]
pub struct ProcLiveness {
    proc_root: PathBuf,
    /// `KANBAN_HOST_ID`, when set.
    host_id: Option<String>,
    /// The host part of the instance id: the host id, else the machine id.
    instance_host: Option<String>,
}

impl Default for ProcLiveness {
    /// This process's host: `KANBAN_HOST_ID` when set (binaries refuse an
    /// invalid one at start), else the host name and machine id.
    fn default() -> Self {
        ProcLiveness::with_host_id(kanban_hermes::host::process_host_id())
    }
}

impl ProcLiveness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Name this host `host_id` (`None`: host name and machine id).
    pub fn with_host_id(host_id: Option<String>) -> Self {
        ProcLiveness {
            proc_root: PathBuf::from("/proc"),
            instance_host: host_id.clone().or_else(machine_id),
            host_id,
        }
    }
}

impl Liveness for ProcLiveness {
    fn stat(&self, pid: i32) -> Option<ProcStat> {
        if pid <= 0 {
            return None;
        }
        let raw =
            std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("stat")).ok()?;
        parse_proc_stat(&raw)
    }

    fn group_members(&self, pgid: i32) -> Vec<i32> {
        if pgid <= 0 {
            return Vec::new();
        }
        let Ok(dir) = std::fs::read_dir(&self.proc_root) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| {
                self.stat(pid)
                    .is_some_and(|s| s.pgrp == pgid && s.is_live())
            })
            .collect()
    }

    fn find_attempt_worker(&self, task_id: &str, run_id: i64) -> Option<WorkerIdentity> {
        let task_entry = format!("HERMES_KANBAN_TASK={task_id}");
        let run_entry = format!("HERMES_KANBAN_RUN_ID={run_id}");
        let dir = std::fs::read_dir(&self.proc_root).ok()?;
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| {
                // Unreadable environments (other users' processes) are not ours.
                let Ok(env) = std::fs::read(self.proc_root.join(pid.to_string()).join("environ"))
                else {
                    return false;
                };
                let mut has_task = false;
                let mut has_run = false;
                for entry in env.split(|b| *b == 0) {
                    has_task |= entry == task_entry.as_bytes();
                    has_run |= entry == run_entry.as_bytes();
                }
                has_task && has_run
            })
            .filter_map(|pid| self.identify(pid))
            .min_by_key(|id| id.start_time)
    }

    fn hostname(&self) -> String {
        kanban_store::host_identity::local_host(self.host_id.as_deref())
    }

    fn boot_id(&self) -> Option<String> {
        let raw = std::fs::read_to_string(self.proc_root.join("sys/kernel/random/boot_id")).ok()?;
        let id = raw.trim();
        (!id.is_empty()).then(|| id.to_string())
    }

    fn instance_id(&self) -> Option<String> {
        let boot = self.boot_id()?;
        Some(match &self.instance_host {
            Some(host) => format!("{host}{INSTANCE_SEPARATOR}{boot}"),
            None => boot,
        })
    }
}

/// A hand-set process table for tests and benchmarks.
#[derive(Debug, Default)]
pub struct StaticLiveness {
    procs: Mutex<HashMap<i32, ProcStat>>,
    host: String,
    boot: Option<String>,
    /// When set, instance ids are `<host>/<boot>` as [`ProcLiveness`] writes them.
    instance_ids: bool,
}

impl StaticLiveness {
    pub fn new(host: &str) -> Self {
        StaticLiveness {
            procs: Mutex::default(),
            host: host.to_string(),
            boot: Some("boot-1".into()),
            instance_ids: false,
        }
    }

    /// A host `host` on a kernel shared with other hosts (boot id
    /// `boot`), recording `<host>/<boot>` instance ids.
    pub fn sharing_kernel(host: &str, boot: &str) -> Self {
        StaticLiveness {
            boot: Some(boot.into()),
            instance_ids: true,
            ..StaticLiveness::new(host)
        }
    }

    /// Add (or replace) a running process that leads its own group.
    pub fn add(&self, pid: i32, start_time: u64) {
        let stat = ProcStat {
            state: 'S',
            ppid: 1,
            pgrp: pid,
            session: pid,
            start_time,
        };
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid, stat);
    }

    /// Turn a process into a zombie.
    pub fn zombify(&self, pid: i32) {
        if let Some(s) = self
            .procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&pid)
        {
            s.state = 'Z';
        }
    }

    pub fn remove(&self, pid: i32) {
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pid);
    }
}

impl Liveness for StaticLiveness {
    fn stat(&self, pid: i32) -> Option<ProcStat> {
        self.procs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&pid)
            .copied()
    }
    fn group_members(&self, pgid: i32) -> Vec<i32> {
        let procs = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        procs
            .iter()
            .filter(|(_, s)| s.pgrp == pgid && s.is_live())
            .map(|(p, _)| *p)
            .collect()
    }
    fn hostname(&self) -> String {
        self.host.clone()
    }
    fn boot_id(&self) -> Option<String> {
        self.boot.clone()
    }
    fn instance_id(&self) -> Option<String> {
        let boot = self.boot.clone()?;
        Some(if self.instance_ids {
            format!("{}{INSTANCE_SEPARATOR}{boot}", self.host)
        } else {
            boot
        })
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn parses_stat_with_hostile_command_names() {
        let line =
            "4242 (a) b (c) d) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        let s = parse_proc_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!((s.ppid, s.pgrp, s.session), (1, 4242, 4242));
        assert_eq!(s.start_time, 987654);
        assert!(parse_proc_stat("12 (x) S 1").is_none());
        assert!(parse_proc_stat("garbage").is_none());
    }

    #[test]
    fn identity_round_trips_through_text() {
        let id = WorkerIdentity::new(123, 456);
        assert_eq!(id.encode(), "123@456");
        assert_eq!(WorkerIdentity::decode("123@456"), Some(id));
        assert_eq!(
            WorkerIdentity::decode("77"),
            Some(WorkerIdentity::pid_only(77))
        );
        assert_eq!(WorkerIdentity::decode("0"), None);
        assert_eq!(WorkerIdentity::decode("x@1"), None);
        assert_eq!(WorkerIdentity::decode("5@y"), None);
    }

    #[test]
    fn own_process_is_alive_with_a_stable_start_time() {
        let l = ProcLiveness::new();
        let me = std::process::id() as i32;
        assert!(l.pid_alive(me));
        let id = l.identify(me).unwrap();
        assert_eq!(l.identify(me), Some(id));
        assert_eq!(l.worker_state(&id), WorkerState::Alive);
        assert!(l.boot_id().is_some());
        assert!(!l.hostname().is_empty());
    }

    #[test]
    fn a_reused_pid_is_never_our_worker() {
        let l = ProcLiveness::new();
        let me = std::process::id() as i32;
        let real = l.identify(me).unwrap();
        let ghost = WorkerIdentity::new(me, real.start_time.unwrap() + 1);
        assert_eq!(l.worker_state(&ghost), WorkerState::Replaced);
        assert!(!l.worker_alive(&ghost));
        // A legacy pid-only identity can only be checked by pid.
        assert!(l.worker_alive(&WorkerIdentity::pid_only(me)));
    }

    #[test]
    fn zombie_counts_as_dead_then_gone_after_reaping() {
        let l = ProcLiveness::new();
        let mut child = Command::new("sh")
            .args(["-c", "exit 3"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        // Not reaped yet: the process table entry stays, in state Z.
        while l.stat(pid).is_some_and(|s| s.is_live()) {
            assert!(Instant::now() < deadline, "child never exited");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(l.stat(pid).unwrap().state, 'Z');
        assert!(!l.pid_alive(pid));
        assert_eq!(
            l.worker_state(&WorkerIdentity::pid_only(pid)),
            WorkerState::Zombie
        );
        assert_eq!(child.wait().unwrap().code(), Some(3));
        assert!(!l.pid_alive(pid));
        assert_eq!(
            l.worker_state(&WorkerIdentity::pid_only(pid)),
            WorkerState::Gone
        );
    }

    #[test]
    fn group_members_lists_the_live_members_of_a_process_group() {
        use std::os::unix::process::CommandExt;
        let l = ProcLiveness::new();
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while l.group_members(pgid).len() < 3 {
            assert!(
                Instant::now() < deadline,
                "group never filled: {:?}",
                l.group_members(pgid)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !l.group_members(pgid).is_empty() {
            assert!(Instant::now() < deadline, "group survived SIGKILL");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn host_local_locks_match_the_hostname_exactly() {
        let l = StaticLiveness::new("box");
        assert!(l.lock_is_host_local("box:123"));
        assert!(!l.lock_is_host_local("boxer:123"));
        assert!(!l.lock_is_host_local("other:123"));
        assert!(l.claimer_id().starts_with("box:"));
    }

    #[test]
    fn instance_ids_tell_hosts_on_one_kernel_apart_and_keep_old_records() {
        let a = ProcLiveness::with_host_id(Some("node-a".into()));
        let b = ProcLiveness::with_host_id(Some("node-b".into()));
        assert_eq!(a.hostname(), "node-a");
        assert!(a.claimer_id().starts_with("node-a:"));
        let boot = a.boot_id().unwrap();
        let ia = a.instance_id().unwrap();
        assert_eq!(ia, format!("node-a/{boot}"));
        assert_eq!(a.same_instance(Some(&ia)), Some(true));
        assert_eq!(b.same_instance(Some(&ia)), Some(false));
        // A record of an earlier version: a plain boot id, compared as then.
        assert_eq!(b.same_instance(Some(&boot)), Some(true));
        assert_eq!(b.same_instance(Some("another-boot")), Some(false));
        assert_eq!(b.same_instance(None), None);
        // Without a host id the machine id names the host.
        if let Some(m) = machine_id() {
            let plain = ProcLiveness::with_host_id(None);
            assert_eq!(plain.instance_id(), Some(format!("{m}/{boot}")));
            assert_eq!(plain.hostname(), kanban_store::host_identity::hostname());
        }
    }

    #[test]
    fn static_liveness_models_zombies_and_reuse() {
        let l = StaticLiveness::new("h");
        l.add(10, 100);
        let id = WorkerIdentity::new(10, 100);
        assert!(l.worker_alive(&id));
        l.add(10, 200);
        assert_eq!(l.worker_state(&id), WorkerState::Replaced);
        l.add(10, 100);
        l.zombify(10);
        assert_eq!(l.worker_state(&id), WorkerState::Zombie);
        l.remove(10);
        assert_eq!(l.worker_state(&id), WorkerState::Gone);
    }

    #[test]
    fn finds_the_worker_of_an_attempt_by_its_environment() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("HERMES_KANBAN_TASK", "t_0rphan01")
            .env("HERMES_KANBAN_RUN_ID", "4242")
            .spawn()
            .unwrap();
        let l = ProcLiveness::new();
        let found = l.find_attempt_worker("t_0rphan01", 4242);
        let other_run = l.find_attempt_worker("t_0rphan01", 4243);
        child.kill().unwrap();
        child.wait().unwrap();
        let found = found.expect("the sleeping worker is found");
        assert_eq!(found.pid, child.id() as i32);
        assert!(found.start_time.is_some());
        assert_eq!(other_run, None);
    }
}
