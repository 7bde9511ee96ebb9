//! The notifier: webhook and exec delivery of notify subscriptions, with
//! the reference's cursor semantics (claim, rewind on failure, drop after
//! three failures, unsubscribe when done) and other platforms left alone.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::Root;
use kanban_server::hub::BoardHub;
use kanban_server::notifier::{Notifier, NotifierOptions, NotifySettings, RoundReport};
use kanban_server::{Gateway, GatewayConfig};
use kanban_store::notify_ops::NotifyStore;
use kanban_store::{BlockRequest, CompleteRequest, NewNotifySub, NewTask, NotifyKey, SystemClock};
use serde_json::Value;

/// An HTTP receiver: records every body, answers the queued statuses
/// (then 200).
#[derive(Clone, Default)]
struct Hook {
    bodies: Arc<Mutex<Vec<Value>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

impl Hook {
    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
    fn kinds(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["kind"].as_str().unwrap().to_string())
            .collect()
    }
    fn fail_next(&self, n: usize) {
        self.statuses
            .lock()
            .unwrap()
            .extend(std::iter::repeat_n(500, n));
    }
}

async fn receive(State(h): State<Hook>, Json(body): Json<Value>) -> StatusCode {
    h.bodies.lock().unwrap().push(body);
    let code = h.statuses.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

/// Start a receiver; returns it and its URL.
async fn hook() -> (Hook, String) {
    let h = Hook::default();
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(h.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (h, url)
}

fn board(dir: &Path) -> (Root, Arc<dyn NotifyStore>) {
    let store = kanban_testkit::open_board_at(dir, "default").notify();
    (Root::at(dir), store)
}

fn task(s: &Arc<dyn NotifyStore>, title: &str) -> String {
    s.create_task(&NewTask {
        title: title.into(),
        assignee: Some("alice".into()),
        ..Default::default()
    })
    .unwrap()
    .task
    .id
}

fn subscribe(s: &Arc<dyn NotifyStore>, task: &str, platform: &str, chat: &str) -> NotifyKey {
    s.notify_subscribe(&NewNotifySub {
        task_id: task.into(),
        platform: platform.into(),
        chat_id: chat.into(),
        ..Default::default()
    })
    .unwrap();
    NotifyKey {
        task_id: task.into(),
        platform: platform.into(),
        chat_id: chat.into(),
        thread_id: None,
    }
}

fn block(s: &Arc<dyn NotifyStore>, task: &str) {
    s.block_task(&BlockRequest {
        task_id: task.into(),
        reason: Some("need input".into()),
        ..Default::default()
    })
    .unwrap();
}

fn complete(s: &Arc<dyn NotifyStore>, task: &str) {
    s.complete_task(&CompleteRequest {
        task_id: task.into(),
        summary: Some("all good".into()),
        ..Default::default()
    })
    .unwrap();
}

/// The subscription's cursor, `None` when it is gone.
fn cursor(s: &Arc<dyn NotifyStore>, key: &NotifyKey) -> Option<i64> {
    s.notify_list(Some(&key.task_id))
        .unwrap()
        .into_iter()
        .find(|n| n.platform == key.platform && n.chat_id == key.chat_id)
        .map(|n| n.last_event_id)
}

fn notifier(root: &Root) -> Notifier {
    let opts = NotifierOptions {
        poll_interval: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        open_boards: true,
    };
    let hub = BoardHub::new(
        root.clone(),
        Arc::new(SystemClock),
        Duration::from_millis(25),
    );
    Notifier::new(Arc::new(hub), opts)
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_gets_each_subscribed_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (root, s) = board(dir.path());
    let (h, url) = hook().await;
    let t = task(&s, "write the report");
    let key = subscribe(&s, &t, "webhook", &url);
    block(&s, &t);
    s.add_comment(&t, "bob", "not a notifying kind").unwrap();
    s.unblock_task(&t, None).unwrap();
    complete(&s, &t);

    let mut n = notifier(&root);
    let r = n.round().await;
    assert_eq!(
        r,
        RoundReport {
            delivered: 3,
            unsubscribed: 1,
            ..Default::default()
        }
    );
    assert_eq!(h.kinds(), ["blocked", "unblocked", "completed"]);
    let bodies = h.bodies();
    let ids: Vec<i64> = bodies.iter().map(|b| b["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let done = &bodies[2];
    assert_eq!(done["task_id"], t.as_str());
    assert_eq!(done["board"], "default");
    assert_eq!(done["payload"]["summary"], "all good");
    assert_eq!(done["task"]["title"], "write the report");
    assert_eq!(done["task"]["status"], "done");
    assert_eq!(done["task"]["assignee"], "alice");
    assert!(done["created_at"].as_i64().unwrap() > 0);
    assert_eq!(bodies[0]["payload"]["reason"], "need input");
    // Done and fully delivered: unsubscribed; nothing is sent again.
    assert_eq!(cursor(&s, &key), None);
    assert_eq!(n.round().await, RoundReport::default());
    assert_eq!(h.bodies().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_webhook_is_retried_from_the_same_cursor_then_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (root, s) = board(dir.path());
    let (h, url) = hook().await;
    let t = task(&s, "flaky");
    let key = subscribe(&s, &t, "webhook", &url);
    block(&s, &t);
    h.fail_next(3);

    let mut n = notifier(&root);
    for attempt in 1..=2 {
        let r = n.round().await;
        assert_eq!(
            (r.failed, r.delivered, r.dropped),
            (1, 0, 0),
            "attempt {attempt}"
        );
        assert_eq!(cursor(&s, &key), Some(0), "cursor rewound");
        assert_eq!(s.notify_failures(&key).unwrap(), attempt);
    }
    let r = n.round().await;
    assert_eq!((r.failed, r.dropped), (0, 1));
    assert_eq!(cursor(&s, &key), None, "dropped after 3 failures");
    // The same event was tried three times.
    let ids: Vec<Value> = h.bodies().iter().map(|b| b["id"].clone()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| *i == ids[0]));
    s.unblock_task(&t, None).unwrap();
    assert_eq!(n.round().await, RoundReport::default());
    assert_eq!(h.bodies().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_keeps_what_was_delivered_and_success_resets_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let (root, s) = board(dir.path());
    let (h, url) = hook().await;
    let t = task(&s, "partial");
    let key = subscribe(&s, &t, "webhook", &url);
    block(&s, &t);
    s.unblock_task(&t, None).unwrap();
    let mut n = notifier(&root);

    // First event fails once, then the second fails once after the first
    // went through: the cursor stops after the delivered event.
    h.fail_next(1);
    assert_eq!(n.round().await.failed, 1);
    h.statuses.lock().unwrap().extend([200, 500]);
    let r = n.round().await;
    assert_eq!((r.delivered, r.failed), (1, 1));
    let first_id = h.bodies()[1]["id"].as_i64().unwrap();
    assert_eq!(cursor(&s, &key), Some(first_id));
    // Progress restarted the consecutive count.
    assert_eq!(s.notify_failures(&key).unwrap(), 1);
    let r = n.round().await;
    assert_eq!((r.delivered, r.failed, r.unsubscribed), (1, 0, 0));
    assert_eq!(s.notify_failures(&key).unwrap(), 0);
    assert_eq!(h.kinds(), ["blocked", "blocked", "unblocked", "unblocked"]);
    assert!(cursor(&s, &key).unwrap() > first_id, "task not done: kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirecting_webhook_is_a_failed_delivery_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (root, s) = board(dir.path());
    let (h, url) = hook().await;
    let t = task(&s, "moved");
    let key = subscribe(&s, &t, "webhook", &url);
    block(&s, &t);
    h.statuses.lock().unwrap().push_back(302);
    let mut n = notifier(&root);
    let r = n.round().await;
    assert_eq!((r.delivered, r.failed), (0, 1));
    assert_eq!(h.kinds(), ["blocked"], "one POST, no second request");
    assert_eq!(cursor(&s, &key), Some(0));
    assert_eq!(n.round().await.delivered, 1, "retried from the same cursor");
}

#[tokio::test(flavor = "multi_thread")]
async fn other_platforms_are_never_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let (root, s) = board(dir.path());
    let (h, url) = hook().await;
    let t = task(&s, "mixed");
    let tg = subscribe(&s, &t, "telegram", "12345");
    let dc = subscribe(&s, &t, "discord", "chan");
    let wh = subscribe(&s, &t, "webhook", &url);
    block(&s, &t);
    s.unblock_task(&t, None).unwrap();
    complete(&s, &t);

    let mut n = notifier(&root);
    n.round().await;
    n.round().await;
    assert_eq!(h.kinds(), ["blocked", "unblocked", "completed"]);
    assert_eq!(cursor(&s, &wh), None);
    // A Hermes gateway still has everything to send.
    assert_eq!(cursor(&s, &tg), Some(0));
    assert_eq!(cursor(&s, &dc), Some(0));
}

fn write_config(root: &Root, text: &str) {
    std::fs::write(root.config_file(), text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_gets_the_event_json_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let (root, s) = board(dir.path());
    let out = dir.path().join("events.jsonl");
    let env_out = dir.path().join("env.txt");
    let script = dir.path().join("notify.sh");
    std::fs::write(
        &script,
        "cat >> \"$1\"\necho \"$KANBAN_NOTIFY_EVENT_KIND $KANBAN_NOTIFY_BOARD\" >> \"$2\"\n",
    )
    .unwrap();
    write_config(
        &root,
        &format!(
            "kanban:\n  notify_exec:\n    log: [\"/bin/sh\", \"{}\", \"{}\", \"{}\"]\n    broken: [\"/bin/sh\", \"-c\", \"echo nope >&2; exit 3\"]\n",
            script.display(),
            out.display(),
            env_out.display()
        ),
    );
    let t = task(&s, "exec me");
    let key = subscribe(&s, &t, "exec", "log");
    let broken = subscribe(&s, &t, "exec", "broken");
    let unknown = subscribe(&s, &t, "exec", "not-configured");
    block(&s, &t);
    s.unblock_task(&t, None).unwrap();
    complete(&s, &t);

    let mut n = notifier(&root);
    let r = n.round().await;
    assert_eq!((r.delivered, r.unsubscribed, r.failed), (3, 1, 1));
    let text = std::fs::read_to_string(&out).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["blocked", "unblocked", "completed"]);
    assert_eq!(events[2]["task"]["title"], "exec me");
    assert_eq!(
        std::fs::read_to_string(&env_out).unwrap(),
        "blocked default\nunblocked default\ncompleted default\n"
    );
    assert_eq!(cursor(&s, &key), None);
    // A failing command is a failed delivery (rewound, counted).
    assert_eq!(cursor(&s, &broken), Some(0));
    assert_eq!(s.notify_failures(&broken).unwrap(), 1);
    // A name with no command is not claimed: it waits for the config.
    assert_eq!(cursor(&s, &unknown), Some(0));
    assert_eq!(s.notify_failures(&unknown).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_loop_delivers_new_events_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (root, s) = board(dir.path());
    let (h, url) = hook().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(notifier(&root).run(None, stopped));
    let t = task(&s, "live");
    subscribe(&s, &t, "webhook", &url);
    block(&s, &t);
    wait_for(|| h.bodies().len() == 1).await;
    s.unblock_task(&t, None).unwrap();
    wait_for(|| h.bodies().len() == 2).await;
    assert_eq!(h.kinds(), ["blocked", "unblocked"]);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("notifier stops")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_runs_the_notifier() {
    let dir = tempfile::tempdir().unwrap();
    let (root, s) = board(dir.path());
    let (h, url) = hook().await;
    let t = task(&s, "via gateway");
    subscribe(&s, &t, "webhook", &url);
    block(&s, &t);
    let cfg = GatewayConfig::resolve(root.clone(), None, Some(0), None, &KanbanConfig::default());
    let gw = Gateway::start(cfg).await.unwrap();
    wait_for(|| h.bodies().len() == 1).await;
    assert_eq!(h.kinds(), ["blocked"]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_without_notifier_when_notify_in_gateway_is_false() {
    let dir = tempfile::tempdir().unwrap();
    let (root, s) = board(dir.path());
    write_config(&root, "kanban:\n  notify_in_gateway: false\n");
    let (h, url) = hook().await;
    let t = task(&s, "quiet");
    let key = subscribe(&s, &t, "webhook", &url);
    block(&s, &t);
    let cfg = GatewayConfig::resolve(root.clone(), None, Some(0), None, &KanbanConfig::default());
    let gw = Gateway::start(cfg).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    gw.stop().await;
    assert!(h.bodies().is_empty());
    assert_eq!(cursor(&s, &key), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_notifiers_on_one_board_send_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let (root, s) = board(dir.path());
    let (h, url) = hook().await;
    let mut expected = 0;
    for i in 0..10 {
        let t = task(&s, &format!("t{i}"));
        subscribe(&s, &t, "webhook", &url);
        block(&s, &t);
        s.unblock_task(&t, None).unwrap();
        expected += 2;
    }
    let (mut a, mut b) = (notifier(&root), notifier(&root));
    let (ra, rb) = tokio::join!(a.round(), b.round());
    assert_eq!(ra.delivered + rb.delivered, expected);
    let mut ids: Vec<i64> = h
        .bodies()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), expected, "no event sent twice");
}

#[test]
fn settings_read_our_keys_from_the_kanban_section() {
    let yaml = "kanban:\n  dispatch_in_gateway: true\n  notify_in_gateway: false\n  \
                notify_exec:\n    a: [\"/bin/echo\", \"x\"]\n    b: \"/usr/bin/logger\"\n    \
                bad: {x: 1}\n    empty: []\n";
    let s = NotifySettings::from_yaml(yaml, true);
    assert!(!s.enabled);
    assert_eq!(s.exec.len(), 2);
    assert_eq!(s.exec["a"], ["/bin/echo", "x"]);
    assert_eq!(s.exec["b"], ["/usr/bin/logger"]);
    // Without notify_in_gateway the dispatcher switch decides (0.19.0).
    assert!(!NotifySettings::from_yaml("kanban: {}\n", false).enabled);
    assert!(NotifySettings::from_yaml("", true).enabled);
}

async fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
