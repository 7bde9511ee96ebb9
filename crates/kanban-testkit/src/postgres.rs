//! A real PostgreSQL server for the tests of the PostgreSQL backend: no
//! Docker, no mocks, no system cluster.
//!
//! ```no_run
//! let Some(pg) = kanban_testkit::postgres::cluster() else { return };
//! let db = pg.unique_database("store");      // fresh, empty
//! let mut client = pg.client(&db);            // postgres::Client over the socket
//! client.batch_execute("CREATE TABLE t (x int)").unwrap();
//! let url = pg.url(&db); // postgresql://postgres@%2Ftmp%2Fkanban-pg-XXXX:5432/<db>
//! ```
//!
//! [`cluster`] starts one server per test process, on first use: `initdb`
//! into a fresh temporary directory, listening only on a Unix socket in that
//! directory (`listen_addresses = ''`, no TCP), trust authentication for the
//! superuser `postgres`, and settings that trade durability for speed
//! (`fsync = off`, ...). Tests share it and isolate themselves by database
//! ([`TestCluster::unique_database`]). A test that stops, restarts or kills
//! the server takes its own [`private_cluster`] instead, so it cannot
//! disturb the others.
//!
//! Binaries come from `/usr/lib/postgresql/<highest version>/bin` (Debian's
//! `postgresql` package), else from `PATH`. initdb refuses to run as root,
//! so a root test process runs the server as the `postgres` system user
//! (which Debian's package creates).
//!
//! Removal: Rust never drops statics, so each cluster has a watchdog (`sh`,
//! its own process group) blocked reading a pipe whose write end only the
//! test process holds. However the test process ends (success, panic,
//! `SIGKILL`), the pipe closes and the watchdog stops the server
//! (`pg_ctl stop -m immediate`) and deletes the directory. Dropping a
//! [`private_cluster`] does the same and waits for it.
//!
//! Missing PostgreSQL makes [`cluster`] panic with how to install it;
//! `KANBAN_SKIP_POSTGRES=1` turns that into `None` and one line on stderr.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};

/// Turns missing PostgreSQL binaries (or a server that cannot start) into
/// skipped tests instead of failures.
pub const ENV_SKIP_POSTGRES: &str = "KANBAN_SKIP_POSTGRES";
/// The superuser initdb creates; trust authentication, no password.
pub const SUPERUSER: &str = "postgres";
/// The port only names the socket file (`.s.PGSQL.<port>`); there is no TCP.
pub const PORT: u16 = 5432;
/// Where Debian's packages put each major version's binaries.
const DEBIAN_LIB_DIR: &str = "/usr/lib/postgresql";
/// The unprivileged system user a root test process runs the server as.
const SYSTEM_USER: &str = "postgres";
/// How to get the binaries, in every "missing" message.
const INSTALL_HINT: &str = "install PostgreSQL: `sudo apt-get install postgresql` on \
    Debian/Ubuntu (or put initdb, pg_ctl and postgres on PATH); \
    KANBAN_SKIP_POSTGRES=1 skips the PostgreSQL tests instead";
/// Room for the longest socket path (`sun_path` is 108 bytes on Linux).
const MAX_SOCKET_DIR_LEN: usize = 90;
/// How long `pg_ctl` may wait for the server to start or stop.
const PG_CTL_TIMEOUT_SECS: &str = "60";
/// Appended to `postgresql.conf`: a test server, not a durable one
/// against power loss. `synchronous_commit` stays on: with it off a commit
/// is acknowledged before its WAL leaves shared memory, so an immediate
/// stop (a simulated crash) would lose acknowledged commits; with
/// `fsync = off` it costs only a write(2) per commit.
const SERVER_SETTINGS: &str = "
listen_addresses = ''
max_connections = 300
shared_buffers = 32MB
fsync = off
full_page_writes = off
max_parallel_workers_per_gather = 0
log_min_messages = warning
";

/// Runs in the watchdog: blocks until the test process is gone (the pipe
/// on stdin closes), then stops the server and removes everything.
/// `$1` pg_ctl, `$2` data directory, `$3` the cluster's directory.
const WATCHDOG_SCRIPT: &str = r#"trap '' INT HUP
read -r _ || :
"$1" stop -D "$2" -m immediate -w -s >/dev/null 2>&1 || :
rm -rf -- "$3"
"#;

/// How to stop the server ([`TestCluster::stop`]); `pg_ctl stop -m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Disconnects clients, checkpoints: a clean stop.
    Fast,
    /// Kills the backends without a checkpoint: recovery on the next start,
    /// as after a crash.
    Immediate,
}

