//! The size of a process's PostgreSQL connection pool: the key
//! `kanban.database_pool_size` of config.yaml, which the variable
//! `KANBAN_DATABASE_POOL_SIZE` overrides. A bad value of either is refused
//! (exit 2) naming it and the fix, before anything reaches the database;
//! a good one is what the gateway's pool gets. The gateway part runs
//! against the test kit's real PostgreSQL.

use kanban_testkit::gateway::GatewayChild;
use kanban_testkit::{Sandbox, stderr};

const ENV_POOL_SIZE: &str = "KANBAN_DATABASE_POOL_SIZE";
/// Where no server listens: the refusals come before any connection.
const NOWHERE: &str = "postgres://kanban@localhost/kanban?host=/nonexistent-kanban-socket-dir";

fn config(b: &Sandbox, size: &str) {
    b.write_config(&format!("kanban:\n  database_pool_size: {size}\n"));
}

#[test]
fn bad_pool_sizes_are_refused_naming_the_key_and_the_fix() {
    let b = Sandbox::new();
    let file = b.path("config.yaml");
    for bad in ["0", "-2", "1.5", "many", "257"] {
        config(&b, bad);
        let out = b.run(&["--db", NOWHERE, "list"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        let head = format!(
            "kanban: kanban.database_pool_size in {} is \"{bad}\"",
            file.display()
        );
        assert!(err.starts_with(&head), "{bad}: {err}");
        assert!(err.contains("from 1 to 256"), "{bad}: {err}");
        assert!(err.contains("remove the key"), "{bad}: {err}");
    }
    // The variable wins over the file, and is held to the same rule;
    // every way of naming the database is checked (here the variable).
    config(&b, "4");
    for bad in ["0", "-1", "x", "300"] {
        let out = b.run_env(
            &["boards", "list"],
            &[
                ("HERMES_KANBAN_DATABASE_URL", NOWHERE),
                (ENV_POOL_SIZE, bad),
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.starts_with(&format!("kanban: {ENV_POOL_SIZE} is \"{bad}\"")),
            "{err}"
        );
        assert!(err.contains("unset the variable"), "{err}");
    }
    // Without a database the key means nothing and is not read.
    config(&b, "0");
    let out = b.run(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The pool size the gateway's `/metrics` reports.
fn pool_size(gw: &GatewayChild) -> Option<f64> {
    let body = gw.request("GET", "/metrics", None).body;
    body.lines()
        .find(|l| l.starts_with("kanban_pool_size"))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn the_gateway_pool_has_the_configured_size_unless_the_variable_says_otherwise() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = pg.url(&pg.unique_database("kb_pool_size"));
    let mut b = Sandbox::new();
    b.env.insert("HERMES_KANBAN_DATABASE_URL".into(), url);
    let init = b.run(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    config(&b, "3");
    {
        let gw = b.gateway();
        assert_eq!(pool_size(&gw), Some(3.0), "{}", gw.log_text());
    }
    let gw = b.gateway_with(&[(ENV_POOL_SIZE, "5")], &[]);
    assert_eq!(pool_size(&gw), Some(5.0), "{}", gw.log_text());
}
