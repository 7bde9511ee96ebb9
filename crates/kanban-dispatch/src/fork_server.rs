//! The fork server: worker wrappers started by `fork` from a small helper
//! process instead of an `exec` of the whole `kanban` binary.
//!
//! Every worker runs under the exit-recording wrapper (see
//! [`crate::recording`]). Exec'ing a 30 MB position-independent binary
//! costs about 2 ms of CPU before the wrapper does anything (the loader
//! relocates hundreds of pages), on the path of every pick-up. A gateway
//! therefore starts one helper (`kanban __worker-forkserver`) that has
//! already paid that once; per worker, the gateway sends it the wrapper's
//! arguments, environment, directory and log descriptor over a Unix
//! socket, and the helper forks a child that *is* the wrapper from then
//! on: own session, stdin on `/dev/null`, stdout and stderr on the log.
//!
//! The helper is single-threaded (so its children may do anything after
//! `fork`), reaps its children and reports each exit to the gateway; the
//! gateway counts a served child as "exit pending" until that report, so
//! no death is judged before its exit is known. When the helper is gone,
//! the gateway starts wrappers itself again and the served children's
//! exits come from their exit records, as after a gateway restart.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};

use crate::env::EnvPlan;
use crate::liveness::{Liveness, ProcLiveness};
use crate::session_spawn::{SessionSpawn, child_environment, spawn_in_new_session};

/// `0`, `off`, `false` or `no` here: the gateway starts every wrapper
/// itself, without the helper.
pub const ENV_FORK_SERVER: &str = "KANBAN_WORKER_FORK_SERVER";

/// Whether [`ENV_FORK_SERVER`]'s value (if set) leaves the helper on.
pub fn fork_server_wanted(value: Option<&str>) -> bool {
    !value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "0" | "off" | "false" | "no"
        )
    })
}

/// The descriptor on which the helper finds its end of the socket.
pub const FORK_SERVER_FD: RawFd = 3;
/// Largest request (arguments and environment); a bigger one is started
/// without the helper.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// How long the gateway waits for the helper to answer a request.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a dropped server waits for its helper to exit by itself.
const HELPER_EXIT_WAIT: Duration = Duration::from_secs(1);
const HELPER_EXIT_POLL: Duration = Duration::from_millis(5);
/// Stack of the gateway's reader thread: it only decodes small notes.
const READER_STACK_BYTES: usize = 64 * 1024;

const TAG_REQUEST: u8 = b'R';
const TAG_STARTED: u8 = b'S';
const TAG_FAILED: u8 = b'F';
const TAG_EXITED: u8 = b'X';

/// What the gateway asks for: one wrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartRequest {
    /// The wrapper's arguments (after its program and verb).
    pub args: Vec<String>,
    /// The child's whole environment, `KEY=value` each.
    pub env: Vec<Vec<u8>>,
    pub cwd: Option<PathBuf>,
}

/// What the helper reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Note {
    Started {
        pid: i32,
        start_time: Option<u64>,
    },
    Failed {
        errno: i32,
    },
    Exited {
        pid: i32,
        start_time: Option<u64>,
        status: i32,
    },
}

fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn push_list<T: AsRef<[u8]>>(out: &mut Vec<u8>, items: &[T]) {
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        push_bytes(out, item.as_ref());
    }
}

/// A cursor over a received message.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn list(&mut self) -> Option<Vec<Vec<u8>>> {
        let n = self.u32()? as usize;
        (0..n).map(|_| self.bytes()).collect()
    }
}

pub(crate) fn encode_request(req: &StartRequest) -> Vec<u8> {
    let mut out = vec![TAG_REQUEST];
    push_list(&mut out, &req.args);
    push_list(&mut out, &req.env);
    match &req.cwd {
        Some(dir) => {
            out.push(1);
            push_bytes(&mut out, dir.as_os_str().as_bytes());
        }
        None => out.push(0),
    }
    out
}

