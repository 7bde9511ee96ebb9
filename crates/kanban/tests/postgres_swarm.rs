//! `kanban swarm` and secret redaction on a PostgreSQL board: the same
//! graph in one transaction, the same replay, secrets stored masked.

use kanban_testkit::{Sandbox, stderr};
use serde_json::Value;

fn postgres_sandbox() -> Option<Sandbox> {
    let pg = kanban_testkit::postgres::cluster()?;
    let url = pg.url(&pg.unique_database("kb_swarm"));
    let mut b = Sandbox::new();
    b.env.insert("HERMES_KANBAN_DATABASE_URL".into(), url);
    let init = b.run(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    Some(b)
}

#[test]
fn swarm_and_redaction_work_on_a_postgres_board() {
    let Some(b) = postgres_sandbox() else { return };
    let args = [
        "swarm",
        "Ship it",
        "--worker",
        "alice:Research",
        "--worker",
        "bob:Draft",
        "--verifier",
        "rev",
        "--synthesizer",
        "writer",
        "--idempotency-key",
        "pg-1",
        "--json",
    ];
    let ids = b.json(&args);
    assert_eq!(b.json(&args), ids, "a replay returns the first graph");
    let list = b.json(&["list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(5), "{list}");
    let root = ids["root_id"].as_str().unwrap();
    assert_eq!(b.status(root), "done");
    for w in ids["worker_ids"].as_array().unwrap() {
        assert_eq!(b.status(w.as_str().unwrap()), "ready");
    }
    assert_eq!(b.status(ids["verifier_id"].as_str().unwrap()), "todo");
    // Refused input writes nothing.
    let bad = b.run(&[
        "swarm",
        "x",
        "--worker",
        "a:t",
        "--worker",
        "b:u:web",
        "--verifier",
        "r",
        "--synthesizer",
        "s",
    ]);
    assert!(!bad.status.success());
    assert_eq!(
        b.json(&["list", "--json"]).as_array().map(Vec::len),
        Some(5)
    );

    let w = ids["worker_ids"][0].as_str().unwrap();
    let key = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    b.ok(&["comment", w, "key", key]);
    b.ok(&["complete", w, "--summary", &format!("used {key}")]);
    let shown: Value = b.json(&["show", w, "--json"]);
    let text = shown.to_string();
    assert!(!text.contains(key), "{text}");
    assert!(text.contains("ghp_ab...6789"), "{text}");
}
