//! Waiting for a busy board in short steps.
//!
//! SQLite's own busy timeout sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50
//! and then 100 ms between attempts. On a board where a gateway and a dozen
//! workers commit, each holding the writer lock for about a millisecond
//! (mostly its fsync), a writer that lost its first attempt then sleeps far
//! longer than the lock is held while the others keep taking it: with
//! sixteen workers running `kanban complete`, a gateway pass waited 37–117 ms
//! for the lock to record its launches. Here a waiter tries again after
//! [`BUSY_FIRST_STEP`], growing to [`BUSY_MAX_STEP`], until the same timeout.
//! An attempt is one `fcntl` on the lock file, so the short steps cost
//! next to nothing.

use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Pause before the first retry of a busy lock.
pub(crate) const BUSY_FIRST_STEP: Duration = Duration::from_micros(100);
/// Longest pause between two retries.
pub(crate) const BUSY_MAX_STEP: Duration = Duration::from_millis(2);

/// The pause before retry `attempt` (0 for the first) after `waited`
/// already, or `None` when the wait reached `timeout`: give up, the caller
/// sees `SQLITE_BUSY`.
pub(crate) fn busy_pause(attempt: u32, waited: Duration, timeout: Duration) -> Option<Duration> {
    let left = timeout.checked_sub(waited).filter(|d| !d.is_zero())?;
    let step = BUSY_FIRST_STEP
        .saturating_mul(attempt.saturating_add(1))
        .min(BUSY_MAX_STEP);
    Some(step.min(left))
}

/// Make `conn` wait up to `timeout` for a busy lock, in [`busy_pause`]
/// steps; replaces SQLite's `busy_timeout`.
pub(crate) fn wait_when_busy(conn: &mut Connection, timeout: Duration) -> rusqlite::Result<()> {
    let mut since = Instant::now();
    conn.busy_handler(Some(move |attempt: i32| {
        // SQLite counts the attempts of one wait from 0.
        if attempt == 0 {
            since = Instant::now();
        }
        let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
        match busy_pause(attempt, since.elapsed(), timeout) {
            Some(pause) => {
                std::thread::sleep(pause);
                true
            }
            None => false,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn pauses_grow_from_the_first_step_to_the_cap() {
        let t = Duration::from_secs(10);
        assert_eq!(busy_pause(0, Duration::ZERO, t), Some(BUSY_FIRST_STEP));
        assert_eq!(busy_pause(1, MS, t), Some(BUSY_FIRST_STEP * 2));
        assert_eq!(busy_pause(1_000, MS, t), Some(BUSY_MAX_STEP));
        assert_eq!(busy_pause(u32::MAX, MS, t), Some(BUSY_MAX_STEP));
    }

    #[test]
    fn the_wait_never_outlasts_the_timeout() {
        let t = 10 * MS;
        assert_eq!(busy_pause(1_000, 9 * MS, t), Some(MS));
        assert_eq!(busy_pause(0, t, t), None);
        assert_eq!(busy_pause(0, 11 * MS, t), None);
        assert_eq!(busy_pause(0, Duration::ZERO, Duration::ZERO), None);
    }

    fn board() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
            .unwrap();
        (dir, path)
    }

    #[test]
    fn a_writer_gets_the_lock_once_its_holder_commits() {
        let (_dir, path) = board();
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (tx, rx) = mpsc::channel();
        let waiter_path = path.clone();
        let waiter = std::thread::spawn(move || {
            let mut c = Connection::open(&waiter_path).unwrap();
            wait_when_busy(&mut c, Duration::from_secs(30)).unwrap();
            tx.send(()).unwrap();
            c.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT")
        });
        rx.recv().unwrap();
        std::thread::sleep(20 * MS);
        holder
            .execute_batch("INSERT INTO t VALUES (1); COMMIT")
            .unwrap();
        waiter.join().unwrap().unwrap();
        let n: i64 = holder
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn a_writer_gives_up_busy_after_its_timeout() {
        let (_dir, path) = board();
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let mut c = Connection::open(&path).unwrap();
        wait_when_busy(&mut c, 30 * MS).unwrap();
        let started = Instant::now();
        let err = c.execute_batch("BEGIN IMMEDIATE").unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy)
        );
        assert!(started.elapsed() >= 30 * MS, "gave up before the timeout");
    }
}
