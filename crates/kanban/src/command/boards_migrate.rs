//! `kanban boards migrate --to <location>`: copy a board, every table and
//! id, to another backend (SQLite ⇄ PostgreSQL), then verify the copy row
//! for row.
//!
//! The source is the board `--board` (default: the current one) resolves
//! to, on the backend `--db` / the configuration selects; it is read in
//! one snapshot. The destination must be new or empty and is written in
//! one transaction. Afterwards both sides are read again and compared with
//! what was copied; any difference is an error naming table and row.
//! Locations are printed redacted: a password never shows.
//!
//! The board's catalogue entry goes along (name, description, icon,
//! color, default workdir; not archived) wherever the destination has a
//! catalogue: a PostgreSQL database's, or the `board.json` of a board in a
//! Hermes root (`<root>/kanban/boards/<slug>/kanban.db`, or the default
//! board's `<root>/kanban.db` when `<root>/kanban/` exists). Any other
//! SQLite file has no catalogue: it gets the tasks only. A display name
//! that is only the source slug's default is not copied (the destination
//! board keeps its own default name).

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use kanban_hermes::catalogue::{HermesCatalogue, for_root};
use kanban_hermes::config::open_request;
use kanban_hermes::layout::{ARCHIVED_DIR_NAME, DB_FILE_NAME, DEFAULT_BOARD, Env, Root};
use kanban_store::StoreError;
use kanban_store::backend::{
    BoardCatalogue, BoardHandle, BoardLocation, BoardMeta, CatalogueError, MetaUpdate,
    POSTGRES_BOARD_PARAM, default_display_name, open_board, postgres_catalogue,
};
use kanban_store::dump::{BoardDump, TableCount, compare};

use crate::context::layout_error;
use crate::error::usage;

/// Where the messages of this verb start.
const VERB: &str = "kanban boards migrate";

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Examples:
  kanban boards migrate --to 'postgres://kanban@db.example/kanban'
  kanban boards migrate --board ops --to 'postgres://kanban@db/kb?board=ops-team'
  kanban --db \"$URL\" boards migrate --to sqlite:$HOME/.hermes/kanban.db

The source is the board --board names (default: the current board), on the
backend --db, $HERMES_KANBAN_DATABASE_URL or kanban.database_url selects.
A PostgreSQL destination without ?board= gets the source board's slug.
The destination must not hold any row; it is written in one transaction
and verified row for row afterwards. Put a password in ~/.pgpass or
PGPASSWORD rather than in the URL: arguments are visible to every user.
Attachment files stay where they are; only their rows are copied.

The board's name, description, icon, color and default workdir go to the
destination's catalogue: the PostgreSQL database's, or board.json when the
SQLite file is a board of a Hermes root (<root>/kanban/boards/<slug>/kanban.db,
or <root>/kanban.db when <root>/kanban/ exists). Any other file gets the
tasks only.")]
pub struct MigrateArgs {
    /// Destination: `postgres://…[?board=<name>]` or `sqlite:<path>` (a new
    /// or empty board).
    #[arg(long, value_name = "LOCATION")]
    pub to: String,
    /// Print JSON (tables and row counts) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The `--json` report.
#[derive(Serialize)]
struct Report<'a> {
    board: &'a str,
    source: String,
    destination: String,
    tables: Vec<TableCount>,
    total_rows: usize,
    verified: bool,
    /// The board's metadata went to the destination's catalogue.
    metadata_copied: bool,
}

