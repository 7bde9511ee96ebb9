//! The demo's trickle: every `--demo-rate` a [`Feeder`] adds work to the
//! demo board through the store (a task, a small graph, an idea in triage
//! or a nightly job), plays the human who answers blocked questions, wakes
//! scheduled jobs, triages ideas, and keeps the board light by archiving
//! old done tasks and deleting the oldest archived ones. What it adds and
//! which twist each worker plays come from a seeded generator, so a seed
//! replays the same demo.
//!
//! Ages are counted in ticks, not seconds: a fast rate (tests) moves
//! everything along as a slow one does, only sooner.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use kanban_core::{Status, Task};
use kanban_store::{AssignTask, NewTask, Store, StoreError, TaskOrder, TaskQuery};

use super::opening::round_of;
use super::plan::{MAX_WORK_SECS, MIN_WORK_SECS, Plan, Twist};
use super::{CODER, DEMO_AUTHOR, DemoError, FLAKY_API, RESEARCHER, REVIEWER, role_of};

/// `--demo-rate` when not given.
pub const DEFAULT_DEMO_RATE: &str = "3s";
/// Bounds of `--demo-rate`: faster would only load the machine.
pub const MIN_DEMO_RATE: Duration = Duration::from_millis(100);
pub const MAX_DEMO_RATE: Duration = Duration::from_secs(3600);

/// Who answers blocked demo questions (comment author).
const STAND_IN_HUMAN: &str = "human (demo stand-in)";
/// Demo tasks not yet done beyond which the trickle pauses.
const MAX_OPEN_TASKS: usize = 30;
/// Done demo tasks kept on the board; older ones are archived.
const KEEP_DONE: usize = 60;
/// Archived demo tasks kept; older ones (but opening rounds) are deleted.
const KEEP_ARCHIVED: usize = 300;
/// Ticks a question waits for its (stand-in) human (45 s at the default
/// rate: long enough to be seen, and to answer it by hand).
const ANSWER_AFTER_TICKS: u64 = 15;
/// Ticks a scheduled job waits for its window.
const WAKE_AFTER_TICKS: u64 = 12;
/// Ticks an idea waits in triage.
const TRIAGE_AFTER_TICKS: u64 = 12;
/// Archived tasks are swept every this many ticks (a heavier query).
const SWEEP_EVERY_TICKS: u64 = 20;

/// How often the feeder adds work; `None` = never (`0` / `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoRate(Option<Duration>);

impl DemoRate {
    pub const OFF: DemoRate = DemoRate(None);

    pub fn every(self) -> Option<Duration> {
        self.0
    }
}

impl Default for DemoRate {
    fn default() -> Self {
        DEFAULT_DEMO_RATE.parse().expect("the default rate parses")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a demo rate: use a duration such as 500ms, 3s or 1m (from 100ms to 1h), \
     or 0 / off for no new tasks"
)]
pub struct RateError(String);

impl FromStr for DemoRate {
    type Err = RateError;

    /// `500ms`, `2s`, `1.5s`, `1m`, `1h`, a bare number of seconds, `0`, `off`.
    fn from_str(s: &str) -> Result<DemoRate, RateError> {
        let bad = || RateError(s.to_string());
        let v = s.trim().to_ascii_lowercase();
        if v == "off" {
            return Ok(DemoRate::OFF);
        }
        let split = v
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(v.len());
        let (num, unit) = v.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let ms_per = match unit.trim() {
            "ms" => 1.0,
            "" | "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return Err(bad()),
        };
        if n == 0.0 {
            return Ok(DemoRate::OFF);
        }
        let every = Duration::from_secs_f64(n * ms_per / 1_000.0);
        if !(MIN_DEMO_RATE..=MAX_DEMO_RATE).contains(&every) {
            return Err(bad());
        }
        Ok(DemoRate(Some(every)))
    }
}

impl fmt::Display for DemoRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("off"),
            Some(d) if d.subsec_millis() != 0 => write!(f, "{}ms", d.as_millis()),
            Some(d) => write!(f, "{}s", d.as_secs()),
        }
    }
}

/// SplitMix64: small, fast and seedable; the demo needs no better.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` small: the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// True with probability `pct`%.
    fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }

    fn secs(&mut self) -> u64 {
        MIN_WORK_SECS + self.next() % (MAX_WORK_SECS - MIN_WORK_SECS + 1)
    }
}

