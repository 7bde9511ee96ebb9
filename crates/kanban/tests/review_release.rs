//! A reviewer that dies without a verdict, black-box through `kanban
//! dispatch`: the card goes back to review for a reviewer again (never to
//! ready, where the assignee would run it as ordinary work without the
//! review skill), and the breaker still blocks a reviewer that keeps
//! crashing.

use kanban_testkit::Sandbox;
use serde_json::Value;

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

/// The payloads of the task's `claimed` events, oldest first.
fn claims(b: &Sandbox, id: &str) -> Vec<Value> {
    let db = b.db();
    let mut st = db
        .prepare(
            "SELECT payload FROM task_events WHERE task_id = ?1 AND kind = 'claimed' ORDER BY id",
        )
        .unwrap();
    st.query_map([id], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|p| serde_json::from_str(&p.unwrap()).unwrap())
        .collect()
}

#[test]
fn a_crashed_reviewer_sends_the_card_back_to_review() {
    let mut b = Sandbox::new();
    b.profile("rev", "echo boom >&2\nexit 3");
    let t = waiting_review(&b);
    b.dispatch_until("the reviewer to start", |h| {
        h.event_count(&t, "claimed") == 1
    });
    // No further review passes: the card must wait where the crash left it.
    b.kanban_config("  review_dispatch: false\n");
    b.dispatch_until("the crash to be recorded", |h| {
        h.event_count(&t, "crashed") == 1
    });
    assert_eq!(b.status(&t), "review");
    let show = b.task(&t);
    assert_eq!(show["task"]["assignee"], "rev", "{show}");
    assert_eq!(
        b.event_count(&t, "claimed"),
        1,
        "nothing ran it as ready work"
    );
    assert_eq!(
        b.outcomes(&t),
        vec![Some("review_requested".into()), Some("crashed".into())]
    );
}

#[test]
fn a_reviewer_that_keeps_crashing_is_reclaimed_for_review_then_blocked() {
    let mut b = Sandbox::new();
    b.profile("rev", "echo boom >&2\nexit 3");
    let t = waiting_review(&b);
    b.settle(&[&t], &["blocked"]);
    // Both attempts were review claims: the crash re-queued it in review.
    let claims = claims(&b, &t);
    assert_eq!(claims.len(), 2, "{claims:?}");
    for c in &claims {
        assert_eq!(c["source_status"], "review", "{claims:?}");
    }
    assert_eq!(
        b.outcomes(&t),
        vec![
            Some("review_requested".into()),
            Some("crashed".into()),
            Some("crashed".into())
        ]
    );
    assert_eq!(b.event_count(&t, "gave_up"), 1);
}
