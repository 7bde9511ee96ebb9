//! Every lifecycle transition with its event kind and payload keys.

use std::collections::BTreeMap;

use kanban_core::{BlockKind, Status};
use kanban_store::*;
use serde_json::json;

use crate::support::*;

pub fn claim_opens_a_run(s: &dyn Store) {
    let t = create(s, "work");
    let out = s.claim_task(&claim_req(&t.id, "host:7")).unwrap();
    let ClaimOutcome::Claimed { task, run_id } = out else {
        panic!("{out:?}")
    };
    assert_eq!(task.status, Status::Running);
    assert_eq!(task.claim_lock.as_deref(), Some("host:7"));
    assert_eq!(task.current_run_id, Some(run_id));
    let started = task.started_at.expect("started_at set");
    assert_eq!(task.claim_expires, Some(started + 900));
    let ev = last_event(s, &t.id, "claimed");
    assert_keys(&ev.payload, &["lock", "expires", "run_id"]);
    assert_eq!(ev.payload["run_id"], json!(run_id));
    assert_eq!(ev.run_id, Some(run_id));
    let runs = s.runs(&t.id).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].status.as_str(), runs[0].profile.as_deref()),
        ("running", Some("coder"))
    );

    match s.claim_task(&claim_req(&t.id, "host:8")).unwrap() {
        ClaimOutcome::Lost { status, claim_lock } => {
            assert_eq!(
                (status, claim_lock.as_deref()),
                (Status::Running, Some("host:7"))
            )
        }
        other => panic!("{other:?}"),
    }
    let todo = child_of(s, "todo", &[&t.id]);
    assert!(matches!(
        s.claim_task(&claim_req(&todo.id, "h:1")).unwrap(),
        ClaimOutcome::Lost { .. }
    ));
    assert!(matches!(
        s.claim_task(&claim_req("t_00000000", "h:1")),
        Err(StoreError::TaskNotFound(_))
    ));

    // started_at is the first claim ever: a re-claim keeps it.
    s.reclaim_task(&t.id, None).unwrap();
    claim(s, &t.id);
    assert_eq!(get(s, &t.id).started_at, Some(started));
}