const SUBJECTS: [&str; 12] = [
    "login page",
    "billing export",
    "search index",
    "onboarding email",
    "CSV import",
    "dark mode",
    "audit log",
    "mobile menu",
    "webhook retries",
    "invoice PDF",
    "password reset",
    "usage dashboard",
];
// Title templates: `{s}` is the subject.
const RESEARCH: [&str; 3] = [
    "Research options for the {s}",
    "Summarise feedback on the {s}",
    "Compare libraries for the {s}",
];
const CODE: [&str; 3] = [
    "Implement the {s}",
    "Fix a bug in the {s}",
    "Refactor the {s}",
];
const REVIEW: [&str; 2] = ["Review the {s} change", "Test the {s} end to end"];
const PARTNER: [&str; 2] = [
    "Sync the {s} with the partner API",
    "Fetch partner usage data for the {s}",
];
const IDEAS: [&str; 3] = [
    "Idea: a keyboard shortcut for the {s}?",
    "Idea: per-team settings for the {s}?",
    "Idea: translate the {s}?",
];
const JOBS: [&str; 2] = [
    "Nightly: rebuild the {s} report",
    "Weekly: clean up old {s} data",
];

fn title(template: &str, subject: &str) -> String {
    template.replace("{s}", subject)
}

/// Ticks tunables; [`Tuning::default`] is what the demo uses.
#[derive(Debug, Clone)]
pub struct Tuning {
    pub max_open: usize,
    pub keep_done: usize,
    pub keep_archived: usize,
    pub answer_after: u64,
    pub wake_after: u64,
    pub triage_after: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            max_open: MAX_OPEN_TASKS,
            keep_done: KEEP_DONE,
            keep_archived: KEEP_ARCHIVED,
            answer_after: ANSWER_AFTER_TICKS,
            wake_after: WAKE_AFTER_TICKS,
            triage_after: TRIAGE_AFTER_TICKS,
        }
    }
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// Titles of the tasks created, in order.
    pub created: Vec<String>,
    pub answered: usize,
    pub woken: usize,
    pub triaged: usize,
    /// Cards the stand-in reviewer sent back from Review.
    pub reviewed: usize,
    pub archived: usize,
    pub deleted: usize,
}

/// The demo's trickle on one board (see the module doc).
pub struct Feeder {
    store: Arc<dyn Store>,
    rng: Rng,
    tuning: Tuning,
    tick: u64,
    /// Task id → the status it was last seen in, and since which tick.
    seen: HashMap<String, (Status, u64)>,
}

impl Feeder {
    pub fn new(store: Arc<dyn Store>, seed: u64) -> Feeder {
        Feeder {
            store,
            rng: Rng(seed),
            tuning: Tuning::default(),
            tick: 0,
            seen: HashMap::new(),
        }
    }

    pub fn with_tuning(mut self, tuning: Tuning) -> Feeder {
        self.tuning = tuning;
        self
    }

    /// Move waiting tasks along, bound the board, add work.
    pub fn tick(&mut self) -> Result<TickReport, DemoError> {
        self.tick += 1;
        let mut report = TickReport::default();
        let tasks = self.demo_tasks(&TaskQuery::default())?;
        self.track(&tasks);
        for t in &tasks {
            let age = self.tick - self.seen[&t.id].1;
            let (moved, count) = match t.status {
                Status::Blocked if age >= self.tuning.answer_after => {
                    (self.answer(t), &mut report.answered)
                }
                Status::Scheduled if age >= self.tuning.wake_after => {
                    let woken = self
                        .store
                        .unblock_task(&t.id, Some("its window opened (demo)"));
                    (woken.map(drop).map_err(DemoError::from), &mut report.woken)
                }
                Status::Review if age >= self.tuning.answer_after => {
                    (self.review(t), &mut report.reviewed)
                }
                Status::Triage if age >= self.tuning.triage_after => {
                    (self.triage(t), &mut report.triaged)
                }
                _ => continue,
            };
            if unless_overtaken(moved)? {
                *count += 1;
            }
        }
        report.archived = self.archive_old_done(&tasks)?;
        if self.tick.is_multiple_of(SWEEP_EVERY_TICKS) {
            report.deleted = self.delete_old_archived()?;
        }
        let open = tasks.iter().filter(|t| t.status != Status::Done).count();
        if open < self.tuning.max_open {
            report.created = self.add_work()?;
        }
        Ok(report)
    }

    /// The demo's own tasks (a user's tasks on the demo board are theirs).
    fn demo_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>, DemoError> {
        let mut tasks = self.store.list_tasks(query)?;
        tasks.retain(|t| t.created_by.as_deref() == Some(DEMO_AUTHOR));
        Ok(tasks)
    }

    fn track(&mut self, tasks: &[Task]) {
        let tick = self.tick;
        let mut seen = HashMap::with_capacity(tasks.len());
        for t in tasks {
            let since = match self.seen.get(&t.id) {
                Some(&(status, since)) if status == t.status => since,
                _ => tick,
            };
            seen.insert(t.id.clone(), (t.status, since));
        }
        self.seen = seen;
    }

