//! What `kanban top` shows, read from the store: a plain value the
//! renderer draws, built by reads only (no terminal, no files), so tests
//! build one from a seeded board and check it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use kanban_core::defaults::EVENT_BATCH_LIMIT;
use kanban_core::event::EventKind;
use kanban_core::{Status, Task};
use kanban_hermes::config::KanbanConfig;
use kanban_store::{EventQuery, Store, TaskQuery};

/// Events listed under "Recent events".
pub const RECENT_EVENTS: usize = 12;
/// How far back (in events) the first read of completions starts: the
/// throughput of a board that wrote more events than this within the
/// window starts part-way through it, and no read scans the whole log.
pub const COMPLETION_SCAN_EVENTS: i64 = 20_000;
/// Seconds per sparkline bar.
const BUCKET_SECONDS: i64 = 60;

/// Statuses shown in the counts line, in board order.
pub const COUNTED: [Status; 8] = [
    Status::Triage,
    Status::Todo,
    Status::Scheduled,
    Status::Ready,
    Status::Running,
    Status::Blocked,
    Status::Review,
    Status::Done,
];

/// One running worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningWorker {
    pub task_id: String,
    pub title: String,
    pub profile: Option<String>,
    pub pid: Option<i64>,
    /// Start of the current attempt (not of the task's first one).
    pub started_at: i64,
    pub last_heartbeat_at: Option<i64>,
}

/// One profile's running tasks against its ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileUsage {
    pub name: String,
    pub running: i64,
    pub ready: i64,
    /// `profile_limits.<name>`, else `max_in_progress_per_profile`.
    pub limit: Option<u32>,
}

/// One line of "Recent events".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    pub at: i64,
    pub task_id: String,
    pub kind: String,
    pub assignee: Option<String>,
    pub title: String,
}

/// Everything one frame shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopSnapshot {
    pub board: String,
    /// Where the board lives (file or redacted URL).
    pub location: String,
    /// The gateway as its lock and state file describe it.
    pub gateway: String,
    pub now: i64,
    /// Count per status of [`COUNTED`], in that order.
    pub counts: Vec<(Status, i64)>,
    /// Oldest first.
    pub running: Vec<RunningWorker>,
    /// `max_in_progress`: the board-wide running ceiling.
    pub running_limit: Option<u32>,
    pub profiles: Vec<ProfileUsage>,
    /// Newest first.
    pub events: Vec<EventLine>,
    /// Completions per minute, oldest first; the last bar is this minute.
    pub throughput: Vec<u64>,
    /// Why the last refresh failed, while older data is shown.
    pub notice: Option<String>,
}

/// What the snapshot needs besides the store.
pub struct Inputs<'a> {
    pub board: &'a str,
    pub location: String,
    pub gateway: String,
    pub config: Option<&'a KanbanConfig>,
    pub now: i64,
    /// Minutes of throughput.
    pub minutes: u32,
}

/// Completion times seen so far, read incrementally: each refresh reads
/// only the events after the last one it saw.
#[derive(Debug, Default)]
pub struct CompletionLog {
    cursor: Option<i64>,
    times: VecDeque<i64>,
}

impl CompletionLog {
    fn refresh(&mut self, store: &dyn Store, since: i64) -> kanban_store::Result<()> {
        let mut after = match self.cursor {
            Some(c) => c,
            None => (store.latest_event_id()? - COMPLETION_SCAN_EVENTS).max(0),
        };
        loop {
            let batch = store.events(&EventQuery {
                after_id: Some(after),
                kinds: Some(vec![EventKind::Completed.as_str().to_string()]),
                limit: Some(EVENT_BATCH_LIMIT),
                ..Default::default()
            })?;
            for e in &batch {
                after = after.max(e.id);
                self.times.push_back(e.created_at);
            }
            if batch.len() < EVENT_BATCH_LIMIT {
                break;
            }
        }
        self.cursor = Some(after);
        self.times.retain(|t| *t >= since);
        Ok(())
    }

    /// Completions per bucket over `minutes` buckets ending at `now`.
    fn buckets(&self, now: i64, minutes: u32) -> Vec<u64> {
        let n = minutes.max(1) as usize;
        let mut out = vec![0u64; n];
        for t in &self.times {
            let age = (now - t).max(0) / BUCKET_SECONDS;
            if let Ok(age) = usize::try_from(age)
                && age < n
            {
                out[n - 1 - age] += 1;
            }
        }
        out
    }
}

impl TopSnapshot {
    /// Read the board once (several reads: not one snapshot of it).
    pub fn gather(
        store: &dyn Store,
        inputs: &Inputs<'_>,
        completions: &mut CompletionLog,
    ) -> kanban_store::Result<TopSnapshot> {
        let stats = store.stats()?;
        let counts = COUNTED
            .iter()
            .map(|s| (*s, stats.by_status.get(s.as_str()).copied().unwrap_or(0)))
            .collect();
        let running = running_workers(store)?;
        let profiles = profile_usage(&stats.by_assignee, inputs.config);
        let events = recent_events(store)?;
        let window = i64::from(inputs.minutes.max(1)) * BUCKET_SECONDS;
        completions.refresh(store, inputs.now - window)?;
        Ok(TopSnapshot {
            board: inputs.board.to_string(),
            location: inputs.location.clone(),
            gateway: inputs.gateway.clone(),
            now: inputs.now,
            counts,
            running,
            running_limit: inputs.config.and_then(|c| c.max_in_progress),
            profiles,
            events,
            throughput: completions.buckets(inputs.now, inputs.minutes),
            notice: None,
        })
    }

