//! Backend-independent behaviour suite of the `Store` trait.
//!
//! Every function takes a fresh, empty board (`&dyn Store`), or for the
//! concurrency checks an opener that returns a new handle (a new
//! connection) to one shared board. A backend's test file calls each
//! function once (see `tests/sqlite.rs`).

#![allow(dead_code)]

pub mod concurrency;
pub mod dashboard;
pub mod lifecycle;
pub mod tasks;

use kanban_core::{Event, Status, Task};
use kanban_store::*;
use serde_json::Value;

/// Opens another handle (connection) to the board under test.
pub type Opener<'a> = &'a (dyn Fn() -> Box<dyn Store> + Sync);

pub fn new_task(title: &str) -> NewTask {
    NewTask {
        title: title.into(),
        assignee: Some("coder".into()),
        ..Default::default()
    }
}

pub fn create(s: &dyn Store, title: &str) -> Task {
    s.create_task(&new_task(title)).expect("create").task
}

pub fn create_with(s: &dyn Store, req: NewTask) -> Task {
    s.create_task(&req).expect("create").task
}

pub fn child_of(s: &dyn Store, title: &str, parents: &[&str]) -> Task {
    let req = NewTask {
        parents: parents.iter().map(|p| p.to_string()).collect(),
        ..new_task(title)
    };
    create_with(s, req)
}

pub fn get(s: &dyn Store, id: &str) -> Task {
    s.get_task(id).expect("get").expect("task exists")
}

pub fn status(s: &dyn Store, id: &str) -> Status {
    get(s, id).status
}

pub fn events(s: &dyn Store, id: &str) -> Vec<Event> {
    s.events(&EventQuery {
        task_id: Some(id.into()),
        ..Default::default()
    })
    .expect("events")
}

pub fn kinds(s: &dyn Store, id: &str) -> Vec<String> {
    events(s, id).into_iter().map(|e| e.kind).collect()
}

/// The newest event of that kind on the task.
pub fn last_event(s: &dyn Store, id: &str, kind: &str) -> Event {
    events(s, id)
        .into_iter()
        .rev()
        .find(|e| e.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} event on {id}: {:?}", kinds(s, id)))
}

/// The payload is an object with exactly these keys.
pub fn assert_keys(payload: &Value, keys: &[&str]) {
    let obj = payload
        .as_object()
        .unwrap_or_else(|| panic!("payload is not an object: {payload}"));
    let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
    got.sort_unstable();
    let mut want = keys.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "payload keys of {payload}");
}

pub fn claim_req(id: &str, lock: &str) -> ClaimRequest {
    ClaimRequest {
        task_id: id.into(),
        claim_lock: lock.into(),
        ttl_seconds: 900,
        review: false,
        ceilings: Ceilings::default(),
    }
}

/// Claim and return the run id, panicking when the claim does not win.
pub fn claim(s: &dyn Store, id: &str) -> i64 {
    match s.claim_task(&claim_req(id, "host:1")).expect("claim") {
        ClaimOutcome::Claimed { run_id, .. } => run_id,
        other => panic!("claim of {id} did not win: {other:?}"),
    }
}

pub fn complete(s: &dyn Store, id: &str) -> Completion {
    s.complete_task(&CompleteRequest {
        task_id: id.into(),
        ..Default::default()
    })
    .expect("complete")
}

pub fn refused_reason(e: StoreError) -> String {
    match e {
        StoreError::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
