//! Task batches (`create_task_batch`), as `kanban swarm` writes them: the
//! whole graph in one transaction, nothing on failure, and an idempotency
//! key replay that returns the first graph's root without writing.

use kanban_core::Status;
use kanban_core::swarm::{
    SwarmIds, SwarmSpec, latest_blackboard, parse_worker_arg, plan, topology_from_blackboard,
};
use kanban_store::*;

use crate::support::*;

fn spec(key: Option<&str>) -> SwarmSpec {
    SwarmSpec {
        goal: "Write the launch report".into(),
        workers: ["alice:Research:deep-research,pdf", "bob:Draft"]
            .iter()
            .map(|w| parse_worker_arg(w).expect("worker spec"))
            .collect(),
        verifier: "rev".into(),
        synthesizer: "writer".into(),
        created_by: "boss".into(),
        tenant: Some("acme".into()),
        priority: 2,
        idempotency_key: key.map(String::from),
    }
}

fn swarm_batch(key: Option<&str>) -> (NewTaskBatch, SwarmIds) {
    let s = spec(key);
    let p = plan(&s, SwarmIds::fresh(s.workers.len())).expect("plan");
    let ids = p.ids.clone();
    (
        NewTaskBatch::from_swarm(&p, s.tenant.as_deref(), s.priority),
        ids,
    )
}

fn all_tasks(s: &dyn Store) -> Vec<kanban_core::Task> {
    s.list_tasks(&TaskQuery {
        include_archived: true,
        ..Default::default()
    })
    .expect("list")
}

pub fn swarm_batch_creates_the_whole_graph(s: &dyn Store) {
    let (batch, ids) = swarm_batch(None);
    let BatchCreated::Created(tasks) = s.create_task_batch(&batch).expect("batch") else {
        panic!("a batch without a key creates");
    };
    assert_eq!(tasks.len(), 5);
    let root = get(s, &ids.root_id);
    assert_eq!(root.status, Status::Done);
    assert_eq!(root.title, "Swarm: Write the launch report");
    assert_eq!(root.assignee.as_deref(), Some("boss"));
    assert_eq!(root.tenant.as_deref(), Some("acme"));
    assert_eq!(
        kinds(s, &ids.root_id),
        ["created", "completed", "commented"]
    );
    for w in &ids.worker_ids {
        let t = get(s, w);
        assert_eq!(t.status, Status::Ready, "{w}");
        assert_eq!(t.priority, 2);
        assert_eq!(s.parents_of(w).unwrap(), vec![ids.root_id.clone()]);
        assert!(t.body.as_deref().unwrap().contains(&ids.root_id));
    }
    assert_eq!(
        get(s, &ids.worker_ids[0]).skills,
        Some(vec!["deep-research".to_string(), "pdf".to_string()])
    );
    let verifier = get(s, &ids.verifier_id);
    assert_eq!(verifier.status, Status::Todo);
    assert_eq!(verifier.assignee.as_deref(), Some("rev"));
    let mut parents = s.parents_of(&ids.verifier_id).unwrap();
    parents.sort();
    let mut want = ids.worker_ids.clone();
    want.sort();
    assert_eq!(parents, want);
    assert_eq!(status(s, &ids.synthesizer_id), Status::Todo);
    assert_eq!(
        s.parents_of(&ids.synthesizer_id).unwrap(),
        vec![ids.verifier_id.clone()]
    );
    let runs = s.runs(&ids.root_id).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].metadata.as_ref().unwrap()["kind"],
        "kanban_swarm_v1"
    );
    let comments = s.comments(&ids.root_id).unwrap();
    assert_eq!(comments.len(), 1);
    let board = latest_blackboard(
        comments
            .iter()
            .map(|c| (c.author.as_str(), c.body.as_str())),
    );
    assert_eq!(topology_from_blackboard(&ids.root_id, &board), Some(ids));
}

pub fn failed_batch_leaves_nothing_behind(s: &dyn Store) {
    // The last task names a parent that does not exist: refused after the
    // first four tasks, the root's completion and its events were written.
    let (mut batch, _) = swarm_batch(Some("k-fail"));
    batch.tasks.last_mut().unwrap().task.parents = vec!["t_00000000".into()];
    assert!(matches!(
        s.create_task_batch(&batch),
        Err(StoreError::Invalid(_))
    ));
    // A comment on a task that is not there fails the batch last.
    let (mut batch, _) = swarm_batch(None);
    batch.comments[0].task_id = "t_00000000".into();
    assert!(s.create_task_batch(&batch).is_err());
    // An id already on the board.
    let existing = create(s, "already here");
    let (mut batch, _) = swarm_batch(None);
    batch.tasks[3].id = existing.id.clone();
    assert!(s.create_task_batch(&batch).is_err());
    let tasks = all_tasks(s);
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    // Only the plain task's `created` event: the failed batches left none
    // (ids a rolled-back transaction drew may be skipped, never reused).
    let events = s.events(&EventQuery::default()).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    // The key of the failed batch is free: a good batch with it creates.
    let (batch, ids) = swarm_batch(Some("k-fail"));
    assert!(matches!(
        s.create_task_batch(&batch).unwrap(),
        BatchCreated::Created(_)
    ));
    assert_eq!(status(s, &ids.root_id), Status::Done);
}

pub fn batch_key_replay_returns_the_first_graph(s: &dyn Store) {
    let (first, ids) = swarm_batch(Some("swarm-1"));
    s.create_task_batch(&first).unwrap();
    let events = s.latest_event_id().unwrap();
    let (second, other) = swarm_batch(Some("swarm-1"));
    assert_ne!(other.root_id, ids.root_id);
    let BatchCreated::Existing(root) = s.create_task_batch(&second).unwrap() else {
        panic!("the key matched a live root");
    };
    assert_eq!(root.id, ids.root_id);
    assert_eq!(all_tasks(s).len(), 5);
    assert_eq!(s.latest_event_id().unwrap(), events);
    // Only the first task may carry a key.
    let (mut bad, _) = swarm_batch(None);
    bad.tasks[1].task.idempotency_key = Some("x".into());
    assert!(matches!(
        s.create_task_batch(&bad),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(all_tasks(s).len(), 5);
}