pub(crate) fn decode_request(msg: &[u8]) -> Option<StartRequest> {
    let mut r = Reader(msg);
    if r.u8()? != TAG_REQUEST {
        return None;
    }
    let args = r
        .list()?
        .into_iter()
        .map(String::from_utf8)
        .collect::<Result<_, _>>()
        .ok()?;
    let env = r.list()?;
    let cwd = match r.u8()? {
        0 => None,
        _ => Some(PathBuf::from(std::ffi::OsString::from_vec(r.bytes()?))),
    };
    r.0.is_empty().then_some(StartRequest { args, env, cwd })
}

pub(crate) fn encode_note(note: Note) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    match note {
        Note::Started { pid, start_time } => {
            out.push(TAG_STARTED);
            out.extend_from_slice(&pid.to_le_bytes());
            out.extend_from_slice(&start_time.unwrap_or(0).to_le_bytes());
        }
        Note::Failed { errno } => {
            out.push(TAG_FAILED);
            out.extend_from_slice(&errno.to_le_bytes());
        }
        Note::Exited {
            pid,
            start_time,
            status,
        } => {
            out.push(TAG_EXITED);
            out.extend_from_slice(&pid.to_le_bytes());
            out.extend_from_slice(&start_time.unwrap_or(0).to_le_bytes());
            out.extend_from_slice(&status.to_le_bytes());
        }
    }
    out
}

pub(crate) fn decode_note(msg: &[u8]) -> Option<Note> {
    let mut r = Reader(msg);
    // A start time of 0 means "unknown": no process starts at boot tick 0.
    let known = |t: u64| (t != 0).then_some(t);
    let note = match r.u8()? {
        TAG_STARTED => Note::Started {
            pid: r.i32()?,
            start_time: known(r.u64()?),
        },
        TAG_FAILED => Note::Failed { errno: r.i32()? },
        TAG_EXITED => Note::Exited {
            pid: r.i32()?,
            start_time: known(r.u64()?),
            status: r.i32()?,
        },
        _ => return None,
    };
    r.0.is_empty().then_some(note)
}

fn send(sock: RawFd, msg: &[u8], fd: Option<RawFd>) -> io::Result<()> {
    let fds = fd.map(|f| [f]);
    let cmsgs: Vec<ControlMessage<'_>> = fds
        .as_ref()
        .map(|f| ControlMessage::ScmRights(f))
        .into_iter()
        .collect();
    loop {
        match sendmsg::<()>(
            sock,
            &[IoSlice::new(msg)],
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One message and the descriptor that came with it; `Ok(None)` at the
/// end of the stream.
fn recv(sock: RawFd, buf: &mut [u8]) -> io::Result<Option<(usize, Option<OwnedFd>)>> {
    let mut space = nix::cmsg_space!([RawFd; 1]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut fd = None;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for f in fds {
                    // SAFETY: the kernel just installed `f` in this process
                    // for us; nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(f) };
                    fd.get_or_insert(owned);
                }
            }
        }
        if msg.bytes == 0 && fd.is_none() {
            return Ok(None);
        }
        if msg.flags.contains(MsgFlags::MSG_TRUNC) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message too long",
            ));
        }
        return Ok(Some((msg.bytes, fd)));
    }
}

/// The gateway's side: a running helper.
pub struct ForkServer {
    /// The argv prefix of the wrapper this helper stands for.
    prefix: Vec<String>,
    sock: OwnedFd,
    server_pid: i32,
    /// Shared with the reader thread, which clears it at the end of the
    /// stream.
    alive: Arc<AtomicBool>,
    /// Held for a whole request (send, then answer): one at a time, so
    /// answers come back in order.
    replies: Mutex<Option<mpsc::Receiver<Note>>>,
}

