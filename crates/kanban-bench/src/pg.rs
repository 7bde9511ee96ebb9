//! The PostgreSQL side of the benches: a private server started by the
//! test kit (initdb in a temporary directory, Unix socket only, removed
//! when dropped), re-configured as a stock durable server, so its figures
//! are comparable with SQLite's `synchronous=FULL` on the same disk.
// Shared by several bench binaries, each of which uses a part.
#![allow(dead_code)]

use std::str::FromStr as _;

use anyhow::{Result, anyhow, bail};
use clap::ValueEnum;
use kanban_store::backend::{BoardLocation, OpenRequest, PostgresLocation, open_board};
use kanban_testkit::postgres::TestCluster;

/// The board every bench database holds (`kanban_default` schema).
pub const BOARD: &str = "default";

/// The test kit trades durability for speed (`fsync = off`, ...): these
/// put PostgreSQL's stock values back (`ALTER SYSTEM` wins over
/// `postgresql.conf`), then the server restarts for `shared_buffers`.
const STOCK_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "on"),
    ("full_page_writes", "on"),
    ("synchronous_commit", "on"),
    ("shared_buffers", "128MB"),
    ("max_parallel_workers_per_gather", "2"),
];

/// Profiling aid: with this variable naming a file, the server logs every
/// statement with its duration (`log_min_duration_statement = 0`), and its
/// log is copied there when the bench ends (the cluster directory is
/// removed). Figures taken with it on are slower: logging costs.
pub const ENV_PG_STATEMENT_LOG: &str = "KANBAN_BENCH_PG_LOG";

/// Which backends a bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
    Both,
}

impl Backend {
    pub fn sqlite(self) -> bool {
        matches!(self, Backend::Sqlite | Backend::Both)
    }

    pub fn postgres(self) -> bool {
        matches!(self, Backend::Postgres | Backend::Both)
    }
}

/// A private PostgreSQL server for one bench run.
pub struct PgServer {
    cluster: TestCluster,
    version: String,
}

impl PgServer {
    /// Starts the server and makes it durable (see [`STOCK_SETTINGS`]).
    pub fn start() -> Result<PgServer> {
        kanban_store_postgres::register();
        let cluster = kanban_testkit::postgres::private_cluster()
            .ok_or_else(|| anyhow!("PostgreSQL is unavailable (KANBAN_SKIP_POSTGRES is set)"))?;
        {
            let mut c = cluster.client("postgres");
            for (name, value) in STOCK_SETTINGS {
                c.batch_execute(&format!("ALTER SYSTEM SET {name} = '{value}'"))?;
            }
        }
        let statement_log = std::env::var_os(ENV_PG_STATEMENT_LOG).is_some();
        if statement_log {
            let mut c = cluster.client("postgres");
            c.batch_execute("ALTER SYSTEM SET log_min_duration_statement = 0")?;
            // The plans of the slow ones, with row counts, timings and WAL
            // (set once the restart below has loaded the module).
            c.batch_execute("ALTER SYSTEM SET shared_preload_libraries = 'auto_explain'")?;
        }
        cluster.restart();
        let mut c = cluster.client("postgres");
        if statement_log {
            for setting in [
                "auto_explain.log_min_duration = '3ms'",
                "auto_explain.log_analyze = on",
                "auto_explain.log_buffers = on",
                "auto_explain.log_wal = on",
            ] {
                c.batch_execute(&format!("ALTER SYSTEM SET {setting}"))?;
            }
            c.batch_execute("SELECT pg_reload_conf()")?;
        }
        for (name, value) in STOCK_SETTINGS {
            let now: String = c.query_one(&format!("SHOW {name}"), &[])?.get(0);
            if now != *value {
                bail!("PostgreSQL setting {name} is {now}, wanted {value}");
            }
        }
        let version: String = c.query_one("SHOW server_version", &[])?.get(0);
        Ok(PgServer { cluster, version })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The URL of database `db` (no board parameter: the default board).
    pub fn url(&self, db: &str) -> String {
        self.cluster.url(db)
    }

    /// A fresh database holding an empty board, created through the store
    /// (`OpenRequest::create`, as `kanban init` does); its name.
    pub fn new_board(&self, prefix: &str) -> Result<String> {
        let db = self.cluster.unique_database(prefix);
        drop(open_board(&self.location(&db)?, &OpenRequest::create())?);
        Ok(db)
    }

    /// A copy of database `master` (`CREATE DATABASE … TEMPLATE`: a file
    /// copy, the analogue of copying the SQLite file); its name.
    pub fn copy(&self, master: &str, prefix: &str) -> Result<String> {
        let db = self.cluster.unique_database(prefix);
        let mut c = self.cluster.client("postgres");
        // One statement per call: DROP/CREATE DATABASE refuse to run in
        // the implicit transaction of a multi-statement query.
        for sql in [
            format!("DROP DATABASE {db}"),
            format!("CREATE DATABASE {db} TEMPLATE {master}"),
        ] {
            c.batch_execute(&sql)
                .map_err(|e| anyhow!("copying database {master}: {e}: {:?}", e.as_db_error()))?;
        }
        Ok(db)
    }

    pub fn location(&self, db: &str) -> Result<BoardLocation> {
        Ok(BoardLocation::Postgres(self.pg_location(db)?))
    }

    pub fn pg_location(&self, db: &str) -> Result<PostgresLocation> {
        Ok(PostgresLocation::new(&self.url(db), BOARD)?)
    }

    /// A connection to `db` with the board's schema on its search path.
    pub fn board_client(&self, db: &str) -> Result<postgres::Client> {
        board_client_at(&self.url(db))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(to) = std::env::var_os(ENV_PG_STATEMENT_LOG)
            && let Err(e) = std::fs::copy(self.cluster.log_file(), &to)
        {
            eprintln!(
                "cannot copy the server log to {}: {e}",
                to.to_string_lossy()
            );
        }
    }
}

/// A connection to the database at `url` with the board's schema on its
/// search path.
pub fn board_client_at(url: &str) -> Result<postgres::Client> {
    let mut c = postgres::Config::from_str(url)?.connect(postgres::NoTls)?;
    c.batch_execute(&format!("SET search_path TO kanban_{BOARD}"))?;
    Ok(c)
}
