//! SQL text of the board schema. The tables and indexes are the Hermes
//! 0.19.0 ones, column for column, so the Python implementation reads and
//! writes the same file. Our own additions live only in `kanban_rs_*`
//! objects, which the Python code never looks at.

/// Version of our own migration pass. Bump it whenever `migrate` learns a
/// new step; a board whose `kanban_rs_meta.schema_version` equals it skips
/// the migration pass (and the integrity check) on open.
pub(crate) const SCHEMA_VERSION: i64 = 4;

/// The reference `SCHEMA_SQL`: tables and base indexes, all idempotent.
pub(crate) const SCHEMA_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS tasks (
    id                   TEXT PRIMARY KEY,
    title                TEXT NOT NULL,
    body                 TEXT,
    assignee             TEXT,
    status               TEXT NOT NULL,
    priority             INTEGER DEFAULT 0,
    created_by           TEXT,
    created_at           INTEGER NOT NULL,
    started_at           INTEGER,
    completed_at         INTEGER,
    workspace_kind       TEXT NOT NULL DEFAULT 'scratch',
    workspace_path       TEXT,
    branch_name          TEXT,
    project_id           TEXT,
    claim_lock           TEXT,
    claim_expires        INTEGER,
    tenant               TEXT,
    result               TEXT,
    idempotency_key      TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    worker_pid           INTEGER,
    last_failure_error   TEXT,
    max_runtime_seconds  INTEGER,
    last_heartbeat_at    INTEGER,
    current_run_id       INTEGER,
    workflow_template_id TEXT,
    current_step_key     TEXT,
    skills               TEXT,
    model_override       TEXT,
    max_retries          INTEGER,
    goal_mode            INTEGER NOT NULL DEFAULT 0,
    goal_max_turns       INTEGER,
    session_id           TEXT,
    block_kind           TEXT,
    block_recurrences    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS task_links (
    parent_id  TEXT NOT NULL,
    child_id   TEXT NOT NULL,
    PRIMARY KEY (parent_id, child_id)
);

CREATE TABLE IF NOT EXISTS task_comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    TEXT NOT NULL,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS task_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    TEXT NOT NULL,
    run_id     INTEGER,
    kind       TEXT NOT NULL,
    payload    TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS task_runs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id             TEXT NOT NULL,
    profile             TEXT,
    step_key            TEXT,
    status              TEXT NOT NULL,
    claim_lock          TEXT,
    claim_expires       INTEGER,
    worker_pid          INTEGER,
    max_runtime_seconds INTEGER,
    last_heartbeat_at   INTEGER,
    started_at          INTEGER NOT NULL,
    ended_at            INTEGER,
    outcome             TEXT,
    summary             TEXT,
    metadata            TEXT,
    error               TEXT
);

CREATE TABLE IF NOT EXISTS task_attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id      TEXT NOT NULL,
    filename     TEXT NOT NULL,
    stored_path  TEXT NOT NULL,
    content_type TEXT,
    size         INTEGER NOT NULL DEFAULT 0,
    uploaded_by  TEXT,
    created_at   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS kanban_notify_subs (
    task_id       TEXT NOT NULL,
    platform      TEXT NOT NULL,
    chat_id       TEXT NOT NULL,
    thread_id     TEXT NOT NULL DEFAULT '',
    user_id       TEXT,
    notifier_profile TEXT,
    created_at    INTEGER NOT NULL,
    last_event_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, platform, chat_id, thread_id)
);

CREATE INDEX IF NOT EXISTS idx_tasks_assignee_status ON tasks(assignee, status);
CREATE INDEX IF NOT EXISTS idx_tasks_status          ON tasks(status);
CREATE INDEX IF NOT EXISTS idx_links_child           ON task_links(child_id);
CREATE INDEX IF NOT EXISTS idx_links_parent          ON task_links(parent_id);
CREATE INDEX IF NOT EXISTS idx_comments_task         ON task_comments(task_id, created_at);
CREATE INDEX IF NOT EXISTS idx_events_task           ON task_events(task_id, created_at);
CREATE INDEX IF NOT EXISTS idx_runs_task             ON task_runs(task_id, started_at);
CREATE INDEX IF NOT EXISTS idx_runs_status           ON task_runs(status);
CREATE INDEX IF NOT EXISTS idx_attachments_task      ON task_attachments(task_id, created_at);
CREATE INDEX IF NOT EXISTS idx_notify_task           ON kanban_notify_subs(task_id);
"#;

/// Columns added to `tasks` after the first release, in the reference's
/// order: `(name, column definition)`. Added when missing, never renamed.
pub(crate) const ADDITIVE_TASK_COLUMNS: &[(&str, &str)] = &[
    ("tenant", "tenant TEXT"),
    ("result", "result TEXT"),
    ("branch_name", "branch_name TEXT"),
    ("project_id", "project_id TEXT"),
    ("idempotency_key", "idempotency_key TEXT"),
    (
        "consecutive_failures",
        "consecutive_failures INTEGER NOT NULL DEFAULT 0",
    ),
    ("worker_pid", "worker_pid INTEGER"),
    ("last_failure_error", "last_failure_error TEXT"),
    ("max_runtime_seconds", "max_runtime_seconds INTEGER"),
    ("last_heartbeat_at", "last_heartbeat_at INTEGER"),
    ("current_run_id", "current_run_id INTEGER"),
    ("workflow_template_id", "workflow_template_id TEXT"),
    ("current_step_key", "current_step_key TEXT"),
    ("skills", "skills TEXT"),
    ("max_retries", "max_retries INTEGER"),
    ("model_override", "model_override TEXT"),
    ("goal_mode", "goal_mode INTEGER NOT NULL DEFAULT 0"),
    ("goal_max_turns", "goal_max_turns INTEGER"),
    ("session_id", "session_id TEXT"),
    ("block_kind", "block_kind TEXT"),
    (
        "block_recurrences",
        "block_recurrences INTEGER NOT NULL DEFAULT 0",
    ),
];

