//! The Activity view's aggregates (`kanban_store::activity::ActivityStore`):
//! every backend answers the same numbers for the same history.
//!
//! The history is loaded as a board copy (`BoardStore::load_board`), so
//! its events and runs sit at known times, away from the backend's clock;
//! a second test checks that live writes (with the real payloads the
//! store writes) reach every chart.

use std::collections::BTreeMap;

use kanban_core::Status;
use kanban_store::activity::{Activity, ActivityRange, ActivityRequest};
use kanban_store::dump::{BOARD_TABLES, BoardDump, Cell, TableDump, TableSpec};

use crate::support::*;
use crate::{Board, SuiteStore};

/// Start of the seeded window: a multiple of every bucket size.
const S: i64 = 1_700_006_400;
const MIN: i64 = 60;
/// The request's clock: 30 s into the last 1-minute bucket.
const NOW: i64 = S + 59 * MIN + 30;

fn spec(name: &str) -> &'static TableSpec {
    BOARD_TABLES
        .iter()
        .find(|t| t.name == name)
        .expect("board table")
}

fn text(s: &str) -> Cell {
    Cell::Text(s.into())
}

fn opt_text(s: Option<&str>) -> Cell {
    s.map_or(Cell::Null, text)
}

fn opt_int(v: Option<i64>) -> Cell {
    v.map_or(Cell::Null, Cell::Int)
}

/// A `tasks` row with the defaults the schema gives the other columns.
fn task_row(id: &str, status: Status, created_at: i64) -> Vec<Cell> {
    spec("tasks")
        .columns
        .iter()
        .map(|(col, _)| match *col {
            "id" => text(id),
            "title" => text(&format!("task {id}")),
            "status" => text(status.as_str()),
            "created_at" => Cell::Int(created_at),
            "workspace_kind" => text("scratch"),
            "priority" | "consecutive_failures" | "goal_mode" | "block_recurrences" => Cell::Int(0),
            _ => Cell::Null,
        })
        .collect()
}

/// Rows of `task_events` and `task_runs`, ids in insertion order.
#[derive(Default)]
struct History {
    tasks: Vec<Vec<Cell>>,
    events: Vec<Vec<Cell>>,
    runs: Vec<Vec<Cell>>,
}

impl History {
    fn task(&mut self, id: &str, status: Status, created_at: i64) {
        self.tasks.push(task_row(id, status, created_at));
    }

    fn event(&mut self, task: &str, kind: &str, payload: Option<&str>, at: i64) {
        let id = self.events.len() as i64 + 1;
        let row = vec![
            Cell::Int(id),
            text(task),
            Cell::Null,
            text(kind),
            opt_text(payload),
            Cell::Int(at),
        ];
        self.events.push(row);
    }

    fn run(&mut self, task: &str, profile: Option<&str>, span: (i64, Option<i64>), outcome: &str) {
        let id = self.runs.len() as i64 + 1;
        let (started, ended) = span;
        let status = if ended.is_some() { "done" } else { "running" };
        let row = spec("task_runs")
            .columns
            .iter()
            .map(|(col, _)| match *col {
                "id" => Cell::Int(id),
                "task_id" => text(task),
                "profile" => opt_text(profile),
                "status" => text(status),
                "started_at" => Cell::Int(started),
                "ended_at" => opt_int(ended),
                "outcome" => opt_text(ended.map(|_| outcome)),
                _ => Cell::Null,
            })
            .collect();
        self.runs.push(row);
    }

    fn dump(self) -> BoardDump {
        let table = |name: &str, rows: Vec<Vec<Cell>>| {
            let mut t = TableDump::empty(spec(name));
            t.rows = rows;
            if t.last_id.is_some() {
                t.last_id = Some(t.max_id());
            }
            t
        };
        BoardDump {
            tables: vec![
                table("tasks", self.tasks),
                table("task_events", self.events),
                table("task_runs", self.runs),
            ],
        }
    }
}