    /// The stand-in human answers a question (or lets a failed task try
    /// again) and unblocks it.
    fn answer(&self, t: &Task) -> Result<(), DemoError> {
        let (comment, reason) = if t.block_kind.as_deref() == Some("needs_input") {
            (
                "Go with the first option. (The demo answers its own questions after a while; \
                 on a real board a person answers here, then unblocks the task.)",
                "answered",
            )
        } else {
            ("Try again, please.", "retry after a look")
        };
        self.store.add_comment(&t.id, STAND_IN_HUMAN, comment)?;
        self.store.unblock_task(&t.id, Some(reason))?;
        Ok(())
    }

    /// The stand-in reviewer sends a card back to its implementer with a
    /// remark; the worker's next attempt completes it.
    fn review(&self, t: &Task) -> Result<(), DemoError> {
        self.store.reopen_review(
            &t.id,
            Some("One more pass on the edge cases, please. (The demo reviews its own cards.)"),
        )?;
        Ok(())
    }

    /// An idea is accepted: off to its worker.
    fn triage(&mut self, t: &Task) -> Result<(), DemoError> {
        if t.assignee.is_none() {
            let who = self.rng.pick(&[RESEARCHER, CODER]);
            self.assign(&t.id, who)?;
        }
        self.store.set_status_direct(&t.id, Status::Ready)?;
        Ok(())
    }

    fn assign(&self, id: &str, who: &str) -> Result<(), DemoError> {
        self.store.assign_task(&AssignTask {
            task_id: id.into(),
            assignee: Some(who.into()),
            source: Some(DEMO_AUTHOR.into()),
            reclaim_first: false,
            reason: None,
        })?;
        Ok(())
    }

    /// Archive done tasks beyond the newest `keep_done`.
    fn archive_old_done(&self, tasks: &[Task]) -> Result<usize, DemoError> {
        let mut done: Vec<&Task> = tasks.iter().filter(|t| t.status == Status::Done).collect();
        if done.len() <= self.tuning.keep_done {
            return Ok(0);
        }
        done.sort_by_key(|t| std::cmp::Reverse((t.completed_at, t.created_at)));
        let mut archived = 0;
        for t in &done[self.tuning.keep_done..] {
            let r = self.store.archive_task(&t.id).map(drop);
            archived += usize::from(unless_overtaken(r.map_err(DemoError::from))?);
        }
        Ok(archived)
    }

    /// Delete archived demo tasks beyond the newest `keep_archived`, but
    /// never an opening's (they number the rounds).
    fn delete_old_archived(&self) -> Result<usize, DemoError> {
        let mut archived = self.demo_tasks(&TaskQuery {
            status: Some(Status::Archived),
            include_archived: true,
            order: TaskOrder::CreatedDesc,
            ..TaskQuery::default()
        })?;
        archived.retain(|t| t.idempotency_key.as_deref().and_then(round_of).is_none());
        let old = archived
            .get(self.tuning.keep_archived..)
            .unwrap_or_default();
        let mut deleted = 0;
        for t in old {
            let r = self.store.delete_task(&t.id, true);
            deleted += usize::from(unless_overtaken(r.map_err(DemoError::from))?);
        }
        Ok(deleted)
    }

    /// One piece of new work; the titles of the tasks created.
    fn add_work(&mut self) -> Result<Vec<String>, DemoError> {
        let subject = self.rng.pick(&SUBJECTS);
        match self.rng.below(100) {
            0..52 => {
                let (title, who, plan) = self.single(subject);
                Ok(vec![self.create(&title, who, plan, &[], false)?.title])
            }
            52..72 => self.graph(subject),
            72..86 => self.idea(subject),
            _ => self.scheduled(subject),
        }
    }

    /// A lone task for one of the profiles, with its twist.
    fn single(&mut self, subject: &str) -> (String, &'static str, Plan) {
        let who = self.rng.pick(&[RESEARCHER, CODER, REVIEWER, FLAKY_API]);
        let verbs: &[&str] = match who {
            RESEARCHER => &RESEARCH,
            CODER => &CODE,
            REVIEWER => &REVIEW,
            _ => &PARTNER,
        };
        let title = title(self.rng.pick(verbs), subject);
        let secs = self.rng.secs();
        let roll = self.rng.below(100);
        let twist = match (who, roll) {
            (FLAKY_API, 0..50) => Twist::RateLimitOnce,
            (FLAKY_API, _) => Twist::None,
            (_, 0..12) => Twist::FailOnce,
            (RESEARCHER | CODER, 12..32) => Twist::NeedsHuman,
            (CODER, 32..62) => Twist::ReviewOnce,
            _ => Twist::None,
        };
        (title, who, Plan::new(secs, twist))
    }

