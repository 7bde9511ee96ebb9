//! `kanban boards …`: list, create, remove/archive, switch, show, rename and
//! set the default workdir of boards (reference §4, §8).
//!
//! Wiring (binary side):
//! ```ignore
//! // cli.rs, in `enum Command`:
//! /// Manage boards (one board per project or workstream).
//! Boards(crate::command::boards::BoardsArgs),
//! // command/mod.rs: `mod boards;`, and *before* `Ctx::resolve` (board
//! // commands ignore `--board` and must work when the current board is
//! // broken), with `root = Root::resolve(&ProcessEnv)`:
//! Command::Boards(a) => boards::run(a.command(), &root, false),
//! ```
//! `boards migrate` is the one action that obeys `--board` (its source):
//! command/mod.rs hands the slug to `migrate::run`.
//!
//! Every handler prints its own `kanban boards <verb>: <message>` for
//! expected refusals and returns the exit code (bad slug 2, unknown board 1);
//! only unexpected I/O failures come back as `Err`.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;

use kanban_core::Status;
use kanban_hermes::catalogue::{for_root, remove_board_of};
use kanban_hermes::config::open_request;
use kanban_hermes::layout::{self, BoardMeta, Env, MetaUpdate, ProcessEnv, RemoveAction, Root};
use kanban_store::TaskQuery;
use kanban_store::backend::{BoardCatalogue, BoardLocation, CatalogueError, open_board};

use crate::output::{block, line, py_repr};

#[path = "boards_migrate.rs"]
pub(crate) mod migrate;

/// `kanban boards [<action>]`; no action lists the boards.
#[derive(Debug, Clone, Args)]
pub struct BoardsArgs {
    #[command(subcommand)]
    pub action: Option<BoardsCommand>,
}

