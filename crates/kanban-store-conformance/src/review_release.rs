//! A review attempt that ends without a verdict (the reviewer crashed,
//! timed out, went stale, was rate limited or reclaimed, or its worker
//! never started) goes back to review, waiting for a reviewer again; never
//! to ready, where the implementer's profile would pick it up as ordinary
//! work. Failure counting and the breaker work as for ready work.

use kanban_core::{EventKind, RunOutcome, Status};
use kanban_store::dispatch_ops::*;
use kanban_store::*;
use serde_json::json;

use crate::support::*;

/// A card implemented by `coder`, waiting in review for `rev`.
fn in_review(s: &dyn Store, title: &str) -> String {
    let id = create(s, title).id;
    let req = ReviewRequest {
        task_id: id.clone(),
        summary: "implemented".into(),
        reviewer: Some("rev".into()),
        ..Default::default()
    };
    assert_eq!(s.request_review(&req).unwrap().to, Status::Review);
    id
}

/// The dispatcher's review claim (lock `host:1`, as [`crash`] expects).
fn claim_review(s: &dyn Store, id: &str) -> i64 {
    let req = ClaimRequest {
        review: true,
        ..claim_req(id, "host:1")
    };
    match s.claim_task(&req).expect("review claim") {
        ClaimOutcome::Claimed { run_id, .. } => run_id,
        other => panic!("review claim of {id} did not win: {other:?}"),
    }
}

/// Back in review, unclaimed, still assigned to the reviewer.
fn assert_waiting_for_review(s: &dyn Store, id: &str) {
    let t = get(s, id);
    assert_eq!(t.status, Status::Review, "{id}");
    assert_eq!((t.claim_lock, t.current_run_id), (None, None), "{id}");
    assert_eq!(t.assignee.as_deref(), Some("rev"), "{id}");
}

pub fn a_crashed_review_attempt_waits_for_a_reviewer_again(s: &dyn DispatchStore) {
    let id = in_review(s, "crash");
    let run = claim_review(s, &id);
    let r = s.release_running(&crash(&id, run, counted(3))).unwrap();
    assert!(r.released && !r.auto_blocked);
    assert_eq!((r.failures, r.run_id), (1, Some(run)));
    assert_waiting_for_review(s, &id);
    assert_eq!(get(s, &id).consecutive_failures, 1);
    let ev = last_event(s, &id, "crashed");
    assert_eq!((ev.payload, ev.run_id), (json!({"pid": 5}), Some(run)));
    // Every other end of an attempt without a verdict lands there too.
    for (outcome, event) in [
        (RunOutcome::TimedOut, EventKind::TimedOut),
        (RunOutcome::Stale, EventKind::Stale),
        (RunOutcome::RateLimited, EventKind::RateLimited),
        (RunOutcome::Reclaimed, EventKind::Reclaimed),
    ] {
        let run = claim_review(s, &id);
        let req = ReleaseRunning {
            event,
            ..release_as(&id, run, outcome, json!({}))
        };
        assert!(s.release_running(&req).unwrap().released, "{outcome:?}");
        assert_waiting_for_review(s, &id);
        let last = s.runs(&id).unwrap().pop().unwrap();
        assert_eq!(last.outcome.as_deref(), Some(outcome.as_str()));
    }
    assert_eq!(get(s, &id).consecutive_failures, 1, "uncounted releases");
    // The reviewer is dispatched again from review.
    let review = s.dispatch_candidates(Status::Review).unwrap();
    assert!(review.iter().any(|t| t.id == id), "{review:?}");
    let ready = s.dispatch_candidates(Status::Ready).unwrap();
    assert!(!ready.iter().any(|t| t.id == id), "{ready:?}");
}

pub fn a_reclaimed_review_attempt_waits_for_a_reviewer_again(s: &dyn Store) {
    let id = in_review(s, "reclaim");
    let run = claim_review(s, &id);
    let r = s.reclaim_task(&id, Some("hung reviewer")).unwrap();
    assert_eq!(
        (r.from, r.to, r.run_id),
        (Status::Running, Status::Review, Some(run))
    );
    assert_waiting_for_review(s, &id);
    let ev = last_event(s, &id, "reclaimed");
    assert_eq!(
        (ev.run_id, ev.payload["manual"].clone()),
        (Some(run), json!(true))
    );
    assert_eq!(
        s.runs(&id).unwrap().pop().unwrap().outcome.as_deref(),
        Some("reclaimed")
    );
    // Nothing holds it now: a second reclaim is refused.
    assert!(s.reclaim_task(&id, None).is_err());
}

