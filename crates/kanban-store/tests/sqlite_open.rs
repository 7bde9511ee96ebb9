//! SQLite-only behaviour: opening, refusing damaged files, file modes,
//! concurrent first opens and claims across processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kanban_store::sqlite::{OpenOptions, SqliteStore};
use kanban_store::*;

const CHILD_MODE: &str = "KANBAN_STORE_TEST_CHILD";
const CHILD_DB: &str = "KANBAN_STORE_TEST_DB";
const CHILD_START_MS: &str = "KANBAN_STORE_TEST_START_MS";

fn open(path: &Path) -> Result<SqliteStore> {
    SqliteStore::open(path, OpenOptions::create(), Arc::new(SystemClock))
}

fn new_task(title: &str) -> NewTask {
    NewTask {
        title: title.into(),
        assignee: Some("coder".into()),
        ..Default::default()
    }
}

fn board(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("kanban.db")
}

fn siblings(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[test]
fn non_sqlite_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = board(&dir);
    let bytes = b"\x16\x03\x01\x02\x00this is a TLS record, not a database".repeat(20);
    std::fs::write(&path, &bytes).unwrap();
    let err = open(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("file is not a database"),
        "{msg}"
    );
    assert!(
        msg.contains("TLS record header detected at byte offset 0"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "never overwritten");
    assert_eq!(
        siblings(dir.path()),
        vec!["kanban.db"],
        "no backup, no sidecar"
    );
}

#[test]
fn missing_board_without_create_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = board(&dir);
    let err = SqliteStore::open(&path, OpenOptions::default(), Arc::new(SystemClock)).unwrap_err();
    assert!(err.to_string().contains("no board database"), "{err}");
    assert!(!path.exists());
}

/// A healthy board whose pages are then damaged, with the schema page hit:
/// refused at open, with a byte-identical backup.
#[test]
fn corrupt_board_is_backed_up_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = board(&dir);
    {
        let s = open(&path).unwrap();
        for i in 0..50 {
            s.create_task(&new_task(&format!("task {i}"))).unwrap();
        }
    }
    let mut bytes = std::fs::read(&path).unwrap();
    // Keep the 100-byte header, trash the rest of page 1 (sqlite_master).
    for b in bytes.iter_mut().take(4096).skip(100) {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = open(&path).unwrap_err();
    let StoreError::Corrupt {
        path: p, backup, ..
    } = &err
    else {
        panic!("expected Corrupt, got {err:?}")
    };
    assert_eq!(p, &path);
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains(&backup.display().to_string()),
        "{msg}"
    );
    let name = backup.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("kanban.db.corrupt.")
            && name.ends_with(".bak")
            && name.len() == "kanban.db.corrupt.".len() + 16 + 4,
        "{name}"
    );
    assert_eq!(
        std::fs::read(backup).unwrap(),
        bytes,
        "backup is byte-identical"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "original untouched");
    // A second refusal reuses the content-addressed backup.
    let again = open(&path).unwrap_err();
    let StoreError::Corrupt { backup: b2, .. } = again else {
        panic!()
    };
    assert_eq!(&b2, backup);
    assert_eq!(
        siblings(dir.path())
            .iter()
            .filter(|n| n.contains(".corrupt.") && n.ends_with(".bak"))
            .count(),
        1
    );
}

/// Damage in a data page of an up-to-date board is caught when SQLite
/// reports it, not by an integrity check on every open.
#[test]
fn corruption_reported_later_is_quarantined_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = board(&dir);
    {
        let s = open(&path).unwrap();
        for i in 0..400 {
            s.create_task(&NewTask {
                body: Some("x".repeat(500)),
                ..new_task(&format!("task {i}"))
            })
            .unwrap();
        }
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in bytes.iter_mut().take(len - 4096).skip(len / 2) {
        *b = 0x5A;
    }
    std::fs::write(&path, &bytes).unwrap();
    let result = open(&path).and_then(|s| s.list_tasks(&TaskQuery::default()).map(|_| ()));
    let err = result.unwrap_err();
    let StoreError::Corrupt { backup, .. } = &err else {
        panic!("expected Corrupt, got {err:?}")
    };
    assert_eq!(std::fs::read(backup).unwrap(), bytes);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

/// Issue 9 item 16: another program's SQLite file (tables, none of them a
/// kanban `tasks` table) is refused before anything is written or added.
#[test]
fn foreign_sqlite_file_is_refused_and_untouched() {
    for schema in [
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)",
        // A `tasks` table of some other tool is not a board either.
        "CREATE TABLE tasks (name TEXT, done INTEGER)",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = board(&dir);
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(schema).unwrap();
        drop(raw);
        let bytes = std::fs::read(&path).unwrap();
        for opts in [OpenOptions::create(), OpenOptions::default()] {
            let err = SqliteStore::open(&path, opts, Arc::new(SystemClock)).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("not a kanban board"), "{msg}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{schema}");
        assert_eq!(siblings(dir.path()), ["kanban.db"], "{schema}");
    }
    // A SQLite file without tables is a new board.
    let dir = tempfile::tempdir().unwrap();
    let path = board(&dir);
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("PRAGMA user_version = 7").unwrap();
    drop(raw);
    let s = open(&path).unwrap();
    s.create_task(&new_task("fine")).unwrap();
}

