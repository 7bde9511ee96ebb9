//! The view drawn into ratatui's test backend, from a hand-made snapshot
//! and from one gathered off a real board.

use kanban_core::Status;
use kanban_hermes::config::KanbanConfig;
use kanban_store::backend::{BoardLocation, OpenRequest, open_board};
use kanban_store::{ClaimRequest, CompleteRequest, HeartbeatRequest, NewTask, SystemClock};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::render::{buffer_text, fmt_span, full_height, render, render_text};
use super::snapshot::{CompletionLog, EventLine, Inputs, ProfileUsage, RunningWorker, TopSnapshot};
use kanban_store::Clock as _;

const NOW: i64 = 1_700_000_000;

fn sample() -> TopSnapshot {
    TopSnapshot {
        board: "default".into(),
        location: "/r/kanban.db".into(),
        gateway: "pid 7, dispatching".into(),
        now: NOW,
        counts: super::snapshot::COUNTED
            .iter()
            .map(|s| {
                (
                    *s,
                    if *s == Status::Ready {
                        3
                    } else if *s == Status::Running {
                        1
                    } else {
                        0
                    },
                )
            })
            .collect(),
        running: vec![RunningWorker {
            task_id: "t_0badf00d".into(),
            title: "Write the spec".into(),
            profile: Some("claude".into()),
            pid: Some(4242),
            started_at: NOW - 185,
            last_heartbeat_at: Some(NOW - 12),
        }],
        running_limit: Some(8),
        profiles: vec![ProfileUsage {
            name: "claude".into(),
            running: 1,
            ready: 3,
            limit: Some(2),
        }],
        events: vec![EventLine {
            at: NOW - 5,
            task_id: "t_0badf00d".into(),
            kind: "heartbeat".into(),
            assignee: Some("claude".into()),
            title: "Write the spec".into(),
        }],
        throughput: vec![0, 1, 0, 4, 2],
        notice: None,
    }
}

fn draw(snap: &TopSnapshot, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| render(f, snap)).unwrap();
    buffer_text(terminal.backend().buffer())
}

