//! When a dispatcher reads the records of workers whose attempt ended
//! ([`crate::linger`]): a rule on store times, kept apart from the pass.

/// How often (store seconds) a dispatcher reads the records of workers
/// whose attempt ended. Each worker's record stays for the whole grace, so
/// on a busy board there are thousands: read at every pass, they cost a
/// sixth of the pass thread with a long backlog. A lingering worker is thus
/// ended at most this much later than its grace.
pub const LINGER_SCAN_INTERVAL_SECONDS: i64 = 5;

/// The last read of the finished workers: when (store time), and the
/// earliest moment one of them needed the dispatcher again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LingerScan {
    pub(crate) at: i64,
    pub(crate) next_due: Option<i64>,
}

/// `None` when a pass at `now` reads the finished workers again; else the
/// moment it must (the pass's wake-up): [`LINGER_SCAN_INTERVAL_SECONDS`]
/// after the last read, or sooner when one of its workers is due.
pub(crate) fn linger_scan_wait(last: Option<LingerScan>, now: i64) -> Option<i64> {
    let last = last?;
    let rescan = last.at + LINGER_SCAN_INTERVAL_SECONDS;
    let due = last.next_due.map_or(rescan, |d| d.min(rescan));
    (now < due).then_some(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_workers_are_read_again_after_the_interval_or_when_one_is_due() {
        assert_eq!(linger_scan_wait(None, 100), None);
        let quiet = LingerScan {
            at: 100,
            next_due: None,
        };
        assert_eq!(linger_scan_wait(Some(quiet), 100), Some(105));
        assert_eq!(linger_scan_wait(Some(quiet), 104), Some(105));
        assert_eq!(linger_scan_wait(Some(quiet), 105), None);
        let due_soon = LingerScan {
            at: 100,
            next_due: Some(102),
        };
        assert_eq!(linger_scan_wait(Some(due_soon), 101), Some(102));
        assert_eq!(linger_scan_wait(Some(due_soon), 102), None);
        let due_now = LingerScan {
            at: 100,
            next_due: Some(100),
        };
        assert_eq!(linger_scan_wait(Some(due_now), 100), None);
        let due_later = LingerScan {
            at: 100,
            next_due: Some(161),
        };
        assert_eq!(linger_scan_wait(Some(due_later), 103), Some(105));
    }
}
