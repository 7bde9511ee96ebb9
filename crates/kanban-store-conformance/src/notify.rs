//! The notifier's capability ([`NotifyStore`]): claiming events by moving
//! a subscription's cursor, rewinding after a failed send, dropping a
//! subscription after repeated failures or once its task is finished.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use kanban_core::BlockKind;
use kanban_store::notify_ops::*;
use kanban_store::*;

use crate::Board;
use crate::support::*;

fn sub(s: &dyn NotifyStore, task: &str, platform: &str) -> NotifyKey {
    s.notify_subscribe(&NewNotifySub {
        task_id: task.into(),
        platform: platform.into(),
        chat_id: "c".into(),
        ..Default::default()
    })
    .unwrap();
    NotifyKey {
        task_id: task.into(),
        platform: platform.into(),
        chat_id: "c".into(),
        thread_id: None,
    }
}

/// A never-claimed task with one notifying event (`blocked`).
fn task_with_events(s: &dyn NotifyStore) -> String {
    let t = s
        .create_task(&NewTask {
            title: "t".into(),
            ..Default::default()
        })
        .unwrap()
        .task
        .id;
    s.block_task(&BlockRequest {
        task_id: t.clone(),
        reason: Some("why".into()),
        kind: None,
        expected_run_id: None,
    })
    .unwrap();
    t
}

pub fn claim_moves_cursor_once_and_rewind_is_cas(s: &dyn NotifyStore) {
    let t = task_with_events(s);
    let key = sub(s, &t, "webhook");
    let pending = s.pending_notify_subs(&["webhook"], &NOTIFY_KINDS).unwrap();
    assert_eq!(pending.len(), 1);
    let c = s.claim_notify_events(&key, &NOTIFY_KINDS).unwrap();
    assert_eq!(c.events.len(), 1);
    assert_eq!(c.events[0].kind, "blocked");
    assert!(c.new_cursor > c.old_cursor);
    // A second claim sees nothing: the cursor already moved.
    assert!(
        s.claim_notify_events(&key, &NOTIFY_KINDS)
            .unwrap()
            .events
            .is_empty()
    );
    assert!(
        s.pending_notify_subs(&["webhook"], &NOTIFY_KINDS)
            .unwrap()
            .is_empty()
    );
    let f = DeliveryFailure {
        key: key.clone(),
        old_cursor: c.old_cursor,
        claimed_cursor: c.new_cursor,
        rewind_to: c.old_cursor,
        error: "boom".into(),
    };
    assert_eq!(
        s.notify_delivery_failed(&f).unwrap(),
        FailureOutcome::Retry {
            failures: 1,
            rewound: true
        }
    );
    // A stale rewind (cursor no longer the claimed one) changes nothing.
    assert_eq!(
        s.notify_delivery_failed(&f).unwrap(),
        FailureOutcome::Retry {
            failures: 2,
            rewound: false
        }
    );
    assert_eq!(s.notify_failures(&key).unwrap(), 2);
    assert_eq!(
        s.notify_delivery_failed(&f).unwrap(),
        FailureOutcome::Dropped { failures: 3 }
    );
    assert!(s.notify_list(Some(&t)).unwrap().is_empty());
    assert_eq!(s.notify_failures(&key).unwrap(), 0);
}

pub fn delivered_resets_failures_and_unsubscribes_finished_tasks(s: &dyn NotifyStore) {
    let t = task_with_events(s);
    let key = sub(s, &t, "webhook");
    let other = sub(s, &t, "telegram");
    let c = s.claim_notify_events(&key, &NOTIFY_KINDS).unwrap();
    s.notify_delivery_failed(&DeliveryFailure {
        key: key.clone(),
        old_cursor: c.old_cursor,
        claimed_cursor: c.new_cursor,
        rewind_to: c.old_cursor,
        error: "x".into(),
    })
    .unwrap();
    s.claim_notify_events(&key, &NOTIFY_KINDS).unwrap();
    assert_eq!(
        s.notify_delivered(&key, &NOTIFY_KINDS).unwrap(),
        DeliveredOutcome::Kept
    );
    assert_eq!(s.notify_failures(&key).unwrap(), 0);
    s.unblock_task(&t, None).unwrap();
    s.complete_task(&CompleteRequest {
        task_id: t.clone(),
        summary: Some("ok".into()),
        ..Default::default()
    })
    .unwrap();
    let c = s.claim_notify_events(&key, &NOTIFY_KINDS).unwrap();
    let kinds: Vec<_> = c.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["unblocked", "completed"]);
    assert_eq!(
        s.notify_delivered(&key, &NOTIFY_KINDS).unwrap(),
        DeliveredOutcome::Unsubscribed
    );
    let left = s.notify_list(Some(&t)).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].platform.as_str(), left[0].last_event_id),
        ("telegram", 0)
    );
    assert_eq!(s.notify_failures(&other).unwrap(), 0);
}

/// Several notifiers claim one subscription's events while a writer keeps
/// appending notifying events from another handle: every notifying event
/// is claimed exactly once (claims are exclusive, and the cursor never
/// moves past an event that commits later).
pub fn notify_claims_are_exclusive_under_concurrency(board: &Board<'_>) {
    const NOTIFIERS: usize = 3;
    const CYCLES: usize = 25;
    let setup = board.open();
    let t = create(&*setup, "chatty").id;
    let key = sub(&*setup, &t, "webhook");
    let writing = AtomicBool::new(true);
    let claimed = race(board, NOTIFIERS + 1, |n, s| {
        let mut mine = Vec::new();
        if n == 0 {
            for i in 0..CYCLES {
                // Alternating kinds: a repeated kind would trip the loop
                // breaker (triage), which cannot be unblocked.
                let kind = [BlockKind::NeedsInput, BlockKind::Capability][i % 2];
                s.block_task(&BlockRequest {
                    task_id: t.clone(),
                    kind: Some(kind),
                    ..Default::default()
                })
                .expect("block");
                s.unblock_task(&t, None).expect("unblock");
            }
            writing.store(false, Ordering::SeqCst);
            return mine;
        }
        loop {
            let last = !writing.load(Ordering::SeqCst);
            let c = s.claim_notify_events(&key, &NOTIFY_KINDS).expect("claim");
            assert!(c.events.windows(2).all(|w| w[0].id < w[1].id));
            if let Some(e) = c.events.last() {
                assert_eq!(c.new_cursor, e.id);
            }
            let empty = c.events.is_empty();
            mine.extend(c.events.into_iter().map(|e| e.id));
            if last && empty {
                return mine;
            }
        }
    });
    let all: Vec<i64> = claimed.into_iter().flatten().collect();
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "an event was claimed twice");
    let notifying: BTreeSet<i64> = events(&*setup, &t)
        .into_iter()
        .filter(|e| NOTIFY_KINDS.contains(&e.kind.as_str()))
        .map(|e| e.id)
        .collect();
    assert_eq!(notifying.len(), 2 * CYCLES);
    assert_eq!(unique, notifying, "every notifying event claimed once");
}
