//! The CLI on a PostgreSQL board (issue 11, "choosing the backend"): `--db`,
//! `HERMES_KANBAN_DATABASE_URL` and `kanban.database_url` select it; every
//! verb works on it; the password in the URL never shows; workers reach the
//! board through their environment. Runs against the test kit's real
//! PostgreSQL server.

use std::time::{Duration, Instant};

use kanban_testkit::{Sandbox, stderr, stdout};

/// A password the server never asks for (trust auth on the test socket):
/// it must never appear in anything kanban prints or passes in argv.
const SECRET: &str = "s3cret-pw";

/// A fresh database, as a URL carrying [`SECRET`]; `None` only when
/// PostgreSQL is missing and `KANBAN_SKIP_POSTGRES=1` asked to skip.
fn database_url() -> Option<String> {
    let pg = kanban_testkit::postgres::cluster()?;
    let url = pg.url(&pg.unique_database("kb_cli"));
    let (scheme, rest) = url.split_once("://").expect("URL");
    let (user, host) = rest.split_once('@').expect("user@host");
    Some(format!("{scheme}://{user}:{SECRET}@{host}"))
}

fn assert_no_secret(out: &std::process::Output) {
    for text in [stdout(out), stderr(out)] {
        assert!(!text.contains(SECRET), "password leaked: {text}");
    }
}

#[test]
fn every_basic_verb_works_on_a_postgres_board_selected_by_the_environment() {
    let Some(url) = database_url() else { return };
    let mut b = Sandbox::new();
    b.env.insert("HERMES_KANBAN_DATABASE_URL".into(), url);
    let init = b.run(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    assert_no_secret(&init);
    assert!(
        stdout(&init).contains("Kanban board initialized in postgresql://postgres:***@"),
        "{}",
        stdout(&init)
    );

    let parent = b.create("Parent", &["--assignee", "coder"]);
    let child = b.create("Child", &["--assignee", "coder", "--parent", &parent]);
    assert_eq!(b.status(&parent), "ready");
    assert_eq!(b.status(&child), "todo");
    let list = b.json(&["list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");

    b.ok(&["comment", &parent, "looks fine"]);
    b.ok(&["claim", &parent]);
    b.ok(&["complete", &parent, "--summary", "built it"]);
    assert_eq!(b.status(&parent), "done");
    // The child was promoted in the same commit as its parent's completion.
    assert_eq!(b.status(&child), "ready");
    let shown = b.json(&["show", &parent, "--json"]);
    assert_eq!(shown["runs"][0]["summary"], "built it");
    assert_eq!(shown["comments"][0]["body"], "looks fine");

    let stats = b.run(&["stats", "--json"]);
    assert!(stats.status.success(), "{}", stderr(&stats));
    assert_no_secret(&stats);

    // Nothing went to a SQLite file.
    assert!(!b.path("kanban.db").exists());
}

#[test]
fn db_flag_and_config_select_the_database_and_bad_urls_are_usage_errors() {
    let Some(url) = database_url() else { return };
    let b = Sandbox::new();
    let created = b.ok(&["--db", &url, "create", "On postgres"]);
    let id = created
        .split_whitespace()
        .find(|w| w.starts_with("t_"))
        .expect("task id")
        .trim_end_matches(':')
        .to_string();
    // Without --db the same root's SQLite board does not have it.
    let sqlite = b.run(&["show", &id]);
    assert_eq!(sqlite.status.code(), Some(1), "{}", stdout(&sqlite));

    b.write_config(&format!("kanban:\n  database_url: \"{url}\"\n"));
    let shown = b.run(&["show", &id, "--json"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert_no_secret(&shown);

    for (args, origin) in [
        (vec!["--db", "mysql://root:pw@h/x", "list"], "--db"),
        (
            vec!["--db", "postgres://u:pw@h/x?board=Bad!", "list"],
            "--db",
        ),
    ] {
        let out = b.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(origin), "{}", stderr(&out));
        assert!(!stderr(&out).contains(":pw@"), "{}", stderr(&out));
    }
}

#[test]
fn a_missing_server_is_a_clear_error_without_the_password() {
    let b = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgresql://postgres:{SECRET}@{}:5432/nowhere",
        dir.path().display().to_string().replace('/', "%2F")
    );
    let out = b.run(&["--db", &url, "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_no_secret(&out);
    assert!(stderr(&out).starts_with("kanban: "), "{}", stderr(&out));
}

#[test]
fn a_dispatched_worker_completes_its_task_through_the_database() {
    let Some(url) = database_url() else { return };
    let mut b = Sandbox::new();
    b.env
        .insert("HERMES_KANBAN_DATABASE_URL".into(), url.clone());
    let kanban = b.bin().display().to_string();
    // The worker gets the URL in its environment, never in its argv.
    b.profile(
        "coder",
        &format!(
            "case \"$*\" in *{SECRET}*) exit 9;; esac\n\
             [ -n \"$HERMES_KANBAN_DATABASE_URL\" ] || exit 8\n\
             exec '{kanban}' complete --summary \"worker on postgres\"\n"
        ),
    );
    let t = b.create("Work", &["--assignee", "coder"]);
    let out = b.run(&["dispatch", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    while b.status(&t) != "done" {
        assert!(
            Instant::now() < deadline,
            "worker never completed: {}",
            b.task(&t)
        );
        std::thread::sleep(Duration::from_millis(50));
        b.run(&["dispatch"]);
    }
    assert_eq!(b.task(&t)["runs"][0]["summary"], "worker on postgres");
}