#[test]
fn the_frame_shows_counts_workers_usage_events_and_throughput() {
    let text = draw(&sample(), 110, 30);
    assert!(text.contains("ready 3"), "{text}");
    assert!(text.contains("running 1"), "{text}");
    assert!(text.contains("done 0"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("t_0badf00d") && l.contains("4242"))
        .unwrap_or_else(|| panic!("no worker row:\n{text}"));
    assert!(row.contains("claude"), "{row}");
    assert!(row.contains("3m05s"), "elapsed: {row}");
    assert!(row.contains("12s ago"), "heartbeat: {row}");
    assert!(row.contains("Write the spec"), "{row}");
    assert!(text.contains("Running 1/8"), "{text}");
    let usage = text
        .lines()
        .find(|l| l.contains("1/2"))
        .unwrap_or_else(|| panic!("no usage row:\n{text}"));
    assert!(
        usage.contains("claude") && usage.contains("3 ready"),
        "{usage}"
    );
    assert!(usage.contains("█████░░░░░"), "{usage}");
    let event = text
        .lines()
        .find(|l| l.contains("heartbeat") && l.contains("t_0badf00d"))
        .unwrap_or_else(|| panic!("no event line:\n{text}"));
    assert!(event.contains("@claude"), "{event}");
    assert!(text.contains("last 5 min: 7 total, peak 4"), "{text}");
    assert!(text.contains("q / Esc / Ctrl-C quit"), "{text}");
    assert!(text.contains("gateway: pid 7, dispatching"), "{text}");
}

#[test]
fn an_idle_board_says_so_and_a_failed_refresh_is_shown() {
    let mut snap = sample();
    snap.running.clear();
    snap.events.clear();
    snap.profiles.clear();
    snap.notice = Some("database is busy".into());
    let text = draw(&snap, 90, full_height(&snap));
    assert!(text.contains("no worker is running"), "{text}");
    assert!(text.contains("no events yet"), "{text}");
    assert!(text.contains("no profile"), "{text}");
    assert!(text.contains("refresh failed: database is busy"), "{text}");
}

#[test]
fn the_full_height_fits_every_row() {
    let mut snap = sample();
    for i in 0..9 {
        let mut w = snap.running[0].clone();
        w.task_id = format!("t_0000000{i}");
        snap.running.push(w);
    }
    let text = render_text(&snap, 100, full_height(&snap));
    for i in 0..9 {
        assert!(text.contains(&format!("t_0000000{i}")), "{text}");
    }
    assert_eq!(text.lines().count(), full_height(&snap) as usize);
}

#[test]
fn spans_read_in_their_two_largest_units() {
    assert_eq!(fmt_span(-3), "0s");
    assert_eq!(fmt_span(59), "59s");
    assert_eq!(fmt_span(185), "3m05s");
    assert_eq!(fmt_span(7_440), "2h04m");
    assert_eq!(fmt_span(97_200), "1d03h");
}

#[test]
fn a_snapshot_of_a_real_board() {
    let dir = tempfile::tempdir().unwrap();
    let location = BoardLocation::sqlite(dir.path().join("kanban.db"));
    let handle = open_board(&location, &OpenRequest::create()).unwrap();
    let store = handle.as_dispatch();
    let new = |title: &str| {
        store
            .create_task(&NewTask {
                title: title.into(),
                assignee: Some("coder".into()),
                ..Default::default()
            })
            .unwrap()
            .task
            .id
    };
    let claim = |id: &str| {
        store
            .claim_task(&ClaimRequest {
                task_id: id.into(),
                claim_lock: "host:1".into(),
                ttl_seconds: 900,
                review: false,
                ceilings: Default::default(),
            })
            .unwrap()
    };
    let done = new("Done already");
    claim(&done);
    store
        .complete_task(&CompleteRequest {
            task_id: done.clone(),
            summary: Some("ok".into()),
            ..Default::default()
        })
        .unwrap();
    let busy = new("In progress");
    claim(&busy);
    store
        .heartbeat(&HeartbeatRequest {
            task_id: busy.clone(),
            note: Some("working".into()),
            run_id: None,
            claim_lock: None,
            ttl_seconds: None,
        })
        .unwrap();
    new("Waiting");
    let config = KanbanConfig::from_yaml_str(
        "kanban:\n  profile_limits: {coder: 2}\n",
        std::path::Path::new("c.yaml"),
    )
    .unwrap();
    let now = SystemClock.now();
    let inputs = Inputs {
        board: "default",
        location: location.redacted(),
        gateway: "not running".into(),
        config: Some(&config),
        now,
        minutes: 10,
    };
    let mut log = CompletionLog::default();
    let snap = TopSnapshot::gather(store, &inputs, &mut log).unwrap();
    let count = |s: Status| snap.counts.iter().find(|(c, _)| *c == s).unwrap().1;
    assert_eq!(
        (
            count(Status::Ready),
            count(Status::Running),
            count(Status::Done)
        ),
        (1, 1, 1)
    );
    assert_eq!(snap.running.len(), 1);
    let w = &snap.running[0];
    assert_eq!(
        (w.task_id.as_str(), w.profile.as_deref()),
        (busy.as_str(), Some("coder"))
    );
    assert!(
        w.last_heartbeat_at.is_some() && now - w.started_at < 60,
        "{w:?}"
    );
    assert_eq!(
        snap.profiles,
        [ProfileUsage {
            name: "coder".into(),
            running: 1,
            ready: 1,
            limit: Some(2)
        }]
    );
    let kinds: Vec<&str> = snap.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds[..3],
        ["created", "heartbeat", "claimed"],
        "newest first: {:?}",
        snap.events
    );
    assert!(
        snap.events
            .iter()
            .any(|e| e.kind == "completed" && e.task_id == done)
    );
    assert_eq!(snap.throughput.len(), 10);
    assert_eq!(snap.throughput.iter().sum::<u64>(), 1);
    // A second refresh reads only what is new, and still counts it once.
    let again = TopSnapshot::gather(store, &inputs, &mut log).unwrap();
    assert_eq!(again.throughput.iter().sum::<u64>(), 1);
    let text = render_text(&snap, 100, full_height(&snap));
    assert!(text.contains("1/2") && text.contains(&busy), "{text}");
}
