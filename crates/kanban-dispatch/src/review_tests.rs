//! Review dispatch: `kanban.review_dispatch`, and the ceilings, per-profile
//! caps and respawn guards a review claim passes exactly like a ready one
//! (the reference applies only `max_spawn` to review claims, SPEC §4).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kanban_core::Status;
use kanban_hermes::layout::{Env, MapEnv};
use kanban_hermes::profiles::ProfileKind;
use kanban_store::{EventQuery, ReviewRequest};

use crate::dispatcher::*;
use crate::launch::REVIEW_SKILL;
use crate::liveness::StaticLiveness;
use crate::options::DispatchOptions;
use crate::pass::tests::{Fixture, MapProfiles};
use crate::result::DispatchResult;
use crate::spawner::StubSpawner;

const PR_COMMENT: &str = "opened https://github.com/o/r/pull/7 for review";

/// Fake workers; profiles `agent` (implements) and `rev` (reviews).
fn stub_dispatcher(f: &Fixture) -> (Dispatcher, Arc<StubSpawner>) {
    let liveness = Arc::new(StaticLiveness::new("h"));
    let spawner = Arc::new(StubSpawner::with_liveness(liveness.clone()));
    let mut profiles = HashMap::new();
    for name in ["agent", "rev"] {
        profiles.insert(
            name.to_string(),
            ProfileKind::Template {
                spec: kanban_hermes::config::ProfileSpec {
                    command: vec![name.into(), "{task_id}".into(), "{skills}".into()],
                    ..Default::default()
                },
            },
        );
    }
    let parts = DispatcherParts {
        store: f.store.clone(),
        spawner: spawner.clone(),
        liveness,
        profiles: Arc::new(MapProfiles(profiles)),
        context: Arc::new(TitleBodyContext),
        env: Arc::new(MapEnv::new()) as Arc<dyn Env + Send + Sync>,
        board: f.board(),
    };
    (Dispatcher::new(parts), spawner)
}

