//! Creation, links, comments, events, listing, edits, board reads.

use kanban_core::Status;
use kanban_store::*;
use serde_json::json;

use crate::support::*;

pub fn creation_status_inference(s: &dyn Store) {
    let root = create(s, "root");
    assert_eq!(root.status, Status::Ready);
    assert_eq!(root.assignee.as_deref(), Some("coder"));
    assert_eq!(root.workspace_kind, "scratch");
    assert!(root.id.starts_with("t_") && root.id.len() == 10);

    let child = child_of(s, "child", &[&root.id]);
    assert_eq!(child.status, Status::Todo);
    assert_eq!(s.parents_of(&child.id).unwrap(), vec![root.id.clone()]);
    assert_eq!(s.children_of(&root.id).unwrap(), vec![child.id.clone()]);

    let triage = create_with(
        s,
        NewTask {
            triage: true,
            ..new_task("idea")
        },
    );
    assert_eq!(triage.status, Status::Triage);

    let parked = create_with(
        s,
        NewTask {
            initial_blocked: true,
            triage: true,
            ..new_task("parked")
        },
    );
    assert_eq!(parked.status, Status::Blocked);
    assert_eq!(kinds(s, &parked.id), vec!["created", "blocked"]);

    // An archived parent satisfies its children at creation too (SPEC §4).
    let old = create(s, "old");
    s.archive_task(&old.id).unwrap();
    assert_eq!(
        child_of(s, "after archived", &[&old.id]).status,
        Status::Ready
    );
    complete(s, &root.id);
    assert_eq!(child_of(s, "after done", &[&root.id]).status, Status::Ready);

    let created = last_event(s, &child.id, "created");
    assert_keys(
        &created.payload,
        &[
            "assignee",
            "status",
            "parents",
            "tenant",
            "branch_name",
            "skills",
            "goal_mode",
        ],
    );
    assert_eq!(created.payload["status"], "todo");
    assert_eq!(created.payload["parents"], json!([root.id]));
    assert_eq!(created.payload["goal_mode"], json!(null));

    let err = s
        .create_task(&NewTask {
            parents: vec!["t_00000000".into()],
            ..new_task("x")
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown parent task(s): t_00000000"),
        "{err}"
    );
    assert!(s.create_task(&new_task("   ")).is_err());
}

pub fn creation_normalises_and_validates(s: &dyn Store) {
    let t = create_with(
        s,
        NewTask {
            assignee: Some(" Coder ".into()),
            tenant: Some("acme".into()),
            skills: Some(vec!["a".into(), " a".into(), "b".into()]),
            goal_mode: true,
            workspace_kind: Some("worktree".into()),
            branch_name: Some("  feat/x ".into()),
            priority: 5,
            max_retries: Some(3),
            session_id: Some("sess".into()),
            ..new_task("normalised")
        },
    );
    assert_eq!(t.assignee.as_deref(), Some("coder"));
    assert_eq!(t.skills, Some(vec!["a".to_string(), "b".to_string()]));
    assert_eq!(t.branch_name.as_deref(), Some("feat/x"));
    assert!(t.goal_mode);
    assert_eq!((t.priority, t.max_retries), (5, Some(3)));
    let ev = last_event(s, &t.id, "created");
    assert_eq!(ev.payload["tenant"], "acme");
    assert_eq!(ev.payload["skills"], json!(["a", "b"]));
    assert_eq!(ev.payload["goal_mode"], json!(true));
    assert_eq!(ev.payload["branch_name"], "feat/x");

    let bad_kind = s.create_task(&NewTask {
        workspace_kind: Some("cloud".into()),
        ..new_task("x")
    });
    assert!(bad_kind.unwrap_err().to_string().contains("workspace_kind"));
    let branch = s.create_task(&NewTask {
        branch_name: Some("b".into()),
        ..new_task("x")
    });
    assert!(
        branch
            .unwrap_err()
            .to_string()
            .contains("only valid for worktree")
    );
    let rel = s.create_task(&NewTask {
        workspace_kind: Some("dir".into()),
        workspace_path: Some("rel/path".into()),
        ..new_task("x")
    });
    assert!(rel.unwrap_err().to_string().contains("absolute"));
    let toolset = s.create_task(&NewTask {
        skills: Some(vec!["web".into()]),
        ..new_task("x")
    });
    assert!(toolset.unwrap_err().to_string().contains("toolset"));

    // Board default workdir: dir inherits, scratch never does.
    let dir = create_with(
        s,
        NewTask {
            workspace_kind: Some("dir".into()),
            default_workdir: Some("/srv/p".into()),
            ..new_task("d")
        },
    );
    assert_eq!(dir.workspace_path.as_deref(), Some("/srv/p"));
    let scratch = create_with(
        s,
        NewTask {
            default_workdir: Some("/srv/p".into()),
            ..new_task("s")
        },
    );
    assert_eq!(scratch.workspace_path, None);
}

pub fn idempotency_key_returns_existing(s: &dyn Store) {
    let req = NewTask {
        idempotency_key: Some("hook-1".into()),
        ..new_task("once")
    };
    let first = s.create_task(&req).unwrap();
    assert!(!first.existing);
    let again = s.create_task(&req).unwrap();
    assert!(again.existing);
    assert_eq!(again.task.id, first.task.id);
    assert_eq!(kinds(s, &first.task.id), vec!["created"]);
    // An archived task with the key no longer counts.
    s.archive_task(&first.task.id).unwrap();
    let fresh = s.create_task(&req).unwrap();
    assert!(!fresh.existing);
    assert_ne!(fresh.task.id, first.task.id);
}

pub fn links_and_cycles(s: &dyn Store) {
    let a = create(s, "a");
    let b = create(s, "b");
    let c = create(s, "c");
    let e = s.link_tasks(&a.id, &a.id).unwrap_err();
    assert!(
        e.to_string().contains("a task cannot depend on itself"),
        "{e}"
    );
    let e = s.link_tasks(&a.id, "t_deadbeef").unwrap_err();
    assert!(e.to_string().contains("unknown task(s): t_deadbeef"), "{e}");

    s.link_tasks(&a.id, &b.id).unwrap();
    // Linking a ready child under an unfinished parent demotes it.
    assert_eq!(status(s, &b.id), Status::Todo);
    let linked = last_event(s, &b.id, "linked");
    assert_eq!(linked.payload, json!({"parent": a.id, "child": b.id}));
    s.link_tasks(&b.id, &c.id).unwrap();
    let e = s.link_tasks(&b.id, &a.id).unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "linking {} -> {} would create a cycle",
            b.id, a.id
        )),
        "{e}"
    );
    let e = s.link_tasks(&c.id, &a.id).unwrap_err();
    assert!(e.to_string().contains("would create a cycle"), "{e}");

    // Chain cascade: completing a promotes b, then b promotes c.
    complete(s, &a.id);
    assert_eq!(status(s, &b.id), Status::Ready);
    assert_eq!(status(s, &c.id), Status::Todo);
    assert_eq!(last_event(s, &b.id, "promoted").payload, json!(null));
    complete(s, &b.id);
    assert_eq!(status(s, &c.id), Status::Ready);

    // A done parent keeps a ready child ready.
    let d = create(s, "d");
    s.link_tasks(&a.id, &d.id).unwrap();
    assert_eq!(status(s, &d.id), Status::Ready);

    // Unlink promotes the child at once (#22459).
    let p = create(s, "p");
    let q = child_of(s, "q", &[&p.id]);
    assert!(s.unlink_tasks(&p.id, &q.id).unwrap());
    assert_eq!(status(s, &q.id), Status::Ready);
    assert_eq!(
        last_event(s, &q.id, "unlinked").payload,
        json!({"parent": p.id, "child": q.id})
    );
    assert!(!s.unlink_tasks(&p.id, &q.id).unwrap());
}