impl std::fmt::Debug for ForkServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForkServer")
            .field("server_pid", &self.server_pid)
            .field("alive", &self.alive.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What the reader hands to the spawner.
pub(crate) enum ServerEvent {
    Note(Note),
    /// The helper is gone: no more notes will come.
    Lost,
}

impl ForkServer {
    /// Start `program args...` as the helper (socket on
    /// [`FORK_SERVER_FD`], stderr shared with this process), standing for
    /// the wrapper whose argv starts with `prefix`.
    pub fn start(program: &str, args: &[String], prefix: Vec<String>) -> io::Result<ForkServer> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        let stderr = File::from(io::stderr().as_fd().try_clone_to_owned()?);
        let server_pid = spawn_in_new_session(&SessionSpawn {
            program,
            args,
            env: &EnvPlan::default(),
            cwd: None,
            output: &stderr,
            pass_fd: Some((theirs.as_raw_fd(), FORK_SERVER_FD)),
        })?;
        Ok(ForkServer {
            prefix,
            sock: ours,
            server_pid,
            alive: Arc::new(AtomicBool::new(true)),
            replies: Mutex::new(None),
        })
    }

    /// The helper's pid.
    pub fn server_pid(&self) -> i32 {
        self.server_pid
    }

    /// How many leading arguments name the wrapper (program and verb).
    pub(crate) fn prefix_len(&self) -> usize {
        self.prefix.len()
    }

    /// Whether `argv` is a wrapper this helper can start.
    pub(crate) fn serves(&self, argv: &[String]) -> bool {
        self.alive.load(Ordering::SeqCst)
            && argv.len() > self.prefix.len()
            && argv.starts_with(&self.prefix)
    }

    /// Read the helper's notes on a thread of their own, handing each to
    /// `sink` (in order; `Lost` last). Replies to requests also go to the
    /// request waiting for them, after `sink` saw them.
    pub(crate) fn listen(&self, sink: impl Fn(ServerEvent) + Send + 'static) -> io::Result<()> {
        let (tx, rx) = mpsc::channel();
        *self.replies.lock().unwrap_or_else(|p| p.into_inner()) = Some(rx);
        // The reader holds the socket, not the server: dropping the server
        // shuts the socket down, which ends the reader.
        let sock = self.sock.try_clone()?;
        let alive = Arc::clone(&self.alive);
        std::thread::Builder::new()
            .name("kanban-forkserver".into())
            .stack_size(READER_STACK_BYTES)
            .spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(Some((n, _))) = recv(sock.as_raw_fd(), &mut buf) {
                    let Some(note) = decode_note(&buf[..n]) else {
                        continue;
                    };
                    sink(ServerEvent::Note(note));
                    if !matches!(note, Note::Exited { .. }) {
                        let _ = tx.send(note);
                    }
                }
                alive.store(false, Ordering::SeqCst);
                sink(ServerEvent::Lost);
            })?;
        Ok(())
    }

    /// Have the helper start these wrappers: one answer each, in order, a
    /// pid and start time. `Err(Unsent)` when a request never reached the
    /// helper (the caller may start that wrapper itself); any other error
    /// means a wrapper may or may not be running. Every request is sent
    /// before the first answer is awaited, so the helper forks them back to
    /// back while this side goes on: one wake-up of the helper, of the
    /// reader and of the caller per batch rather than per worker.
    pub(crate) fn start_wrappers(&self, starts: &[WrapperStart<'_>]) -> Vec<StartAnswer> {
        let mut answers: Vec<Option<StartAnswer>> = starts.iter().map(|_| None).collect();
        let replies = self.replies.lock().unwrap_or_else(|p| p.into_inner());
        let Some(replies) = replies.as_ref() else {
            return starts
                .iter()
                .map(|_| {
                    Err(StartError::Unsent(io::Error::other(
                        "fork server not listened to",
                    )))
                })
                .collect();
        };
        let mut sent = Vec::with_capacity(starts.len());
        for (i, start) in starts.iter().enumerate() {
            answers[i] = match self.send_request(start) {
                Ok(()) => {
                    sent.push(i);
                    None
                }
                Err(e) => Some(Err(StartError::Unsent(e))),
            };
        }
        let mut lost = false;
        for i in sent {
            answers[i] = Some(if lost {
                Err(StartError::Lost)
            } else {
                match replies.recv_timeout(REPLY_TIMEOUT) {
                    Ok(Note::Started { pid, start_time }) => Ok((pid, start_time)),
                    Ok(Note::Failed { errno }) => {
                        Err(StartError::Refused(io::Error::from_raw_os_error(errno)))
                    }
                    Ok(Note::Exited { .. }) => Err(StartError::Lost),
                    Err(_) => {
                        // Hung or gone: never ask it again; what it has not
                        // answered yet may or may not run.
                        self.alive.store(false, Ordering::SeqCst);
                        lost = true;
                        Err(StartError::Lost)
                    }
                }
            });
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or(Err(StartError::Lost)))
            .collect()
    }

    /// Send one request; an error means the helper never saw it.
    fn send_request(&self, start: &WrapperStart<'_>) -> io::Result<()> {
        if !self.alive.load(Ordering::SeqCst) {
            return Err(io::Error::other("the fork server is gone"));
        }
        let req = StartRequest {
            args: start.args.to_vec(),
            env: child_environment(start.env)?
                .into_iter()
                .map(|c| c.into_bytes())
                .collect(),
            cwd: start.cwd.map(Path::to_path_buf),
        };
        let msg = encode_request(&req);
        if msg.len() > MAX_REQUEST_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "request too large for the fork server",
            ));
        }
        send(self.sock.as_raw_fd(), &msg, Some(start.log.as_raw_fd())).inspect_err(|e| {
            // Too big for the socket's buffer: this request only. Anything
            // else means the helper is gone.
            if e.raw_os_error() != Some(libc::EMSGSIZE) {
                self.alive.store(false, Ordering::SeqCst);
            }
        })
    }
}

