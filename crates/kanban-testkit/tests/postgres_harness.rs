//! The PostgreSQL test harness itself: a real server on a Unix socket,
//! isolated databases, restarts, and removal when the test process ends.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use kanban_testkit::pid_alive;
use kanban_testkit::postgres::{PORT, Shutdown, TestCluster, cluster, private_cluster};
use kanban_testkit::process::wait_until;
use postgres::error::SqlState;

/// Set in the re-executed test binary: what the child does once its
/// cluster runs (`exit` returns normally, `hang` waits to be killed).
const ENV_CHILD: &str = "KANBAN_PG_HARNESS_CHILD";
/// The child's report line: `<prefix> <cluster dir> <postmaster pid>`.
const CHILD_REPORT: &str = "PG-HARNESS-CLUSTER";
/// Bound on the removal after the owner is gone (immediate stop + rm -rf).
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(30);

fn one_int(client: &mut postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn shared_cluster_serves_a_fresh_database_over_the_socket_only() {
    let Some(pg) = cluster() else { return };
    assert!(
        std::ptr::eq(pg, cluster().unwrap()),
        "one cluster per process"
    );
    let socket = pg.socket_dir().join(format!(".s.PGSQL.{PORT}"));
    assert!(socket.exists(), "{} missing", socket.display());

    pg.create_database("harness_fresh");
    let mut client = pg.client("harness_fresh");
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    assert_eq!(name, "harness_fresh");
    let tables = one_int(
        &mut client,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    );
    assert_eq!(tables, 0, "a fresh database is empty");
    let tcp: String = client
        .query_one("SHOW listen_addresses", &[])
        .unwrap()
        .get(0);
    assert_eq!(tcp, "", "no TCP listener");
    // NULL server address: this connection is the Unix socket.
    let addr: Option<String> = client
        .query_one("SELECT inet_server_addr()::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(addr, None);
    let fsync: String = client.query_one("SHOW fsync", &[]).unwrap().get(0);
    assert_eq!(fsync, "off", "test settings applied");
}

#[test]
fn both_url_forms_reach_the_socket() {
    let Some(pg) = cluster() else { return };
    let db = pg.unique_database("harness_url");
    let dir = pg.socket_dir().to_str().unwrap();
    let encoded_host = pg.url(&db);
    assert!(
        encoded_host.starts_with("postgresql://postgres@%2F"),
        "{encoded_host}"
    );
    let query_host = format!("postgresql:///{db}?host={dir}&port={PORT}&user=postgres");
    for url in [encoded_host, query_host] {
        let mut client = postgres::Config::from_str(&url)
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(one_int(&mut client, "SELECT 41::bigint + 1"), 42, "{url}");
    }
}

#[test]
fn two_databases_are_independent() {
    let Some(pg) = cluster() else { return };
    let (a, b) = (
        pg.unique_database("harness_ind"),
        pg.unique_database("harness_ind"),
    );
    assert_ne!(a, b);
    let mut ca = pg.client(&a);
    ca.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)")
        .unwrap();
    let mut cb = pg.client(&b);
    let err = cb.query("SELECT x FROM t", &[]).unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE), "{err:?}");
    cb.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
        .unwrap();
    assert_eq!(one_int(&mut ca, "SELECT sum(x)::bigint FROM t"), 3);
    assert_eq!(one_int(&mut cb, "SELECT sum(x)::bigint FROM t"), 7);
}

#[test]
fn restart_keeps_the_data_and_accepts_new_clients() {
    let Some(pg) = private_cluster() else { return };
    let db = pg.unique_database("harness_restart");
    let mut before = pg.client(&db);
    before
        .batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (5)")
        .unwrap();
    let pid = pg.server_pid().expect("postmaster.pid");

    pg.restart();
    assert!(
        before.query("SELECT 1", &[]).is_err(),
        "a connection from before the restart is broken"
    );
    assert_ne!(pg.server_pid(), Some(pid), "a new postmaster");
    let mut after = pg.client(&db);
    assert_eq!(one_int(&mut after, "SELECT sum(x)::bigint FROM t"), 5);

    // A crash-like stop: committed data survives recovery.
    after.batch_execute("INSERT INTO t VALUES (6)").unwrap();
    pg.stop(Shutdown::Immediate);
    assert_eq!(pg.server_pid(), None);
    pg.start();
    let mut recovered = pg.client(&db);
    assert_eq!(one_int(&mut recovered, "SELECT sum(x)::bigint FROM t"), 11);
}

#[test]
fn dropping_a_private_cluster_removes_it() {
    let Some(pg) = private_cluster() else { return };
    let (dir, pid) = (pg.socket_dir().to_path_buf(), pg.server_pid().unwrap());
    assert!(pid_alive(pid));
    drop(pg);
    assert!(!dir.exists(), "{} still there", dir.display());
    assert!(
        wait_until(REMOVAL_TIMEOUT, || !pid_alive(pid)),
        "postmaster {pid} still running"
    );
}

/// Runs this test binary again as a child holding a shared cluster, as
/// `mode` says; returns the child's cluster directory and postmaster pid
/// once it runs, and the child.
fn child_with_cluster(mode: &str) -> (PathBuf, i32, std::process::Child) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_a_shared_cluster",
            "--ignored",
            "--nocapture",
        ])
        .env(ENV_CHILD, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix(CHILD_REPORT) {
            let (dir, pid) = rest.trim().rsplit_once(' ').unwrap();
            // Keep reading: a closed pipe would fail the child's next print.
            std::thread::spawn(move || lines.for_each(drop));
            return (PathBuf::from(dir), pid.parse().unwrap(), child);
        }
        seen.push(line);
    }
    panic!(
        "the child exited ({:?}) without reporting a cluster:\n{}",
        child.wait(),
        seen.join("\n")
    );
}

fn assert_removed(dir: &std::path::Path, pid: i32) {
    assert!(
        wait_until(REMOVAL_TIMEOUT, || !dir.exists() && !pid_alive(pid)),
        "after the test process ended: dir {} exists={}, postmaster {pid} alive={}",
        dir.display(),
        dir.exists(),
        pid_alive(pid)
    );
}

#[test]
fn cluster_is_removed_when_the_test_process_exits() {
    if cluster().is_none() {
        return;
    }
    let (dir, pid, mut child) = child_with_cluster("exit");
    assert!(child.wait().unwrap().success());
    assert_removed(&dir, pid);
}

#[test]
fn cluster_is_removed_when_the_test_process_is_killed() {
    if cluster().is_none() {
        return;
    }
    let (dir, pid, mut child) = child_with_cluster("hang");
    assert!(dir.exists() && pid_alive(pid), "the child's cluster runs");
    child.kill().unwrap(); // SIGKILL: no unwinding, no destructors
    child.wait().unwrap();
    assert_removed(&dir, pid);
}

/// Not a test of its own: the child process of the two removal tests
/// (`--ignored`, selected by name, with [`ENV_CHILD`] set).
#[test]
#[ignore = "child process of the cluster removal tests"]
fn child_holds_a_shared_cluster() {
    let mode = std::env::var(ENV_CHILD).expect("run by the removal tests only");
    let pg: &TestCluster = cluster().expect("PostgreSQL available in the parent");
    pg.client("postgres").batch_execute("SELECT 1").unwrap();
    println!(
        "{CHILD_REPORT} {} {}",
        pg.socket_dir().display(),
        pg.server_pid().unwrap()
    );
    if mode == "hang" {
        std::thread::sleep(Duration::from_secs(120));
    }
}