/// Run the copy from board `board` (`None`: the current one) of `root`.
pub fn run(args: MigrateArgs, root: &Root, board: Option<&str>, env: &dyn Env) -> Result<i32> {
    let to = BoardLocation::parse(&args.to).map_err(|e| usage(format!("--to: {e}")))?;
    let source = root.resolve_board(board, env).map_err(layout_error)?;
    let from = source.location();
    let to = match to {
        // Without `?board=` the board keeps its slug.
        BoardLocation::Postgres(pg) if !names_board(&args.to) => BoardLocation::Postgres(
            pg.with_board(&source.slug)
                .map_err(|e| usage(format!("--to: {e}")))?,
        ),
        other => other,
    };
    if to == from || (to.identity().is_some() && to.identity() == from.identity()) {
        return Err(usage(format!("--to: {to} is the source board itself")));
    }
    let src = open_board(&from, &open_request(false))?;
    let created_file = to
        .sqlite_path()
        .filter(|p| !p.exists())
        .map(|p| p.to_path_buf());
    let outcome = open_board(&to, &open_request(true)).and_then(|dst| copy(&src, &dst));
    let failed = !matches!(outcome, Ok(Ok(_)));
    if failed && let Some(path) = &created_file {
        // Leave nothing behind where there was nothing.
        remove_sqlite_file(path);
    }
    let dump = match outcome {
        Ok(Ok(dump)) => dump,
        Ok(Err(refusal)) => {
            eprintln!("{VERB}: {refusal}");
            return Ok(1);
        }
        Err(e @ StoreError::Refused { .. }) => {
            eprintln!("{VERB}: {e}");
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let metadata_copied = match copy_metadata(root, &source.slug, &to) {
        Ok(copied) => copied,
        Err(e) => {
            eprintln!(
                "{VERB}: warning: the tasks were copied but not the board's metadata ({e}); \
                 set it with `kanban boards rename` and `kanban boards set-default-workdir`"
            );
            false
        }
    };
    let report = Report {
        board: &source.slug,
        source: from.to_string(),
        destination: to.to_string(),
        tables: dump.counts(),
        total_rows: dump.total_rows(),
        verified: true,
        metadata_copied,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    println!(
        "Board '{}' copied from {} to {}.",
        report.board, report.source, report.destination
    );
    for t in &report.tables {
        println!("  {:28} {:>8}", t.table, t.rows);
    }
    println!(
        "Verified: {} rows in {} tables match row for row.",
        report.total_rows,
        report.tables.len()
    );
    if metadata_copied {
        println!("Board metadata copied to the destination's catalogue.");
    } else {
        println!("Board metadata not copied: the destination has no board catalogue.");
    }
    Ok(0)
}

/// A catalogue and the slug of one of its boards.
type CatalogueBoard = (Box<dyn BoardCatalogue>, String);

/// The catalogue that keeps the destination board's metadata, and the
/// board's slug there; `None` for a SQLite file outside a Hermes root.
fn destination_catalogue(to: &BoardLocation) -> Result<Option<CatalogueBoard>, StoreError> {
    match to {
        BoardLocation::Postgres(pg) => Ok(Some((
            postgres_catalogue(pg, &open_request(false))?,
            pg.board().to_string(),
        ))),
        BoardLocation::Sqlite(path) => Ok(hermes_board_of(path).map(|(root, slug)| {
            let catalogue: Box<dyn BoardCatalogue> = Box::new(HermesCatalogue::new(root));
            (catalogue, slug)
        })),
    }
}

/// The Hermes root and slug whose board database `path` is, if any.
fn hermes_board_of(path: &std::path::Path) -> Option<(Root, String)> {
    if path.file_name()? != DB_FILE_NAME {
        return None;
    }
    let dir = path.parent()?;
    if dir.join("kanban").is_dir() {
        return Some((Root::at(dir), DEFAULT_BOARD.to_string()));
    }
    let slug = dir.file_name()?.to_str()?;
    let boards = dir.parent()?;
    let kanban = boards.parent()?;
    let named = boards.file_name()? == "boards" && kanban.file_name()? == "kanban";
    let is_board = named
        && slug != DEFAULT_BOARD
        && slug != ARCHIVED_DIR_NAME
        && kanban_hermes::layout::require_slug(slug).ok()? == slug;
    is_board.then_some((Root::at(kanban.parent()?), slug.to_string()))
}

/// What of `meta` goes to another board: everything shown, not archived;
/// a name that is only the slug's default stays the destination's own.
fn metadata_update(meta: &BoardMeta) -> MetaUpdate {
    MetaUpdate {
        name: (meta.name != default_display_name(&meta.slug)).then(|| meta.name.clone()),
        description: Some(meta.description.clone()),
        icon: Some(meta.icon.clone()),
        color: Some(meta.color.clone()),
        archived: Some(false),
        default_workdir: Some(meta.default_workdir.clone()),
    }
}

/// Write the source board's metadata into the destination's catalogue.
/// `Ok(false)`: the destination has none. A default workdir this host
/// does not have is left out with a warning.
fn copy_metadata(root: &Root, slug: &str, to: &BoardLocation) -> Result<bool, CatalogueError> {
    let Some((catalogue, dest)) = destination_catalogue(to)? else {
        return Ok(false);
    };
    let update = metadata_update(&for_root(root).metadata(slug)?);
    match catalogue.write_metadata(&dest, &update) {
        Err(e) if e.exit_code() == 2 && update.workdir_to_set().is_some() => {
            eprintln!("{VERB}: warning: default workdir not copied: {e}");
            let update = MetaUpdate {
                default_workdir: None,
                ..update
            };
            catalogue.write_metadata(&dest, &update)?;
        }
        other => {
            other?;
        }
    }
    Ok(true)
}

/// Does a `postgres://` URL carry a `board` parameter?
fn names_board(raw: &str) -> bool {
    raw.split_once('?').is_some_and(|(_, q)| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some(POSTGRES_BOARD_PARAM))
    })
}

/// Copy `src` into `dst` and verify both sides. `Ok(Err(msg))` is an
/// expected failure to report (a mismatch); store refusals come back as
/// `Err(StoreError::Refused)`.
fn copy(src: &BoardHandle, dst: &BoardHandle) -> Result<Result<BoardDump, String>, StoreError> {
    let dump = src.dump_board()?;
    dst.load_board(&dump)?;
    let written = dst.dump_board()?;
    if let Err(m) = compare(&dump, &written) {
        return Ok(Err(format!(
            "verification failed, the copy in {} differs from the source: {m}",
            dst.location()
        )));
    }
    let again = src.dump_board()?;
    if let Err(m) = compare(&dump, &again) {
        return Ok(Err(format!(
            "the source board changed during the copy ({m}); {} holds the earlier state: \
             stop the gateways and workers of the board and copy again into an empty board",
            dst.location()
        )));
    }
    Ok(Ok(dump))
}

/// Remove a SQLite file this command created (and its WAL companions).
fn remove_sqlite_file(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal", ".init.lock"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
}

#[cfg(test)]
mod tests {
    use super::names_board;

    #[test]
    fn board_parameter_is_detected() {
        assert!(names_board("postgres://h/db?board=x"));
        assert!(names_board("postgres://h/db?sslmode=disable&board=x"));
        assert!(!names_board("postgres://h/db?sslmode=disable"));
        assert!(!names_board("postgres://h/db?boards=x"));
        assert!(!names_board("postgres://h/db"));
    }
}
