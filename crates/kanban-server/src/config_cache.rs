//! `config.yaml` as the dispatcher loop sees it: parsed again only when
//! the file changed. The loop wakes on every commit to a board, and a
//! Hermes config is often several kilobytes of YAML; reading it on each
//! wake put the parse in front of every pick-up.

use std::path::Path;
use std::time::{Duration, SystemTime};

use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::{ProcessEnv, Root};

/// A file whose modification time is at most this old may be rewritten
/// within the same timestamp tick (ext4 stamps files with a coarse
/// clock), with the same size and inode: it is read again on every wake
/// until it is older.
const RECENT_WRITE_WINDOW: Duration = Duration::from_secs(2);

/// Identity and shape of a file: any change means "read it again".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileStamp {
    pub(crate) fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }

    /// Whether the file was modified less than `window` before `now`.
    fn modified_within(&self, window: Duration, now: SystemTime) -> bool {
        let now_ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        now_ns - self.mtime_ns < window.as_nanos() as i128
    }
}

/// The last configuration read and the stamp of the file it came from
/// (`None` inside: there was no file).
#[derive(Default)]
pub(crate) struct ConfigCache {
    cached: Option<(Option<FileStamp>, KanbanConfig)>,
}

impl ConfigCache {
    /// The configuration in force: the cached one while `config.yaml` is
    /// unchanged, else read again (defaults, with a warning, when it
    /// cannot be read or parsed).
    pub(crate) fn current(&mut self, root: &Root) -> KanbanConfig {
        let stamp = FileStamp::of(&root.config_file());
        if let Some((seen, config)) = &self.cached
            && *seen == stamp
            && !stamp
                .as_ref()
                .is_some_and(|s| s.modified_within(RECENT_WRITE_WINDOW, SystemTime::now()))
        {
            return config.clone();
        }
        let config = KanbanConfig::load(root, &ProcessEnv).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "kanban dispatcher: cannot read config; keeping defaults");
            let mut c = KanbanConfig::default();
            c.apply_env(&ProcessEnv);
            c
        });
        self.cached = Some((stamp, config.clone()));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(config: Option<&str>) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = config {
            std::fs::write(dir.path().join("config.yaml"), text).unwrap();
        }
        let root = Root::at(dir.path());
        (dir, root)
    }

    /// Set the file's mtime `age` in the past.
    fn age_file(path: &Path, age: Duration) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    const TEN: &str = "kanban:\n  max_in_progress: 10\n";
    const TWENTY: &str = "kanban:\n  max_in_progress: 20\n";

    #[test]
    fn an_old_unchanged_file_is_not_read_again() {
        let (dir, root) = root_with(Some(TEN));
        let path = dir.path().join("config.yaml");
        age_file(&path, Duration::from_secs(60));
        let mut cache = ConfigCache::default();
        assert_eq!(cache.current(&root).max_in_progress, Some(10));
        // Same size, inode and mtime: only a parse of the cache's copy
        // could answer 10 now.
        std::fs::write(&path, TWENTY).unwrap();
        age_file(&path, Duration::from_secs(60));
        let stamp = FileStamp::of(&path).unwrap();
        cache.cached.as_mut().unwrap().0 = Some(stamp);
        assert_eq!(cache.current(&root).max_in_progress, Some(10));
    }

    #[test]
    fn a_changed_file_is_read_again() {
        let (dir, root) = root_with(Some(TEN));
        let path = dir.path().join("config.yaml");
        age_file(&path, Duration::from_secs(60));
        let mut cache = ConfigCache::default();
        assert_eq!(cache.current(&root).max_in_progress, Some(10));
        std::fs::write(&path, "kanban:\n  max_in_progress: 7\n").unwrap();
        age_file(&path, Duration::from_secs(30));
        assert_eq!(cache.current(&root).max_in_progress, Some(7));
    }

    #[test]
    fn a_recent_write_is_read_again_even_with_the_same_stamp() {
        let (dir, root) = root_with(Some(TEN));
        let path = dir.path().join("config.yaml");
        let mut cache = ConfigCache::default();
        assert_eq!(cache.current(&root).max_in_progress, Some(10));
        // Rewritten within the same tick: same inode, size and mtime.
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, TWENTY).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(before)
            .unwrap();
        assert_eq!(cache.current(&root).max_in_progress, Some(20));
    }

    #[test]
    fn a_removed_or_created_file_is_noticed() {
        let (dir, root) = root_with(None);
        let path = dir.path().join("config.yaml");
        let mut cache = ConfigCache::default();
        assert_eq!(cache.current(&root).max_in_progress, None);
        std::fs::write(&path, TEN).unwrap();
        assert_eq!(cache.current(&root).max_in_progress, Some(10));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(cache.current(&root).max_in_progress, None);
    }
}
