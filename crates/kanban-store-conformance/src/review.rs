//! The review flow (newer Hermes): request-review, request-changes and
//! reopen-review with their run outcomes, events and refusals.

use kanban_core::Status;
use kanban_store::*;
use serde_json::json;

use crate::support::*;

fn review_req(id: &str, summary: &str) -> ReviewRequest {
    ReviewRequest {
        task_id: id.into(),
        summary: summary.into(),
        ..Default::default()
    }
}

/// Claim a task waiting in review (the dispatcher's review pass).
fn claim_review(s: &dyn Store, id: &str) -> i64 {
    let req = ClaimRequest {
        review: true,
        ..claim_req(id, "host:rev")
    };
    match s.claim_task(&req).expect("review claim") {
        ClaimOutcome::Claimed { run_id, .. } => run_id,
        other => panic!("review claim of {id} did not win: {other:?}"),
    }
}

fn changes(id: &str, reason: &str) -> ChangesRequest {
    ChangesRequest {
        task_id: id.into(),
        reason: reason.into(),
        expected_run_id: None,
    }
}

pub fn request_review_closes_the_run_and_hands_over(s: &dyn Store) {
    let t = create(s, "implement");
    let run = claim(s, &t.id);
    let out = s
        .request_review(&ReviewRequest {
            metadata: Some(json!({"changed_files": ["a.rs"]})),
            reviewer: Some("rev".into()),
            expected_run_id: Some(run),
            ..review_req(&t.id, "implemented it\nall tests pass")
        })
        .unwrap();
    assert_eq!(
        (out.from, out.to, out.run_id),
        (Status::Running, Status::Review, Some(run))
    );
    let task = get(s, &t.id);
    assert_eq!(task.status, Status::Review);
    assert_eq!(task.assignee.as_deref(), Some("rev"));
    assert_eq!((task.claim_lock, task.current_run_id), (None, None));
    let r = &s.runs(&t.id).unwrap()[0];
    assert_eq!(
        (r.status.as_str(), r.outcome.as_deref()),
        ("review_requested", Some("review_requested"))
    );
    assert_eq!(r.summary.as_deref(), Some("implemented it\nall tests pass"));
    assert_eq!(r.metadata, Some(json!({"changed_files": ["a.rs"]})));
    assert!(r.ended_at.is_some());
    let ev = last_event(s, &t.id, "review_requested");
    assert_eq!(ev.run_id, Some(run));
    assert_eq!(
        ev.payload,
        json!({"summary": "implemented it", "reviewer": "rev", "implementer": "coder"})
    );
}

pub fn request_review_without_a_run_synthesizes_one(s: &dyn Store) {
    let t = create(s, "ready work");
    let out = s
        .request_review(&review_req(&t.id, "done by hand"))
        .unwrap();
    assert_eq!(out.to, Status::Review);
    // No reviewer named: the assignee reviews its own card.
    assert_eq!(get(s, &t.id).assignee.as_deref(), Some("coder"));
    let runs = s.runs(&t.id).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].started_at, runs[0].ended_at.unwrap());
    assert_eq!(out.run_id, Some(runs[0].id));
}

pub fn request_review_refuses_bad_input_and_changes_nothing(s: &dyn Store) {
    let t = create(s, "x");
    let run = claim(s, &t.id);
    let before = events(s, &t.id).len();
    for bad in [
        review_req(&t.id, "  "),
        ReviewRequest {
            metadata: Some(json!([1])),
            ..review_req(&t.id, "ok")
        },
        ReviewRequest {
            reviewer: Some(" ".into()),
            ..review_req(&t.id, "ok")
        },
    ] {
        assert!(
            matches!(s.request_review(&bad), Err(StoreError::Invalid(_))),
            "{bad:?}"
        );
    }
    let stale = ReviewRequest {
        expected_run_id: Some(run + 1000),
        ..review_req(&t.id, "ok")
    };
    assert!(matches!(
        s.request_review(&stale),
        Err(StoreError::Stale { .. })
    ));
    assert!(matches!(
        s.request_review(&review_req("t_00000000", "ok")),
        Err(StoreError::TaskNotFound(_))
    ));
    let todo = child_of(s, "waits", &[&t.id]);
    let why = refused_reason(s.request_review(&review_req(&todo.id, "ok")).unwrap_err());
    assert!(
        why.contains("request-review applies only to running, ready"),
        "{why}"
    );
    assert_eq!(status(s, &t.id), Status::Running);
    assert_eq!(events(s, &t.id).len(), before);
    assert_eq!(open_runs(s, &t.id), vec![run]);
}

