//! Ending a worker a transition detached from its task (complete, block,
//! reclaim, archive through the API), without blocking the request.

use std::time::Duration;

use kanban_store::EndedWorker;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Grace between SIGTERM and SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(5);
const TERMINATE_POLL: Duration = Duration::from_millis(100);

fn this_host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// SIGTERM the worker's process group (then SIGKILL after a grace period,
/// in the background) when its claim says it runs on this host. A worker
/// elsewhere, or a pid that is not a usable process id, is left alone.
pub fn end_worker(worker: &EndedWorker) {
    let local = match &worker.claim_lock {
        Some(lock) => lock
            .rsplit_once(':')
            .is_some_and(|(host, _)| host == this_host()),
        None => true,
    };
    let Ok(raw) = i32::try_from(worker.pid) else {
        return;
    };
    if !local || raw <= 1 || raw == std::process::id() as i32 {
        return;
    }
    let pid = Pid::from_raw(raw);
    let group = killpg(pid, Signal::SIGTERM).is_ok();
    if !group && kill(pid, Signal::SIGTERM).is_err() {
        return;
    }
    std::thread::spawn(move || {
        let alive = || {
            if group {
                killpg(pid, None).is_ok()
            } else {
                kill(pid, None).is_ok()
            }
        };
        let mut waited = Duration::ZERO;
        while waited < TERMINATE_GRACE {
            if !alive() {
                return;
            }
            std::thread::sleep(TERMINATE_POLL);
            waited += TERMINATE_POLL;
        }
        let _ = if group {
            killpg(pid, Signal::SIGKILL)
        } else {
            kill(pid, Signal::SIGKILL)
        };
    });
}

/// End the worker of a transition, if it detached one.
pub fn end_if_any(worker: Option<&EndedWorker>) {
    if let Some(w) = worker {
        end_worker(w);
    }
}
