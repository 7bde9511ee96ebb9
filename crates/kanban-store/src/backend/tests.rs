use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::{NewNotifySub, NewTask, StoreError};

fn new_task(store: &dyn Store, title: &str) -> String {
    store
        .create_task(&NewTask {
            title: title.into(),
            ..Default::default()
        })
        .unwrap()
        .task
        .id
}

#[test]
fn one_object_serves_every_trait_with_the_requested_clock() {
    let dir = tempfile::tempdir().unwrap();
    let location = BoardLocation::sqlite(dir.path().join("kanban.db"));
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let board = open_board(&location, &OpenRequest::create().with_clock(clock)).unwrap();
    assert_eq!(board.location(), &location);
    assert_eq!(board.store().backend(), "sqlite");
    let id = new_task(&*board.store(), "a");
    let seen = board.dispatch().get_task(&id).unwrap().unwrap();
    assert_eq!(seen.created_at, 1_700_000_000);
    assert_eq!(board.dispatch().now(), 1_700_000_000);
    assert!(
        board
            .notify()
            .notify_subscribe(&NewNotifySub {
                task_id: id.clone(),
                platform: "webhook".into(),
                chat_id: "c".into(),
                ..Default::default()
            })
            .unwrap()
    );
    assert_eq!(board.as_dispatch().notify_list(Some(&id)).unwrap().len(), 1);
    assert!(
        board
            .notify()
            .pending_notify_subs(&["webhook"], &["created"])
            .is_ok()
    );
}

#[test]
fn a_missing_board_is_created_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let location = BoardLocation::sqlite(dir.path().join("kanban.db"));
    assert!(open_board(&location, &OpenRequest::existing()).is_err());
    assert!(!dir.path().join("kanban.db").exists());
    open_board(&location, &OpenRequest::create()).unwrap();
    open_board(&location, &OpenRequest::existing()).unwrap();
}

#[test]
fn the_probe_sees_commits_of_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let location = BoardLocation::sqlite(dir.path().join("kanban.db"));
    let board = open_board(&location, &OpenRequest::create()).unwrap();
    let mut probe = board.change_probe().unwrap();
    let v0 = probe.version().unwrap();
    let other = open_board(&location, &OpenRequest::existing()).unwrap();
    new_task(&*other.store(), "b");
    assert_ne!(probe.version().unwrap(), v0);
}

#[test]
fn the_dispatch_lock_is_the_board_files_sibling_and_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kanban.db");
    let board = open_board(&BoardLocation::sqlite(&db), &OpenRequest::create()).unwrap();
    let lock = board.dispatch_lock();
    assert_eq!(
        lock.describe(),
        dir.path()
            .join("kanban.db.dispatch.lock")
            .display()
            .to_string()
    );
    let held = lock.try_acquire().unwrap().expect("free");
    let other = open_board(&BoardLocation::sqlite(&db), &OpenRequest::existing()).unwrap();
    assert!(other.dispatch_lock().try_acquire().unwrap().is_none());
    drop(held);
    assert!(other.dispatch_lock().try_acquire().unwrap().is_some());
}

#[test]
fn a_lock_that_cannot_be_taken_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kanban.db");
    let board = open_board(&BoardLocation::sqlite(&db), &OpenRequest::create()).unwrap();
    std::fs::create_dir(dir.path().join("kanban.db.dispatch.lock")).unwrap();
    let err = board.dispatch_lock().try_acquire().unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    assert!(err.to_string().starts_with("dispatch lock "), "{err}");
}

mod dispatch_lock {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use crate::sqlite::dispatch_lock::file_dispatch_lock as sqlite_dispatch_lock;

    #[test]
    fn only_one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let lock = sqlite_dispatch_lock(&dir.path().join("kanban.db"));
        let held = lock.try_acquire().unwrap().unwrap();
        // A second open file description conflicts, even in this process.
        assert!(lock.try_acquire().unwrap().is_none());
        drop(held);
        assert!(lock.try_acquire().unwrap().is_some());
        assert!(lock.describe().ends_with("kanban.db.dispatch.lock"));
    }

    #[test]
    fn fails_closed_when_the_file_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let lock = sqlite_dispatch_lock(&dir.path().join("missing/dir/kanban.db"));
        let err = lock.try_acquire().unwrap_err();
        assert!(err.to_string().starts_with("dispatch lock "), "{err}");
    }

    #[test]
    fn interlocks_with_the_python_dispatcher_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kanban.db");
        let lock = sqlite_dispatch_lock(&db);
        let path = dir.path().join("kanban.db.dispatch.lock");
        // The reference takes fcntl.flock(LOCK_EX | LOCK_NB) on this file.
        let script = format!(
            "import fcntl,sys\nf=open({:?},'a+b')\nfcntl.flock(f.fileno(),fcntl.LOCK_EX|fcntl.LOCK_NB)\n\
             print('held',flush=True)\nsys.stdin.readline()\n",
            path.display().to_string()
        );
        let mut py = Command::new("python3")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (the reference's interpreter) must be installed");
        let mut line = String::new();
        BufReader::new(py.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held");
        assert!(lock.try_acquire().unwrap().is_none());
        drop(py.stdin.take());
        py.wait().unwrap();
        assert!(lock.try_acquire().unwrap().is_some());
    }
}
