//! The board schema on PostgreSQL and its versioned migrations.
//!
//! Each board is one PostgreSQL schema (`kanban_<board>`) holding the
//! tables of the Hermes board, column for column (integers as `BIGINT`,
//! ids from identity columns), plus our `kanban_rs_*` tables, so a board
//! copies between SQLite and PostgreSQL row for row. Every connection of a
//! store sets its `search_path` to the board's schema, so the SQL of the
//! backend names tables without a schema.
//!
//! Migrations are numbered; `kanban_rs_migrations` records the applied
//! ones. [`migrate`] runs them under a session advisory lock of the
//! board, so `kanban init` on several hosts at once applies each step
//! exactly once.

use sha2::{Digest, Sha256};

use crate::db::{Conn, DbResult};

/// Prefix of every board schema.
pub(crate) const SCHEMA_PREFIX: &str = "kanban_";

/// Prefix of the `NOTIFY` channel of a board (one channel per board).
pub(crate) const CHANNEL_PREFIX: &str = "kanban_changed_";

/// PostgreSQL truncates identifiers longer than this (bytes).
const IDENTIFIER_MAX: usize = 63;

/// First 8 hex digits of a name's SHA-256.
fn hex8(name: &str) -> String {
    let d = Sha256::digest(name.as_bytes());
    d[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// What each advisory lock of a board protects (mixed into its key).
#[derive(Debug, Clone, Copy)]
enum LockPurpose {
    Write = 1,
    Dispatch = 2,
    Migrate = 3,
}

/// A board's schema name and the keys derived from it.
#[derive(Debug, Clone)]
pub(crate) struct BoardSchema {
    board: String,
    schema: String,
}

impl BoardSchema {
    /// The schema of board `board` (an already validated board name:
    /// lowercase letters, digits, `-`, `_`; always used quoted). Names too
    /// long for an identifier keep their start and get a hash suffix.
    pub(crate) fn new(board: &str) -> BoardSchema {
        let room = IDENTIFIER_MAX - CHANNEL_PREFIX.len();
        let name = if board.len() <= room {
            board.to_string()
        } else {
            let digest = hex8(board);
            format!("{}_{digest}", &board[..room - digest.len() - 1])
        };
        BoardSchema {
            board: board.to_string(),
            schema: format!("{SCHEMA_PREFIX}{name}"),
        }
    }

    pub(crate) fn board(&self) -> &str {
        &self.board
    }

    /// The schema name (safe as an identifier: lowercase, digits, `_`).
    pub(crate) fn name(&self) -> &str {
        &self.schema
    }

    /// The schema as a quoted identifier.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.schema)
    }

    /// The `NOTIFY`/`LISTEN` channel of the board.
    pub(crate) fn channel(&self) -> String {
        format!("{CHANNEL_PREFIX}{}", &self.schema[SCHEMA_PREFIX.len()..])
    }

    pub(crate) fn listen_sql(&self) -> String {
        format!("LISTEN \"{}\"", self.channel())
    }

    pub(crate) fn notify_sql(&self) -> String {
        format!("NOTIFY \"{}\"", self.channel())
    }

    fn lock_key(&self, purpose: LockPurpose) -> i64 {
        let mut h = Sha256::new();
        h.update(b"kanban-board-lock\0");
        h.update(self.schema.as_bytes());
        h.update([purpose as u8]);
        let d = h.finalize();
        i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
    }

    /// Transaction-scoped lock every write of the board takes first.
    pub(crate) fn write_lock_key(&self) -> i64 {
        self.lock_key(LockPurpose::Write)
    }

    /// Session lock held by the one dispatcher running a pass.
    pub(crate) fn dispatch_lock_key(&self) -> i64 {
        self.lock_key(LockPurpose::Dispatch)
    }

    fn migrate_lock_key(&self) -> i64 {
        self.lock_key(LockPurpose::Migrate)
    }
}

/// One numbered migration step.
struct Migration {
    version: i64,
    sql: &'static str,
}

/// The steps, oldest first. Never edit a released step; add a new one.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: V1_BOARD_SQL,
    },
    // Attachment blobs and worker logs in the database (ADR 0002).
    Migration {
        version: 2,
        sql: V2_BOARD_FILES_SQL,
    },
    // Host leases of the gateways working the board.
    Migration {
        version: 3,
        sql: V3_HOSTS_SQL,
    },
    // Cheaper claims: fewer index writes per task update.
    Migration {
        version: 4,
        sql: V4_LEANER_TASK_UPDATES_SQL,
    },
    // Room on every page for a claim's row versions and its launch record.
    Migration {
        version: 5,
        sql: V5_ROOM_FOR_LAUNCH_UPDATES_SQL,
    },
    // A spawn's "recent work" reads an index, not every run.
    Migration {
        version: 6,
        sql: V6_RECENT_RUNS_INDEX_SQL,
    },
    // A pass finds the tasks whose start failed without reading every ready one.
    Migration {
        version: 7,
        sql: V7_FAILING_TASKS_INDEX_SQL,
    },
];

