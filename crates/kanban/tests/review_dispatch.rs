//! `kanban.review_dispatch`, black-box: off, `kanban dispatch` and the
//! gateway leave cards in Review for a human; turned on in `config.yaml`,
//! the next pass (the gateway's included: it re-reads the file) starts
//! the reviewer. `kanban daemon --force` builds its options from the same
//! config per pass (`command::dispatch::options`).

use kanban_testkit::{Sandbox, expect_until};
use serde_json::{Value, json};

/// A card implemented by `coder`, waiting in review for the `rev` profile.
fn waiting_review(b: &Sandbox) -> String {
    let t = b.create("T", &["--assignee", "coder"]);
    b.ok(&[
        "request-review",
        &t,
        "--summary",
        "did it",
        "--reviewer",
        "rev",
    ]);
    assert_eq!(b.status(&t), "review");
    t
}

fn spawned(r: &Value) -> Vec<String> {
    r["spawned"]
        .as_array()
        .unwrap_or_else(|| panic!("no spawned list: {r}"))
        .iter()
        .map(|s| s["task_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kanban_dispatch_follows_review_dispatch() {
    let mut b = Sandbox::new();
    b.profile("rev", "sleep 30");
    b.kanban_config("  review_dispatch: false\n");
    let t = waiting_review(&b);
    let r = b.dispatch();
    assert_eq!(spawned(&r), Vec::<String>::new(), "{r}");
    assert_eq!(b.status(&t), "review");
    b.kanban_config("  review_dispatch: true\n");
    let r = b.dispatch();
    assert_eq!(spawned(&r), vec![t.clone()], "{r}");
    assert_eq!(b.status(&t), "running");
    b.ok(&["archive", &t]);
}

#[test]
fn the_gateway_rereads_review_dispatch() {
    let mut b = Sandbox::new();
    b.profile("rev", "sleep 30");
    b.kanban_config("  review_dispatch: no\n");
    let gw = b.gateway();
    let t = waiting_review(&b);
    let nudge = || {
        let r = gw.request("POST", "/api/v1/dispatch", Some(&json!({})));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let r = nudge();
    assert_eq!(spawned(&r), Vec::<String>::new(), "{r}");
    assert_eq!(b.status(&t), "review");
    b.kanban_config("  review_dispatch: yes\n");
    // The gateway's own passes may win the claim: either way it runs.
    expect_until("the reviewer to start", || {
        nudge();
        b.status(&t) == "running"
    });
    b.ok(&["archive", &t]);
}

#[test]
fn the_forced_daemon_rereads_review_dispatch() {
    let mut b = Sandbox::new();
    b.profile("finisher", "$K complete \"$1\"");
    b.profile("rev", "$K complete \"$1\" --summary approved");
    b.kanban_config("  review_dispatch: false\n");
    let t = waiting_review(&b);
    let marker = b.create("marker", &["--assignee", "finisher"]);
    let mut child = b
        .std_cmd()
        .args(["daemon", "--force", "--interval", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The pass that claimed the marker looked at the review column too.
    expect_until("the daemon to run the marker", || {
        b.status(&marker) == "done"
    });
    assert_eq!(b.status(&t), "review");
    b.kanban_config("  review_dispatch: true\n");
    expect_until("the reviewer to approve", || b.status(&t) == "done");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
