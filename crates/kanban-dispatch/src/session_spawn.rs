//! Starting a process in a new session with `posix_spawn(3)`.
//!
//! `std::process::Command` can only start a session through a `pre_exec`
//! hook, and a hook makes it `fork` the whole caller: in a gateway that
//! means copying the page tables of every thread's memory, then a
//! copy-on-write fault on each page the gateway writes until the child
//! has exec'd. glibc's `posix_spawn` clones without copying memory
//! (`CLONE_VM | CLONE_VFORK`) and has a flag for `setsid`
//! (`POSIX_SPAWN_SETSID`, glibc 2.26), so the worker starts in its own
//! session for a fraction of the cost.
//!
//! What the child gets is what `Command` would give it: the program found
//! on the child's own `PATH`, the caller's environment with the plan
//! applied, an empty signal mask and `SIGPIPE` back to its default, stdin
//! on `/dev/null`, stdout and stderr on the given file.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::env::{ENV_PATH, EnvPlan};

/// What `execvp` searches when `PATH` is unset (glibc's default).
const DEFAULT_SEARCH_PATH: &str = "/bin:/usr/bin";

/// One process to start.
pub(crate) struct SessionSpawn<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a EnvPlan,
    /// Working directory, used as given.
    pub cwd: Option<&'a Path>,
    /// Where stdout and stderr go.
    pub output: &'a File,
    /// A descriptor of ours to hand over as another number in the child
    /// (`(ours, theirs)`; the fork server's socket).
    pub pass_fd: Option<(RawFd, RawFd)>,
}

/// Start the process in a session of its own and return its pid. Errors
/// are those of `exec` (`NotFound`, `PermissionDenied`, ...), reported by
/// glibc from the child before this returns.
pub(crate) fn spawn_in_new_session(req: &SessionSpawn<'_>) -> io::Result<i32> {
    let envp = child_environment(req.env)?;
    let path = resolve_program(req.program, search_path(req.env).as_deref())?;
    let path = cstring(path.into_os_string().into_vec())?;
    let mut argv = Vec::with_capacity(req.args.len() + 1);
    argv.push(cstring(req.program.as_bytes().to_vec())?);
    for arg in req.args {
        argv.push(cstring(arg.as_bytes().to_vec())?);
    }
    let cwd = req
        .cwd
        .map(|c| cstring(c.as_os_str().as_bytes().to_vec()))
        .transpose()?;
    let actions = FileActions::new(req.output, req.pass_fd, cwd.as_ref())?;
    let attr = SessionAttr::new()?;
    let argv_ptrs = null_terminated(&argv);
    let envp_ptrs = null_terminated(&envp);
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer refers to a NUL-terminated string or a
    // null-terminated array of them that outlives the call; the attribute
    // and file-action objects were initialised by their constructors.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &actions.0,
            &attr.0,
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(pid)
}

/// The caller's environment with the plan applied, as `KEY=value` strings.
pub(crate) fn child_environment(plan: &EnvPlan) -> io::Result<Vec<CString>> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !plan.remove.iter().any(|r| OsStr::new(r) == k))
        .filter(|(k, _)| !plan.set.iter().any(|(s, _)| OsStr::new(s) == k))
        .collect();
    for (k, v) in &plan.set {
        vars.push((k.into(), v.into()));
    }
    vars.into_iter()
        .map(|(k, v)| {
            let mut entry = k.into_vec();
            entry.push(b'=');
            entry.extend_from_slice(v.as_bytes());
            cstring(entry)
        })
        .collect()
}

/// The `PATH` the child will have: the plan's, else the caller's.
fn search_path(plan: &EnvPlan) -> Option<OsString> {
    if plan.remove.iter().any(|k| k == ENV_PATH) {
        return None;
    }
    match plan.set.iter().find(|(k, _)| k == ENV_PATH) {
        Some((_, v)) => Some(v.into()),
        None => std::env::var_os(ENV_PATH),
    }
}