/// The newest migration this build knows.
pub const SCHEMA_VERSION: i64 = 7;

/// Bumped by every write transaction; change probes read it.
pub(crate) const BUMP_VERSION_SQL: &str =
    "UPDATE kanban_rs_version SET version = version + 1 WHERE id = 1";

/// The board's change counter.
pub(crate) const VERSION_QUERY: &str = "SELECT version FROM kanban_rs_version WHERE id = 1";

/// The Hermes tables (integers as BIGINT, ids as identity columns) and
/// our own bookkeeping tables (which the SQLite backend creates on first
/// use; here every table exists from the start).
const V1_BOARD_SQL: &str = r#"
CREATE TABLE tasks (
    id                   TEXT PRIMARY KEY,
    title                TEXT NOT NULL,
    body                 TEXT,
    assignee             TEXT,
    status               TEXT NOT NULL,
    priority             BIGINT DEFAULT 0,
    created_by           TEXT,
    created_at           BIGINT NOT NULL,
    started_at           BIGINT,
    completed_at         BIGINT,
    workspace_kind       TEXT NOT NULL DEFAULT 'scratch',
    workspace_path       TEXT,
    branch_name          TEXT,
    project_id           TEXT,
    claim_lock           TEXT,
    claim_expires        BIGINT,
    tenant               TEXT,
    result               TEXT,
    idempotency_key      TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    worker_pid           BIGINT,
    last_failure_error   TEXT,
    max_runtime_seconds  BIGINT,
    last_heartbeat_at    BIGINT,
    current_run_id       BIGINT,
    workflow_template_id TEXT,
    current_step_key     TEXT,
    skills               TEXT,
    model_override       TEXT,
    max_retries          BIGINT,
    goal_mode            BIGINT NOT NULL DEFAULT 0,
    goal_max_turns       BIGINT,
    session_id           TEXT,
    block_kind           TEXT,
    block_recurrences    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE task_links (
    parent_id  TEXT NOT NULL,
    child_id   TEXT NOT NULL,
    PRIMARY KEY (parent_id, child_id)
);

CREATE TABLE task_comments (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    task_id    TEXT NOT NULL,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE task_events (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    task_id    TEXT NOT NULL,
    run_id     BIGINT,
    kind       TEXT NOT NULL,
    payload    TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE task_runs (
    id                  BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    task_id             TEXT NOT NULL,
    profile             TEXT,
    step_key            TEXT,
    status              TEXT NOT NULL,
    claim_lock          TEXT,
    claim_expires       BIGINT,
    worker_pid          BIGINT,
    max_runtime_seconds BIGINT,
    last_heartbeat_at   BIGINT,
    started_at          BIGINT NOT NULL,
    ended_at            BIGINT,
    outcome             TEXT,
    summary             TEXT,
    metadata            TEXT,
    error               TEXT
);

CREATE TABLE task_attachments (
    id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    task_id      TEXT NOT NULL,
    filename     TEXT NOT NULL,
    stored_path  TEXT NOT NULL,
    content_type TEXT,
    size         BIGINT NOT NULL DEFAULT 0,
    uploaded_by  TEXT,
    created_at   BIGINT NOT NULL
);

CREATE TABLE kanban_notify_subs (
    task_id       TEXT NOT NULL,
    platform      TEXT NOT NULL,
    chat_id       TEXT NOT NULL,
    thread_id     TEXT NOT NULL DEFAULT '',
    user_id       TEXT,
    notifier_profile TEXT,
    created_at    BIGINT NOT NULL,
    last_event_id BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, platform, chat_id, thread_id)
);

CREATE INDEX idx_tasks_assignee_status ON tasks(assignee, status);
CREATE INDEX idx_tasks_status          ON tasks(status);
CREATE INDEX idx_tasks_tenant          ON tasks(tenant);
CREATE INDEX idx_tasks_idempotency     ON tasks(idempotency_key);
CREATE INDEX idx_tasks_session_id      ON tasks(session_id);
CREATE INDEX idx_links_child           ON task_links(child_id);
CREATE INDEX idx_links_parent          ON task_links(parent_id);
CREATE INDEX idx_comments_task         ON task_comments(task_id, created_at);
CREATE INDEX idx_events_task           ON task_events(task_id, created_at);
CREATE INDEX idx_events_run            ON task_events(run_id, id);
CREATE INDEX idx_runs_task             ON task_runs(task_id, started_at);
CREATE INDEX idx_runs_status           ON task_runs(status);
CREATE INDEX idx_attachments_task      ON task_attachments(task_id, created_at);
CREATE INDEX idx_notify_task           ON kanban_notify_subs(task_id);
CREATE INDEX kanban_rs_idx_tasks_list
    ON tasks(priority DESC NULLS LAST, created_at, status COLLATE "C", id COLLATE "C",
             assignee, tenant, title);

CREATE TABLE kanban_rs_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE kanban_rs_version (
    id      INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO kanban_rs_version (id, version) VALUES (1, 0);

CREATE TABLE kanban_rs_workers (
    run_id     BIGINT PRIMARY KEY,
    task_id    TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    start_time BIGINT,
    boot_id    TEXT,
    host       TEXT,
    spawned_at BIGINT NOT NULL
);

CREATE TABLE kanban_rs_launches (
    run_id     BIGINT PRIMARY KEY,
    task_id    TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    start_time BIGINT,
    boot_id    TEXT,
    host       TEXT,
    claimed_at BIGINT NOT NULL
);

CREATE TABLE kanban_rs_supervisors (
    run_id     BIGINT PRIMARY KEY,
    task_id    TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    start_time BIGINT,
    boot_id    TEXT,
    host       TEXT
);

CREATE TABLE kanban_rs_intents (
    run_id     BIGINT PRIMARY KEY,
    task_id    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT,
    decided_at BIGINT NOT NULL
);

CREATE TABLE kanban_rs_notify_failures (
    task_id        TEXT NOT NULL,
    platform       TEXT NOT NULL,
    chat_id        TEXT NOT NULL,
    thread_id      TEXT NOT NULL DEFAULT '',
    sub_created_at BIGINT NOT NULL,
    failures       BIGINT NOT NULL,
    last_error     TEXT,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (task_id, platform, chat_id, thread_id)
);
"#;

/// Migration step: the tables of this module.
const V2_BOARD_FILES_SQL: &str = r#"
CREATE TABLE kanban_rs_attachment_blobs (
    attachment_id BIGINT PRIMARY KEY REFERENCES task_attachments(id) ON DELETE CASCADE,
    content       BYTEA NOT NULL
);

CREATE TABLE kanban_rs_log_chunks (
    task_id      TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    run_id       BIGINT NOT NULL,
    start_offset BIGINT NOT NULL,
    bytes        BYTEA NOT NULL,
    PRIMARY KEY (task_id, run_id, start_offset)
);
"#;

/// Migration 3: the host lease table.
const V3_HOSTS_SQL: &str = "CREATE TABLE kanban_rs_hosts (
    host_id       TEXT PRIMARY KEY,
    gateway_pid   BIGINT NOT NULL,
    started_at    BIGINT NOT NULL,
    lease_expires BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL
);";

/// Migration 4. A claim changes `status`, so its row update is never HOT
/// and writes an entry into every index of `tasks`, except a partial
/// index whose predicate the new row fails. Tenant, idempotency key and
/// session are NULL on most tasks and only ever looked up by equality,
/// which implies NOT NULL, so their indexes skip those rows. The spare
/// room per page lets the launch updates that follow a claim (workspace
/// and pid on the task, pid on the run: no indexed column) stay on their
/// page as HOT updates.
const V4_LEANER_TASK_UPDATES_SQL: &str = "
DROP INDEX idx_tasks_tenant;
DROP INDEX idx_tasks_idempotency;
DROP INDEX idx_tasks_session_id;
CREATE INDEX idx_tasks_tenant ON tasks(tenant) WHERE tenant IS NOT NULL;
CREATE INDEX idx_tasks_idempotency ON tasks(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX idx_tasks_session_id ON tasks(session_id) WHERE session_id IS NOT NULL;
ALTER TABLE tasks SET (fillfactor = 80);
ALTER TABLE task_runs SET (fillfactor = 80);
";

/// Migration 5. A dispatch pass claims a batch of tasks (new row versions:
/// the status changes), then records their launches (workspace and pid on
/// the task, pid on the run). At `fillfactor = 80` the claim's versions
/// used up the spare room of most pages, so the launch updates moved to
/// other pages too and wrote an entry into every index (4 WAL records a
/// row instead of 1). Half-full pages keep both on the page.
const V5_ROOM_FOR_LAUNCH_UPDATES_SQL: &str = "
ALTER TABLE tasks SET (fillfactor = 50);
ALTER TABLE task_runs SET (fillfactor = 50);
";

/// Every `tasks` column, in the order `row::task_from_row` reads them.
/// Migration 6. Every spawned worker's context lists the newest completed
/// runs of its profile; without an index that read every run of the board
/// and sorted them. Partial, so a run enters it only when it completes:
/// a claim and its launch updates change no column of it and stay HOT.
const V6_RECENT_RUNS_INDEX_SQL: &str = "
CREATE INDEX kanban_rs_idx_runs_recent
    ON task_runs(profile, (COALESCE(ended_at, started_at)), id)
    WHERE outcome = 'completed';
";

/// Migration 7. Every dispatch pass looks for ready tasks whose last start
/// failed (to give each its retry time); without an index that read every
/// ready task. Partial: a task is in it only between a failed start and
/// its next success.
const V7_FAILING_TASKS_INDEX_SQL: &str = "
CREATE INDEX kanban_rs_idx_tasks_failing ON tasks(status)
    WHERE COALESCE(consecutive_failures, 0) > 0;
";

pub(crate) const TASK_COLUMNS: &str = "id, title, body, assignee, status, priority, created_by, \
     created_at, started_at, completed_at, workspace_kind, workspace_path, branch_name, project_id, \
     claim_lock, claim_expires, tenant, result, idempotency_key, consecutive_failures, worker_pid, \
     last_failure_error, max_runtime_seconds, last_heartbeat_at, current_run_id, \
     workflow_template_id, current_step_key, skills, model_override, max_retries, goal_mode, \
     goal_max_turns, session_id, block_kind, block_recurrences";

/// Every `task_runs` column, in the order `row::run_from_row` reads them.
pub(crate) const RUN_COLUMNS: &str = "id, task_id, profile, step_key, status, claim_lock, \
     claim_expires, worker_pid, max_runtime_seconds, last_heartbeat_at, started_at, ended_at, \
     outcome, summary, metadata, error";

pub(crate) const EVENT_COLUMNS: &str = "id, task_id, run_id, kind, payload, created_at";

/// Does the board's schema exist (with our migration table)?
pub(crate) fn board_exists(conn: &mut Conn, schema: &BoardSchema) -> DbResult<bool> {
    let row = conn.client.query_one(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = 'kanban_rs_migrations')",
        &[&schema.name()],
    )?;
    Ok(row.get(0))
}

/// The highest applied migration of the board (0: none).
pub(crate) fn applied_version(conn: &mut Conn, schema: &BoardSchema) -> DbResult<i64> {
    if !board_exists(conn, schema)? {
        return Ok(0);
    }
    let row = conn.client.query_one(
        &format!(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM {}.kanban_rs_migrations",
            schema.quoted()
        ),
        &[],
    )?;
    Ok(row.get(0))
}

/// Create the schema when missing and apply every migration not applied
/// yet, each in its own transaction, under the board's migration lock.
/// Returns how many steps this call applied.
pub(crate) fn migrate(conn: &mut Conn, schema: &BoardSchema, now: i64) -> DbResult<usize> {
    let key = schema.migrate_lock_key();
    conn.client
        .execute("SELECT pg_advisory_lock($1)", &[&key])?;
    let out = apply_pending(conn, schema, now);
    // Unlock even when a step failed; a broken connection drops it anyway.
    let _ = conn
        .client
        .execute("SELECT pg_advisory_unlock($1)", &[&key]);
    out
}

fn apply_pending(conn: &mut Conn, schema: &BoardSchema, now: i64) -> DbResult<usize> {
    let q = schema.quoted();
    conn.client.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {q};
         CREATE TABLE IF NOT EXISTS {q}.kanban_rs_migrations (
             version    BIGINT PRIMARY KEY,
             applied_at BIGINT NOT NULL
         );"
    ))?;
    let done = applied_version(conn, schema)?;
    let mut applied = 0;
    for step in MIGRATIONS.iter().filter(|m| m.version > done) {
        let mut tx = conn.client.transaction()?;
        tx.batch_execute(&format!("SET LOCAL search_path TO {q}"))?;
        tx.batch_execute(step.sql)?;
        tx.execute(
            "INSERT INTO kanban_rs_migrations (version, applied_at) VALUES ($1, $2)",
            &[&step.version, &now],
        )?;
        tx.commit()?;
        applied += 1;
    }
    Ok(applied)
}