impl BoardsArgs {
    /// The action, `list` when none was given.
    pub fn command(self) -> BoardsCommand {
        self.action
            .unwrap_or(BoardsCommand::List(ListArgs::default()))
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum BoardsCommand {
    /// List boards with their task counts (● marks the current one).
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Create a board (does nothing but update the given fields if it exists).
    #[command(visible_alias = "new")]
    Create(CreateArgs),
    /// Archive a board to boards/_archived/ (or delete it with --delete).
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Delete a board directory outright (same as `rm --delete`).
    Delete(RmArgs),
    /// Make a board the current one for later commands.
    #[command(visible_alias = "use")]
    Switch(SlugArgs),
    /// Show the current board: name, description, DB path, task counts.
    #[command(visible_alias = "current")]
    Show(JsonFlag),
    /// Change a board's display name (its slug never changes).
    Rename(RenameArgs),
    /// Set, or clear when PATH is omitted, a board's default workspace directory.
    SetDefaultWorkdir(WorkdirArgs),
    /// Copy a board, every table and id, to PostgreSQL or back to a SQLite
    /// file (a new or empty board), verified row for row.
    Migrate(migrate::MigrateArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also list boards marked archived.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Board slug: lowercase letters, digits, `-`, `_` (e.g. atm10-server).
    pub slug: String,
    /// Display name (default: the slug in Title Case).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Emoji or single character shown by the dashboard.
    #[arg(long)]
    pub icon: Option<String>,
    /// Hex colour for the dashboard, e.g. '#8b5cf6'.
    #[arg(long)]
    pub color: Option<String>,
    /// Make the new board current.
    #[arg(long)]
    pub switch: bool,
    /// Default workspace directory (absolute, existing) for tasks on this board.
    #[arg(long, value_name = "PATH")]
    pub default_workdir: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    pub slug: String,
    /// Delete the directory instead of archiving it (archives are recoverable).
    #[arg(long)]
    pub delete: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SlugArgs {
    pub slug: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct JsonFlag {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RenameArgs {
    pub slug: String,
    /// New display name.
    pub name: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct WorkdirArgs {
    pub slug: String,
    /// Absolute path of an existing directory; omit to clear.
    pub path: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// Run one `boards` action against the process environment.
pub fn run(cmd: BoardsCommand, root: &Root, json: bool) -> Result<i32> {
    run_with_env(cmd, root, json, &ProcessEnv)
}

/// As [`run`], with an explicit environment (it only decides which board
/// is current: `HERMES_KANBAN_BOARD`, then the pointer file).
pub fn run_with_env(cmd: BoardsCommand, root: &Root, json: bool, env: &dyn Env) -> Result<i32> {
    match cmd {
        BoardsCommand::List(a) => list(root, env, a.all, json || a.json),
        BoardsCommand::Create(a) => {
            let j = json || a.json;
            create(root, a, j)
        }
        BoardsCommand::Rm(a) => remove(root, &a.slug, a.delete, json || a.json),
        BoardsCommand::Delete(a) => remove(root, &a.slug, true, json || a.json),
        BoardsCommand::Switch(a) => switch(root, &a.slug, json || a.json),
        BoardsCommand::Show(a) => show(root, env, json || a.json),
        BoardsCommand::Rename(a) => rename(root, &a.slug, &a.name, json || a.json),
        BoardsCommand::SetDefaultWorkdir(a) => {
            set_workdir(root, &a.slug, a.path.as_deref(), json || a.json)
        }
        // The current board; `kanban --board <slug> boards migrate` goes
        // through `migrate::run` with the slug (see command/mod.rs).
        BoardsCommand::Migrate(mut a) => {
            a.json |= json;
            migrate::run(a, root, None, env)
        }
    }
}

/// Print a refusal the way the reference does and pick its exit code;
/// unexpected I/O (or database) failures propagate.
fn refuse(verb: &str, err: impl Into<CatalogueError>) -> Result<i32> {
    let err = err.into();
    if !err.is_refusal() {
        return Err(err.into());
    }
    eprintln!("kanban boards {verb}: {err}");
    Ok(err.exit_code())
}

/// Two-space indented JSON in field order (as the reference's
/// `json.dumps(indent=2)` keeps dict order); going through `Value` would
/// sort the keys.
fn print_ordered<T: Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn q(s: &str) -> String {
    py_repr(&Value::String(s.to_string()))
}

/// `{status: count}` of a board, archived included (as the reference
/// counts every row); empty when it has no DB yet or cannot be read
/// (listing must never fail because one board is broken).
fn board_counts(location: &BoardLocation) -> BTreeMap<String, i64> {
    let Ok(board) = open_board(location, &open_request(false)) else {
        return BTreeMap::new();
    };
    let store = board.store();
    let Ok(stats) = store.stats() else {
        return BTreeMap::new();
    };
    let mut counts: BTreeMap<String, i64> = stats
        .by_status
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    // `stats()` leaves archived tasks out; count them separately.
    let archived = TaskQuery {
        status: Some(Status::Archived),
        include_archived: true,
        ..TaskQuery::default()
    };
    if let Ok(rows) = store.list_tasks(&archived)
        && !rows.is_empty()
    {
        counts.insert(Status::Archived.as_str().to_string(), rows.len() as i64);
    }
    counts
}

fn counts_text(counts: &BTreeMap<String, i64>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `boards list --json` entry: the metadata, then the computed fields.
#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    meta: BoardMeta,
    is_current: bool,
    counts: BTreeMap<String, i64>,
    total: i64,
}

fn listed(catalogue: &dyn BoardCatalogue, meta: BoardMeta, current: &str) -> Listed {
    let counts = catalogue
        .location(&meta.slug)
        .map(|at| board_counts(&at))
        .unwrap_or_default();
    Listed {
        is_current: meta.slug == current,
        total: counts.values().sum(),
        counts,
        meta,
    }
}

fn list(root: &Root, env: &dyn Env, all: bool, json: bool) -> Result<i32> {
    let catalogue = for_root(root);
    let current = root.current_board_in(env, &*catalogue);
    let metas = match catalogue.list(all) {
        Ok(m) => m,
        Err(e) => return refuse("list", e),
    };
    let boards: Vec<Listed> = metas
        .into_iter()
        .map(|m| listed(&*catalogue, m, &current))
        .collect();
    if json {
        print_ordered(&boards)?;
        return Ok(0);
    }
    println!("{:2}  {:24}  {:28}  COUNTS", "", "SLUG", "NAME");
    for b in &boards {
        let marker = if b.is_current { "●" } else { " " };
        let mut name = line(&b.meta.name).into_owned();
        if b.meta.archived {
            name.push_str(" [archived]");
        }
        let counts = if b.counts.is_empty() {
            "(empty)".into()
        } else {
            counts_text(&b.counts)
        };
        println!("{marker:2}  {:24}  {name:28}  {counts}", b.meta.slug);
    }
    println!();
    println!("Current board: {current}");
    if boards.len() > 1 {
        println!("Switch boards with `kanban boards switch <slug>`.");
    }
    Ok(0)
}

fn create(root: &Root, a: CreateArgs, json: bool) -> Result<i32> {
    let update = MetaUpdate {
        name: a.name,
        description: a.description,
        icon: a.icon,
        color: a.color,
        archived: None,
        default_workdir: a.default_workdir.map(Some),
    };
    let catalogue = for_root(root);
    let created = match catalogue.write_metadata(&a.slug, &update) {
        Ok(c) => c,
        Err(e) => return refuse("create", e),
    };
    let meta = created.meta;
    // Create the DB now (schema included) so the board is complete and
    // listed by the reference too, as its create_board does.
    catalogue.create(&meta.slug, &open_request(true))?;
    if a.switch {
        layout::set_current_board_in(root, &meta.slug, &*catalogue)?;
    }
    if json {
        #[derive(Serialize)]
        struct CreatedJson<'a> {
            #[serde(flatten)]
            meta: &'a BoardMeta,
            created: bool,
            is_current: bool,
        }
        let created = !created.already_existed;
        print_ordered(&CreatedJson {
            meta: &meta,
            created,
            is_current: a.switch,
        })?;
        return Ok(0);
    }
    let verb = if created.restored {
        "restored from the archive"
    } else if created.already_existed {
        "already exists"
    } else {
        "created"
    };
    println!("Board {} {verb}.", q(&meta.slug));
    println!("  Display name: {}", line(&meta.name));
    println!("  DB path:      {}", meta.db_path);
    if a.switch {
        println!("  Switched to {}.", q(&meta.slug));
    } else {
        println!(
            "  Use `kanban boards switch {}` to make it current.",
            meta.slug
        );
    }
    Ok(0)
}

fn remove(root: &Root, slug: &str, delete: bool, json: bool) -> Result<i32> {
    let removed = match remove_board_of(root, &*for_root(root), slug, !delete) {
        Ok(r) => r,
        Err(e) => return refuse("rm", e),
    };
    if json {
        print_ordered(&removed)?;
        return Ok(0);
    }
    match (&removed.action, &removed.new_path) {
        (RemoveAction::Archived, Some(p)) => {
            println!("Board {} archived → {}", q(&removed.slug), p.display());
            println!("Recover by moving the directory back to <root>/kanban/boards/<slug>/.");
        }
        // A catalogue that keeps archived boards by slug (a database).
        (RemoveAction::Archived, None) => {
            println!("Board {} archived.", q(&removed.slug));
            println!("Recover it with `kanban boards create {}`.", removed.slug);
        }
        _ => println!("Board {} deleted.", q(&removed.slug)),
    }
    Ok(0)
}

fn switch(root: &Root, slug: &str, json: bool) -> Result<i32> {
    let catalogue = for_root(root);
    let slug = match layout::require_slug(slug)
        .and_then(|s| layout::set_current_board_in(root, &s, &*catalogue).map(|_| s))
    {
        Ok(s) => s,
        Err(e) => return refuse("switch", e),
    };
    if json {
        print_ordered(&serde_json::json!({ "current": slug }))?;
    } else {
        println!("Active board is now {}.", q(&slug));
    }
    Ok(0)
}

fn show(root: &Root, env: &dyn Env, json: bool) -> Result<i32> {
    let catalogue = for_root(root);
    let current = root.current_board_in(env, &*catalogue);
    let meta = match catalogue.metadata(&current) {
        Ok(m) => m,
        Err(e) => return refuse("show", e),
    };
    let b = listed(&*catalogue, meta, &current);
    if json {
        print_ordered(&b)?;
        return Ok(0);
    }
    println!("Current board: {current}");
    println!("  Display name: {}", line(&b.meta.name));
    if !b.meta.description.is_empty() {
        println!("  Description:  {}", block(&b.meta.description));
    }
    println!("  DB path:      {}", b.meta.db_path);
    let detail = if b.counts.is_empty() {
        String::new()
    } else {
        format!(" ({})", counts_text(&b.counts))
    };
    println!("  Tasks:        {} total{detail}", b.total);
    Ok(0)
}

fn rename(root: &Root, slug: &str, name: &str, json: bool) -> Result<i32> {
    let meta = match for_root(root).rename(slug, name) {
        Ok(m) => m,
        Err(e) => return refuse("rename", e),
    };
    if json {
        print_ordered(&meta)?;
    } else {
        println!("Board {} renamed to {}.", q(&meta.slug), q(&meta.name));
    }
    Ok(0)
}

fn set_workdir(root: &Root, slug: &str, path: Option<&str>, json: bool) -> Result<i32> {
    let meta = match for_root(root).set_default_workdir(slug, path) {
        Ok(m) => m,
        Err(e) => return refuse("set-default-workdir", e),
    };
    if json {
        print_ordered(&meta)?;
        return Ok(0);
    }
    match &meta.default_workdir {
        Some(wd) => println!("Board {} default workdir set to {}.", q(&meta.slug), q(wd)),
        None => println!("Board {} default workdir cleared.", q(&meta.slug)),
    }
    Ok(0)
}