/// Find `program` the way `execvp` does: a name with a slash is used as
/// is; otherwise the first executable file of that name on `path`, where
/// a match that is not executable is remembered as `PermissionDenied` in
/// case nothing better turns up.
fn resolve_program(program: &str, path: Option<&OsStr>) -> io::Result<PathBuf> {
    if program.is_empty() {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = path.unwrap_or(OsStr::new(DEFAULT_SEARCH_PATH));
    let mut denied = false;
    for dir in std::env::split_paths(path) {
        // An empty entry means the current directory, as for execvp.
        let candidate = if dir.as_os_str().is_empty() {
            PathBuf::from(program)
        } else {
            dir.join(program)
        };
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() => {
                if executable(&candidate) {
                    return Ok(candidate);
                }
                denied = true;
            }
            _ => {}
        }
    }
    Err(io::Error::from(if denied {
        io::ErrorKind::PermissionDenied
    } else {
        io::ErrorKind::NotFound
    }))
}

fn executable(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

fn cstring(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a worker's argument or environment holds a NUL byte",
        )
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect()
}

/// `posix_spawn_file_actions_t`: stdin from `/dev/null`, stdout and
/// stderr onto the output file, then the working directory.
struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new(
        output: &File,
        pass_fd: Option<(RawFd, RawFd)>,
        cwd: Option<&CString>,
    ) -> io::Result<FileActions> {
        // SAFETY: init fills the zeroed object before any other use; Drop
        // destroys it once, whatever failed after init.
        let mut fa = FileActions(unsafe { std::mem::zeroed() });
        check(unsafe { libc::posix_spawn_file_actions_init(&mut fa.0) })?;
        let out = output.as_raw_fd();
        // SAFETY: the object is initialised; the path is NUL-terminated
        // and copied by glibc; `out` stays open until the spawn returns.
        unsafe {
            check(libc::posix_spawn_file_actions_addopen(
                &mut fa.0,
                0,
                c"/dev/null".as_ptr(),
                libc::O_RDONLY,
                0,
            ))?;
            check(libc::posix_spawn_file_actions_adddup2(&mut fa.0, out, 1))?;
            check(libc::posix_spawn_file_actions_adddup2(&mut fa.0, out, 2))?;
            if let Some((ours, theirs)) = pass_fd {
                check(libc::posix_spawn_file_actions_adddup2(
                    &mut fa.0, ours, theirs,
                ))?;
            }
            if let Some(dir) = cwd {
                check(libc::posix_spawn_file_actions_addchdir_np(
                    &mut fa.0,
                    dir.as_ptr(),
                ))?;
            }
        }
        Ok(fa)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` (a failed init leaves nothing to free,
        // and destroying a zeroed object is a no-op in glibc).
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// `posix_spawnattr_t`: new session, empty signal mask, SIGPIPE default.
struct SessionAttr(libc::posix_spawnattr_t);

impl SessionAttr {
    fn new() -> io::Result<SessionAttr> {
        // SAFETY: as for FileActions; the sigsets are initialised by
        // sigemptyset before use.
        let mut attr = SessionAttr(unsafe { std::mem::zeroed() });
        unsafe {
            check(libc::posix_spawnattr_init(&mut attr.0))?;
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut mask);
            check(libc::posix_spawnattr_setsigmask(&mut attr.0, &mask))?;
            let mut defaults: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut defaults);
            libc::sigaddset(&mut defaults, libc::SIGPIPE);
            check(libc::posix_spawnattr_setsigdefault(&mut attr.0, &defaults))?;
            let flags = libc::POSIX_SPAWN_SETSID
                | libc::POSIX_SPAWN_SETSIGMASK as libc::c_short
                | libc::POSIX_SPAWN_SETSIGDEF as libc::c_short;
            check(libc::posix_spawnattr_setflags(&mut attr.0, flags))?;
        }
        Ok(attr)
    }
}

impl Drop for SessionAttr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    match rc {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// Wait for child `pid` and return its raw wait status, as `waitpid(2)`
/// gives it; `None` with `WNOHANG` while it still runs.
pub(crate) fn wait_child(pid: i32, nohang: bool) -> io::Result<Option<i32>> {
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only `status`.
        match unsafe { libc::waitpid(pid, &mut status, flags) } {
            0 => return Ok(None),
            p if p == pid => return Ok(Some(status)),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "session_spawn_tests.rs"]
mod tests;