/// Schema of the board catalogue: which boards the database holds and
/// their display metadata, shared by every host (`crate::catalogue`). No
/// board schema is ever named so: board names start with a letter or digit.
pub(crate) const CATALOGUE_SCHEMA: &str = "kanban__catalogue";

/// The catalogue's steps, oldest first; numbered apart from the boards'
/// (a board's schema version says nothing about the catalogue's).
const CATALOGUE_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: CATALOGUE_V1_SQL,
}];

/// The newest catalogue migration this build knows.
pub const CATALOGUE_VERSION: i64 = 1;

/// Catalogue migration 1: the boards table (a `NULL` name is the slug in
/// Title Case), and every board an earlier version created in this
/// database, adopted by its schema name (with default metadata).
const CATALOGUE_V1_SQL: &str = r#"
CREATE TABLE kanban__catalogue.boards (
    slug            TEXT PRIMARY KEY,
    name            TEXT,
    description     TEXT NOT NULL DEFAULT '',
    icon            TEXT NOT NULL DEFAULT '',
    color           TEXT NOT NULL DEFAULT '',
    default_workdir TEXT,
    created_at      BIGINT NOT NULL,
    archived        BOOLEAN NOT NULL DEFAULT FALSE
);

INSERT INTO kanban__catalogue.boards (slug, created_at)
SELECT substr(n.nspname, length('kanban_') + 1), EXTRACT(EPOCH FROM now())::BIGINT
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = 'kanban_rs_migrations' AND c.relkind = 'r'
  AND n.nspname ~ '^kanban_[a-z0-9][-a-z0-9_]*$'