/// One PostgreSQL server in its own temporary directory (see the module).
#[derive(Debug)]
pub struct TestCluster {
    /// The cluster's directory: the socket, `data/` and `server.log`.
    root: PathBuf,
    bin: PathBuf,
    /// uid and gid the server runs as when the test process is root.
    owner: Option<(u32, u32)>,
    /// The watchdog; its stdin is the pipe whose closing removes the cluster.
    watchdog: Mutex<Option<Child>>,
    /// Serialises start and stop.
    control: Mutex<()>,
    next_db: AtomicU64,
}

/// The server shared by every test of this process, started on first use.
/// `None` only when PostgreSQL is unavailable and [`ENV_SKIP_POSTGRES`] is
/// set; otherwise unavailability panics with how to install it.
pub fn cluster() -> Option<&'static TestCluster> {
    static SHARED: OnceLock<Result<TestCluster, String>> = OnceLock::new();
    match SHARED.get_or_init(TestCluster::start_new) {
        Ok(cluster) => Some(cluster),
        Err(why) => unavailable(why),
    }
}

/// A server of the caller's own, for tests that stop, restart or kill it.
/// Dropping it stops the server and removes its directory. Same
/// unavailability rules as [`cluster`].
pub fn private_cluster() -> Option<TestCluster> {
    match TestCluster::start_new() {
        Ok(cluster) => Some(cluster),
        Err(why) => unavailable(&why),
    }
}

fn unavailable<T>(why: &str) -> Option<T> {
    let skip = matches!(
        std::env::var(ENV_SKIP_POSTGRES).as_deref().map(str::trim),
        Ok("1" | "true" | "yes")
    );
    unavailable_unless(skip, why)
}

/// Panics with `why` unless `skip`; then `None` and one line on stderr.
fn unavailable_unless<T>(skip: bool, why: &str) -> Option<T> {
    if !skip {
        panic!("PostgreSQL is unavailable for the tests: {why}");
    }
    static SAID: Once = Once::new();
    // Straight to stderr: libtest captures eprintln! of passing tests.
    SAID.call_once(|| {
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED: the PostgreSQL tests, on request ({ENV_SKIP_POSTGRES}=1): {why}"
        );
    });
    None
}