pub fn request_changes_returns_the_card_to_its_implementer(s: &dyn Store) {
    let t = create(s, "implement");
    claim(s, &t.id);
    s.request_review(&ReviewRequest {
        reviewer: Some("rev".into()),
        ..review_req(&t.id, "please look")
    })
    .unwrap();
    let review_run = claim_review(s, &t.id);
    assert_eq!(get(s, &t.id).assignee.as_deref(), Some("rev"));
    let out = s
        .request_changes(&ChangesRequest {
            expected_run_id: Some(review_run),
            ..changes(&t.id, "add a test for the empty case")
        })
        .unwrap();
    assert_eq!(
        (out.from, out.to, out.run_id),
        (Status::Running, Status::Ready, Some(review_run))
    );
    let task = get(s, &t.id);
    assert_eq!(task.assignee.as_deref(), Some("coder"));
    assert_eq!((task.claim_lock, task.current_run_id), (None, None));
    // Not a block: the loop breaker's memory is untouched.
    assert_eq!((task.block_kind, task.block_recurrences), (None, 0));
    let r = s
        .runs(&t.id)
        .unwrap()
        .into_iter()
        .find(|r| r.id == review_run)
        .unwrap();
    assert_eq!(
        (
            r.status.as_str(),
            r.outcome.as_deref(),
            r.summary.as_deref()
        ),
        (
            "changes_requested",
            Some("changes_requested"),
            Some("add a test for the empty case")
        )
    );
    let ev = last_event(s, &t.id, "review_reopened");
    assert_eq!(ev.run_id, Some(review_run));
    assert_eq!(
        ev.payload,
        json!({"reason": "add a test for the empty case", "status": "ready",
               "assignee": "coder", "source": "request_changes"})
    );
    assert!(!kinds(s, &t.id).contains(&"blocked".to_string()));
}

pub fn request_changes_reapplies_parent_gating(s: &dyn Store) {
    let t = create(s, "implement");
    s.request_review(&review_req(&t.id, "look")).unwrap();
    let parent = create(s, "late prerequisite");
    s.link_tasks(&parent.id, &t.id).unwrap();
    claim_review(s, &t.id);
    let out = s
        .request_changes(&changes(&t.id, "wait for the schema"))
        .unwrap();
    assert_eq!(out.to, Status::Todo);
    assert_eq!(
        last_event(s, &t.id, "review_reopened").payload["status"],
        json!("todo")
    );
}