/// One wrapper for the helper to start: the arguments after the prefix,
/// its environment, working directory and log.
pub(crate) struct WrapperStart<'a> {
    pub args: &'a [String],
    pub env: &'a EnvPlan,
    pub cwd: Option<&'a Path>,
    pub log: &'a File,
}

/// The helper's answer to one [`WrapperStart`]: pid and start time.
pub(crate) type StartAnswer = Result<(i32, Option<u64>), StartError>;

/// Why the helper did not start a wrapper.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The helper never saw the request.
    Unsent(io::Error),
    /// The helper could not fork.
    Refused(io::Error),
    /// No answer: a wrapper may be running.
    Lost,
}

impl Drop for ForkServer {
    /// Our end closes with us; the helper sees the end of the stream and
    /// exits. Its children, in their own sessions, run on.
    fn drop(&mut self) {
        let _ = nix::sys::socket::shutdown(self.sock.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        // The helper is our child: reap it rather than leave a zombie, and
        // do not wait for a helper that is stuck (stopped, say).
        let deadline = std::time::Instant::now() + HELPER_EXIT_WAIT;
        while std::time::Instant::now() < deadline {
            match crate::session_spawn::wait_child(self.server_pid, true) {
                Ok(None) => std::thread::sleep(HELPER_EXIT_POLL),
                _ => return,
            }
        }
        // SAFETY: signalling our own unreaped child.
        unsafe { libc::kill(self.server_pid, libc::SIGKILL) };
        let _ = crate::session_spawn::wait_child(self.server_pid, false);
    }
}

/// The helper's side: serve requests on `sock` until the gateway closes
/// its end. Each child runs `run_wrapper(args)` and exits with its result.
/// Returns the helper's exit code.
pub fn serve(sock: OwnedFd, run_wrapper: fn(Vec<String>) -> i32) -> i32 {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};

    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    if chld.thread_block().is_err() {
        return 1;
    }
    let Ok(sfd) = SignalFd::with_flags(&chld, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
    else {
        return 1;
    };
    let liveness = ProcLiveness::new();
    let mut starts: HashMap<i32, Option<u64>> = HashMap::new();
    let mut buf = vec![0u8; MAX_REQUEST_BYTES];
    loop {
        let mut fds = [
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return 1,
        }
        let child_ready = fds[1].any().unwrap_or(false);
        let sock_ready = fds[0].any().unwrap_or(false);
        if child_ready {
            while let Ok(Some(_)) = sfd.read_signal() {}
            report_exits(sock.as_raw_fd(), &mut starts);
        }
        if !sock_ready {
            continue;
        }
        let (n, fd) = match recv(sock.as_raw_fd(), &mut buf) {
            Ok(Some(m)) => m,
            // Cut short: refuse this one request.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => (0, None),
            // The gateway is gone (or the socket broke): so are we.
            Ok(None) | Err(_) => return 0,
        };
        let (Some(req), Some(log)) = (decode_request(&buf[..n]), fd) else {
            let _ = send(
                sock.as_raw_fd(),
                &encode_note(Note::Failed {
                    errno: libc::EINVAL,
                }),
                None,
            );
            continue;
        };
        // SAFETY: this process runs one thread (the helper's only loop), so
        // the child may allocate and run any code before it exits.
        let note = match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => become_wrapper(
                req,
                log,
                &[sock.as_raw_fd(), sfd.as_fd().as_raw_fd()],
                run_wrapper,
            ),
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                let pid = child.as_raw();
                // Still our unreaped child: its stat is there to read.
                let start_time = liveness.stat(pid).map(|s| s.start_time);
                starts.insert(pid, start_time);
                Note::Started { pid, start_time }
            }
            Err(e) => Note::Failed { errno: e as i32 },
        };
        drop(log);
        if send(sock.as_raw_fd(), &encode_note(note), None).is_err() {
            return 0;
        }
    }
}

