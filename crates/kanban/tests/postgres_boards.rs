//! Boards shared through the database (issue 11 item 1): two root
//! directories ("two hosts") configured with one PostgreSQL URL see the
//! same boards, metadata included, because the database keeps the board
//! catalogue; the current board stays per root. Refusals (bad slug exit 2,
//! unknown board exit 1) read as on SQLite, and no output shows the
//! password. Black-box, against the test kit's real PostgreSQL.

use std::process::Output;

use kanban_testkit::{Sandbox, stderr, stdout};
use serde_json::Value;

/// A password the server never asks for (trust auth on the test socket).
const SECRET: &str = "boards-s3cret-pw";
const ENV_DATABASE_URL: &str = "HERMES_KANBAN_DATABASE_URL";

/// A fresh database as a URL carrying [`SECRET`]; `None` only when
/// PostgreSQL is missing and `KANBAN_SKIP_POSTGRES=1` asked to skip.
fn database_url(prefix: &str) -> Option<String> {
    let pg = kanban_testkit::postgres::cluster()?;
    let url = pg.url(&pg.unique_database(prefix));
    let (scheme, rest) = url.split_once("://").expect("URL");
    let (user, host) = rest.split_once('@').expect("user@host");
    Some(format!("{scheme}://{user}:{SECRET}@{host}"))
}

/// A root of its own (a host) whose boards live in the database at `url`.
fn host(url: &str) -> Sandbox {
    let mut b = Sandbox::new();
    b.env.insert(ENV_DATABASE_URL.into(), url.to_string());
    b
}

/// Every output a test saw, to check none shows the password.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn run(&mut self, b: &Sandbox, args: &[&str]) -> Output {
        let out = b.run(args);
        self.0
            .push(format!("{args:?}: {}{}", stdout(&out), stderr(&out)));
        out
    }

    fn ok(&mut self, b: &Sandbox, args: &[&str]) -> String {
        let out = self.run(b, args);
        assert!(
            out.status.success(),
            "kanban {args:?} failed ({:?}): {}{}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn json(&mut self, b: &Sandbox, args: &[&str]) -> Value {
        let text = self.ok(b, args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    /// Exit `code` with exactly the stderr SQLite gives for the same args.
    fn refused_like_sqlite(&mut self, b: &Sandbox, args: &[&str], code: i32) {
        let out = self.run(b, args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        let sqlite = Sandbox::new().run(args);
        assert_eq!(sqlite.status.code(), Some(code), "{args:?} on SQLite");
        assert_eq!(stderr(&out), stderr(&sqlite), "{args:?}");
    }

    fn assert_no_secret(&self) {
        for text in &self.0 {
            assert!(!text.contains(SECRET), "password leaked: {text}");
        }
    }
}

fn board<'v>(list: &'v Value, slug: &str) -> Option<&'v Value> {
    list.as_array()
        .expect("array")
        .iter()
        .find(|b| b["slug"] == slug)
}

fn slugs(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|b| b["slug"].as_str().expect("slug"))
        .collect()
}

fn task_ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect()
}