pub fn fan_in_waits_for_every_parent(s: &dyn Store) {
    let p1 = create(s, "p1");
    let p2 = create(s, "p2");
    let c = child_of(s, "c", &[&p1.id, &p2.id]);
    complete(s, &p1.id);
    assert_eq!(status(s, &c.id), Status::Todo);
    s.archive_task(&p2.id).unwrap();
    assert_eq!(status(s, &c.id), Status::Ready);
}

pub fn comments_and_events(s: &dyn Store) {
    let t = create(s, "talk");
    let c = s.add_comment(&t.id, "alice", "  hello  ").unwrap();
    assert_eq!((c.author.as_str(), c.body.as_str()), ("alice", "hello"));
    s.add_comment(&t.id, "bob", "second").unwrap();
    let all = s.comments(&t.id).unwrap();
    assert_eq!(
        all.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(),
        vec!["hello", "second"]
    );
    let ev = last_event(s, &t.id, "commented");
    assert_eq!(ev.payload, json!({"author": "bob", "len": 6}));
    assert!(s.add_comment(&t.id, "alice", "  ").is_err());
    assert!(matches!(
        s.add_comment("t_00000000", "a", "b"),
        Err(StoreError::TaskNotFound(_))
    ));

    let latest = s.latest_event_id().unwrap();
    assert!(latest >= 3);
    let tail = s
        .events(&EventQuery {
            task_id: Some(t.id.clone()),
            last: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        tail.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["commented", "commented"]
    );
    assert!(tail[0].id < tail[1].id);
    let after = s
        .events(&EventQuery {
            after_id: Some(latest),
            ..Default::default()
        })
        .unwrap();
    assert!(after.is_empty());
    let only = s
        .events(&EventQuery {
            kinds: Some(vec!["created".into()]),
            limit: Some(10),
            ..Default::default()
        })
        .unwrap();
    assert!(only.iter().all(|e| e.kind == "created"));
}

pub fn list_filters_and_orders(s: &dyn Store) {
    let low = create_with(
        s,
        NewTask {
            priority: 1,
            tenant: Some("t1".into()),
            ..new_task("b-low")
        },
    );
    let high = create_with(
        s,
        NewTask {
            priority: 9,
            assignee: Some("Other".into()),
            ..new_task("a-high")
        },
    );
    let arch = create(s, "c-archived");
    s.archive_task(&arch.id).unwrap();
    let ids = |v: Vec<kanban_core::Task>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();

    assert_eq!(
        ids(s.list_tasks(&TaskQuery::default()).unwrap()),
        vec![high.id.clone(), low.id.clone()]
    );
    let with_arch = TaskQuery {
        include_archived: true,
        ..Default::default()
    };
    assert_eq!(s.list_tasks(&with_arch).unwrap().len(), 3);
    let archived = TaskQuery {
        status: Some(Status::Archived),
        ..Default::default()
    };
    assert_eq!(ids(s.list_tasks(&archived).unwrap()), vec![arch.id.clone()]);
    let by_assignee = TaskQuery {
        assignee: Some("OTHER".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_tasks(&by_assignee).unwrap()),
        vec![high.id.clone()]
    );
    let by_tenant = TaskQuery {
        tenant: Some("t1".into()),
        ..Default::default()
    };
    assert_eq!(ids(s.list_tasks(&by_tenant).unwrap()), vec![low.id.clone()]);
    let by_title = TaskQuery {
        order: TaskOrder::Title,
        ..Default::default()
    };
    assert_eq!(
        ids(s.list_tasks(&by_title).unwrap()),
        vec![high.id.clone(), low.id.clone()]
    );
    let asc = TaskQuery {
        order: TaskOrder::PriorityAsc,
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ids(s.list_tasks(&asc).unwrap()), vec![low.id.clone()]);
    for order in [
        TaskOrder::Created,
        TaskOrder::CreatedDesc,
        TaskOrder::Status,
        TaskOrder::Assignee,
        TaskOrder::Updated,
    ] {
        assert_eq!(
            s.list_tasks(&TaskQuery {
                order,
                ..Default::default()
            })
            .unwrap()
            .len(),
            2
        );
    }
    // The light list lines agree with the full rows for every query.
    for q in [
        TaskQuery::default(),
        with_arch,
        archived,
        by_assignee,
        by_tenant,
        by_title,
        asc,
    ] {
        let full: Vec<TaskLine> = s
            .list_tasks(&q)
            .unwrap()
            .iter()
            .map(TaskLine::from)
            .collect();
        assert_eq!(s.list_task_lines(&q).unwrap(), full);
    }
}

pub fn edit_and_assign(s: &dyn Store) {
    let t = create(s, "draft");
    let e = s
        .edit_task(&EditTask {
            task_id: t.id.clone(),
            title: Some("final".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(e.title, "final");
    assert_eq!(last_event(s, &t.id, "edited").payload, json!(null));
    s.edit_task(&EditTask {
        task_id: t.id.clone(),
        priority: Some(7),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        last_event(s, &t.id, "reprioritized").payload,
        json!({"priority": 7})
    );
    let r = s.edit_task(&EditTask {
        task_id: t.id.clone(),
        result: Some("x".into()),
        ..Default::default()
    });
    assert!(refused_reason(r.unwrap_err()).contains("task is ready"));
    assert!(matches!(
        s.edit_task(&EditTask {
            task_id: "t_00000000".into(),
            title: Some("x".into()),
            ..Default::default()
        }),
        Err(StoreError::TaskNotFound(_))
    ));

    complete(s, &t.id);
    let edited = s
        .edit_task(&EditTask {
            task_id: t.id.clone(),
            result: Some("shipped".into()),
            summary: Some("line one\nline two".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(edited.result.as_deref(), Some("shipped"));
    let ev = last_event(s, &t.id, "edited");
    assert_eq!(
        ev.payload,
        json!({"fields": ["result", "summary"], "result_len": 7, "summary": "line one"})
    );
    assert_eq!(
        s.runs(&t.id).unwrap().last().unwrap().summary.as_deref(),
        Some("line one\nline two")
    );

    let u = create(s, "assign me");
    let a = s
        .assign_task(&AssignTask {
            task_id: u.id.clone(),
            assignee: Some("Reviewer".into()),
            source: Some("kanban.default_assignee".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(a.assignee.as_deref(), Some("reviewer"));
    assert_eq!(
        last_event(s, &u.id, "assigned").payload,
        json!({"assignee": "reviewer", "source": "kanban.default_assignee"})
    );
    claim(s, &u.id);
    let err = s.assign_task(&AssignTask {
        task_id: u.id.clone(),
        assignee: Some("x".into()),
        ..Default::default()
    });
    assert!(refused_reason(err.unwrap_err()).contains("currently running"));
    let moved = s
        .assign_task(&AssignTask {
            task_id: u.id.clone(),
            assignee: None,
            reclaim_first: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((moved.status, moved.assignee), (Status::Ready, None));
    assert_eq!(
        last_event(s, &u.id, "assigned").payload,
        json!({"assignee": null})
    );
}

pub fn stats_and_counts(s: &dyn Store) {
    let a = create(s, "a");
    create(s, "b");
    create_with(
        s,
        NewTask {
            assignee: None,
            ..new_task("unassigned")
        },
    );
    let gone = create(s, "gone");
    s.archive_task(&gone.id).unwrap();
    claim(s, &a.id);
    let st = s.stats().unwrap();
    assert_eq!(st.by_status.get("ready"), Some(&2));
    assert_eq!(st.by_status.get("running"), Some(&1));
    assert_eq!(st.by_status.get("archived"), None);
    assert_eq!(st.by_assignee["coder"].get("ready"), Some(&1));
    assert!(st.oldest_ready_age_seconds.is_some_and(|a| a >= 0));
    assert!(st.now > 0);
    let counts = s.assignee_counts().unwrap();
    assert_eq!(
        counts,
        vec![
            ("coder".into(), "ready".into(), 1),
            ("coder".into(), "running".into(), 1)
        ]
    );
}

pub fn notify_subscriptions(s: &dyn Store) {
    let t = create(s, "watched");
    let sub = NewNotifySub {
        task_id: t.id.clone(),
        platform: "telegram".into(),
        chat_id: "42".into(),
        ..Default::default()
    };
    assert!(s.notify_subscribe(&sub).unwrap());
    assert!(!s.notify_subscribe(&sub).unwrap());
    // A repeat back-fills the notifier profile of a legacy row.
    let with_profile = NewNotifySub {
        notifier_profile: Some("ops".into()),
        ..sub.clone()
    };
    assert!(!s.notify_subscribe(&with_profile).unwrap());
    let subs = s.notify_list(Some(&t.id)).unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!((subs[0].thread_id.as_str(), subs[0].last_event_id), ("", 0));
    assert_eq!(subs[0].notifier_profile.as_deref(), Some("ops"));
    assert_eq!(s.notify_list(None).unwrap().len(), 1);
    let key = NotifyKey {
        task_id: t.id.clone(),
        platform: "telegram".into(),
        chat_id: "42".into(),
        thread_id: None,
    };
    assert!(s.notify_unsubscribe(&key).unwrap());
    assert!(!s.notify_unsubscribe(&key).unwrap());
}

pub fn gc_events_keeps_live_tasks(s: &dyn Store) {
    let done = create(s, "done");
    let live = create(s, "live");
    complete(s, &done.id);
    let cutoff = s.stats().unwrap().now + 10;
    let deleted = s.gc_events(cutoff).unwrap();
    assert!(deleted >= 2, "deleted {deleted}");
    assert!(events(s, &done.id).is_empty());
    assert_eq!(kinds(s, &live.id), vec!["created"]);
}
