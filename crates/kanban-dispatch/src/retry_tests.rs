//! Spawn retries against a real board: exponential backoff with jitter,
//! following the options.

use kanban_core::Status;
use kanban_core::transitions::dispatcher::SpawnRetryPolicy;
use kanban_hermes::config::ProfileSpec;
use kanban_hermes::profiles::ProfileKind;
use kanban_store::Clock;

use crate::options::DispatchOptions;
use crate::pass::tests::Fixture;

#[test]
fn spawn_retries_back_off_exponentially_and_follow_the_options() {
    let mut f = Fixture::new();
    let spec = ProfileSpec {
        command: vec!["kanban-test-no-such-agent".into()],
        ..Default::default()
    };
    f.profiles
        .0
        .insert("ghost".into(), ProfileKind::Template { spec });
    let id = f.create("g", Some("ghost"));
    let d = f.dispatcher();
    let opts = DispatchOptions {
        failure_limit: 100,
        spawn_retry: SpawnRetryPolicy {
            base_seconds: 10,
            max_seconds: 40,
        },
        ..Default::default()
    };
    let mut gaps = Vec::new();
    let mut last_failure = f.clock.now();
    for _ in 0..5 {
        // Step one second at a time until the next attempt happens.
        let before = f.task(&id).consecutive_failures;
        let mut waited = 0;
        while f.task(&id).consecutive_failures == before {
            d.dispatch_once(&opts).unwrap();
            if f.task(&id).consecutive_failures != before {
                break;
            }
            f.clock.advance(1);
            waited += 1;
            assert!(waited < 100, "no retry");
        }
        let now = f.clock.now();
        gaps.push(now - last_failure);
        last_failure = now;
    }
    // First attempt at once; then about 10, 20, 40, 40 s (jitter shortens
    // each by at most a quarter).
    assert_eq!(gaps[0], 0, "{gaps:?}");
    for (gap, full) in gaps[1..].iter().zip([10, 20, 40, 40]) {
        assert!(*gap <= full && *gap >= full * 3 / 4 - 1, "{gaps:?}");
    }
    assert_eq!(f.task(&id).status, Status::Ready);
}