ON CONFLICT (slug) DO NOTHING;
"#;

/// The catalogue's migration lock (apart from every board's).
fn catalogue_lock_key() -> i64 {
    let d = Sha256::digest(b"kanban-catalogue-lock\0migrate");
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// The highest applied catalogue migration (0: no catalogue yet).
pub(crate) fn catalogue_version(conn: &mut Conn) -> DbResult<i64> {
    let row = conn.client.query_one(
        "SELECT to_regclass('kanban__catalogue.migrations') IS NOT NULL",
        &[],
    )?;
    if !row.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = conn.client.query_one(
        "SELECT COALESCE(MAX(version), 0)::BIGINT FROM kanban__catalogue.migrations",
        &[],
    )?;
    Ok(row.get(0))
}

/// Create the catalogue when missing and apply its pending steps, each in
/// its own transaction, under the catalogue's migration lock (safe from
/// several hosts at once). Returns how many steps this call applied.
pub(crate) fn migrate_catalogue(conn: &mut Conn, now: i64) -> DbResult<usize> {
    let key = catalogue_lock_key();
    conn.client
        .execute("SELECT pg_advisory_lock($1)", &[&key])?;
    let out = apply_catalogue_steps(conn, now);
    // Unlock even when a step failed; a broken connection drops it anyway.
    let _ = conn
        .client
        .execute("SELECT pg_advisory_unlock($1)", &[&key]);
    out
}

fn apply_catalogue_steps(conn: &mut Conn, now: i64) -> DbResult<usize> {
    conn.client.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {CATALOGUE_SCHEMA};
         CREATE TABLE IF NOT EXISTS {CATALOGUE_SCHEMA}.migrations (
             version    BIGINT PRIMARY KEY,
             applied_at BIGINT NOT NULL
         );"
    ))?;
    let done = catalogue_version(conn)?;
    let mut applied = 0;
    for step in CATALOGUE_MIGRATIONS.iter().filter(|m| m.version > done) {
        let mut tx = conn.client.transaction()?;
        tx.batch_execute(step.sql)?;
        tx.execute(
            "INSERT INTO kanban__catalogue.migrations (version, applied_at) VALUES ($1, $2)",
            &[&step.version, &now],
        )?;
        tx.commit()?;
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_names_map_to_safe_schema_names_and_distinct_keys() {
        let a = BoardSchema::new("ops-team");
        assert_eq!(a.name(), "kanban_ops-team");
        assert_eq!(a.quoted(), "\"kanban_ops-team\"");
        assert_eq!(a.channel(), "kanban_changed_ops-team");
        assert_ne!(BoardSchema::new("ops_team").name(), a.name());
        let long = "a".repeat(64);
        let other = format!("{}b", "a".repeat(63));
        for n in [&long, &other] {
            assert!(BoardSchema::new(n).channel().len() <= IDENTIFIER_MAX);
        }
        assert_ne!(
            BoardSchema::new(&long).name(),
            BoardSchema::new(&other).name()
        );
        let b = BoardSchema::new("default");
        let keys = [
            a.write_lock_key(),
            a.dispatch_lock_key(),
            a.migrate_lock_key(),
            b.write_lock_key(),
        ];
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[i + 1..].contains(k), "lock keys must differ");
        }
        assert_eq!(
            a.write_lock_key(),
            BoardSchema::new("ops-team").write_lock_key()
        );
    }

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
        for (i, m) in CATALOGUE_MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert_eq!(
            CATALOGUE_MIGRATIONS.last().map(|m| m.version),
            Some(CATALOGUE_VERSION)
        );
    }

    #[test]
    fn no_board_schema_is_the_catalogue_schema() {
        for board in ["catalogue", "a", &"x".repeat(64)] {
            assert_ne!(BoardSchema::new(board).name(), CATALOGUE_SCHEMA);
        }
        assert!(
            !CATALOGUE_SCHEMA[SCHEMA_PREFIX.len()..]
                .starts_with(|c: char| c.is_ascii_alphanumeric())
        );
        assert_ne!(
            catalogue_lock_key(),
            BoardSchema::new("default").migrate_lock_key()
        );
    }
}