pub fn claim_with_pending_parents_demotes(s: &dyn Store) {
    let p = create(s, "parent");
    let c = child_of(s, "child", &[&p.id]);
    s.promote_task(&PromoteRequest {
        task_id: c.id.clone(),
        force: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(status(s, &c.id), Status::Ready);
    assert!(matches!(
        s.claim_task(&claim_req(&c.id, "h:1")).unwrap(),
        ClaimOutcome::ParentsPending
    ));
    assert_eq!(status(s, &c.id), Status::Todo);
    assert_eq!(
        last_event(s, &c.id, "claim_rejected").payload,
        json!({"reason": "parents_not_done"})
    );
    assert!(!kinds(s, &c.id).contains(&"claimed".to_string()));
}

pub fn claim_respects_ceilings(s: &dyn Store) {
    let ids: Vec<String> = (0..5).map(|i| create(s, &format!("t{i}")).id).collect();
    let other = create_with(
        s,
        NewTask {
            assignee: Some("other".into()),
            ..new_task("o")
        },
    );
    let with = |id: &str, c: Ceilings| ClaimRequest {
        ceilings: c,
        ..claim_req(id, "h:1")
    };
    let global = Ceilings {
        max_running: Some(2),
        ..Default::default()
    };
    assert!(matches!(
        s.claim_task(&with(&ids[0], global.clone())).unwrap(),
        ClaimOutcome::Claimed { .. }
    ));
    assert!(matches!(
        s.claim_task(&with(&ids[1], global.clone())).unwrap(),
        ClaimOutcome::Claimed { .. }
    ));
    let full = s.claim_task(&with(&ids[2], global)).unwrap();
    let ClaimOutcome::CeilingReached(name) = full else {
        panic!("{full:?}")
    };
    assert!(name.starts_with("max_running"), "{name}");
    assert_eq!(status(s, &ids[2]), Status::Ready);
    assert_eq!(
        kinds(s, &ids[2]),
        vec!["created"],
        "a full ceiling writes nothing"
    );

    let inprog = Ceilings {
        max_in_progress: Some(2),
        ..Default::default()
    };
    assert!(matches!(
        s.claim_task(&with(&ids[2], inprog)).unwrap(),
        ClaimOutcome::CeilingReached(_)
    ));
    let per = Ceilings {
        max_per_profile: Some(2),
        ..Default::default()
    };
    assert!(matches!(
        s.claim_task(&with(&ids[2], per.clone())).unwrap(),
        ClaimOutcome::CeilingReached(_)
    ));
    // Another profile is not capped by coder's count...
    assert!(matches!(
        s.claim_task(&with(&other.id, per)).unwrap(),
        ClaimOutcome::Claimed { .. }
    ));
    // ...and a per-profile override beats the default cap.
    let mut limits = BTreeMap::new();
    limits.insert("coder".to_string(), 3);
    let over = Ceilings {
        max_per_profile: Some(2),
        profile_limits: limits,
        ..Default::default()
    };
    assert!(matches!(
        s.claim_task(&with(&ids[2], over.clone())).unwrap(),
        ClaimOutcome::Claimed { .. }
    ));
    let full = s.claim_task(&with(&ids[3], over)).unwrap();
    let ClaimOutcome::CeilingReached(name) = full else {
        panic!("{full:?}")
    };
    assert!(name.starts_with("profile_limits[coder]"), "{name}");
}

pub fn review_claim(s: &dyn Store) {
    let t = create(s, "r");
    let req = ClaimRequest {
        review: true,
        ..claim_req(&t.id, "h:1")
    };
    assert!(matches!(
        s.claim_task(&req).unwrap(),
        ClaimOutcome::Lost {
            status: Status::Ready,
            ..
        }
    ));
}

pub fn heartbeat_extends_and_is_fenced(s: &dyn Store) {
    let t = create(s, "hb");
    let run = claim(s, &t.id);
    s.heartbeat(&HeartbeatRequest {
        task_id: t.id.clone(),
        note: Some("50%".into()),
        ..Default::default()
    })
    .unwrap();
    let ev = last_event(s, &t.id, "heartbeat");
    assert_eq!(
        (ev.payload.clone(), ev.run_id),
        (json!({"note": "50%"}), Some(run))
    );
    assert!(get(s, &t.id).last_heartbeat_at.is_some());
    s.heartbeat(&HeartbeatRequest {
        task_id: t.id.clone(),
        run_id: Some(run),
        claim_lock: Some("host:1".into()),
        ttl_seconds: Some(5000),
        ..Default::default()
    })
    .unwrap();
    let now = get(s, &t.id).last_heartbeat_at.unwrap();
    assert_eq!(get(s, &t.id).claim_expires, Some(now + 5000));
    let stale = s.heartbeat(&HeartbeatRequest {
        task_id: t.id.clone(),
        run_id: Some(run + 100),
        ..Default::default()
    });
    assert!(matches!(stale, Err(StoreError::Stale { .. })));
    let wrong_lock = s.heartbeat(&HeartbeatRequest {
        task_id: t.id.clone(),
        claim_lock: Some("x:1".into()),
        ..Default::default()
    });
    assert!(matches!(wrong_lock, Err(StoreError::Stale { .. })));
    let idle = create(s, "idle");
    let e = s
        .heartbeat(&HeartbeatRequest {
            task_id: idle.id.clone(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(refused_reason(e).contains("task is ready"));
}

pub fn complete_closes_the_run(s: &dyn Store) {
    let p = create(s, "parent");
    let c = child_of(s, "child", &[&p.id]);
    let run = claim(s, &p.id);
    let done = s
        .complete_task(&CompleteRequest {
            task_id: p.id.clone(),
            result: Some("ok".into()),
            summary: Some("all good\nmore".into()),
            metadata: Some(json!({"changed_files": ["a.rs"], "artifacts": ["/tmp/x.png", " "]})),
            expected_run_id: Some(run),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(done.task.status, Status::Done);
    assert_eq!(done.run_id, Some(run));
    assert!(done.task.completed_at.is_some() && done.task.claim_lock.is_none());
    assert_eq!(done.task.current_run_id, None);
    assert_eq!(done.ended_worker, None);
    let r = &s.runs(&p.id).unwrap()[0];
    assert_eq!(
        (r.status.as_str(), r.outcome.as_deref()),
        ("done", Some("completed"))
    );
    assert_eq!(r.summary.as_deref(), Some("all good\nmore"));
    assert_eq!(
        r.metadata.as_ref().unwrap()["changed_files"],
        json!(["a.rs"])
    );
    assert!(r.ended_at.is_some());
    let ev = last_event(s, &p.id, "completed");
    assert_eq!(
        ev.payload,
        json!({"result_len": 2, "summary": "all good", "artifacts": ["/tmp/x.png"]})
    );
    assert_eq!(ev.run_id, Some(run));
    assert_eq!(
        status(s, &c.id),
        Status::Ready,
        "children are re-gated in the same call"
    );
    assert!(events(s, &p.id).iter().map(|e| e.kind.as_str()).eq([
        "created",
        "claimed",
        "completed"
    ]));
    let again = s.complete_task(&CompleteRequest {
        task_id: p.id.clone(),
        ..Default::default()
    });
    assert!(refused_reason(again.unwrap_err()).contains("task is done"));
}

pub fn complete_without_run_synthesizes_one(s: &dyn Store) {
    let t = create(s, "manual");
    let d = s
        .complete_task(&CompleteRequest {
            task_id: t.id.clone(),
            summary: Some("by hand".into()),
            ..Default::default()
        })
        .unwrap();
    let runs = s.runs(&t.id).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(d.run_id, Some(runs[0].id));
    assert_eq!(runs[0].started_at, runs[0].ended_at.unwrap());
    assert_eq!(
        (runs[0].outcome.as_deref(), runs[0].summary.as_deref()),
        (Some("completed"), Some("by hand"))
    );
    let bare = create(s, "bare");
    assert_eq!(complete(s, &bare.id).run_id, None);
    assert!(s.runs(&bare.id).unwrap().is_empty());
    assert_eq!(
        last_event(s, &bare.id, "completed").payload,
        json!({"result_len": 0, "summary": null})
    );
}

pub fn complete_cas_on_run_id(s: &dyn Store) {
    let t = create(s, "cas");
    let first = claim(s, &t.id);
    s.reclaim_task(&t.id, Some("stuck")).unwrap();
    let second = claim(s, &t.id);
    let stale = s.complete_task(&CompleteRequest {
        task_id: t.id.clone(),
        summary: Some("late".into()),
        expected_run_id: Some(first),
        ..Default::default()
    });
    assert!(matches!(stale, Err(StoreError::Stale { .. })), "{stale:?}");
    let now = get(s, &t.id);
    assert_eq!(
        (now.status, now.current_run_id),
        (Status::Running, Some(second))
    );
    assert!(!kinds(s, &t.id).contains(&"completed".to_string()));
    let ok = s.complete_task(&CompleteRequest {
        task_id: t.id.clone(),
        expected_run_id: Some(second),
        ..Default::default()
    });
    assert_eq!(ok.unwrap().task.status, Status::Done);
}

pub fn complete_rejects_phantom_cards(s: &dyn Store) {
    let t = create(s, "orchestrate");
    claim(s, &t.id);
    let mine = create_with(
        s,
        NewTask {
            created_by: Some("coder".into()),
            ..new_task("mine")
        },
    );
    let foreign = create_with(
        s,
        NewTask {
            created_by: Some("someone".into()),
            ..new_task("foreign")
        },
    );
    let linked = child_of(s, "linked", &[&t.id]);
    let before = get(s, &t.id);
    let err = s
        .complete_task(&CompleteRequest {
            task_id: t.id.clone(),
            summary: Some("made cards".into()),
            created_cards: vec![mine.id.clone(), "t_0badc0de".into(), foreign.id.clone()],
            ..Default::default()
        })
        .unwrap_err();
    let reason = refused_reason(err);
    assert!(
        reason.contains("t_0badc0de") && reason.contains(&foreign.id),
        "{reason}"
    );
    assert!(reason.contains("unchanged"), "{reason}");
    assert_eq!(get(s, &t.id), before, "the task row is untouched");
    let ev = last_event(s, &t.id, "completion_blocked_hallucination");
    assert_eq!(
        ev.payload,
        json!({"phantom_cards": ["t_0badc0de", foreign.id], "verified_cards": [mine.id], "summary_preview": "made cards"})
    );
    // created_by = none, but a linked child: verified.
    let ok = s
        .complete_task(&CompleteRequest {
            task_id: t.id.clone(),
            summary: Some(format!("see {} and t_feedface99", mine.id)),
            created_cards: vec![mine.id.clone(), mine.id.clone()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ok.suspected_phantoms, vec!["t_feedface99".to_string()]);
    assert_eq!(
        last_event(s, &t.id, "completed").payload["verified_cards"],
        json!([mine.id])
    );
    let sus = last_event(s, &t.id, "suspected_hallucinated_references");
    assert_eq!(
        sus.payload,
        json!({"phantom_refs": ["t_feedface99"], "source": "completion_summary"})
    );
    let _ = linked;
}

pub fn block_unblock_and_loop_breaker(s: &dyn Store) {
    let t = create(s, "b");
    let run = claim(s, &t.id);
    let b = s
        .block_task(&BlockRequest {
            task_id: t.id.clone(),
            reason: Some("need creds".into()),
            kind: Some(BlockKind::NeedsInput),
            expected_run_id: Some(run),
        })
        .unwrap();
    assert_eq!(
        (b.from, b.to, b.run_id),
        (Status::Running, Status::Blocked, Some(run))
    );
    assert_eq!(b.task.claim_lock, None);
    assert_eq!(
        (b.task.block_kind.as_deref(), b.task.block_recurrences),
        (Some("needs_input"), 1)
    );
    let ev = last_event(s, &t.id, "blocked");
    assert_eq!(
        ev.payload,
        json!({"reason": "need creds", "kind": "needs_input", "recurrences": 1})
    );
    let r = &s.runs(&t.id).unwrap()[0];
    assert_eq!(
        (
            r.status.as_str(),
            r.outcome.as_deref(),
            r.summary.as_deref()
        ),
        ("blocked", Some("blocked"), Some("need creds"))
    );
    // A worker/human block is sticky: recompute leaves it.
    s.recompute_ready(None).unwrap();
    assert_eq!(status(s, &t.id), Status::Blocked);

    let u = s.unblock_task(&t.id, None).unwrap();
    assert_eq!((u.from, u.to), (Status::Blocked, Status::Ready));
    assert_eq!(last_event(s, &t.id, "unblocked").payload, json!(null));
    assert_eq!(u.task.block_recurrences, 1, "survives unblock");

    // Same kind again → loop detected → triage.
    claim(s, &t.id);
    let again = s
        .block_task(&BlockRequest {
            task_id: t.id.clone(),
            kind: Some(BlockKind::NeedsInput),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(again.to, Status::Triage);
    let ev = last_event(s, &t.id, "block_loop_detected");
    assert_keys(&ev.payload, &["reason", "kind", "recurrences", "limit"]);
    assert_eq!(
        (
            ev.payload["recurrences"].clone(),
            ev.payload["limit"].clone()
        ),
        (json!(2), json!(2))
    );

    let e = s
        .block_task(&BlockRequest {
            task_id: t.id.clone(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(refused_reason(e).contains("task is triage"));
    let cas = create(s, "cas");
    let run = claim(s, &cas.id);
    let stale = s.block_task(&BlockRequest {
        task_id: cas.id.clone(),
        expected_run_id: Some(run + 1),
        ..Default::default()
    });
    assert!(matches!(stale, Err(StoreError::Stale { .. })));
    assert_eq!(status(s, &cas.id), Status::Running);
}

pub fn dependency_block_waits_in_todo(s: &dyn Store) {
    let p = create(s, "p");
    let t = create(s, "t");
    claim(s, &t.id);
    s.link_tasks(&p.id, &t.id).unwrap();
    let d = s
        .block_task(&BlockRequest {
            task_id: t.id.clone(),
            reason: Some("needs p".into()),
            kind: Some(BlockKind::Dependency),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(d.to, Status::Todo);
    assert_eq!(
        last_event(s, &t.id, "dependency_wait").payload,
        json!({"reason": "needs p", "kind": "dependency"})
    );
    complete(s, &p.id);
    assert_eq!(status(s, &t.id), Status::Ready);
}

pub fn unblock_regates_on_parents(s: &dyn Store) {
    let p = create(s, "p");
    let c = create(s, "c");
    s.block_task(&BlockRequest {
        task_id: c.id.clone(),
        reason: Some("wait".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        s.runs(&c.id).unwrap().len(),
        1,
        "a reason on a never-claimed block is kept in a run"
    );
    s.link_tasks(&p.id, &c.id).unwrap();
    let u = s.unblock_task(&c.id, None).unwrap();
    assert_eq!(u.to, Status::Todo);
    assert_eq!(
        last_event(s, &c.id, "unblocked").payload,
        json!({"status": "todo"})
    );
    complete(s, &p.id);
    assert_eq!(status(s, &c.id), Status::Ready);
    let e = s.unblock_task(&c.id, None).unwrap_err();
    assert!(refused_reason(e).contains("task is ready"));
}

pub fn schedule_parks_the_task(s: &dyn Store) {
    let t = create(s, "later");
    let run = claim(s, &t.id);
    let sch = s.schedule_task(&t.id, Some("tomorrow")).unwrap();
    assert_eq!((sch.to, sch.run_id), (Status::Scheduled, Some(run)));
    assert_eq!(
        last_event(s, &t.id, "scheduled").payload,
        json!({"reason": "tomorrow"})
    );
    assert_eq!(
        s.runs(&t.id).unwrap()[0].outcome.as_deref(),
        Some("scheduled")
    );
    assert!(matches!(
        s.claim_task(&claim_req(&t.id, "h:1")).unwrap(),
        ClaimOutcome::Lost { .. }
    ));
    assert_eq!(s.unblock_task(&t.id, None).unwrap().to, Status::Ready);
    let done = create(s, "done");
    complete(s, &done.id);
    assert!(refused_reason(s.schedule_task(&done.id, None).unwrap_err()).contains("task is done"));
}

pub fn promote_manual(s: &dyn Store) {
    let p = create(s, "p");
    let c = child_of(s, "c", &[&p.id]);
    let req = PromoteRequest {
        task_id: c.id.clone(),
        actor: Some("ops".into()),
        ..Default::default()
    };
    let e = s.promote_task(&req).unwrap_err();
    assert!(refused_reason(e).contains(&format!("unsatisfied parent dependencies: {}", p.id)));
    let dry = s
        .promote_task(&PromoteRequest {
            dry_run: true,
            force: true,
            ..req.clone()
        })
        .unwrap();
    assert_eq!(dry.to, Status::Ready);
    assert_eq!(status(s, &c.id), Status::Todo, "dry run writes nothing");
    let forced = s
        .promote_task(&PromoteRequest {
            force: true,
            reason: Some("urgent".into()),
            ..req
        })
        .unwrap();
    assert_eq!((forced.from, forced.to), (Status::Todo, Status::Ready));
    assert_eq!(
        last_event(s, &c.id, "promoted_manual").payload,
        json!({"actor": "ops", "reason": "urgent", "forced": true})
    );
    let e = s
        .promote_task(&PromoteRequest {
            task_id: p.id.clone(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(refused_reason(e).contains("task is ready"));
}

pub fn reclaim_returns_to_ready(s: &dyn Store) {
    let t = create(s, "r");
    let run = claim(s, &t.id);
    let r = s.reclaim_task(&t.id, Some("hung")).unwrap();
    assert_eq!(
        (r.from, r.to, r.run_id),
        (Status::Running, Status::Ready, Some(run))
    );
    assert_eq!(
        (r.task.claim_lock.clone(), r.task.current_run_id),
        (None, None)
    );
    let ev = last_event(s, &t.id, "reclaimed");
    assert_keys(
        &ev.payload,
        &["manual", "reason", "prev_lock", "prev_pid", "host_local"],
    );
    assert_eq!(
        (
            ev.payload["manual"].clone(),
            ev.payload["prev_lock"].clone()
        ),
        (json!(true), json!("host:1"))
    );
    let run_row = &s.runs(&t.id).unwrap()[0];
    assert_eq!(
        (run_row.outcome.as_deref(), run_row.error.as_deref()),
        (Some("reclaimed"), Some("manual_reclaim: hung"))
    );
    let e = s.reclaim_task(&t.id, None).unwrap_err();
    assert!(refused_reason(e).contains("task is ready"));
}

pub fn archive_and_delete(s: &dyn Store) {
    let p = create(s, "p");
    let c = child_of(s, "c", &[&p.id]);
    let run = claim(s, &p.id);
    s.add_comment(&p.id, "a", "note").unwrap();
    let a = s.archive_task(&p.id).unwrap();
    assert_eq!(
        (a.from, a.to, a.run_id),
        (Status::Running, Status::Archived, Some(run))
    );
    assert_eq!(last_event(s, &p.id, "archived").payload, json!(null));
    assert_eq!(
        s.runs(&p.id).unwrap()[0].outcome.as_deref(),
        Some("reclaimed")
    );
    assert_eq!(
        status(s, &c.id),
        Status::Ready,
        "archived parents satisfy children"
    );
    assert!(
        s.list_tasks(&TaskQuery::default())
            .unwrap()
            .iter()
            .all(|t| t.id != p.id)
    );
    assert!(refused_reason(s.archive_task(&p.id).unwrap_err()).contains("task is archived"));

    let e = s.delete_task(&c.id, true).unwrap_err();
    assert!(refused_reason(e).contains("task is ready"));
    s.delete_task(&p.id, true).unwrap();
    assert!(s.get_task(&p.id).unwrap().is_none());
    assert!(events(s, &p.id).is_empty() && s.comments(&p.id).unwrap().is_empty());
    assert!(s.runs(&p.id).unwrap().is_empty() && s.parents_of(&c.id).unwrap().is_empty());
    assert!(matches!(
        s.delete_task(&p.id, false),
        Err(StoreError::TaskNotFound(_))
    ));

    // Deleting an unfinished parent frees its child.
    let q = create(s, "q");
    let r = child_of(s, "r", &[&q.id]);
    s.delete_task(&q.id, false).unwrap();
    assert_eq!(status(s, &r.id), Status::Ready);
}

pub fn initial_blocked_stays_blocked(s: &dyn Store) {
    let t = create_with(
        s,
        NewTask {
            initial_blocked: true,
            ..new_task("parked")
        },
    );
    assert_eq!(s.recompute_ready(None).unwrap(), 0);
    assert_eq!(status(s, &t.id), Status::Blocked);
    assert_eq!(s.unblock_task(&t.id, None).unwrap().to, Status::Ready);
}

pub fn recompute_promotes_in_bulk(s: &dyn Store) {
    let p = create(s, "p");
    let kids: Vec<String> = (0..20)
        .map(|i| child_of(s, &format!("k{i}"), &[&p.id]).id)
        .collect();
    assert_eq!(s.recompute_ready(None).unwrap(), 0);
    complete(s, &p.id);
    assert!(kids.iter().all(|k| status(s, k) == Status::Ready));
    assert_eq!(s.recompute_ready(None).unwrap(), 0);
}