/// A card implemented by `agent`, waiting in review for `rev`.
fn in_review(f: &Fixture, title: &str) -> String {
    let id = f.create(title, Some("agent"));
    f.store
        .request_review(&ReviewRequest {
            task_id: id.clone(),
            summary: format!("{title}: done, please check"),
            reviewer: Some("rev".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(f.task(&id).status, Status::Review);
    id
}

fn spawned(r: &DispatchResult) -> Vec<&str> {
    r.spawned.iter().map(|s| s.task_id.as_str()).collect()
}

fn guarded(r: &DispatchResult) -> Vec<(&str, &str)> {
    r.respawn_guarded
        .iter()
        .map(|g| (g.task_id.as_str(), g.reason.as_str()))
        .collect()
}

fn capped(r: &DispatchResult) -> Vec<&str> {
    r.skipped_per_profile_capped
        .iter()
        .map(|c| c.task_id.as_str())
        .collect()
}

#[test]
fn review_dispatch_off_leaves_review_cards_for_a_human() {
    let f = Fixture::new();
    let review = in_review(&f, "reviewed");
    let ready = f.create("ready", Some("agent"));
    let (d, spawner) = stub_dispatcher(&f);
    let off = DispatchOptions {
        review_dispatch: false,
        ..Default::default()
    };
    let r = d.dispatch_once(&off).unwrap();
    assert_eq!(spawned(&r), vec![ready.as_str()], "{r:?}");
    assert_eq!(f.task(&review).status, Status::Review);
    assert_eq!(f.task(&review).claim_lock, None);
    // A card waiting for a human is no idle spawnable work.
    assert_eq!(r.health.idle_spawnable, 0);
    assert!(!r.health.is_bad());
    let r = d.dispatch_once(&off).unwrap();
    assert!(r.spawned.is_empty(), "{r:?}");
    // On (the default): the reviewer starts with the review skill.
    assert!(DispatchOptions::default().review_dispatch);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(spawned(&r), vec![review.as_str()], "{r:?}");
    assert_eq!(f.task(&review).status, Status::Running);
    let spec = spawner.spawned().pop().unwrap();
    assert_eq!(spec.task_id, review);
    assert_eq!(spec.argv[0], "rev");
    assert!(spec.argv.contains(&REVIEW_SKILL.to_string()), "{spec:?}");
}

#[test]
fn review_claims_count_toward_the_global_ceilings() {
    let f = Fixture::new();
    let ready = f.create("ready", Some("agent"));
    let review = in_review(&f, "reviewed");
    let (d, _) = stub_dispatcher(&f);
    // max_spawn is a live ceiling shared by ready and review claims,
    // ready first.
    let r = d
        .dispatch_once(&DispatchOptions {
            max_spawn: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(spawned(&r), vec![ready.as_str()], "{r:?}");
    assert!(r.health.capacity_full);
    assert_eq!(f.task(&review).status, Status::Review);
    // max_in_progress holds review claims too (the reference returns
    // early here; the review pass must not slip past it).
    let r = d
        .dispatch_once(&DispatchOptions {
            max_in_progress: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert!(r.spawned.is_empty() && r.health.capacity_full, "{r:?}");
    assert!(!r.health.is_bad());
    assert_eq!(f.task(&review).status, Status::Review);
    let r = d
        .dispatch_once(&DispatchOptions {
            max_in_progress: Some(2),
            max_spawn: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(spawned(&r), vec![review.as_str()], "{r:?}");
}

#[test]
fn review_claims_respect_per_profile_caps() {
    let f = Fixture::new();
    // `rev` is already busy with an ordinary task.
    let busy = f.create("busy", Some("rev"));
    let (d, _) = stub_dispatcher(&f);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(spawned(&r), vec![busy.as_str()]);
    let review = in_review(&f, "reviewed");
    let r = d
        .dispatch_once(&DispatchOptions {
            max_in_progress_per_profile: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert!(r.spawned.is_empty(), "{r:?}");
    assert_eq!(capped(&r), vec![review.as_str()]);
    assert_eq!(r.skipped_per_profile_capped[0].assignee, "rev");
    assert_eq!(r.skipped_per_profile_capped[0].current, 1);
    assert_eq!(f.task(&review).status, Status::Review);
    // A profile's own limit wins over the default, both ways.
    let limits = |n: i64| BTreeMap::from([("rev".to_string(), n)]);
    let r = d
        .dispatch_once(&DispatchOptions {
            profile_limits: limits(1),
            max_in_progress_per_profile: Some(5),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(capped(&r), vec![review.as_str()], "{r:?}");
    let r = d
        .dispatch_once(&DispatchOptions {
            profile_limits: limits(2),
            max_in_progress_per_profile: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(spawned(&r), vec![review.as_str()], "{r:?}");
}

#[test]
fn review_claims_pass_the_respawn_guards() {
    let f = Fixture::new();
    let review = in_review(&f, "reviewed");
    // Its latest attempt was rate-limited (a board another writer keeps,
    // as the reference's direct SQL into review does).
    let db = rusqlite::Connection::open(f.root().join("kanban.db")).unwrap();
    let n = db
        .execute(
            "UPDATE task_runs SET outcome = 'rate_limited', status = 'rate_limited', \
             ended_at = ?1 WHERE task_id = ?2",
            rusqlite::params![f.store.now(), review],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    let (d, _) = stub_dispatcher(&f);
    let opts = DispatchOptions {
        rate_limit_cooldown_seconds: 600,
        ..Default::default()
    };
    let r = d.dispatch_once(&opts).unwrap();
    assert!(r.spawned.is_empty(), "{r:?}");
    assert_eq!(
        guarded(&r),
        vec![(review.as_str(), "rate_limit_cooldown")],
        "{r:?}"
    );
    let events = f
        .store
        .events(&EventQuery {
            task_id: Some(review.clone()),
            kinds: Some(vec!["respawn_guarded".into()]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(f.task(&review).status, Status::Review);
    // The cooldown over, the reviewer starts.
    f.clock.advance(601);
    let r = d.dispatch_once(&opts).unwrap();
    assert_eq!(spawned(&r), vec![review.as_str()], "{r:?}");
}

#[test]
fn an_open_pull_request_guards_ready_work_but_not_its_review() {
    let f = Fixture::new();
    let ready = f.create("ready", Some("agent"));
    let review = in_review(&f, "reviewed");
    for id in [&ready, &review] {
        f.store.add_comment(id, "agent", PR_COMMENT).unwrap();
    }
    let (d, _) = stub_dispatcher(&f);
    let r = d.dispatch_once(&DispatchOptions::default()).unwrap();
    assert_eq!(guarded(&r), vec![(ready.as_str(), "active_pr")], "{r:?}");
    assert_eq!(spawned(&r), vec![review.as_str()], "{r:?}");
}
