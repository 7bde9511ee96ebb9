//! Operations the dashboard and the worker context need: direct status
//! moves, run and attachment lookups, recent work, card facts, hand-claim
//! workspaces, and reassign's worker handle.

use kanban_core::Status;
use kanban_store::dispatch_ops::{DispatchStore, SetWorker, WorkerRecord};
use kanban_store::*;
use serde_json::json;

use crate::support::*;

pub fn direct_move_to_ready_requires_satisfied_parents(s: &dyn Store) {
    let p = create(s, "parent");
    let gone = create(s, "archived parent");
    s.archive_task(&gone.id).unwrap();
    let c = child_of(s, "child", &[&p.id, &gone.id]);
    assert_eq!(c.status, Status::Todo);
    let err = s.set_status_direct(&c.id, Status::Ready).unwrap_err();
    let reason = refused_reason(err);
    assert!(
        reason.contains(&p.id) && reason.contains("\"parent\""),
        "{reason}"
    );
    assert!(
        !reason.contains(&gone.id),
        "archived parents satisfy: {reason}"
    );
    assert_eq!(status(s, &c.id), Status::Todo, "a refusal changes nothing");
    complete(s, &p.id);
    // Completing the parent already promoted the child; park it and retry.
    let parked = s.set_status_direct(&c.id, Status::Triage).unwrap();
    assert_eq!((parked.from, parked.to), (Status::Ready, Status::Triage));
    let moved = s.set_status_direct(&c.id, Status::Ready).unwrap();
    assert_eq!(moved.task.status, Status::Ready);
    assert_eq!(
        last_event(s, &c.id, "status").payload,
        json!({"status": "ready"})
    );
}

pub fn direct_move_refuses_running_and_verb_statuses(s: &dyn Store) {
    let t = create(s, "t");
    for to in [
        Status::Running,
        Status::Done,
        Status::Blocked,
        Status::Archived,
        Status::Review,
    ] {
        let err = s.set_status_direct(&t.id, to).unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{to}: {err:?}");
    }
    assert!(matches!(
        s.set_status_direct("t_00000000", Status::Todo),
        Err(StoreError::TaskNotFound(_))
    ));
    assert_eq!(kinds(s, &t.id), vec!["created"]);
    // Same column, nothing claimed: no write, no event.
    let same = s.set_status_direct(&t.id, Status::Ready).unwrap();
    assert_eq!(
        (same.from, same.to, same.run_id),
        (Status::Ready, Status::Ready, None)
    );
    assert_eq!(kinds(s, &t.id), vec!["created"]);
}

pub fn direct_move_off_running_closes_the_run(s: &dyn Store) {
    let t = create(s, "stuck");
    let run_id = claim(s, &t.id);
    let moved = s.set_status_direct(&t.id, Status::Todo).unwrap();
    assert_eq!(
        (moved.from, moved.to, moved.run_id),
        (Status::Running, Status::Todo, Some(run_id))
    );
    let task = get(s, &t.id);
    assert_eq!(
        (task.claim_lock, task.claim_expires, task.current_run_id),
        (None, None, None)
    );
    let run = s.get_run(run_id).unwrap().expect("run by id");
    assert_eq!(run.outcome.as_deref(), Some("reclaimed"));
    assert_eq!(run.status, "reclaimed");
    assert!(run.ended_at.is_some());
    assert_eq!(
        run.summary.as_deref(),
        Some("status changed to todo (dashboard/direct)")
    );
    let ev = last_event(s, &t.id, "status");
    assert_eq!(
        (ev.payload, ev.run_id),
        (json!({"status": "todo"}), Some(run_id))
    );
    assert_eq!(s.get_run(run_id + 1000).unwrap(), None);
}

