//! The file-system checks: the root, the modes of what the product wrote
//! under it, gateway pid files left by a killed gateway, and the holder
//! of a `flock` lock (from `/proc/locks`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kanban_hermes::layout::{DB_FILE_NAME, Root};
use kanban_server::lock::{pidfile_path, read_pid, state_path};

use super::Finding;

/// Entries the permission walk visits at most (a root with huge log
/// directories still answers quickly).
const PERMISSION_WALK_LIMIT: usize = 20_000;
/// Offending paths named in the report; the rest are counted.
const PATHS_SHOWN: usize = 5;
/// Mode bits that make a file or directory readable, writable or
/// searchable by someone other than its owner.
const NOT_PRIVATE_BITS: u32 = 0o077;
/// The root itself is often a shared Hermes home (`~/.hermes`, made by
/// Hermes with the user's umask): only others' write access to it is a
/// problem there, since what kanban keeps in it is private on its own.
const ROOT_UNSAFE_BITS: u32 = 0o022;
/// Directories whose contents belong to workers (their own umask), not
/// to the product: the directory itself is checked, not what is in it.
const WORKER_OWNED_DIRS: [&str; 1] = ["workspaces"];

pub fn root_check(root: &Root) -> super::Check {
    let path = root.path();
    let finding = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Finding::ok(format!("{} exists", path.display())),
        Ok(_) => Finding::fail(
            format!("{} is not a directory", path.display()),
            "point HERMES_KANBAN_HOME (or HERMES_HOME) at a directory",
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Finding::fail(
            format!("{} does not exist", path.display()),
            "run `kanban init` to create it (or set HERMES_KANBAN_HOME / HERMES_HOME to the \
             root you meant)",
        ),
        Err(e) => Finding::fail(
            format!("cannot read {}: {e}", path.display()),
            "check the permissions of the directories above it",
        ),
    };
    super::Check::of("root", vec![finding])
}

/// A path whose mode or owner is not what the product gives its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    pub path: PathBuf,
    pub mode: u32,
    /// Others may read, write or search it.
    pub loose: bool,
    pub foreign_owner: Option<u32>,
}

/// Whether something the product wrote is owned by `me` and has none of
/// `unsafe_bits` set; `None` when it is private.
pub fn exposure(
    path: &Path,
    meta: &std::fs::Metadata,
    me: u32,
    unsafe_bits: u32,
) -> Option<Exposed> {
    let mode = meta.mode() & 0o7777;
    let foreign_owner = (meta.uid() != me).then_some(meta.uid());
    let loose = mode & unsafe_bits != 0;
    (loose || foreign_owner.is_some()).then(|| Exposed {
        path: path.to_path_buf(),
        mode,
        loose,
        foreign_owner,
    })
}

/// The root, the default board's database files and everything under
/// `<root>/kanban/` except what workers wrote into their workspaces.
fn private_paths(root: &Root) -> (Vec<(PathBuf, std::fs::Metadata)>, bool) {
    let mut found = Vec::new();
    let push = |found: &mut Vec<(PathBuf, std::fs::Metadata)>, p: PathBuf| {
        if let Ok(m) = std::fs::symlink_metadata(&p)
            && !m.file_type().is_symlink()
        {
            found.push((p, m));
        }
    };
    push(&mut found, root.path().to_path_buf());
    if let Ok(rd) = std::fs::read_dir(root.path()) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(DB_FILE_NAME) {
                push(&mut found, e.path());
            }
        }
    }
    let mut stack = vec![root.kanban_dir()];
    let mut truncated = false;
    while let Some(dir) = stack.pop() {
        push(&mut found, dir.clone());
        if found.len() >= PERMISSION_WALK_LIMIT {
            truncated = true;
            break;
        }
        let worker_owned = dir
            .file_name()
            .is_some_and(|n| WORKER_OWNED_DIRS.iter().any(|w| n == *w));
        if worker_owned {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                push(&mut found, e.path());
            }
        }
    }
    (found, truncated)
}

