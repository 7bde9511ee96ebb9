//! Processes seen from the outside (`/proc`, read independently of the
//! dispatcher's own liveness code) and polling with a bound.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Generous bound for anything that waits on real processes (debug
/// builds on two busy cores).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Pause between two checks of [`wait_for`] / [`wait_until`].
pub const POLL: Duration = Duration::from_millis(10);
/// Pause between two checks of [`expect_until`], whose conditions often
/// run the binary.
const SLOW_POLL: Duration = Duration::from_millis(50);

/// Fields of `/proc/<pid>/stat` after the parenthesised command name
/// (`state`, `ppid`, `pgrp`, ...); `None` when there is no such process.
fn stat_fields(pid: i64) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The pid names a live process (a zombie is dead for our purposes).
pub fn pid_alive(pid: impl Into<i64>) -> bool {
    let pid = pid.into();
    pid > 0
        && stat_fields(pid)
            .and_then(|f| f.first().cloned())
            .is_some_and(|state| state != "Z" && state != "X")
}

/// Start time of a process (clock ticks since boot, `/proc/<pid>/stat`
/// field 22), the identity a worker record keeps besides its pid.
pub fn start_time(pid: impl Into<i64>) -> Option<u64> {
    stat_fields(pid.into())?.get(19)?.parse().ok()
}

/// Live (non-zombie) processes whose process group is `pgid`.
pub fn group_members(pgid: impl Into<i64>) -> Vec<i64> {
    let pgid = pgid.into();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i64>().ok())
        .filter(|pid| {
            stat_fields(*pid).is_some_and(|f| {
                f.get(2).and_then(|g| g.parse::<i64>().ok()) == Some(pgid)
                    && f.first().is_some_and(|s| s != "Z")
            })
        })
        .collect()
}

/// Live child processes of `pid` (every thread's children).
pub fn children_of(pid: impl Into<i64>) -> Vec<i64> {
    let pid = pid.into();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<i64>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|p| pid_alive(*p))
        .collect()
}

/// The gateway's fork server among its children (`kanban
/// __worker-forkserver`), if it runs one.
pub fn fork_server_of(gateway: impl Into<i64>) -> Option<i64> {
    children_of(gateway).into_iter().find(|p| {
        std::fs::read(format!("/proc/{p}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("__worker-forkserver"))
    })
}

/// The worker wrappers a gateway started: its children, with its fork
/// server replaced by the children that one forked.
pub fn gateway_workers(gateway: impl Into<i64>) -> Vec<i64> {
    let gateway = gateway.into();
    let server = fork_server_of(gateway);
    let mut workers: Vec<i64> = children_of(gateway)
        .into_iter()
        .filter(|p| Some(*p) != server)
        .collect();
    if let Some(server) = server {
        workers.extend(children_of(server));
    }
    workers
}

/// Poll `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    poll(timeout, POLL, f)
}

fn poll<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Poll `f` until it is true or `timeout` passes; whether it became true.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || f().then_some(())).is_some()
}

/// Poll `f` until it is true; panics naming `what` after [`SETTLE_TIMEOUT`].
pub fn expect_until(what: &str, mut f: impl FnMut() -> bool) {
    let done = poll(SETTLE_TIMEOUT, SLOW_POLL, || f().then_some(()));
    assert!(done.is_some(), "timed out waiting for {what}");
}

/// Run `cmd` to completion, killing it after `timeout` (a command that
/// should refuse at once must not hang the suite).
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if !wait_until(timeout, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
    }
    child.wait_with_output().expect("wait")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_with_a_start_time_and_a_group() {
        let me = i64::from(std::process::id());
        assert!(pid_alive(me));
        assert!(start_time(me).is_some());
        let pgid = i64::from(nix::unistd::getpgrp().as_raw());
        assert!(group_members(pgid).contains(&me));
        assert!(!pid_alive(0));
        assert!(wait_until(Duration::ZERO, || true));
        assert_eq!(wait_for(Duration::ZERO, || None::<()>), None);
    }
}