#[test]
fn locked_board_is_busy_not_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = board(&dir);
    // A board only the reference has touched (no meta row) needs the
    // integrity check, which must wait on a writer's lock, not quarantine.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT, assignee TEXT, status TEXT NOT NULL, priority INTEGER DEFAULT 0, created_by TEXT, created_at INTEGER NOT NULL, started_at INTEGER, completed_at INTEGER, workspace_kind TEXT NOT NULL DEFAULT 'scratch', workspace_path TEXT, claim_lock TEXT, claim_expires INTEGER); BEGIN EXCLUSIVE; INSERT INTO tasks (id, title, status, created_at) VALUES ('t_00000001', 'x', 'ready', 1);").unwrap();
    let opts = OpenOptions {
        create: true,
        busy_timeout_ms: Some(200),
    };
    let err = SqliteStore::open(&path, opts, Arc::new(SystemClock)).unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
    assert!(
        siblings(dir.path())
            .iter()
            .all(|n| !n.contains(".corrupt."))
    );
    raw.execute_batch("COMMIT").unwrap();
    drop(raw);
    let s = open(&path).unwrap();
    assert_eq!(
        s.list_tasks(&TaskQuery::default()).unwrap().len(),
        1,
        "legacy board migrated after the lock"
    );
}

#[cfg(unix)]
#[test]
fn new_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("root/boards/x");
    let path = nested.join("kanban.db");
    let s = open(&path).unwrap();
    s.create_task(&new_task("t")).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&nested), 0o700);
    assert_eq!(mode(&dir.path().join("root")), 0o700);
    let wal = nested.join("kanban.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
}

/// An up-to-date board opens without the init lock (and so without the
/// migration pass and integrity check): a held lock does not delay it.
#[test]
fn healthy_board_opens_without_init_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = board(&dir);
    drop(open(&path).unwrap());
    let lock = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.path().join("kanban.db.init.lock"))
        .unwrap();
    fs4::FileExt::lock(&lock).unwrap();
    let t = Instant::now();
    let s = open(&path).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    s.create_task(&new_task("works")).unwrap();
}

#[test]
fn threads_open_a_new_board_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = board(&dir);
    let barrier = Arc::new(Barrier::new(8));
    std::thread::scope(|sc| {
        for i in 0..8 {
            let (path, barrier) = (&path, barrier.clone());
            sc.spawn(move || {
                barrier.wait();
                let s = open(path).expect("concurrent first open");
                s.create_task(&new_task(&format!("from thread {i}")))
                    .unwrap();
            });
        }
    });
    assert_eq!(
        open(&path)
            .unwrap()
            .list_tasks(&TaskQuery::default())
            .unwrap()
            .len(),
        8
    );
}

fn spawn_children(mode: &str, path: &Path, n: usize) -> Vec<String> {
    let start = now_ms() + 400;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(&exe)
                .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_MODE, mode)
                .env(CHILD_DB, path)
                .env(CHILD_START_MS, start.to_string())
                .output_async()
        })
        .collect();
    children
        .into_iter()
        .flat_map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The test harness prints on the same line; keep our markers only.
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .filter(|w| w[0] == "WIN" || w[0] == "CREATED")
                .map(|w| format!("{} {}", w[0], w[1]))
                .collect::<Vec<_>>()
        })
        .collect()
}

trait SpawnPiped {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

#[test]
fn processes_open_a_new_board_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = board(&dir);
    let lines = spawn_children("open", &path, 4);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("CREATED ")).count(),
        4,
        "{lines:?}"
    );
    assert_eq!(
        open(&path)
            .unwrap()
            .list_tasks(&TaskQuery::default())
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn processes_racing_claims_have_one_winner_each() {
    let dir = tempfile::tempdir().unwrap();
    let path = board(&dir);
    let s = open(&path).unwrap();
    let ids: Vec<String> = (0..30)
        .map(|i| s.create_task(&new_task(&format!("p{i}"))).unwrap().task.id)
        .collect();
    let lines = spawn_children("claim", &path, 4);
    let mut wins: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("WIN "))
        .collect();
    wins.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(wins, want, "every task won by exactly one process");
    for id in &ids {
        assert_eq!(s.runs(id).unwrap().len(), 1);
    }
}

/// Entry point of the child processes above; a no-op in a normal run.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let path = PathBuf::from(std::env::var(CHILD_DB).unwrap());
    let start: u128 = std::env::var(CHILD_START_MS).unwrap().parse().unwrap();
    while now_ms() < start {
        std::thread::sleep(Duration::from_millis(1));
    }
    let s = open(&path).expect("child open");
    match mode.as_str() {
        "open" => {
            let t = s
                .create_task(&new_task(&format!("from pid {}", std::process::id())))
                .unwrap();
            println!("CREATED {}", t.task.id);
        }
        "claim" => {
            let ids: Vec<String> = s
                .list_tasks(&TaskQuery::default())
                .unwrap()
                .into_iter()
                .map(|t| t.id)
                .collect();
            for id in ids {
                let req = ClaimRequest {
                    task_id: id.clone(),
                    claim_lock: format!("host:{}", std::process::id()),
                    ttl_seconds: 900,
                    review: false,
                    ceilings: Ceilings::default(),
                };
                if let ClaimOutcome::Claimed { .. } = s.claim_task(&req).unwrap() {
                    println!("WIN {id}");
                }
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}
