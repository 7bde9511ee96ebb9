//! Streamed reads (`Store::for_each_task`, `Store::for_each_task_line`):
//! the same rows (every column of a `TaskRow`), in the same order, under the same filters as the
//! collected `list_tasks` / `list_task_lines`, and an early stop.

use std::borrow::Cow;

use kanban_core::{Status, Task};
use kanban_store::*;

use crate::support::*;

/// Tasks whose optional columns alternate between set and unset from one
/// row to the next, so a backend that reuses one row buffer while
/// streaming cannot leak a value into the next task unnoticed.
fn varied_board(s: &dyn Store) -> Vec<Task> {
    let mut made = Vec::new();
    for i in 0..24_i64 {
        let odd = i % 2 == 1;
        let req = NewTask {
            title: format!("stream {i:02} {}", "é✓\u{1b}\"\\".repeat((i % 3) as usize)),
            body: odd.then(|| format!("body {i}\nsecond line")),
            assignee: match i % 3 {
                0 => None,
                1 => Some("alice".into()),
                _ => Some("Bob".into()),
            },
            created_by: (i % 4 != 0).then(|| format!("maker{i}")),
            workspace_kind: Some(if odd { "dir" } else { "scratch" }.into()),
            workspace_path: odd.then(|| format!("/tmp/stream/{i}")),
            project_id: (i % 5 == 0).then(|| format!("proj{i}")),
            tenant: (i % 3 == 1).then(|| "t1".to_string()),
            priority: i % 4,
            triage: i % 7 == 6,
            initial_blocked: i % 11 == 10,
            max_runtime_seconds: odd.then_some(60 + i),
            skills: (i % 3 == 2).then(|| vec![format!("skill{i}"), "shared".into()]),
            max_retries: (i % 4 == 3).then_some(2),
            goal_mode: i % 6 == 5,
            goal_max_turns: (i % 6 == 5).then_some(4),
            session_id: (i % 4 == 1).then(|| "sess-a".to_string()),
            model_override: (i % 5 == 2).then(|| "model-x".to_string()),
            ..Default::default()
        };
        made.push(create_with(s, req));
    }
    // Running, done (result, completed_at) and archived rows too.
    let ready: Vec<String> = made
        .iter()
        .filter(|t| t.status == Status::Ready && t.assignee.is_some())
        .map(|t| t.id.clone())
        .collect();
    claim(s, &ready[0]);
    claim(s, &ready[1]);
    s.complete_task(&CompleteRequest {
        task_id: ready[1].clone(),
        result: Some("shipped".into()),
        ..Default::default()
    })
    .expect("complete");
    claim(s, &ready[2]);
    complete(s, &ready[2]);
    s.archive_task(&ready[2]).expect("archive");
    made
}

/// A row that owns its text, to outlive the visit.
fn owned(r: TaskRow<'_>) -> TaskRow<'static> {
    let o = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
    TaskRow {
        id: Cow::Owned(r.id.into_owned()),
        title: Cow::Owned(r.title.into_owned()),
        body: o(r.body),
        assignee: o(r.assignee),
        status: r.status,
        priority: r.priority,
        tenant: o(r.tenant),
        workspace_kind: Cow::Owned(r.workspace_kind.into_owned()),
        workspace_path: o(r.workspace_path),
        branch_name: o(r.branch_name),
        project_id: o(r.project_id),
        created_by: o(r.created_by),
        created_at: r.created_at,
        started_at: r.started_at,
        completed_at: r.completed_at,
        result: o(r.result),
        skills: r.skills,
        max_retries: r.max_retries,
        session_id: o(r.session_id),
        workflow_template_id: o(r.workflow_template_id),
        current_step_key: o(r.current_step_key),
    }
}

fn streamed(s: &dyn Store, q: &TaskQuery) -> Vec<TaskRow<'static>> {
    let mut out = Vec::new();
    s.for_each_task(q, &mut |t| {
        out.push(owned(t));
        true
    })
    .expect("for_each_task");
    out
}