/// Indexes over additive columns: created only after the columns exist,
/// exactly as the reference does (a legacy board would otherwise fail).
pub(crate) const ADDITIVE_INDEXES_SQL: &str = "
CREATE INDEX IF NOT EXISTS idx_tasks_tenant ON tasks(tenant);
CREATE INDEX IF NOT EXISTS idx_tasks_idempotency ON tasks(idempotency_key);
CREATE INDEX IF NOT EXISTS idx_tasks_session_id ON tasks(session_id);
";

/// Created after `task_events.run_id` exists.
pub(crate) const EVENTS_RUN_INDEX_SQL: &str =
    "CREATE INDEX IF NOT EXISTS idx_events_run ON task_events(run_id, id)";

/// Legacy event kinds renamed in place by the reference migration.
pub(crate) const EVENT_RENAMES: &[(&str, &str)] = &[
    ("ready", "promoted"),
    ("priority", "reprioritized"),
    ("spawn_auto_blocked", "gave_up"),
];

/// Canonical shapes of tables whose legacy versions had TEXT ids (or a TEXT
/// notify cursor); such tables are rebuilt to these, with their indexes.
pub(crate) const REBUILD_SPECS: &[(&str, &str, &[&str])] = &[
    (
        "task_events",
        "CREATE TABLE task_events ( id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, \
         run_id INTEGER, kind TEXT NOT NULL, payload TEXT, created_at INTEGER NOT NULL)",
        &[
            "CREATE INDEX idx_events_task ON task_events(task_id, created_at)",
            "CREATE INDEX idx_events_run ON task_events(run_id, id)",
        ],
    ),
    (
        "task_comments",
        "CREATE TABLE task_comments ( id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, \
         author TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL)",
        &["CREATE INDEX idx_comments_task ON task_comments(task_id, created_at)"],
    ),
    (
        "task_runs",
        "CREATE TABLE task_runs ( id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, \
         profile TEXT, step_key TEXT, status TEXT NOT NULL, claim_lock TEXT, claim_expires INTEGER, \
         worker_pid INTEGER, max_runtime_seconds INTEGER, last_heartbeat_at INTEGER, \
         started_at INTEGER NOT NULL, ended_at INTEGER, outcome TEXT, summary TEXT, metadata TEXT, \
         error TEXT)",
        &[
            "CREATE INDEX idx_runs_task ON task_runs(task_id, started_at)",
            "CREATE INDEX idx_runs_status ON task_runs(status)",
        ],
    ),
    (
        "kanban_notify_subs",
        "CREATE TABLE kanban_notify_subs ( task_id TEXT NOT NULL, platform TEXT NOT NULL, \
         chat_id TEXT NOT NULL, thread_id TEXT NOT NULL DEFAULT '', user_id TEXT, \
         notifier_profile TEXT, created_at INTEGER NOT NULL, last_event_id INTEGER NOT NULL DEFAULT 0, \
         PRIMARY KEY (task_id, platform, chat_id, thread_id))",
        &["CREATE INDEX idx_notify_task ON kanban_notify_subs(task_id)"],
    ),
];

/// Our own index: covers a `kanban list` line in the default order
/// (priority DESC, created_at), so listing a large board is an index-only
/// scan with no sort and no table reads. SQLite maintains it for the
/// Python writers too; the Python code never reads it.
pub(crate) const LIST_INDEX_SQL: &str = "CREATE INDEX IF NOT EXISTS kanban_rs_idx_tasks_list \
     ON tasks(priority DESC, created_at, status, id, assignee, tenant, title)";

/// Our own index: the completed runs of one profile, newest first, which
/// every spawned worker's context lists ("recent work"). Without it each
/// spawn read every run of the board and sorted them. Partial: a run
/// enters it when it completes, so claims and launch updates never touch
/// it. The Python code never reads it.
pub(crate) const RECENT_RUNS_INDEX_SQL: &str = "CREATE INDEX IF NOT EXISTS \
     kanban_rs_idx_runs_recent ON task_runs(profile, COALESCE(ended_at, started_at), id) \
     WHERE outcome = 'completed'";

/// Our own index: the tasks whose last start failed, which every dispatch
/// pass looks for (to give each its retry time). Without it each pass read
/// every ready task. Partial: a task is in it only between a failed start
/// and its next success. The Python code never reads it.
pub(crate) const FAILING_TASKS_INDEX_SQL: &str = "CREATE INDEX IF NOT EXISTS \
     kanban_rs_idx_tasks_failing ON tasks(status) WHERE COALESCE(consecutive_failures, 0) > 0";

/// Our own bookkeeping: ignored by the Python implementation.
pub(crate) const META_SQL: &str = "
CREATE TABLE IF NOT EXISTS kanban_rs_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

pub(crate) const META_VERSION_QUERY: &str =
    "SELECT value FROM kanban_rs_meta WHERE key = 'schema_version'";

pub(crate) const META_VERSION_UPSERT: &str = "INSERT INTO kanban_rs_meta (key, value) VALUES ('schema_version', ?1) \
     ON CONFLICT(key) DO UPDATE SET value = excluded.value";

/// Every `tasks` column, in the order `row::task_from_row` reads them.
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
