//! Ending the worker process group of a task that was completed, blocked,
//! reclaimed or archived from outside (SPEC §4): SIGTERM now, SIGKILL after
//! a grace period, without making the CLI wait for it.

use std::time::Duration;

use kanban_store::EndedWorker;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{ForkResult, Pid, fork, gethostname, getpgrp};

/// How long a worker gets to exit cleanly after SIGTERM.
pub const WORKER_TERM_GRACE: Duration = Duration::from_secs(5);

/// This host's name as the claim-lock prefix (`host:pid`) spells it.
pub fn hostname() -> String {
    gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The claim lock this process would take (`host:pid`).
pub fn claimer_id() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

/// What `end_worker` did, for messages and tests.
#[derive(Debug, PartialEq, Eq)]
pub enum EndOutcome {
    /// SIGTERM sent; a detached reaper SIGKILLs after the grace period.
    Terminated,
    /// The claim belongs to another host: its dispatcher must end it.
    NotLocal,
    /// The caller runs inside that worker (a worker finishing its own task).
    IsSelf,
    /// Nothing to signal (already gone, or pid unusable).
    Gone,
}

/// End a detached worker's process group if it runs on this host.
pub fn end_worker(worker: &EndedWorker, own_task: bool) -> EndOutcome {
    let Ok(raw) = i32::try_from(worker.pid) else {
        return EndOutcome::Gone;
    };
    if raw <= 1 {
        return EndOutcome::Gone;
    }
    let host_prefix = format!("{}:", hostname());
    match &worker.claim_lock {
        Some(lock) if !lock.starts_with(&host_prefix) => return EndOutcome::NotLocal,
        _ => {}
    }
    let pid = Pid::from_raw(raw);
    // A worker calling `kanban complete` on its own task is in that group;
    // signalling it would kill this process before it reports back.
    if own_task || getpgrp() == pid || Pid::this() == pid {
        return EndOutcome::IsSelf;
    }
    let group = killpg(pid, Signal::SIGTERM).is_ok();
    if !group && kill(pid, Signal::SIGTERM).is_err() {
        return EndOutcome::Gone;
    }
    spawn_reaper(pid, group);
    EndOutcome::Terminated
}

/// Fork a detached child that SIGKILLs the group after the grace period
/// if it is still alive, so the CLI returns at once.
fn spawn_reaper(pid: Pid, group: bool) {
    // SAFETY: the CLI is single-threaded here; the child only calls
    // async-signal-safe functions (setsid, open/dup2, nanosleep, kill, _exit).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = nix::unistd::setsid();
            detach_stdio();
            let step = Duration::from_millis(100);
            let mut waited = Duration::ZERO;
            while waited < WORKER_TERM_GRACE {
                if !alive(pid, group) {
                    // SAFETY: _exit skips destructors and atexit handlers
                    // that belong to the parent.
                    unsafe { libc::_exit(0) };
                }
                std::thread::sleep(step);
                waited += step;
            }
            if group {
                let _ = killpg(pid, Signal::SIGKILL);
            } else {
                let _ = kill(pid, Signal::SIGKILL);
            }
            // SAFETY: as above.
            unsafe { libc::_exit(0) };
        }
        Ok(ForkResult::Parent { .. }) => {}
        Err(_) => {
            // No reaper: SIGTERM was still delivered.
        }
    }
}

fn alive(pid: Pid, group: bool) -> bool {
    if group {
        killpg(pid, None).is_ok()
    } else {
        kill(pid, None).is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn remote_claims_are_left_alone() {
        let w = EndedWorker {
            pid: 999_999,
            claim_lock: Some("elsewhere-host-x:1".into()),
        };
        assert_eq!(end_worker(&w, false), EndOutcome::NotLocal);
    }

    #[test]
    fn terminates_a_local_process_group() {
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let w = EndedWorker {
            pid: child.id() as i64,
            claim_lock: Some(format!("{}:1", hostname())),
        };
        assert_eq!(end_worker(&w, false), EndOutcome::Terminated);
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert_eq!(end_worker(&w, true), EndOutcome::IsSelf);
    }
}