    /// plan → backend + UI → review: a parent whose children wait in todo.
    fn graph(&mut self, subject: &str) -> Result<Vec<String>, DemoError> {
        let twist = if self.rng.chance(15) {
            Twist::NeedsHuman
        } else {
            Twist::None
        };
        let plan = Plan::new(self.rng.secs(), twist);
        let parent = self.create(&format!("Plan the {subject}"), RESEARCHER, plan, &[], false)?;
        let mut kids = Vec::new();
        for part in ["backend", "UI"] {
            let twist = match self.rng.below(100) {
                0..20 => Twist::FailOnce,
                20..50 => Twist::ReviewOnce,
                _ => Twist::None,
            };
            let plan = Plan::new(self.rng.secs(), twist);
            let title = format!("Build the {subject} {part}");
            kids.push(self.create(&title, CODER, plan, std::slice::from_ref(&parent.id), false)?);
        }
        let ids: Vec<String> = kids.iter().map(|k| k.id.clone()).collect();
        let plan = Plan::new(self.rng.secs(), Twist::None);
        let review = self.create(
            &format!("Review the {subject}"),
            REVIEWER,
            plan,
            &ids,
            false,
        )?;
        let mut titles = vec![parent.title];
        titles.extend(kids.into_iter().map(|k| k.title));
        titles.push(review.title);
        Ok(titles)
    }

    /// An idea waiting in triage for a few ticks.
    fn idea(&mut self, subject: &str) -> Result<Vec<String>, DemoError> {
        let title = title(self.rng.pick(&IDEAS), subject);
        let who = self.rng.pick(&[RESEARCHER, CODER]);
        let plan = Plan::new(self.rng.secs(), Twist::None);
        Ok(vec![self.create(&title, who, plan, &[], true)?.title])
    }

    /// A job parked in scheduled until its window (a few ticks).
    fn scheduled(&mut self, subject: &str) -> Result<Vec<String>, DemoError> {
        let title = title(self.rng.pick(&JOBS), subject);
        let plan = Plan::new(self.rng.secs(), Twist::None);
        // Unassigned until parked: the dispatcher must not start it first.
        let t = self.create(&title, "", plan, &[], false)?;
        self.store
            .schedule_task(&t.id, Some("waits for its window"))?;
        self.assign(&t.id, CODER)?;
        Ok(vec![t.title])
    }

    fn create(
        &self,
        title: &str,
        who: &str,
        plan: Plan,
        parents: &[String],
        triage: bool,
    ) -> Result<Task, DemoError> {
        let role = if who.is_empty() {
            role_of(CODER)
        } else {
            role_of(who)
        };
        let req = NewTask {
            title: title.into(),
            body: Some(plan.body(role)),
            assignee: (!who.is_empty()).then(|| who.into()),
            created_by: Some(DEMO_AUTHOR.into()),
            parents: parents.to_vec(),
            triage,
            ..NewTask::default()
        };
        Ok(self.store.create_task(&req)?.task)
    }
}

/// Whether a step on one task happened: `false` when someone (a person on
/// the dashboard, the dispatcher) moved or removed the task first.
fn unless_overtaken(step: Result<(), DemoError>) -> Result<bool, DemoError> {
    match step {
        Ok(()) => Ok(true),
        Err(DemoError::Store(
            StoreError::Refused { .. } | StoreError::Stale { .. } | StoreError::TaskNotFound(_),
        )) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A feeder running on its own thread; [`FeederHandle::stop`] (or a drop)
/// ends it after the tick in progress.
pub struct FeederHandle {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FeederHandle {
    /// Run `feeder` every `every` on a thread of its own. A failed tick is
    /// reported (once per distinct error) and the next one tried.
    pub fn spawn(mut feeder: Feeder, every: Duration) -> std::io::Result<FeederHandle> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kanban-demo-feeder".into())
            .spawn(move || {
                let mut last_error = None;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    match feeder.tick() {
                        Ok(_) => last_error = None,
                        Err(e) => {
                            let msg = e.to_string();
                            if last_error.as_ref() != Some(&msg) {
                                report_error(&msg);
                                last_error = Some(msg);
                            }
                        }
                    }
                }
            })?;
        Ok(FeederHandle {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stop and wait for the thread (at most one tick's store calls).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FeederHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Without a tracing subscriber the warning goes to stderr (the gateway's
/// log under `gateway start`).
fn report_error(msg: &str) {
    tracing::warn!(error = msg, "demo feeder: a tick failed");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("kanban: warning: demo feeder: {msg}");
    }
}

#[cfg(test)]
#[path = "feeder_tests.rs"]
mod tests;