const READY: Option<&str> = Some(r#"{"assignee":"coder","status":"ready","parents":[]}"#);

/// Seven tasks whose events and runs exercise every chart (times are
/// `S + offset`; see the expectations in the test).
fn seeded_history() -> BoardDump {
    let mut h = History::default();
    // a: ready long before the window, picked up in bucket 10, done in 20.
    h.task("a", Status::Done, S - 1000);
    h.event("a", "created", READY, S - 1000);
    h.event("a", "claimed", None, S + 605);
    h.event("a", "heartbeat", Some(r#"{"note":"half way"}"#), S + 900);
    h.event(
        "a",
        "completed",
        Some(r#"{"result_len":0,"summary":"ok"}"#),
        S + 1200,
    );
    h.run("a", Some("coder"), (S + 605, Some(S + 1200)), "completed");
    // b: created and claimed in bucket 5, crashes in 7, claimed again in 8
    // by another profile and still running.
    h.task("b", Status::Running, S + 300);
    h.event("b", "created", READY, S + 300);
    h.event("b", "claimed", None, S + 303);
    h.event("b", "crashed", Some(r#"{"pid":1}"#), S + 450);
    h.event("b", "claimed", None, S + 510);
    h.run("b", Some("coder"), (S + 303, Some(S + 450)), "crashed");
    h.run("b", Some("writer"), (S + 510, None), "");
    // c: waits in todo (bucket 1) until promoted in bucket 30.
    h.task("c", Status::Ready, S + 60);
    h.event(
        "c",
        "created",
        Some(r#"{"status":"todo","parents":["a"]}"#),
        S + 60,
    );
    h.event("c", "linked", Some(r#"{"parent":"a","child":"c"}"#), S + 61);
    h.event("c", "promoted", None, S + 1800);
    // d: timed out before the window, claimed in bucket 40, blocked in 45.
    h.task("d", Status::Blocked, S - 7200);
    h.event("d", "created", READY, S - 7200);
    h.event("d", "claimed", None, S - 7000);
    h.event("d", "timed_out", None, S - 6000);
    h.event("d", "claimed", None, S + 2400);
    h.event(
        "d",
        "blocked",
        Some(r#"{"reason":"needs a key"}"#),
        S + 2700,
    );
    h.run("d", None, (S - 7000, Some(S - 6000)), "timed_out");
    h.run("d", Some("coder"), (S + 2400, Some(S + 2700)), "blocked");
    // e: written by the Python reference (spaced JSON): triage in bucket
    // 50, moved to todo in 51; a payload that is not JSON in 52 is ignored.
    h.task("e", Status::Todo, S + 3000);
    h.event(
        "e",
        "created",
        Some(r#"{"assignee": null, "status": "triage"}"#),
        S + 3000,
    );
    h.event("e", "status", Some(r#"{"status": "todo"}"#), S + 3060);
    h.event("e", "status", Some("not json"), S + 3120);
    // f: archived in bucket 55.
    h.task("f", Status::Archived, S - 500);
    h.event("f", "created", READY, S - 500);
    h.event("f", "archived", None, S + 3300);
    // g: ready in bucket 58; its completion stamped after the window (a
    // host whose clock runs ahead) counts nowhere.
    h.task("g", Status::Done, S + 3500);
    h.event("g", "created", READY, S + 3500);
    h.event("g", "completed", None, S + 3600 + 5);
    h.dump()
}

/// The series of `status`.
fn depth(a: &Activity, status: Status) -> Vec<i64> {
    let (_, v) = a
        .queue_depth
        .iter()
        .find(|(s, _)| *s == status)
        .expect("every status has a series");
    v.clone()
}

/// A series of 60 buckets: `base`, changed to `v` from bucket `i` on.
fn steps(base: i64, changes: &[(usize, i64)]) -> Vec<i64> {
    let mut out = vec![base; 60];
    for (i, v) in changes {
        out[*i..].fill(*v);
    }
    out
}

/// A series of 60 buckets, zero but for `values`.
fn sparse(values: &[(usize, i64)]) -> Vec<i64> {
    let mut out = vec![0; 60];
    for (i, v) in values {
        out[*i] = *v;
    }
    out
}

pub fn aggregates_of_a_seeded_history(board: &Board<'_>) {
    let s: Box<dyn SuiteStore> = board.open();
    s.load_board(&seeded_history()).expect("load the history");
    let req = ActivityRequest {
        range: ActivityRange::LastHour,
        now: NOW,
    };
    let a = s.activity(&req).expect("activity");
    assert_eq!((a.window.start, a.window.step), (S, MIN));
    assert_eq!((a.window.buckets, a.window.end()), (60, S + 3600));

    assert_eq!(a.finished, sparse(&[(20, 1)]), "finished per minute");

    let ready = steps(
        3,
        &[(7, 4), (8, 3), (10, 2), (30, 3), (40, 2), (55, 1), (58, 2)],
    );
    assert_eq!(depth(&a, Status::Ready), ready, "ready");
    let running = steps(
        0,
        &[(5, 1), (7, 0), (8, 1), (10, 2), (20, 1), (40, 2), (45, 1)],
    );
    assert_eq!(depth(&a, Status::Running), running, "running");
    assert_eq!(
        depth(&a, Status::Todo),
        steps(0, &[(1, 1), (30, 0), (51, 1)])
    );
    assert_eq!(depth(&a, Status::Triage), steps(0, &[(50, 1), (51, 0)]));
    assert_eq!(depth(&a, Status::Done), steps(0, &[(20, 1)]));
    assert_eq!(depth(&a, Status::Blocked), steps(0, &[(45, 1)]));
    assert_eq!(depth(&a, Status::Archived), steps(0, &[(55, 1)]));
    for status in [Status::Scheduled, Status::Review] {
        assert_eq!(depth(&a, status), vec![0; 60], "{status}");
    }

    let mut coder = sparse(&[(5, 57), (6, 60), (7, 30), (10, 55)]);
    coder[11..20].fill(60);
    coder[40..45].fill(60);
    let mut writer = sparse(&[(8, 30), (59, 30)]);
    writer[9..59].fill(60);
    let busy: BTreeMap<String, Vec<i64>> =
        BTreeMap::from([("coder".into(), coder), ("writer".into(), writer)]);
    assert_eq!(
        a.busy_seconds, busy,
        "busy seconds (the run before the window is left out)"
    );
    let workers = a.running_workers();
    assert_eq!(workers[1].0, "writer");
    assert_eq!(workers[1].1[59], 1.0, "30 s running of the 30 s passed");
    assert_eq!(workers[0].1[7], 0.5);

    let latencies = BTreeMap::from([(3, 1), (60, 1), (1605, 1), (8400, 1)]);
    assert_eq!(a.pickup_latency, latencies, "pick-up latencies");
    let bins: Vec<i64> = a.latency_histogram().iter().map(|b| b.count).collect();
    assert_eq!(bins, vec![0, 1, 0, 0, 1, 0, 1, 1, 0]);

    let failures = BTreeMap::from([
        ("blocked".to_string(), sparse(&[(45, 1)])),
        ("crashed".to_string(), sparse(&[(7, 1)])),
    ]);
    assert_eq!(
        a.failures, failures,
        "failures (the timeout before the window is left out)"
    );

    // A coarser range buckets the same history: one 15-minute bucket of
    // the day holds the whole hour but its first 15 minutes' tail.
    let day = s
        .activity(&ActivityRequest {
            range: ActivityRange::LastDay,
            now: NOW,
        })
        .expect("activity of the day");
    assert_eq!(day.window.end(), S + 3600);
    assert_eq!(day.finished.iter().sum::<i64>(), 1);
    assert_eq!(day.finished[93], 1, "S + 1200 is in the day's bucket 93");
    let mut day_latencies = a.pickup_latency.clone();
    day_latencies.insert(200, 1);
    assert_eq!(day.pickup_latency, day_latencies, "plus d's first claim");
    let busy_total = |x: &Activity| -> i64 { x.busy_seconds.values().flatten().sum() };
    assert_eq!(
        busy_total(&day),
        busy_total(&a) + 1000,
        "plus d's timed-out run"
    );
}

pub fn live_writes_reach_every_chart(board: &Board<'_>) {
    let s = board.open();
    let done = create(&*s, "finished");
    claim(&*s, &done.id);
    complete(&*s, &done.id);
    let running = create(&*s, "running");
    claim(&*s, &running.id);
    let waiting = child_of(&*s, "waits", &[&create(&*s, "parent").id]);
    // A few seconds on, so the open attempt has run a while.
    let now = s.now() + 5;
    let a = s
        .activity(&ActivityRequest {
            range: ActivityRange::LastHour,
            now,
        })
        .expect("activity");
    assert_eq!(a.finished.iter().sum::<i64>(), 1);
    assert_eq!(a.pickups(), 2, "two claims");
    let coder: i64 = a.busy_seconds.get("coder").into_iter().flatten().sum();
    assert!(
        coder >= 5,
        "the open attempt runs until now: {:?}",
        a.busy_seconds
    );
    let last = |st: Status| *depth(&a, st).last().expect("buckets");
    assert_eq!(last(Status::Done), 1);
    assert_eq!(last(Status::Running), 1);
    assert_eq!(last(Status::Ready), 1, "the parent");
    assert_eq!(last(Status::Todo), 1, "{} waits", waiting.id);
    assert!(a.failures.is_empty());
}