pub fn direct_move_off_done_demotes_ready_children(s: &dyn Store) {
    let p = create(s, "parent");
    complete(s, &p.id);
    let ready = child_of(s, "ready child", &[&p.id]);
    let parked = child_of(s, "triage child", &[&p.id]);
    s.set_status_direct(&parked.id, Status::Triage).unwrap();
    assert_eq!(ready.status, Status::Ready);
    s.set_status_direct(&p.id, Status::Todo).unwrap();
    assert_eq!(status(s, &p.id), Status::Todo);
    assert_eq!(status(s, &ready.id), Status::Todo);
    assert_eq!(
        status(s, &parked.id),
        Status::Triage,
        "only ready children move"
    );
    assert_eq!(
        last_event(s, &ready.id, "status").payload,
        json!({"status": "todo", "reason": "parent_reopened", "parent": p.id})
    );
    // Scheduled is a plain parking column for a direct move.
    let moved = s.set_status_direct(&p.id, Status::Scheduled).unwrap();
    assert_eq!(moved.task.status, Status::Scheduled);
}

pub fn attachments_rows_and_events(s: &dyn Store) {
    let t = create(s, "with files");
    assert!(s.attachments(&t.id).unwrap().is_empty());
    let req = NewAttachment {
        task_id: t.id.clone(),
        filename: "spec.pdf".into(),
        stored_path: "/tmp/kanban-test/spec.pdf".into(),
        content_type: Some("application/pdf".into()),
        size: 42,
        uploaded_by: Some("dashboard".into()),
    };
    let a = s.add_attachment(&req).unwrap();
    assert_eq!(
        (a.filename.as_str(), a.size, a.task_id.as_str()),
        ("spec.pdf", 42, t.id.as_str())
    );
    assert_eq!(
        last_event(s, &t.id, "attached").payload,
        json!({"filename": "spec.pdf", "size": 42, "by": "dashboard"})
    );
    assert_eq!(s.attachments(&t.id).unwrap(), vec![a.clone()]);
    assert_eq!(s.get_attachment(a.id).unwrap(), Some(a.clone()));
    for bad in ["../x", "a/b", "x\0y", ""] {
        let err = s.add_attachment(&NewAttachment {
            filename: bad.into(),
            ..req.clone()
        });
        assert!(matches!(err, Err(StoreError::Invalid(_))), "{bad:?}");
    }
    let relative = NewAttachment {
        stored_path: "rel/x".into(),
        ..req.clone()
    };
    assert!(matches!(
        s.add_attachment(&relative),
        Err(StoreError::Invalid(_))
    ));
    let unknown = NewAttachment {
        task_id: "t_00000000".into(),
        ..req.clone()
    };
    assert!(matches!(
        s.add_attachment(&unknown),
        Err(StoreError::TaskNotFound(_))
    ));
    assert_eq!(s.remove_attachment(a.id).unwrap(), Some(a.clone()));
    assert_eq!(s.remove_attachment(a.id).unwrap(), None);
    assert!(s.attachments(&t.id).unwrap().is_empty());
    assert_eq!(
        last_event(s, &t.id, "attachment_removed").payload,
        json!({"filename": "spec.pdf"})
    );
}

pub fn recent_completed_runs_of_a_profile(s: &dyn Store) {
    let mut done = Vec::new();
    for i in 0..4 {
        let t = create(s, &format!("job {i}"));
        claim(s, &t.id);
        s.complete_task(&CompleteRequest {
            task_id: t.id.clone(),
            summary: Some(format!("did {i}")),
            ..Default::default()
        })
        .unwrap();
        done.push(t.id);
    }
    let other = create_with(
        s,
        NewTask {
            assignee: Some("reviewer".into()),
            ..new_task("r")
        },
    );
    claim(s, &other.id);
    complete(s, &other.id);
    let recent = s.recent_completed_runs("coder", Some(&done[3]), 2).unwrap();
    assert_eq!(recent.len(), 2);
    assert!(
        recent
            .iter()
            .all(|w| w.task_id != done[3] && w.task_id != other.id)
    );
    assert!(recent[0].ended_at >= recent[1].ended_at);
    assert!(
        recent[0]
            .summary
            .as_deref()
            .is_some_and(|s| s.starts_with("did "))
    );
    assert_eq!(s.recent_completed_runs("coder", None, 10).unwrap().len(), 4);
    assert!(
        s.recent_completed_runs("nobody", None, 10)
            .unwrap()
            .is_empty()
    );
}