pub fn permission_findings(root: &Root) -> Vec<Finding> {
    // SAFETY: geteuid(2) takes no argument and cannot fail.
    let me = unsafe { libc::geteuid() };
    let (paths, truncated) = private_paths(root);
    let exposed: Vec<Exposed> = paths
        .iter()
        .filter_map(|(p, m)| {
            let bits = if p == root.path() {
                ROOT_UNSAFE_BITS
            } else {
                NOT_PRIVATE_BITS
            };
            exposure(p, m, me, bits)
        })
        .collect();
    let scope = if truncated {
        format!(" (first {PERMISSION_WALK_LIMIT} entries)")
    } else {
        String::new()
    };
    if exposed.is_empty() {
        return vec![Finding::ok(format!(
            "{} files and directories checked{scope}: all private (0600 / 0700)",
            paths.len()
        ))];
    }
    let mut out = Vec::new();
    let loose: Vec<&Exposed> = exposed.iter().filter(|e| e.loose).collect();
    if !loose.is_empty() {
        let fix = if loose.len() <= PATHS_SHOWN {
            let paths: Vec<String> = loose.iter().map(|e| shell_word(&e.path)).collect();
            format!("chmod go-rwx {}", paths.join(" "))
        } else {
            format!(
                "chmod -R go-rwx {} (board data, prompts and logs are private to the operator)",
                shell_word(&root.kanban_dir())
            )
        };
        out.push(Finding::warn(
            format!(
                "{} path(s){scope} readable or writable by other users: {}",
                loose.len(),
                listed(&loose, |e| format!("{} ({:04o})", e.path.display(), e.mode))
            ),
            fix,
        ));
    }
    let foreign: Vec<&Exposed> = exposed
        .iter()
        .filter(|e| e.foreign_owner.is_some())
        .collect();
    if !foreign.is_empty() {
        out.push(Finding::warn(
            format!(
                "{} path(s) owned by another user than you (uid {me}), which kanban may fail \
                 to write: {}",
                foreign.len(),
                listed(&foreign, |e| format!(
                    "{} (uid {})",
                    e.path.display(),
                    e.foreign_owner.unwrap_or_default()
                ))
            ),
            format!(
                "chown -R {me} {} (a verb once run as another user, e.g. with sudo, created them)",
                shell_word(root.path())
            ),
        ));
    }
    out
}

/// The first few items, then how many more.
fn listed<T>(items: &[&T], show: impl Fn(&T) -> String) -> String {
    let mut parts: Vec<String> = items.iter().take(PATHS_SHOWN).map(|i| show(i)).collect();
    if items.len() > PATHS_SHOWN {
        parts.push(format!("and {} more", items.len() - PATHS_SHOWN));
    }
    parts.join(", ")
}

/// A path as one shell word (quoted when it needs to be).
pub fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `gateway.pid` / `gateway.json` while no gateway of ours holds the
/// gateway lock: a gateway ended with `kill -9` (or a crash) left them.
pub fn stale_gateway_files(root: &Root, ours_gone: bool) -> Vec<Finding> {
    if !ours_gone {
        return Vec::new();
    }
    let left: Vec<PathBuf> = [pidfile_path(root), state_path(root)]
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    if left.is_empty() {
        return Vec::new();
    }
    let pid = read_pid(root)
        .map(|p| format!(" (pid {p}, no longer running)"))
        .unwrap_or_default();
    let names: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
    vec![Finding::warn(
        format!(
            "gateway pid files without a gateway{pid}: {}",
            names.join(", ")
        ),
        "`kanban gateway stop` removes them (or `kanban gateway start` to run one again)",
    )]
}

/// The process holding a `flock` lock on a file, from `/proc/locks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: u32,
    /// Its command line, spaces between arguments (empty when unreadable).
    pub command: String,
}

/// The pid holding an `flock` on inode `ino`, in `/proc/locks` text:
/// `1: FLOCK  ADVISORY  WRITE 1234 00:2d:56789 0 EOF` (waiters, marked
/// `->`, are skipped).
pub fn flock_holder_pid(proc_locks: &str, ino: u64) -> Option<u32> {
    proc_locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let inode = fields.get(5)?.rsplit(':').next()?.parse::<u64>().ok()?;
        (inode == ino).then(|| fields.get(4)?.parse().ok())?
    })
}

/// Who holds the `flock` on `path`, where the kernel says (Linux).
pub fn lock_holder(path: &Path) -> Option<LockHolder> {
    let ino = std::fs::metadata(path).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = flock_holder_pid(&locks, ino)?;
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Some(LockHolder { pid, command })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_flock_holder_of_an_inode() {
        let locks = "1: POSIX  ADVISORY  WRITE 11 00:2d:777 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4242 fd:01:777 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 5151 fd:01:777 0 EOF\n\
                     3: FLOCK  ADVISORY  READ 99 fd:01:778 0 EOF\n";
        assert_eq!(flock_holder_pid(locks, 777), Some(4242));
        assert_eq!(flock_holder_pid(locks, 778), Some(99));
        assert_eq!(flock_holder_pid(locks, 779), None);
    }

    #[test]
    fn private_means_no_group_or_other_bits_and_owned_by_me() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid(2) takes no argument and cannot fail.
        let me = unsafe { libc::geteuid() };
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            exposure(&f, &std::fs::metadata(&f).unwrap(), me, NOT_PRIVATE_BITS),
            None
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = exposure(&f, &std::fs::metadata(&f).unwrap(), me, NOT_PRIVATE_BITS).unwrap();
        assert_eq!((e.mode, e.loose, e.foreign_owner), (0o640, true, None));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let other = me.wrapping_add(1);
        let e = exposure(&f, &std::fs::metadata(&f).unwrap(), other, NOT_PRIVATE_BITS).unwrap();
        assert_eq!((e.loose, e.foreign_owner), (false, Some(me)));
        // The root may be readable by others, not writable.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            exposure(&f, &std::fs::metadata(&f).unwrap(), me, ROOT_UNSAFE_BITS),
            None
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(exposure(&f, &std::fs::metadata(&f).unwrap(), me, ROOT_UNSAFE_BITS).is_some());
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word(Path::new("/a/b.c")), "/a/b.c");
        assert_eq!(shell_word(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
