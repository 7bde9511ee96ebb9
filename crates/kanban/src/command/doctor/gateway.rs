//! Is a gateway running for the root, is it dispatching, and is it ours
//! or a Hermes (Python) one? Both take an exclusive `flock` on
//! `<root>/kanban/.dispatcher.lock` for their lifetime (reference §6);
//! only ours writes `gateway.pid` and `gateway.json` next to it.

use std::time::{Duration, Instant};

use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::Root;
use kanban_server::lock::{GatewayRecord, current_record, dispatcher_lock_held, read_pid};

use super::Finding;
use super::files::{LockHolder, lock_holder};

/// How long to wait for a gateway that holds the lock but has not written
/// its pid file or `gateway.json` yet (it is starting), as `gateway
/// status` does.
const STARTING_SETTLE: Duration = Duration::from_secs(2);
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// What the root's gateway files and lock say.
#[derive(Debug, Clone)]
pub struct GatewayState {
    /// Some process holds `.dispatcher.lock`.
    pub held: bool,
    /// Our pid file (only read while the lock is held).
    pub pid: Option<u32>,
    /// Our `gateway.json`, when it names the lock holder.
    pub record: Option<GatewayRecord>,
    /// The lock's holder as the kernel reports it.
    pub holder: Option<LockHolder>,
}

impl GatewayState {
    pub fn read(root: &Root) -> GatewayState {
        let held = dispatcher_lock_held(root);
        let deadline = Instant::now() + STARTING_SETTLE;
        let mut pid = read_pid(root).filter(|_| held);
        let mut record = current_record(root);
        // Ours writes its pid file right after taking the lock and its
        // record before it serves: give a starting gateway that long.
        while held
            && (pid.is_none() || record.is_none())
            && Instant::now() < deadline
            && dispatcher_lock_held(root)
        {
            std::thread::sleep(SETTLE_POLL);
            pid = read_pid(root);
            record = current_record(root);
        }
        let mut state = GatewayState {
            held,
            pid,
            record,
            holder: held.then(|| lock_holder(&root.gateway_lock())).flatten(),
        };
        if state.foreign() {
            // Files that name another process than the holder are stale.
            state.record = None;
        }
        state
    }

    /// No gateway of ours holds the lock (so its pid files are stale).
    pub fn ours_gone(&self) -> bool {
        !self.held || self.foreign()
    }

    /// A lock holder that wrote no pid file of ours: the Hermes gateway.
    /// (A pid file of ours that names another process than the kernel's
    /// lock holder was left by a killed gateway.)
    pub fn foreign(&self) -> bool {
        self.held
            && (self.pid.is_none()
                || self
                    .holder
                    .as_ref()
                    .is_some_and(|h| Some(h.pid) != self.pid))
    }

    /// Someone dispatches this root's boards from a gateway right now.
    pub fn dispatching(&self) -> bool {
        self.record.as_ref().is_some_and(|r| r.dispatch) || self.foreign()
    }

    pub fn findings(&self, config: Option<&KanbanConfig>) -> Vec<Finding> {
        if let Some(r) = &self.record {
            if r.dispatch {
                return vec![Finding::ok(format!(
                    "running (pid {}) at {}, dispatcher on",
                    r.pid, r.url
                ))];
            }
            let why = match config {
                Some(c) if c.dispatch_disabled_by_env => {
                    "HERMES_KANBAN_DISPATCH_IN_GATEWAY turned it off"
                }
                Some(c) if !c.dispatch_in_gateway => "kanban.dispatch_in_gateway is false",
                _ => "its dispatcher is off",
            };
            return vec![Finding::warn(
                format!(
                    "running (pid {}) at {} but not dispatching: {why}; ready tasks wait",
                    r.pid, r.url
                ),
                "set kanban.dispatch_in_gateway: true (and unset \
                 HERMES_KANBAN_DISPATCH_IN_GATEWAY), then `kanban gateway stop` and `kanban \
                 gateway start`; or run `kanban dispatch` from cron",
            )];
        }
        if self.foreign() {
            let who = self
                .holder
                .as_ref()
                .map(|h| format!(" (pid {})", h.pid))
                .unwrap_or_default();
            return vec![Finding::warn(
                format!(
                    "another program holds the gateway lock{who}: a Hermes gateway \
                     dispatches this root, not kanban's"
                ),
                "see hermes_gateway below",
            )];
        }
        if self.held {
            let pid = self.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            return vec![Finding::warn(
                format!("a gateway{pid} holds the lock but is not serving yet"),
                "wait a few seconds and run `kanban doctor` again; if it stays so, see \
                 `kanban gateway status` and <root>/kanban/logs/gateway.log",
            )];
        }
        vec![Finding::warn(
            "no gateway is running: ready tasks are only picked up by `kanban dispatch`",
            "`kanban gateway start` (or install the systemd unit in contrib/); for a cron \
             setup, run `kanban dispatch` every minute",
        )]
    }

    pub fn hermes_findings(&self, root: &Root) -> Vec<Finding> {
        if !self.foreign() {
            let detail = if self.held {
                "the gateway lock is kanban's own".to_string()
            } else {
                format!("nothing holds {}", root.gateway_lock().display())
            };
            return vec![Finding::ok(detail)];
        }
        let (who, stop) = match &self.holder {
            Some(h) => {
                let cmd = if h.command.is_empty() {
                    String::new()
                } else {
                    format!(": {}", h.command)
                };
                (format!("pid {}{cmd}", h.pid), format!("kill {}", h.pid))
            }
            None => (
                "its pid is not visible here".into(),
                "its own tooling".into(),
            ),
        };
        vec![Finding::warn(
            format!(
                "a Hermes (Python) gateway holds {} ({who}); it dispatches this root, and \
                 `kanban gateway start` refuses to start while it runs",
                root.gateway_lock().display()
            ),
            format!(
                "run one gateway per root: stop the Hermes gateway ({stop}) before `kanban \
                 gateway start`, or leave dispatching to it"
            ),
        )]
    }
}