/// Reap every child that ended and tell the gateway how.
fn report_exits(sock: RawFd, starts: &mut HashMap<i32, Option<u64>>) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        let start_time = starts.remove(&pid).flatten();
        let note = Note::Exited {
            pid,
            start_time,
            status,
        };
        let _ = send(sock, &encode_note(note), None);
    }
}

/// In the forked child: set the process up as `kanban __worker-exec`
/// would find it, run the wrapper, exit.
fn become_wrapper(
    req: StartRequest,
    log: OwnedFd,
    inherited: &[RawFd],
    run_wrapper: fn(Vec<String>) -> i32,
) -> ! {
    use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
    let _ = nix::unistd::setsid();
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: plain descriptor calls on numbers this process owns; the
    // helper's socket and signalfd must not stay open in the wrapper.
    unsafe {
        for fd in inherited {
            libc::close(*fd);
        }
        libc::dup2(log.as_raw_fd(), 1);
        libc::dup2(log.as_raw_fd(), 2);
    }
    drop(log);
    if let Ok(null) = File::open("/dev/null") {
        // SAFETY: as above.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
    if let Some(dir) = &req.cwd
        && let Err(e) = std::env::set_current_dir(dir)
    {
        eprintln!("kanban: cannot enter workspace {}: {e}", dir.display());
        // SAFETY: ends this child without running the helper's exit code.
        unsafe { libc::_exit(127) };
    }
    for (key, _) in std::env::vars_os() {
        // SAFETY: this child runs one thread.
        unsafe { std::env::remove_var(key) };
    }
    for entry in &req.env {
        if let Some(eq) = entry.iter().position(|b| *b == b'=') {
            let key = std::ffi::OsStr::from_bytes(&entry[..eq]);
            let value = std::ffi::OsStr::from_bytes(&entry[eq + 1..]);
            if !key.is_empty() {
                // SAFETY: as above.
                unsafe { std::env::set_var(key, value) };
            }
        }
    }
    let code = run_wrapper(req.args);
    use std::io::Write;
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    // SAFETY: `_exit` skips the helper's exit handlers, which are not ours.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
#[path = "fork_server_tests.rs"]
mod tests;
