use super::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// A pool on `dir` with spares ready (the refill thread runs on its own).
fn pool_with_spares(dir: &Path, kind: SpareKind) -> Arc<Pool> {
    let pool = Pool::start(dir.join(SPARE_DIR_NAME), kind).expect("pool");
    wait_until_full(&pool);
    pool
}

/// Until the refill thread has made every spare of `pool`.
fn wait_until_full(pool: &Pool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pool.ready.lock().unwrap().len() < SPARES_PER_DIR {
        assert!(
            std::time::Instant::now() < deadline,
            "the pool never filled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_spare_file_becomes_an_empty_private_log_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_spares(dir.path(), SpareKind::File);
    let target = dir.path().join("t_1.log");
    assert!(pool.place(&target));
    let meta = std::fs::metadata(&target).unwrap();
    assert!(meta.is_file() && meta.len() == 0);
    assert_eq!(mode(&target), 0o600);
    let age = SystemTime::now()
        .duration_since(meta.modified().unwrap())
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "its time is the placing's");
    // The refill thread makes another.
    wait_until_full(&pool);
}

#[test]
fn an_existing_log_or_workspace_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let files = pool_with_spares(dir.path(), SpareKind::File);
    let log = dir.path().join("t_2.log");
    std::fs::write(&log, "earlier run\n").unwrap();
    assert!(!files.place(&log));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "earlier run\n");
    assert_eq!(
        files.ready.lock().unwrap().len(),
        SPARES_PER_DIR,
        "the spare stays for the next target"
    );
    let ws_root = dir.path().join("workspaces");
    std::fs::create_dir(&ws_root).unwrap();
    let dirs = pool_with_spares(&ws_root, SpareKind::Dir);
    let ws = ws_root.join("t_2");
    std::fs::create_dir(&ws).unwrap();
    std::fs::write(ws.join("notes"), "kept").unwrap();
    assert!(!dirs.place(&ws));
    assert_eq!(std::fs::read_to_string(ws.join("notes")).unwrap(), "kept");
}

#[test]
fn a_spare_directory_becomes_an_empty_private_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_with_spares(dir.path(), SpareKind::Dir);
    let ws = dir.path().join("t_3");
    assert!(pool.place(&ws));
    assert!(ws.is_dir());
    assert_eq!(std::fs::read_dir(&ws).unwrap().count(), 0);
    assert_eq!(mode(&ws), 0o700);
}

#[test]
fn leftovers_are_adopted_only_when_empty() {
    let dir = tempfile::tempdir().unwrap();
    let spares = dir.path().join(SPARE_DIR_NAME);
    std::fs::create_dir(&spares).unwrap();
    std::fs::write(spares.join("empty"), "").unwrap();
    std::fs::write(spares.join("written"), "x").unwrap();
    assert_eq!(
        leftovers(&spares, SpareKind::File),
        vec![spares.join("empty")]
    );
    std::fs::create_dir(spares.join("d-empty")).unwrap();
    std::fs::create_dir(spares.join("d-full")).unwrap();
    std::fs::write(spares.join("d-full").join("f"), "").unwrap();
    assert_eq!(
        leftovers(&spares, SpareKind::Dir),
        vec![spares.join("d-empty")]
    );
}

#[test]
fn without_enable_nothing_is_placed_or_made() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!ENABLED.load(Ordering::SeqCst), "no test enables spares");
    assert!(!place(&dir.path().join("t_4.log"), SpareKind::File));
    assert!(!dir.path().join(SPARE_DIR_NAME).exists());
}

#[test]
fn spares_go_only_where_their_targets_live() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("removed-board").join("workspaces");
    assert!(Pool::start(gone.join(SPARE_DIR_NAME), SpareKind::Dir).is_none());
    assert!(!gone.exists(), "no directory is made for a missing parent");
    let parent = dir.path().join("workspaces");
    std::fs::create_dir(&parent).unwrap();
    let pool = pool_with_spares(&parent, SpareKind::Dir);
    std::fs::remove_dir_all(parent.join(SPARE_DIR_NAME)).unwrap();
    assert!(
        pool.make_one().is_some(),
        "a removed spare directory is made again"
    );
    std::fs::remove_dir_all(&parent).unwrap();
    assert!(pool.make_one().is_none());
    assert!(!parent.exists(), "but not its removed parent");
}

#[test]
fn a_forgotten_pool_stops_refilling() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("logs");
    std::fs::create_dir(&parent).unwrap();
    let pool = pool_with_spares(&parent, SpareKind::File);
    POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .insert((parent.clone(), SpareKind::File), Arc::clone(&pool));
    forget(&[&parent]);
    assert!(pool.stopped.load(Ordering::SeqCst));
    assert!(
        !POOLS
            .get()
            .unwrap()
            .lock()
            .unwrap()
            .contains_key(&(parent.clone(), SpareKind::File))
    );
    // Taking one no longer makes another.
    assert!(pool.place(&parent.join("t_5.log")));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(pool.ready.lock().unwrap().len(), SPARES_PER_DIR - 1);
}

#[test]
fn a_refill_thread_runs_below_normal_priority() {
    let nice = std::thread::spawn(|| {
        lower_this_threads_priority();
        // SAFETY: reads this thread's own priority.
        unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t)
        }
    })
    .join()
    .unwrap();
    assert_eq!(nice, REFILL_NICE);
    // SAFETY: as above, for the test's own thread.
    let here = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
    assert_ne!(here, REFILL_NICE, "only the refill thread is lowered");
}