#[test]
fn a_board_made_on_one_host_is_used_renamed_archived_and_deleted_from_another() {
    let Some(url) = database_url("kb_boards") else {
        return;
    };
    let (a, b) = (host(&url), host(&url));
    let mut seen = Seen::default();

    let created = seen.json(
        &a,
        &[
            "boards",
            "create",
            "proj",
            "--name",
            "Project X",
            "--icon",
            "🚀",
            "--color",
            "#8b5cf6",
            "--description",
            "shared work",
            "--json",
        ],
    );
    assert_eq!(created["created"], true, "{created}");
    assert!(
        created["db_path"]
            .as_str()
            .unwrap()
            .ends_with("(board proj)"),
        "{created}"
    );
    // Nothing of the board is kept in root A's directory.
    assert!(!a.path("kanban/boards/proj/board.json").exists());

    // Host B lists it with its metadata, switches to it, works on it.
    let listed = seen.json(&b, &["boards", "list", "--json"]);
    assert_eq!(slugs(&listed), ["default", "proj"]);
    let proj = board(&listed, "proj").unwrap();
    for (key, want) in [
        ("name", "Project X"),
        ("icon", "🚀"),
        ("color", "#8b5cf6"),
        ("description", "shared work"),
    ] {
        assert_eq!(proj[key], want, "{proj}");
    }
    assert_eq!(proj["is_current"], false);
    assert_eq!(proj["created_at"], created["created_at"]);
    seen.ok(&b, &["boards", "switch", "proj"]);
    assert_eq!(seen.json(&b, &["boards", "show", "--json"])["slug"], "proj");
    // The pointer is per host: A's current board is still the default.
    assert_eq!(
        seen.json(&a, &["boards", "show", "--json"])["slug"],
        "default"
    );
    let t = seen.json(&b, &["create", "t", "--assignee", "x", "--json"]);
    let id = t["id"].as_str().unwrap().to_string();
    let on_a = seen.json(&a, &["--board", "proj", "list", "--json"]);
    assert_eq!(task_ids(&on_a), [id.as_str()]);
    assert!(task_ids(&seen.json(&a, &["list", "--json"])).is_empty());
    let counts = seen.json(&a, &["boards", "list", "--json"]);
    assert_eq!(board(&counts, "proj").unwrap()["total"], 1, "{counts}");

    // A rename or a default workdir set on B is what A sees.
    let renamed = seen.json(&b, &["boards", "rename", "proj", "Project Y", "--json"]);
    assert_eq!(renamed["icon"], "🚀", "{renamed}");
    let workdir = tempfile::tempdir().unwrap();
    let wd = workdir.path().to_str().unwrap();
    seen.ok(&b, &["boards", "set-default-workdir", "proj", wd]);
    let on_a = seen.json(&a, &["boards", "list", "--json"]);
    let proj = board(&on_a, "proj").unwrap();
    assert_eq!(
        (proj["name"].as_str(), proj["default_workdir"].as_str()),
        (Some("Project Y"), Some(wd))
    );

    // Archived on A: gone from B's list and unusable by name; `--all`
    // shows it; B's pointer falls back to the default board.
    let rm = seen.ok(&a, &["boards", "rm", "proj"]);
    assert!(rm.contains("archived"), "{rm}");
    assert_eq!(
        slugs(&seen.json(&b, &["boards", "list", "--json"])),
        ["default"]
    );
    let all = seen.json(&b, &["boards", "list", "--all", "--json"]);
    assert_eq!(board(&all, "proj").unwrap()["archived"], true, "{all}");
    assert_eq!(
        seen.json(&b, &["boards", "show", "--json"])["slug"],
        "default"
    );
    seen.refused_like_sqlite(&b, &["--board", "proj", "list"], 1);
    // Creating it again brings it back with its tasks.
    let back = seen.ok(&b, &["boards", "create", "proj"]);
    assert!(back.contains("restored"), "{back}");
    let restored = seen.json(&a, &["--board", "proj", "list", "--json"]);
    assert_eq!(task_ids(&restored), [id.as_str()]);

    // Deleted on A: gone for every host, archived or not.
    let deleted = seen.json(&a, &["boards", "delete", "proj", "--json"]);
    assert_eq!(deleted["action"], "deleted", "{deleted}");
    assert_eq!(
        slugs(&seen.json(&b, &["boards", "list", "--all", "--json"])),
        ["default"]
    );
    seen.assert_no_secret();
}

#[test]
fn refusals_read_as_on_sqlite_and_never_show_the_password() {
    let Some(url) = database_url("kb_boards_refusals") else {
        return;
    };
    let b = host(&url);
    let mut seen = Seen::default();
    for args in [
        &["boards", "switch", "Bad Slug!"][..],
        &["boards", "create", "Bad Slug!"],
        &["boards", "rename", "Bad Slug!", "Name"],
        &["--board", "Bad Slug!", "list"],
    ] {
        seen.refused_like_sqlite(&b, args, 2);
    }
    for args in [
        &["boards", "switch", "nope"][..],
        &["boards", "rm", "nope"],
        &["boards", "delete", "nope"],
        &["boards", "rename", "nope", "Name"],
        &["boards", "rm", "default"],
        &["--board", "nope", "list"],
        &["--board", "nope", "create", "x"],
    ] {
        seen.refused_like_sqlite(&b, args, 1);
    }
    // The variable is refused like `--board`, naming itself.
    let out = b.run_env(&["list"], &[("HERMES_KANBAN_BOARD", "nope")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("HERMES_KANBAN_BOARD"),
        "{}",
        stderr(&out)
    );
    seen.0.push(stderr(&out));
    seen.assert_no_secret();
}

#[test]
fn a_gateway_on_one_host_lists_a_board_made_on_another() {
    let Some(url) = database_url("kb_boards_gateway") else {
        return;
    };
    let (a, b) = (host(&url), host(&url));
    let init = b.run(&["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let gw = b.gateway();
    let made = a.run(&["boards", "create", "shared", "--name", "Shared Board"]);
    assert!(made.status.success(), "{}", stderr(&made));
    let t = a.json(&["--board", "shared", "create", "on A", "--json"]);

    let res = gw.request("GET", "/api/v1/boards", None);
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(!res.body.contains(SECRET), "password leaked: {}", res.body);
    let body = res.json();
    let shared = board(&body["boards"], "shared").unwrap_or_else(|| panic!("{body}"));
    assert_eq!(shared["name"], "Shared Board");
    assert_eq!(shared["total"], 1, "{shared}");
    let tasks = gw.request("GET", "/api/v1/board?board=shared", None);
    assert_eq!(tasks.status, 200, "{}", tasks.body);
    assert!(
        tasks.body.contains(t["id"].as_str().unwrap()),
        "{}",
        tasks.body
    );
    // Archived on A: the gateway on B no longer lists or serves it.
    assert!(a.run(&["boards", "rm", "shared"]).status.success());
    let body = gw.request("GET", "/api/v1/boards", None).json();
    assert!(board(&body["boards"], "shared").is_none(), "{body}");
    let gone = gw.request("POST", "/api/v1/boards/shared/switch", None);
    assert_eq!(gone.status, 404, "{}", gone.body);
}