pub fn request_changes_is_only_a_reviewers_verdict(s: &dyn Store) {
    let t = create(s, "x");
    let run = claim(s, &t.id);
    let before = events(s, &t.id).len();
    let why = refused_reason(s.request_changes(&changes(&t.id, "no")).unwrap_err());
    assert!(why.contains("not under review"), "{why}");
    assert!(matches!(
        s.request_changes(&changes(&t.id, " ")),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(events(s, &t.id).len(), before);
    assert_eq!(open_runs(s, &t.id), vec![run]);

    let waiting = create(s, "waiting");
    s.request_review(&review_req(&waiting.id, "look")).unwrap();
    let why = refused_reason(s.request_changes(&changes(&waiting.id, "no")).unwrap_err());
    assert!(why.contains("task is review"), "{why}");
    let review_run = claim_review(s, &waiting.id);
    let stale = ChangesRequest {
        expected_run_id: Some(review_run + 1000),
        ..changes(&waiting.id, "fix")
    };
    assert!(matches!(
        s.request_changes(&stale),
        Err(StoreError::Stale { .. })
    ));
    assert_eq!(status(s, &waiting.id), Status::Running);
}

pub fn reopen_review_sends_a_waiting_card_back(s: &dyn Store) {
    let t = create(s, "implement");
    s.request_review(&ReviewRequest {
        reviewer: Some("rev".into()),
        ..review_req(&t.id, "look")
    })
    .unwrap();
    let runs_before = s.runs(&t.id).unwrap().len();
    let out = s.reopen_review(&t.id, Some("rename the flag")).unwrap();
    assert_eq!((out.from, out.to), (Status::Review, Status::Ready));
    assert_eq!(get(s, &t.id).assignee.as_deref(), Some("coder"));
    let runs = s.runs(&t.id).unwrap();
    assert_eq!(runs.len(), runs_before + 1);
    let kept = runs.last().unwrap();
    assert_eq!(
        (kept.outcome.as_deref(), kept.summary.as_deref()),
        (Some("changes_requested"), Some("rename the flag"))
    );
    let ev = last_event(s, &t.id, "review_reopened");
    assert_eq!(ev.run_id, Some(kept.id));
    assert_eq!(
        ev.payload,
        json!({"reason": "rename the flag", "status": "ready", "assignee": "coder",
               "source": "reopen_review"})
    );

    // Without a reason no run is invented.
    s.request_review(&review_req(&t.id, "again")).unwrap();
    let n = s.runs(&t.id).unwrap().len();
    let out = s.reopen_review(&t.id, None).unwrap();
    assert_eq!((out.to, out.run_id), (Status::Ready, None));
    assert_eq!(s.runs(&t.id).unwrap().len(), n);
}

pub fn reopen_review_refuses_other_statuses(s: &dyn Store) {
    let t = create(s, "x");
    let before = events(s, &t.id).len();
    let why = refused_reason(s.reopen_review(&t.id, None).unwrap_err());
    assert!(
        why.contains("reopen-review applies only to review"),
        "{why}"
    );
    s.request_review(&review_req(&t.id, "look")).unwrap();
    claim_review(s, &t.id);
    let why = refused_reason(s.reopen_review(&t.id, None).unwrap_err());
    assert!(why.contains("task is running"), "{why}");
    assert!(matches!(
        s.reopen_review("t_00000000", None),
        Err(StoreError::TaskNotFound(_))
    ));
    assert_eq!(status(s, &t.id), Status::Running);
    assert!(events(s, &t.id).len() > before);
}

pub fn approve_review_completes_a_waiting_card(s: &dyn Store) {
    let t = create(s, "implement");
    let child = child_of(s, "after it", &[&t.id]);
    s.request_review(&ReviewRequest {
        reviewer: Some("rev".into()),
        ..review_req(&t.id, "look")
    })
    .unwrap();
    let runs_before = s.runs(&t.id).unwrap().len();
    let out = s.approve_review(&t.id, Some("  looks right  ")).unwrap();
    assert_eq!((out.from, out.to), (Status::Review, Status::Done));
    let task = get(s, &t.id);
    assert_eq!(task.status, Status::Done);
    assert!(task.completed_at.is_some());
    assert_eq!((task.claim_lock, task.current_run_id), (None, None));
    let runs = s.runs(&t.id).unwrap();
    assert_eq!(runs.len(), runs_before + 1);
    let kept = runs.last().unwrap();
    assert_eq!(
        (kept.outcome.as_deref(), kept.summary.as_deref()),
        (Some("completed"), Some("looks right"))
    );
    assert_eq!(out.run_id, Some(kept.id));
    let ev = last_event(s, &t.id, "completed");
    assert_eq!(ev.run_id, Some(kept.id));
    assert_eq!(ev.payload["source"], json!("approve"));
    assert_eq!(ev.payload["summary"], json!("looks right"));
    // Children wait on it like on any completion.
    assert_eq!(status(s, &child.id), Status::Ready);
}

pub fn approve_review_refuses_what_is_not_waiting_in_review(s: &dyn Store) {
    let t = create(s, "x");
    let before = events(s, &t.id).len();
    let why = refused_reason(s.approve_review(&t.id, None).unwrap_err());
    assert!(why.contains("approve applies only to review"), "{why}");
    assert_eq!(events(s, &t.id).len(), before);
    assert_eq!(status(s, &t.id), Status::Ready);
    // A reviewer on it: its own attempt completes it, not an approval.
    s.request_review(&review_req(&t.id, "look")).unwrap();
    claim_review(s, &t.id);
    let n = events(s, &t.id).len();
    let why = refused_reason(s.approve_review(&t.id, Some("ok")).unwrap_err());
    assert!(why.contains("task is running"), "{why}");
    assert_eq!(events(s, &t.id).len(), n);
    assert_eq!(status(s, &t.id), Status::Running);
    assert!(matches!(
        s.approve_review("t_00000000", None),
        Err(StoreError::TaskNotFound(_))
    ));
}