    /// Tasks running now.
    pub fn running_count(&self) -> i64 {
        self.counts
            .iter()
            .find(|(s, _)| *s == Status::Running)
            .map_or(0, |(_, n)| *n)
    }
}

fn running_workers(store: &dyn Store) -> kanban_store::Result<Vec<RunningWorker>> {
    let tasks = store.list_tasks(&TaskQuery {
        status: Some(Status::Running),
        ..Default::default()
    })?;
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        let run = match t.current_run_id {
            Some(id) => store.get_run(id)?,
            None => None,
        };
        out.push(worker_of(t, run));
    }
    out.sort_by(|a, b| (a.started_at, &a.task_id).cmp(&(b.started_at, &b.task_id)));
    Ok(out)
}

fn worker_of(t: Task, run: Option<kanban_core::Run>) -> RunningWorker {
    let started_at = run
        .as_ref()
        .map(|r| r.started_at)
        .or(t.started_at)
        .unwrap_or(t.created_at);
    let last_heartbeat_at = run
        .as_ref()
        .and_then(|r| r.last_heartbeat_at)
        .or(t.last_heartbeat_at);
    RunningWorker {
        pid: t
            .worker_pid
            .or_else(|| run.as_ref().and_then(|r| r.worker_pid)),
        profile: t.assignee,
        task_id: t.id,
        title: t.title,
        started_at,
        last_heartbeat_at,
    }
}

/// Configured profiles and limits, and every assignee with running or
/// ready tasks, sorted by name.
fn profile_usage(
    by_assignee: &BTreeMap<String, BTreeMap<String, i64>>,
    config: Option<&KanbanConfig>,
) -> Vec<ProfileUsage> {
    let count = |who: &str, status: Status| {
        by_assignee
            .get(who)
            .and_then(|c| c.get(status.as_str()))
            .copied()
            .unwrap_or(0)
    };
    let mut names: BTreeSet<String> = by_assignee
        .keys()
        .filter(|who| count(who, Status::Running) + count(who, Status::Ready) > 0)
        .cloned()
        .collect();
    if let Some(c) = config {
        names.extend(c.profiles.keys().cloned());
        names.extend(c.profile_limits.keys().cloned());
    }
    names
        .into_iter()
        .map(|name| ProfileUsage {
            running: count(&name, Status::Running),
            ready: count(&name, Status::Ready),
            limit: config.and_then(|c| c.profile_limit(&name)),
            name,
        })
        .collect()
}

fn recent_events(store: &dyn Store) -> kanban_store::Result<Vec<EventLine>> {
    let events = store.events(&EventQuery {
        last: Some(RECENT_EVENTS),
        ..Default::default()
    })?;
    let mut tasks: HashMap<String, Option<(Option<String>, String)>> = HashMap::new();
    let mut out = Vec::with_capacity(events.len());
    for e in events.into_iter().rev() {
        if !tasks.contains_key(&e.task_id) {
            let t = store.get_task(&e.task_id)?.map(|t| (t.assignee, t.title));
            tasks.insert(e.task_id.clone(), t);
        }
        let (assignee, title) = tasks[&e.task_id].clone().unwrap_or_default();
        out.push(EventLine {
            at: e.created_at,
            task_id: e.task_id,
            kind: e.kind,
            assignee,
            title,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_fall_into_minute_buckets_ending_now() {
        let log = CompletionLog {
            cursor: Some(0),
            times: [1_000, 1_059, 941, 880, 100].into_iter().collect(),
        };
        // now = 1_059: [1_000, 1_059] this minute, 941 one minute ago,
        // 880 two minutes ago; 100 is outside a 3-minute window.
        assert_eq!(log.buckets(1_059, 3), vec![1, 1, 2]);
        assert_eq!(log.buckets(1_059, 1), vec![2]);
    }

    #[test]
    fn profiles_list_configured_and_busy_lanes_with_their_limits() {
        let cfg = KanbanConfig::from_yaml_str(
            "kanban:\n  max_in_progress_per_profile: 3\n  profile_limits: {slow: 1}\n  \
             profiles:\n    idle:\n      command: [x]\n",
            std::path::Path::new("c.yaml"),
        )
        .unwrap();
        let mut by: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        by.entry("slow".into())
            .or_default()
            .insert("running".into(), 1);
        by.entry("busy".into())
            .or_default()
            .insert("ready".into(), 4);
        by.entry("finished".into())
            .or_default()
            .insert("done".into(), 9);
        let usage = profile_usage(&by, Some(&cfg));
        let rows: Vec<(&str, i64, i64, Option<u32>)> = usage
            .iter()
            .map(|u| (u.name.as_str(), u.running, u.ready, u.limit))
            .collect();
        assert_eq!(
            rows,
            [
                ("busy", 0, 4, Some(3)),
                ("idle", 0, 0, Some(3)),
                ("slow", 1, 0, Some(1)),
            ]
        );
    }
}
