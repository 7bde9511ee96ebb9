//! The diagnostic rules' reads: the histories they fold (only the kinds
//! and outcomes they read, payloads only where read, archived tasks left out
//! of the board-wide read) and the tasks changed after an event id, which
//! `DiagnosticsIndex` uses to refold only what changed.

use kanban_core::BlockKind;
use kanban_core::diagnostics::{TaskHistory, fact_event_kinds, payload_event_kinds};
use kanban_store::diagnostics::DiagnosticsIndex;
use kanban_store::dispatch_ops::DispatchStore;
use kanban_store::*;
use serde_json::Value;

use crate::support::*;

fn history<'a>(all: &'a [TaskHistory], id: &str) -> &'a TaskHistory {
    all.iter()
        .find(|h| h.task_id == id)
        .unwrap_or_else(|| panic!("no history for {id}"))
}

/// Block with `kind` (alternate kinds: the same kind twice in a row trips
/// the block-loop breaker instead).
fn block(s: &dyn Store, id: &str, kind: BlockKind) {
    s.block_task(&BlockRequest {
        task_id: id.into(),
        reason: Some("need input".into()),
        kind: Some(kind),
        expected_run_id: None,
    })
    .expect("block");
}

pub fn diagnostic_histories_read_only_the_rule_inputs(s: &dyn DispatchStore) {
    let crashed = create(s, "crashes").id;
    for _ in 0..2 {
        let run = claim(s, &crashed);
        assert!(
            s.release_running(&crash(&crashed, run, counted(10)))
                .unwrap()
                .released
        );
    }
    let blocked = create(s, "blocked").id;
    block(s, &blocked, BlockKind::NeedsInput);
    s.add_comment(&blocked, "ops", "looking").unwrap();
    s.unblock_task(&blocked, None).unwrap();
    block(s, &blocked, BlockKind::Capability);
    let phantom = create(s, "orchestrator").id;
    claim(s, &phantom);
    s.complete_task(&CompleteRequest {
        task_id: phantom.clone(),
        summary: Some("made cards".into()),
        created_cards: vec!["t_0badc0de".into()],
        ..Default::default()
    })
    .unwrap_err();
    let gone = create(s, "archived").id;
    s.archive_task(&gone).unwrap();

    let all = s.diagnostic_histories(None).unwrap();
    assert!(
        all.iter().all(|h| h.task_id != gone),
        "archived tasks are left out"
    );
    let kinds = fact_event_kinds();
    for h in &all {
        let ids: Vec<i64> = h.events.iter().map(|e| e.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "events oldest first");
        for e in &h.events {
            assert!(kinds.contains(&e.kind.as_str()), "unexpected {}", e.kind);
            assert_eq!(e.task_id, h.task_id);
            if !payload_event_kinds().contains(&e.kind.as_str()) {
                assert_eq!(e.payload, Value::Null, "{} keeps no payload", e.kind);
            }
        }
    }
    let c = history(&all, &crashed);
    let outcomes: Vec<Option<&str>> = c.runs.iter().map(|r| r.outcome.as_deref()).collect();
    assert_eq!(outcomes, [Some("crashed"), Some("crashed")]);
    assert!(c.runs[0].id < c.runs[1].id);
    assert_eq!(c.runs[1].error.as_deref(), Some("pid 5 exited with code 1"));
    let b: Vec<&str> = history(&all, &blocked)
        .events
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(
        b,
        ["created", "blocked", "commented", "unblocked", "blocked"]
    );
    let p = history(&all, &phantom);
    let hit = p
        .events
        .iter()
        .find(|e| e.kind == "completion_blocked_hallucination")
        .expect("the refused completion's event");
    assert!(
        hit.payload["phantom_cards"]
            .to_string()
            .contains("t_0badc0de")
    );

    // Asking for tasks reads just those, archived ones included.
    let some = s
        .diagnostic_histories(Some(&[blocked.clone(), gone.clone()]))
        .unwrap();
    let mut ids: Vec<&str> = some.iter().map(|h| h.task_id.as_str()).collect();
    ids.sort();
    let mut want = [blocked.as_str(), gone.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(history(&some, &blocked).events.len(), 5);
    assert!(s.diagnostic_histories(Some(&[])).unwrap().is_empty());
}

pub fn tasks_with_events_after_names_each_changed_task_once(s: &dyn Store) {
    let a = create(s, "a").id;
    let b = create(s, "b").id;
    let cursor = s.latest_event_id().unwrap();
    assert!(s.tasks_with_events_after(cursor).unwrap().is_empty());
    s.add_comment(&b, "x", "one").unwrap();
    s.add_comment(&b, "x", "two").unwrap();
    assert_eq!(
        s.tasks_with_events_after(cursor).unwrap(),
        std::slice::from_ref(&b)
    );
    let mut all = s.tasks_with_events_after(0).unwrap();
    all.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(all, want);
}

pub fn diagnostics_index_refolds_only_changed_tasks(s: &dyn Store) {
    let ids: Vec<String> = (0..5).map(|i| create(s, &format!("t{i}")).id).collect();
    let mut index = DiagnosticsIndex::new();
    let first = index.refresh(s).unwrap();
    assert!(first.full);
    assert_eq!(first.refolded, 5);
    let again = index.refresh(s).unwrap();
    assert_eq!((again.full, again.refolded), (false, 0));

    block(s, &ids[2], BlockKind::NeedsInput);
    let after = index.refresh(s).unwrap();
    assert_eq!((after.full, after.refolded), (false, 1));
    assert!(index.facts(&ids[2]).expect("facts").last_blocked_at > 0);
    assert_eq!(after.cursor, s.latest_event_id().unwrap());
    // Archiving is an event: the task is refolded (and then diagnosed as
    // archived, i.e. not at all).
    s.archive_task(&ids[3]).unwrap();
    let archived = index.refresh(s).unwrap();
    assert_eq!((archived.full, archived.refolded), (false, 1));
}