pub fn a_review_claim_whose_spawn_failed_waits_for_a_reviewer_again(s: &dyn DispatchStore) {
    // A single claim, recorded alone.
    let id = in_review(s, "spawn");
    let run = claim_review(s, &id);
    let f = SpawnFailure {
        task_id: id.clone(),
        run_id: Some(run),
        error: "`hermes` not found".into(),
        failure_limit: 3,
    };
    let r = s.record_spawn_failure(&f).unwrap();
    assert!(r.released && !r.auto_blocked);
    assert_waiting_for_review(s, &id);
    assert_eq!(get(s, &id).consecutive_failures, 1);
    assert_eq!(kinds(s, &id).last().unwrap(), "spawn_failed");
    // A batch claim, recorded with the batch's launches.
    let batched = in_review(s, "spawn batch");
    let batch = ClaimBatch {
        claims: vec![BatchClaim {
            task_id: batched.clone(),
            review: true,
        }],
        claim_lock: "h:4000".into(),
        ttl_seconds: 900,
        ceilings: Ceilings::default(),
        launcher: None,
    };
    let ClaimOutcome::Claimed { run_id, .. } = s.claim_batch(&batch).unwrap()[0] else {
        panic!("batch review claim of {batched} did not win")
    };
    let launches = LaunchBatch {
        failures: vec![SpawnFailure {
            task_id: batched.clone(),
            run_id: Some(run_id),
            ..f
        }],
        ..Default::default()
    };
    let out = s.record_launches(&launches).unwrap();
    assert!(out.failures[0].released);
    assert_waiting_for_review(s, &batched);
}

/// Ready work still goes back to ready, also on a card that was reviewed
/// before: what counts is the claim of the attempt that ended.
pub fn a_crashed_ready_attempt_still_goes_back_to_ready(s: &dyn DispatchStore) {
    let id = in_review(s, "sent back");
    let review_run = claim_review(s, &id);
    let changes = ChangesRequest {
        task_id: id.clone(),
        reason: "tests missing".into(),
        expected_run_id: Some(review_run),
    };
    assert_eq!(s.request_changes(&changes).unwrap().to, Status::Ready);
    let run = claim(s, &id);
    let r = s.release_running(&crash(&id, run, counted(3))).unwrap();
    assert!(r.released && !r.auto_blocked);
    assert_eq!(status(s, &id), Status::Ready);
    let plain = create(s, "plain").id;
    let run = claim(s, &plain);
    assert!(
        s.release_running(&crash(&plain, run, counted(3)))
            .unwrap()
            .released
    );
    assert_eq!(status(s, &plain), Status::Ready);
    let run = claim(s, &plain);
    assert_eq!(s.reclaim_task(&plain, None).unwrap().to, Status::Ready);
    assert_eq!(s.runs(&plain).unwrap().pop().unwrap().id, run);
}

/// Failing reviews count toward the breaker, which blocks the card as it
/// blocks ready work.
pub fn the_breaker_still_blocks_a_failing_review(s: &dyn DispatchStore) {
    let id = in_review(s, "crash loop");
    let run = claim_review(s, &id);
    assert!(
        !s.release_running(&crash(&id, run, counted(2)))
            .unwrap()
            .auto_blocked
    );
    assert_eq!(status(s, &id), Status::Review);
    let run = claim_review(s, &id);
    let r = s.release_running(&crash(&id, run, counted(2))).unwrap();
    assert!(r.released && r.auto_blocked);
    let t = get(s, &id);
    assert_eq!(
        (t.status, t.consecutive_failures, t.claim_lock),
        (Status::Blocked, 2, None)
    );
    let gave_up = last_event(s, &id, "gave_up").payload;
    assert_eq!(gave_up["trigger_outcome"], "crashed");
    assert_eq!(kinds(s, &id).last().unwrap(), "gave_up");
    // A spawn failure at the limit trips it the same way.
    let spawn = in_review(s, "spawn loop");
    let run = claim_review(s, &spawn);
    let f = SpawnFailure {
        task_id: spawn.clone(),
        run_id: Some(run),
        error: "`hermes` not found".into(),
        failure_limit: 1,
    };
    assert!(s.record_spawn_failure(&f).unwrap().auto_blocked);
    assert_eq!(status(s, &spawn), Status::Blocked);
    assert_eq!(
        s.runs(&spawn).unwrap().pop().unwrap().outcome.as_deref(),
        Some("gave_up")
    );
}
