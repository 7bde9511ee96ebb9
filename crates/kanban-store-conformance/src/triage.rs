//! The triage column's exits: specify (rewrite + triage → todo, audit
//! comment, `specified` event) and decompose (children, sibling links, the
//! root waiting for all of them, `decomposed` event) — all or nothing.

use kanban_core::Status;
use kanban_store::*;

use crate::support::*;

fn triage_card(s: &dyn Store, title: &str) -> kanban_core::Task {
    create_with(
        s,
        NewTask {
            triage: true,
            assignee: None,
            tenant: Some("acme".into()),
            ..new_task(title)
        },
    )
}

fn child(title: &str, assignee: Option<&str>, parents: &[usize]) -> ChildCard {
    ChildCard {
        title: title.into(),
        body: Some(format!("do {title}")),
        assignee: assignee.map(str::to_string),
        parents: parents.to_vec(),
    }
}

pub fn specify_rewrites_and_promotes(s: &dyn Store) {
    let t = triage_card(s, "rough idea");
    let out = s
        .specify_triage_task(&SpecifyRequest {
            task_id: t.id.clone(),
            title: Some("  Sharp title ".into()),
            body: Some("**Goal** it works".into()),
            assignee: Some("Coder".into()),
            author: Some("alice".into()),
        })
        .unwrap();
    assert_eq!(out.changed_fields, ["title", "body", "assignee"]);
    // No parents: re-gated straight to ready.
    assert_eq!(out.task.status, Status::Ready);
    assert_eq!(out.task.title, "Sharp title");
    assert_eq!(out.task.assignee.as_deref(), Some("coder"));
    let ev = last_event(s, &t.id, "specified");
    assert_eq!(
        ev.payload["changed_fields"],
        serde_json::json!(["title", "body", "assignee"])
    );
    let comments = s.comments(&t.id).unwrap();
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0]
            .body
            .starts_with("Specified — updated title, body, assignee")
    );
    assert_eq!(comments[0].author, "alice");
    // Not in triage any more: refused, nothing written.
    let before = events(s, &t.id).len();
    let again = s.specify_triage_task(&SpecifyRequest {
        task_id: t.id.clone(),
        title: Some("other".into()),
        ..Default::default()
    });
    assert!(refused_reason(again.unwrap_err()).contains("not in triage"));
    assert_eq!(events(s, &t.id).len(), before);
    assert_eq!(get(s, &t.id).title, "Sharp title");
    // Unchanged fields: no comment, an event without changed fields.
    let u = triage_card(s, "same");
    s.specify_triage_task(&SpecifyRequest {
        task_id: u.id.clone(),
        title: Some("same".into()),
        author: Some("alice".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(s.comments(&u.id).unwrap().is_empty());
    assert!(last_event(s, &u.id, "specified").payload.is_null());
    assert!(
        s.specify_triage_task(&SpecifyRequest {
            task_id: "t_00000000".into(),
            ..Default::default()
        })
        .is_err()
    );
}

pub fn decompose_builds_the_graph_atomically(s: &dyn Store) {
    let root = triage_card(s, "big idea");
    let out = s
        .decompose_triage_task(&DecomposeRequest {
            task_id: root.id.clone(),
            children: vec![
                child("b", Some("writer"), &[1]),
                child("a", Some("coder"), &[]),
                child("c", None, &[]),
            ],
            root_assignee: Some("Lead".into()),
            author: Some("bob".into()),
            keep_children_in_todo: false,
        })
        .unwrap();
    let ids = out.child_ids.clone();
    assert_eq!(ids.len(), 3);
    assert_eq!(out.root.status, Status::Todo);
    assert_eq!(out.root.assignee.as_deref(), Some("lead"));
    let (b, a, c) = (get(s, &ids[0]), get(s, &ids[1]), get(s, &ids[2]));
    assert_eq!((b.title.as_str(), a.title.as_str()), ("b", "a"));
    assert_eq!(
        (a.status, b.status, c.status),
        (Status::Ready, Status::Todo, Status::Ready)
    );
    assert_eq!(b.tenant.as_deref(), Some("acme"));
    assert_eq!(b.created_by.as_deref(), Some("bob"));
    assert_eq!(s.parents_of(&b.id).unwrap(), vec![a.id.clone()]);
    let mut root_parents = s.parents_of(&root.id).unwrap();
    root_parents.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(root_parents, want);
    let ev = last_event(s, &root.id, "decomposed").payload;
    assert_eq!(ev["child_ids"], serde_json::json!(ids));
    assert_eq!(ev["root_assignee"], "lead");
    assert!(s.comments(&root.id).unwrap()[0].body.contains(&ids[0]));

    // A cycle, a bad index or a card outside triage: nothing is written.
    let other = triage_card(s, "second");
    let tasks_before = s
        .list_tasks(&TaskQuery {
            include_archived: true,
            ..Default::default()
        })
        .unwrap()
        .len();
    for children in [
        vec![child("x", None, &[1]), child("y", None, &[0])],
        vec![child("x", None, &[4])],
        vec![child(" ", None, &[])],
        vec![],
    ] {
        let r = s.decompose_triage_task(&DecomposeRequest {
            task_id: other.id.clone(),
            children,
            ..Default::default()
        });
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    }
    let r = s.decompose_triage_task(&DecomposeRequest {
        task_id: root.id.clone(),
        children: vec![child("x", None, &[])],
        ..Default::default()
    });
    assert!(refused_reason(r.unwrap_err()).contains("not in triage"));
    let tasks_after = s
        .list_tasks(&TaskQuery {
            include_archived: true,
            ..Default::default()
        })
        .unwrap()
        .len();
    assert_eq!(tasks_before, tasks_after);
    assert_eq!(status(s, &other.id), Status::Triage);
}

/// `kanban.auto_promote_children: false`: every child is left in todo;
/// the next recompute (a dispatcher pass) promotes the parent-free ones.
pub fn decompose_can_keep_children_in_todo(s: &dyn Store) {
    let root = triage_card(s, "review first");
    let out = s
        .decompose_triage_task(&DecomposeRequest {
            task_id: root.id.clone(),
            children: vec![child("a", None, &[]), child("b", None, &[0])],
            keep_children_in_todo: true,
            ..Default::default()
        })
        .unwrap();
    let ids = out.child_ids;
    assert_eq!(out.root.status, Status::Todo);
    assert_eq!(
        (status(s, &ids[0]), status(s, &ids[1])),
        (Status::Todo, Status::Todo)
    );
    s.recompute_ready(None).unwrap();
    assert_eq!(
        (status(s, &ids[0]), status(s, &ids[1])),
        (Status::Ready, Status::Todo)
    );
}
