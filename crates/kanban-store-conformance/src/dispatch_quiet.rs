//! What lets a dispatch pass read less: the respawn-guard facts of a whole
//! batch of candidates in one read, and the board's version, which a
//! dispatcher compares to skip the reads of a pass when nothing changed.

use kanban_core::{RunOutcome, Status};
use kanban_store::dispatch_ops::*;
use kanban_store::*;
use serde_json::json;

use crate::Board;
use crate::support::*;

/// The batched read answers exactly what one read per task answers, in
/// the order asked, for every kind of history the guard looks at.
pub fn guard_facts_of_a_batch_match_one_by_one(s: &dyn DispatchStore) {
    let fresh = create(s, "fresh").id;
    let done = create(s, "done").id;
    let run = claim(s, &done);
    s.complete_task(&CompleteRequest {
        task_id: done.clone(),
        summary: Some("ok".into()),
        expected_run_id: Some(run),
        ..Default::default()
    })
    .unwrap();
    s.add_comment(&done, "w", "PR: https://github.com/a/b/pull/12")
        .unwrap();
    s.add_comment(&done, "w", "and a second word").unwrap();
    let requeued = create(s, "requeued").id;
    let run = claim(s, &requeued);
    s.complete_task(&CompleteRequest {
        task_id: requeued.clone(),
        expected_run_id: Some(run),
        ..Default::default()
    })
    .unwrap();
    s.set_status_direct(&requeued, Status::Ready).unwrap();
    let failed = create(s, "failed").id;
    let run = fail_spawn(s, &failed);
    let retry_at = s.now() + 30;
    let retry = SpawnRetry {
        task_id: failed.clone(),
        run_id: run,
        next_attempt_at: retry_at,
    };
    assert_eq!(s.schedule_spawn_retries(&[retry]).unwrap(), 1);
    let limited = create(s, "limited").id;
    let run = claim(s, &limited);
    let mut req = release_as(&limited, run, RunOutcome::RateLimited, json!({}));
    req.stamp_error = true;
    assert!(s.release_running(&req).unwrap().released);
    let ids = vec![
        limited.clone(),
        "t_nosuchtask".to_string(),
        fresh.clone(),
        done.clone(),
        failed.clone(),
        requeued.clone(),
        done.clone(),
    ];
    let now = s.now();
    for (success_since, comments_since) in [(now - 3600, now - 86_400), (now + 1, now + 1)] {
        let one_by_one: Vec<GuardFacts> = ids
            .iter()
            .map(|id| {
                s.respawn_guard_facts(id, success_since, comments_since)
                    .unwrap()
            })
            .collect();
        let batch = s
            .respawn_guard_facts_of(&ids, success_since, comments_since)
            .unwrap();
        assert_eq!(batch, one_by_one, "windows from {success_since}");
    }
    // The histories really differ (the comparison above is not vacuous).
    let batch = s
        .respawn_guard_facts_of(&ids, now - 3600, now - 86_400)
        .unwrap();
    assert_eq!(batch[1], GuardFacts::default(), "no such task");
    assert_eq!(batch[2], GuardFacts::default(), "a fresh task");
    assert_eq!(batch[3].recent_comments.len(), 2);
    assert!(batch[3].recent_completion.is_some());
    assert_eq!(batch[4].spawn_retry_at, Some(retry_at));
    assert!(batch[5].requeued_after_completion);
    assert_eq!(batch[0].latest_run.as_ref().unwrap().0, "rate_limited");
    assert!(batch[0].last_failure_error.is_some());
    assert!(
        s.respawn_guard_facts_of(&[], now, now).unwrap().is_empty(),
        "an empty batch"
    );
}

/// A handle's version reading moves when anyone committed since its last
/// reading (this handle or another), and stays while nobody did.
pub fn board_version_moves_with_every_commit_and_only_then(board: &Board<'_>) {
    let a = board.open();
    let b = board.open();
    let version = |s: &dyn DispatchStore| {
        s.board_version()
            .unwrap()
            .expect("the backends of this suite tell their version")
    };
    let v0 = version(&*a);
    let id = create(&*b, "seen").id;
    let v1 = version(&*a);
    assert_ne!(v1, v0, "a commit through another handle");
    // Reads of any handle are no change.
    a.get_task(&id).unwrap();
    b.dispatch_candidates(Status::Ready).unwrap();
    a.respawn_guard_facts_of(std::slice::from_ref(&id), 0, 0)
        .unwrap();
    assert_eq!(version(&*a), v1, "nobody committed");
    assert_eq!(version(&*a), v1, "still nobody");
    claim(&*a, &id);
    let v2 = version(&*a);
    assert_ne!(v2, v1, "a commit through this handle");
    let vb = version(&*b);
    a.add_comment(&id, "w", "note").unwrap();
    assert_ne!(version(&*b), vb, "the other handle sees it too");
    assert_ne!(version(&*a), v2);
}