/// The rows of the collected `list_tasks`.
fn listed(s: &dyn Store, q: &TaskQuery) -> Vec<TaskRow<'static>> {
    let tasks = s.list_tasks(q).expect("list_tasks");
    tasks.iter().map(|t| owned(TaskRow::from(t))).collect()
}

fn streamed_lines(s: &dyn Store, q: &TaskQuery) -> Vec<TaskLine> {
    let mut out = Vec::new();
    s.for_each_task_line(q, &mut |l| {
        out.push(TaskLine {
            id: l.id.into_owned(),
            title: l.title.into_owned(),
            assignee: l.assignee.map(|a| a.into_owned()),
            status: l.status,
            tenant: l.tenant.map(|t| t.into_owned()),
            priority: l.priority,
            created_at: l.created_at,
        });
        true
    })
    .expect("for_each_task_line");
    out
}

/// Every query `kanban list` can send: each order, each filter, archived
/// or not, a limit.
fn queries() -> Vec<TaskQuery> {
    let mut qs: Vec<TaskQuery> = [
        TaskOrder::Priority,
        TaskOrder::PriorityAsc,
        TaskOrder::Created,
        TaskOrder::CreatedDesc,
        TaskOrder::Status,
        TaskOrder::Assignee,
        TaskOrder::Title,
        TaskOrder::Updated,
    ]
    .into_iter()
    .flat_map(|order| {
        [false, true].map(|include_archived| TaskQuery {
            order,
            include_archived,
            ..Default::default()
        })
    })
    .collect();
    qs.extend([
        TaskQuery {
            assignee: Some("BOB".into()),
            ..Default::default()
        },
        TaskQuery {
            status: Some(Status::Ready),
            ..Default::default()
        },
        TaskQuery {
            status: Some(Status::Archived),
            ..Default::default()
        },
        TaskQuery {
            tenant: Some("t1".into()),
            order: TaskOrder::Title,
            ..Default::default()
        },
        TaskQuery {
            session_id: Some("sess-a".into()),
            ..Default::default()
        },
        TaskQuery {
            assignee: Some("alice".into()),
            tenant: Some("t1".into()),
            status: Some(Status::Ready),
            ..Default::default()
        },
        TaskQuery {
            tenant: Some("nobody".into()),
            ..Default::default()
        },
        TaskQuery {
            limit: Some(5),
            order: TaskOrder::CreatedDesc,
            ..Default::default()
        },
    ]);
    qs
}

pub fn for_each_task_streams_what_list_tasks_returns(s: &dyn Store) {
    let made = varied_board(s);
    let all = s
        .list_tasks(&TaskQuery {
            include_archived: true,
            ..Default::default()
        })
        .expect("list");
    assert_eq!(all.len(), made.len(), "fixture rows");
    for q in queries() {
        assert_eq!(streamed(s, &q), listed(s, &q), "for_each_task, {q:?}");
        let lines = s.list_task_lines(&q).expect("list_task_lines");
        assert_eq!(streamed_lines(s, &q), lines, "for_each_task_line, {q:?}");
    }
    // The fixture did exercise the filters.
    let ready = streamed(
        s,
        &TaskQuery {
            status: Some(Status::Ready),
            ..Default::default()
        },
    );
    assert!(!ready.is_empty() && ready.iter().all(|t| t.status == Status::Ready));
    assert!(
        streamed(s, &TaskQuery::default())
            .iter()
            .all(|t| t.status != Status::Archived)
    );
}

pub fn for_each_task_stops_when_the_visitor_says_so(s: &dyn Store) {
    varied_board(s);
    let q = TaskQuery::default();
    let all = listed(s, &q);
    let mut seen = Vec::new();
    s.for_each_task(&q, &mut |t| {
        seen.push(t.id.into_owned());
        seen.len() < 3
    })
    .expect("for_each_task");
    let first: Vec<String> = all.iter().take(3).map(|t| t.id.to_string()).collect();
    assert_eq!(seen, first);
    // The store is usable right after an early stop.
    assert_eq!(streamed(s, &q), all);
}