pub fn card_facts_for_the_whole_board(s: &dyn Store) {
    let p = create(s, "parent");
    let a = create(s, "a");
    let b = create(s, "b");
    s.add_comment(&b.id, "me", "one").unwrap();
    s.add_comment(&b.id, "me", "two").unwrap();
    claim(s, &a.id);
    s.complete_task(&CompleteRequest {
        task_id: a.id.clone(),
        summary: Some("é".repeat(300)),
        ..Default::default()
    })
    .unwrap();
    s.link_tasks(&p.id, &a.id).unwrap();
    s.link_tasks(&p.id, &b.id).unwrap();
    let facts = s.card_facts(Some(200)).unwrap();
    let fp = &facts[&p.id];
    assert_eq!(
        (fp.parents, fp.children, fp.children_done, fp.comments),
        (0, 2, 1, 0)
    );
    assert_eq!(facts[&b.id].comments, 2);
    assert_eq!(facts[&b.id].parents, 1);
    let summary = facts[&a.id].latest_summary.as_deref().unwrap();
    assert_eq!(summary.chars().count(), 200, "cut in characters, not bytes");
    let full = s.card_facts(None).unwrap();
    assert_eq!(
        full[&a.id]
            .latest_summary
            .as_deref()
            .unwrap()
            .chars()
            .count(),
        300
    );
}

pub fn hand_claim_records_the_workspace(s: &dyn Store) {
    let t = create(s, "scratch");
    let w = s.set_task_workspace(&t.id, "/srv/ws/x", None).unwrap();
    assert_eq!(w.workspace_path.as_deref(), Some("/srv/ws/x"));
    assert!(matches!(
        s.set_task_workspace(&t.id, "rel", None),
        Err(StoreError::Invalid(_))
    ));
    let err = s.set_task_workspace(&t.id, "/srv/ws/x", Some("feature"));
    assert!(
        matches!(err, Err(StoreError::Invalid(_))),
        "branch needs a worktree"
    );
    let wt = create_with(
        s,
        NewTask {
            workspace_kind: Some("worktree".into()),
            ..new_task("wt")
        },
    );
    let w = s
        .set_task_workspace(&wt.id, "/repo/.worktrees/x", Some("wt/x"))
        .unwrap();
    assert_eq!(w.branch_name.as_deref(), Some("wt/x"));
}

/// Worker handles need the dispatcher's worker record, so these take the
/// dispatch capability.
pub fn detached_workers_are_returned(s: &dyn DispatchStore) {
    let with_worker = |title: &str| {
        let t = create(s, title);
        let run_id = claim(s, &t.id);
        let worker = WorkerRecord {
            pid: 4242,
            start_time: None,
            boot_id: None,
            host: None,
        };
        let req = SetWorker {
            task_id: t.id.clone(),
            run_id: Some(run_id),
            worker,
        };
        assert!(s.set_worker(&req).unwrap());
        (t.id, run_id)
    };
    let (id, run_id) = with_worker("reassigned");
    let out = s
        .reassign_task(&AssignTask {
            task_id: id.clone(),
            assignee: Some("other".into()),
            reclaim_first: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(out.task.status, Status::Ready);
    assert_eq!(out.task.assignee.as_deref(), Some("other"));
    assert_eq!(out.reclaimed_run_id, Some(run_id));
    assert_eq!(out.ended_worker.map(|w| w.pid), Some(4242));
    let again = s
        .reassign_task(&AssignTask {
            task_id: id,
            assignee: None,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((again.ended_worker, again.reclaimed_run_id), (None, None));

    let (id, _) = with_worker("dragged");
    let moved = s.set_status_direct(&id, Status::Ready).unwrap();
    assert_eq!(moved.ended_worker.map(|w| w.pid), Some(4242));
    assert_eq!(get(s, &id).worker_pid, None);
}
