//! The boards of the root, opened once for several checks: the database
//! connection (PostgreSQL), each board's integrity, and claims whose
//! worker process is gone.

use kanban_core::{Status, Task};
use kanban_dispatch::{Liveness, ProcLiveness};
use kanban_hermes::catalogue::for_root;
use kanban_hermes::config::open_request;
use kanban_hermes::layout::DEFAULT_BOARD;
use kanban_store::backend::{BoardLocation, open_board};
use kanban_store::{BoardStats, TaskQuery};

use super::{Finding, Site};

/// Claims named per board in a finding; the rest are counted.
const CLAIMS_SHOWN: usize = 5;
/// What the PostgreSQL backend answers for a board whose schema does not
/// exist yet (reachable, just not initialised).
const PG_NO_SUCH_BOARD: &str = "no such board";

/// One board as doctor found it.
#[derive(Debug)]
pub struct BoardReport {
    pub slug: String,
    pub location: BoardLocation,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Outcome {
    /// The board's storage does not exist yet.
    NotCreated,
    /// It exists but cannot be opened or read.
    Failed(String),
    /// Opened and read.
    Open {
        stats: BoardStats,
        running: Vec<Task>,
    },
}

/// Open every (non-archived) board of the root without creating any.
/// Nothing is opened while the configured database URL is unusable.
pub fn open_all(site: &Site) -> Vec<BoardReport> {
    if site.database_error.is_some() {
        return Vec::new();
    }
    // The root's catalogue: its directories, or the database's own.
    for_root(&site.root)
        .boards(false)
        .into_iter()
        .map(|entry| BoardReport {
            outcome: inspect(&entry.location),
            slug: entry.slug,
            location: entry.location,
        })
        .collect()
}

fn inspect(location: &BoardLocation) -> Outcome {
    if let BoardLocation::Sqlite(path) = location
        && !path.exists()
    {
        return Outcome::NotCreated;
    }
    let handle = match open_board(location, &open_request(false)) {
        Ok(h) => h,
        Err(e)
            if matches!(location, BoardLocation::Postgres(_))
                && e.to_string().contains(PG_NO_SUCH_BOARD) =>
        {
            return Outcome::NotCreated;
        }
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let store = handle.as_dispatch();
    let read = || -> kanban_store::Result<Outcome> {
        Ok(Outcome::Open {
            stats: store.stats()?,
            running: store.list_tasks(&TaskQuery {
                status: Some(Status::Running),
                ..Default::default()
            })?,
        })
    };
    read().unwrap_or_else(|e| Outcome::Failed(e.to_string()))
}

pub fn database_findings(site: &Site, boards: &[BoardReport]) -> Vec<Finding> {
    let origin = site
        .database_origin
        .as_deref()
        .unwrap_or("the configuration");
    if let Some(e) = &site.database_error {
        return vec![Finding::fail(
            e.clone(),
            format!("fix the URL in {origin} (postgres://user:password@host/dbname)"),
        )];
    }
    let Some(pg) = site.root.database() else {
        return vec![Finding::ok(format!(
            "SQLite: each board is a file under {}",
            site.root.path().display()
        ))];
    };
    let shown = BoardLocation::Postgres(pg.clone()).redacted();
    let default = boards.iter().find(|b| b.slug == DEFAULT_BOARD);
    match default.map(|b| &b.outcome) {
        Some(Outcome::Failed(e)) => vec![Finding::fail(
            format!("PostgreSQL at {shown} cannot be used: {e}"),
            format!(
                "check that the server runs and accepts connections from this host, and the \
                 URL (user, password, database name) in {origin}"
            ),
        )],
        Some(Outcome::NotCreated) => vec![Finding::ok(format!(
            "PostgreSQL at {shown} is reachable (no default board yet: `kanban init` creates it)"
        ))],
        _ => vec![Finding::ok(format!(
            "PostgreSQL at {shown} is reachable (from {origin})"
        ))],
    }
}

pub fn integrity_findings(site: &Site, boards: &[BoardReport]) -> Vec<Finding> {
    if site.database_error.is_some() {
        return vec![Finding::fail(
            "not checked: the database URL is unusable",
            "see the database check",
        )];
    }
    boards.iter().map(board_finding).collect()
}

fn board_finding(b: &BoardReport) -> Finding {
    let slug = &b.slug;
    match &b.outcome {
        Outcome::Open { stats, .. } => {
            let total: i64 = stats.by_status.values().sum();
            let parts: Vec<String> = Status::ALL
                .iter()
                .filter_map(|s| {
                    let n = stats.by_status.get(s.as_str()).copied().unwrap_or(0);
                    (n > 0).then(|| format!("{s} {n}"))
                })
                .collect();
            let counts = if parts.is_empty() {
                String::new()
            } else {
                format!(": {}", parts.join(", "))
            };
            Finding::ok(format!("{slug}: opens and reads, {total} task(s){counts}"))
        }
        Outcome::NotCreated if slug == DEFAULT_BOARD => Finding::ok(format!(
            "{slug}: not created yet (`kanban init` creates it)"
        )),
        Outcome::NotCreated => Finding::warn(
            format!("{slug}: listed (board.json) but its database does not exist"),
            format!(
                "`kanban --board {slug} init` creates it, `kanban boards rm {slug}` archives the entry"
            ),
        ),
        Outcome::Failed(e) => {
            let fix = match &b.location {
                BoardLocation::Sqlite(p) => format!(
                    "{} cannot be used: restore it from a backup (a damaged file is copied to \
                     {}.corrupt.<hash>.bak first), or archive the board with `kanban boards rm \
                     {slug}`",
                    p.display(),
                    p.display()
                ),
                BoardLocation::Postgres(_) => {
                    "see the database check; a board migrated by a newer kanban needs that \
                     version"
                        .to_string()
                }
            };
            Finding::fail(format!("{slug}: {e}"), fix)
        }
    }
}

/// Running tasks whose worker was started on this host and is no longer
/// alive: the claim outlived its process. The dispatcher notices them on
/// its next pass; without one they stay running until someone acts.
pub fn orphaned_claims(boards: &[BoardReport], dispatching: bool) -> Vec<Finding> {
    let liveness = ProcLiveness::new();
    let mut out = Vec::new();
    for b in boards {
        let Outcome::Open { running, .. } = &b.outcome else {
            continue;
        };
        let gone: Vec<(&str, i64)> = running
            .iter()
            .filter(|t| {
                t.claim_lock
                    .as_deref()
                    .is_some_and(|l| liveness.lock_is_host_local(l))
            })
            .filter_map(|t| Some((t.id.as_str(), t.worker_pid?)))
            .filter(|(_, pid)| i32::try_from(*pid).is_ok_and(|p| !liveness.pid_alive(p)))
            .collect();
        if gone.is_empty() {
            continue;
        }
        let mut named: Vec<String> = gone
            .iter()
            .take(CLAIMS_SHOWN)
            .map(|(id, pid)| format!("{id} (pid {pid})"))
            .collect();
        if gone.len() > CLAIMS_SHOWN {
            named.push(format!("and {} more", gone.len() - CLAIMS_SHOWN));
        }
        let first = gone[0].0;
        let board = if b.slug == DEFAULT_BOARD {
            String::new()
        } else {
            format!("--board {} ", b.slug)
        };
        let fix = if dispatching {
            format!(
                "the gateway's next pass detects the crash and retries them; if one stays, \
                 `kanban {board}reclaim {first}`"
            )
        } else {
            format!(
                "`kanban {board}dispatch` detects the crash and retries them (or `kanban \
                 {board}reclaim {first}` for one task)"
            )
        };
        out.push(Finding::warn(
            format!(
                "{}: {} running task(s) whose worker process is gone: {}",
                b.slug,
                gone.len(),
                named.join(", ")
            ),
            fix,
        ));
    }
    out
}
