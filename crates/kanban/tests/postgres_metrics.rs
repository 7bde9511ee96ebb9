//! `/metrics` of gateways on several hosts sharing one PostgreSQL board
//! (issue 11 item 8): each gateway labels its own series with its host id
//! (`host`), and lists every host's lease and running tasks from the
//! database (`host_id`), plus its connection pool. Black-box: two
//! `kanban gateway run` with different `KANBAN_HOST_ID` on one board.

use std::collections::BTreeMap;

use kanban_testkit::gateway::{GatewayChild, SETTLE_WAIT};
use kanban_testkit::{Sandbox, stderr, wait_for};

const ENV_DATABASE_URL: &str = "HERMES_KANBAN_DATABASE_URL";
const HOSTS: [&str; 2] = ["metrics-a", "metrics-b"];

/// One sample of the text exposition: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample value");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("label");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().expect("number"),
            }
        })
        .collect()
}

/// The value of the series `name` whose labels include `want`.
fn value(all: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    all.iter()
        .find(|s| {
            s.name == name
                && want
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

fn metrics(gw: &GatewayChild) -> Vec<Sample> {
    let r = gw.request("GET", "/metrics", None);
    assert_eq!(r.status, 200, "{}", r.body);
    samples(&r.body)
}

/// A host's sandbox on the database at `url`: its own root and host id, a
/// `coder` profile whose worker waits for `go` and then completes.
fn host(url: &str, id: &str, go: &std::path::Path) -> Sandbox {
    let mut b = Sandbox::new();
    b.env.insert(ENV_DATABASE_URL.into(), url.into());
    b.env.insert("KANBAN_HOST_ID".into(), id.into());
    let init = b.run(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    b.kanban_config("  dispatch_interval_seconds: 1\n");
    b.profile(
        "coder",
        &format!(
            "while [ ! -e '{go}' ]; do sleep 0.1; done\n\
             for i in 1 2 3 4 5; do \"$K\" complete --summary done && exit 0; sleep 0.2; done\n\
             exit 1\n",
            go = go.display()
        ),
    );
    b
}

#[test]
fn each_gateway_labels_its_own_series_and_lists_every_host_of_the_board() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = pg.url(&pg.unique_database("kb_metrics"));
    let gate = tempfile::tempdir().unwrap();
    let go = gate.path().join("go");
    let sandboxes: Vec<Sandbox> = HOSTS.iter().map(|h| host(&url, h, &go)).collect();
    let gateways: Vec<GatewayChild> = sandboxes.iter().map(Sandbox::gateway).collect();

    let created = sandboxes[0].ok(&["create", "measured", "--assignee", "coder"]);
    assert!(created.contains("t_"), "{created}");

    // Both leases registered and the task running on one of the hosts, as
    // both gateways see them.
    let seen: Vec<Vec<Sample>> = gateways
        .iter()
        .map(|gw| {
            wait_for(SETTLE_WAIT, || {
                let all = metrics(gw);
                let leases = HOSTS.into_iter().all(|h| {
                    value(
                        &all,
                        "kanban_host_lease_expires_in_seconds",
                        &[("host_id", h)],
                    )
                    .is_some()
                });
                let running: f64 = HOSTS
                    .into_iter()
                    .filter_map(|h| value(&all, "kanban_host_running_runs", &[("host_id", h)]))
                    .sum();
                // The task gauges and the host loads are two reads of one
                // scrape: a claim may commit between them, so wait for both.
                let counted = value(
                    &all,
                    "kanban_tasks",
                    &[("board", "default"), ("status", "running")],
                ) == Some(1.0);
                (leases && running == 1.0 && counted).then_some(all)
            })
            .expect("both leases and the running task in /metrics")
        })
        .collect();

    for (all, own) in seen.iter().zip(HOSTS) {
        // Every series carries this gateway's host.
        let foreign: Vec<_> = all
            .iter()
            .filter(|s| s.labels.get("host").map(String::as_str) != Some(own))
            .collect();
        assert!(foreign.is_empty(), "series without host={own}: {foreign:?}");
        assert_eq!(
            value(
                all,
                "kanban_tasks",
                &[("board", "default"), ("status", "running")]
            ),
            Some(1.0)
        );
        for h in HOSTS {
            let left = value(
                all,
                "kanban_host_lease_expires_in_seconds",
                &[("board", "default"), ("host_id", h)],
            )
            .unwrap();
            assert!(left >= 0.0, "{own} sees the lease of {h} expired: {left}");
        }
        assert_eq!(value(all, "kanban_pool_size", &[]), Some(8.0));
        let idle = value(all, "kanban_pool_connections", &[("state", "idle")]).unwrap();
        let busy = value(all, "kanban_pool_connections", &[("state", "busy")]).unwrap();
        assert!(idle + busy >= 1.0 && idle + busy <= 8.0, "{idle} + {busy}");
    }
    // Both gateways agree on who runs the task.
    let claimer = |all: &[Sample]| {
        HOSTS
            .into_iter()
            .find(|h| value(all, "kanban_host_running_runs", &[("host_id", h)]) == Some(1.0))
    };
    let runner = claimer(&seen[0]).unwrap();
    assert_eq!(claimer(&seen[1]), Some(runner));

    // Once the task is done, the claimer's count drops to 0 everywhere.
    std::fs::write(&go, "").unwrap();
    for gw in &gateways {
        wait_for(SETTLE_WAIT, || {
            let all = metrics(gw);
            (value(&all, "kanban_host_running_runs", &[("host_id", runner)]) == Some(0.0))
                .then_some(())
        })
        .expect("the running count of the claimer drops to 0");
    }
}
