//! `kanban attach` / `attachments` / `attach-rm` on a board kept in
//! PostgreSQL: the row and the blob go into the database with the file, so
//! a second host (another root, no shared disk) lists the attachment, its
//! gateway serves the exact bytes, and it can remove it. Black-box,
//! against the test kit's real PostgreSQL.

use kanban_testkit::{Sandbox, stderr};
use serde_json::Value;

const ENV_DATABASE_URL: &str = "HERMES_KANBAN_DATABASE_URL";
const ENV_HOST_ID: &str = "KANBAN_HOST_ID";
/// The cap of `kanban_core::defaults::ATTACHMENT_MAX_BYTES`.
const CAP: u64 = 25 * 1024 * 1024;
const CONTENT: &str = "pg attachment \u{1} bytes\n";

fn host(url: &str, host: &str) -> Sandbox {
    let mut b = Sandbox::new();
    b.env.insert(ENV_DATABASE_URL.into(), url.to_string());
    b.env.insert(ENV_HOST_ID.into(), host.to_string());
    b
}

#[test]
fn attachments_round_trip_on_a_postgres_board() {
    let Some(pg) = kanban_testkit::postgres::cluster() else {
        return;
    };
    let url = pg.url(&pg.unique_database("kb_attach_cli"));
    let a = host(&url, "host-a");
    let mut b = host(&url, "host-b");
    let init = a.run(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let t = a.create("Files in PostgreSQL", &[]);
    let src = a.path("notes.txt");
    std::fs::write(&src, CONTENT).unwrap();
    let src = src.display().to_string();

    let att = a.json(&["attach", &t, &src, "--author", "alice", "--json"]);
    let id = att["id"].as_i64().expect("an id");
    assert_eq!(att["size"], CONTENT.len());
    assert!(
        a.path(&format!("kanban/attachments/{t}/notes.txt"))
            .exists()
    );

    // Refusals change nothing, on this backend too.
    let big = a.path("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(CAP + 1)
        .unwrap();
    a.refuses(
        &["attach", &t, &big.display().to_string()],
        1,
        "attachment exceeds 25 MB limit",
    );
    a.refuses(
        &["attach", "t_00000000", &src],
        1,
        "no such task: t_00000000",
    );
    a.refuses(&["attach-rm", "999"], 1, "no such attachment: 999");

    // Host B lists the row and its gateway serves the bytes from the board.
    let listed = b.json(&["attachments", &t, "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["uploaded_by"], "alice");
    b.kanban_config("  dispatch_in_gateway: false\n");
    let gw_b = b.gateway();
    let r = gw_b.request("GET", &format!("/api/v1/attachments/{id}"), None);
    assert_eq!((r.status, r.body.as_str()), (200, CONTENT));

    // A second file, removed on host A: row, blob copy and file.
    let second = a.json(&["attach", &t, &src, "--json"]);
    assert_eq!(second["filename"], "notes (1).txt");
    let second_id = second["id"].as_i64().unwrap();
    let out = a.ok(&["attach-rm", &second_id.to_string()]);
    assert!(out.contains("Deleted attachment"), "{out}");
    assert!(
        !a.path(&format!("kanban/attachments/{t}/notes (1).txt"))
            .exists()
    );
    let r = gw_b.request("GET", &format!("/api/v1/attachments/{second_id}"), None);
    assert_eq!(r.status, 404);

    // Host B removes the first one; host A sees it gone.
    let gone = b.json(&["attach-rm", &id.to_string(), "--json"]);
    assert_eq!(gone["ok"], true);
    assert_eq!(a.json(&["attachments", &t, "--json"]), Value::Array(vec![]));
    let r = gw_b.request("GET", &format!("/api/v1/attachments/{id}"), None);
    assert_eq!(r.status, 404);
}