impl TestCluster {
    fn start_new() -> Result<TestCluster, String> {
        let bin = find_bin_dir(Path::new(DEBIAN_LIB_DIR), std::env::var_os("PATH"))?;
        let owner = if id("-u", None)? == 0 {
            Some(system_user()?)
        } else {
            None
        };
        let root = make_root(owner)?;
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG_SCRIPT, "pg-watchdog"])
            .arg(bin.join("pg_ctl"))
            .arg(root.join("data"))
            .arg(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group: a Ctrl-C on the test run must not kill it first.
            .process_group(0)
            .run_as(owner, &root)
            .spawn();
        let watchdog = match watchdog {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&root);
                return Err(format!("cannot start the watchdog (sh): {e}"));
            }
        };
        // From here on dropping `cluster` removes everything.
        let cluster = TestCluster {
            root,
            bin,
            owner,
            watchdog: Mutex::new(Some(watchdog)),
            control: Mutex::new(()),
            next_db: AtomicU64::new(1),
        };
        cluster.init()?;
        cluster.try_start()?;
        Ok(cluster)
    }

    fn init(&self) -> Result<(), String> {
        let mut initdb = Command::new(self.bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(self.data_dir())
            .args(["--auth=trust", "--username", SUPERUSER, "-E", "UTF8"])
            .args(["--locale=C", "--no-sync", "--no-instructions"]);
        self.run(initdb)?;
        let settings = format!(
            "{SERVER_SETTINGS}port = {PORT}\nunix_socket_directories = '{}'\n",
            self.root.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.conf"))
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .map_err(|e| format!("cannot write postgresql.conf: {e}"))
    }

    /// Runs a PostgreSQL tool as the server's user; its output on failure.
    fn run(&self, mut cmd: Command) -> Result<(), String> {
        let what = format!("{cmd:?}");
        let out = cmd
            .stdin(Stdio::null())
            .run_as(self.owner, &self.root)
            .output()
            .map_err(|e| format!("cannot run {what}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{what} failed ({}):\n{}{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log_file()).unwrap_or_default()
        ))
    }

    fn pg_ctl(&self, action: &str) -> Command {
        let mut cmd = Command::new(self.bin.join("pg_ctl"));
        cmd.arg(action)
            .arg("-D")
            .arg(self.data_dir())
            // Always a log file: without one the server would inherit (and
            // hold open) the pipes `output()` reads to the end.
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-s", "-t", PG_CTL_TIMEOUT_SECS]);
        cmd
    }

    fn try_start(&self) -> Result<(), String> {
        self.run(self.pg_ctl("start"))
    }

    /// The directory holding the socket (libpq's `host`).
    pub fn socket_dir(&self) -> &Path {
        &self.root
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The server's log (`pg_ctl -l`).
    pub fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// The postmaster's pid while the server runs (`postmaster.pid`).
    pub fn server_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Connection URL of `dbname` over the Unix socket, in the form both
    /// libpq and the `postgres` crate accept: the socket directory
    /// percent-encoded as the host,
    /// `postgresql://postgres@%2Ftmp%2Fkanban-pg-XXXX:5432/<dbname>`.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgresql://{SUPERUSER}@{}:{PORT}/{}",
            percent_encode(&self.root.to_string_lossy()),
            percent_encode(dbname)
        )
    }

    /// [`Self::url`] parsed (panics if the `postgres` crate rejects it).
    pub fn config(&self, dbname: &str) -> ::postgres::Config {
        let url = self.url(dbname);
        ::postgres::Config::from_str(&url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    /// A new connection to `dbname` (no TLS: it is a Unix socket).
    #[track_caller]
    pub fn client(&self, dbname: &str) -> ::postgres::Client {
        self.config(dbname)
            .connect(::postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url(dbname)))
    }

    /// Creates the empty database `name` (lowercase letters, digits and
    /// `_`); panics if it exists.
    #[track_caller]
    pub fn create_database(&self, name: &str) {
        assert!(
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "database name {name:?}: use lowercase letters, digits and _"
        );
        // template0: nobody connects to it, so concurrent creations never
        // fail with "source database is being accessed by other users".
        self.client("postgres")
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    }

    /// Creates a fresh empty database named `<prefix>_<n>` and returns the
    /// name; `n` is unique in this cluster.
    #[track_caller]
    pub fn unique_database(&self, prefix: &str) -> String {
        let name = format!("{prefix}_{}", self.next_db.fetch_add(1, Ordering::Relaxed));
        self.create_database(&name);
        name
    }

    /// Stops the server; connections break. Disturbs every user of this
    /// cluster: restart tests belong on a [`private_cluster`].
    #[track_caller]
    pub fn stop(&self, how: Shutdown) {
        let _guard = self.control.lock().unwrap_or_else(|e| e.into_inner());
        let mut cmd = self.pg_ctl("stop");
        cmd.args([
            "-m",
            match how {
                Shutdown::Fast => "fast",
                Shutdown::Immediate => "immediate",
            },
        ]);
        self.run(cmd).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the stopped server again on the same data directory.
    #[track_caller]
    pub fn start(&self) {
        let _guard = self.control.lock().unwrap_or_else(|e| e.into_inner());
        self.try_start().unwrap_or_else(|e| panic!("{e}"));
    }

    /// A clean stop then a start on the same data directory; existing
    /// connections break, new ones succeed once this returns.
    #[track_caller]
    pub fn restart(&self) {
        self.stop(Shutdown::Fast);
        self.start();
    }
}

impl Drop for TestCluster {
    /// Closes the watchdog's pipe and waits while it stops the server and
    /// removes the directory (a static is never dropped: there the end of
    /// the process closes the pipe).
    fn drop(&mut self) {
        let slot = self.watchdog.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = slot.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// Runs a command as the cluster's owner (root test process) in `dir`.
trait RunAs {
    fn run_as(&mut self, owner: Option<(u32, u32)>, dir: &Path) -> &mut Self;
}

impl RunAs for Command {
    fn run_as(&mut self, owner: Option<(u32, u32)>, dir: &Path) -> &mut Self {
        // A directory the postgres user can enter (initdb resolves its own
        // path relative to it); std drops root's supplementary groups.
        self.current_dir(dir);
        if let Some((uid, gid)) = owner {
            self.uid(uid).gid(gid);
        }
        self
    }
}

/// `id <flag> [user]`: the test process's ids, or the user's.
fn id(flag: &str, user: Option<&str>) -> Result<u32, String> {
    let out = Command::new("id")
        .arg(flag)
        .args(user)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run id: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .map_err(|_| format!("`id {flag} {}` printed {text:?}", user.unwrap_or("")))
}

/// uid and gid of the `postgres` system user.
fn system_user() -> Result<(u32, u32), String> {
    let ids = id("-u", Some(SYSTEM_USER)).and_then(|uid| Ok((uid, id("-g", Some(SYSTEM_USER))?)));
    ids.map_err(|why| {
        format!(
            "the test process is root and initdb refuses to run as root, but there is no \
             `{SYSTEM_USER}` user to run it as ({why}; Debian's postgresql package creates \
             it); {INSTALL_HINT}"
        )
    })
}

/// A fresh directory for the cluster, owned by the server's user, short
/// enough for a socket path.
fn make_root(owner: Option<(u32, u32)>) -> Result<PathBuf, String> {
    let tmp = std::env::temp_dir();
    // Root's TMPDIR may be private to root; /tmp is reachable by everyone.
    let base = if owner.is_some() || tmp.as_os_str().len() > MAX_SOCKET_DIR_LEN - 20 {
        PathBuf::from("/tmp")
    } else {
        tmp
    };
    let root = tempfile::Builder::new()
        .prefix("kanban-pg-")
        .tempdir_in(&base)
        .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))?
        .keep();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&root, Some(uid), Some(gid)).map_err(|e| {
            let _ = std::fs::remove_dir_all(&root);
            format!("cannot chown {} to {SYSTEM_USER}: {e}", root.display())
        })?;
    }
    Ok(root)
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: the highest
/// version under `debian_lib` (`<version>/bin`), else the first `PATH`
/// entry that has all three.
fn find_bin_dir(debian_lib: &Path, path: Option<std::ffi::OsString>) -> Result<PathBuf, String> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|tool| dir.join(tool).is_file())
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(debian_lib)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
            Some((version?, entry.path().join("bin")))
        })
        .filter(|(_, bin)| complete(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    path.iter()
        .flat_map(std::env::split_paths)
        .find(|dir| complete(dir))
        .ok_or_else(|| {
            format!(
                "no initdb, pg_ctl and postgres in {}/<version>/bin nor on PATH; {INSTALL_HINT}",
                debian_lib.display()
            )
        })
}

/// Percent-encodes everything but URL-unreserved characters (a socket
/// directory as a URL host: `/` becomes `%2F`).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_bin(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for tool in ["initdb", "pg_ctl", "postgres"] {
            std::fs::write(dir.join(tool), "").unwrap();
        }
    }

    #[test]
    fn the_highest_debian_version_wins_numerically() {
        let lib = tempfile::tempdir().unwrap();
        for version in ["9.6", "15", "16"] {
            fake_bin(&lib.path().join(version).join("bin"));
        }
        // An incomplete newer version is not a candidate.
        std::fs::create_dir_all(lib.path().join("17/bin")).unwrap();
        let found = find_bin_dir(lib.path(), None).unwrap();
        assert_eq!(found, lib.path().join("16/bin"));
    }

    #[test]
    fn path_is_the_fallback_and_absence_says_how_to_install() {
        let lib = tempfile::tempdir().unwrap();
        let on_path = tempfile::tempdir().unwrap();
        fake_bin(on_path.path());
        let path = std::env::join_paths(["/nonexistent", &on_path.path().to_string_lossy()]);
        let found = find_bin_dir(lib.path(), Some(path.unwrap())).unwrap();
        assert_eq!(found, on_path.path());

        let why = find_bin_dir(lib.path(), Some("/nonexistent".into())).unwrap_err();
        assert!(why.contains("apt-get install postgresql"), "{why}");
        assert!(why.contains(ENV_SKIP_POSTGRES), "{why}");
    }

    #[test]
    #[should_panic(expected = "apt-get install postgresql")]
    fn missing_postgres_fails_with_how_to_install_it() {
        let lib = tempfile::tempdir().unwrap();
        let why = find_bin_dir(lib.path(), None).unwrap_err();
        let _: Option<()> = unavailable_unless(false, &why);
    }

    #[test]
    fn missing_postgres_is_a_skip_on_request() {
        let lib = tempfile::tempdir().unwrap();
        let why = find_bin_dir(lib.path(), None).unwrap_err();
        assert_eq!(unavailable_unless::<()>(true, &why), None);
    }

    #[test]
    fn socket_directories_become_url_hosts() {
        assert_eq!(
            percent_encode("/tmp/kanban-pg-a_B.1"),
            "%2Ftmp%2Fkanban-pg-a_B.1"
        );
        assert_eq!(percent_encode("a b@c"), "a%20b%40c");
    }
}
