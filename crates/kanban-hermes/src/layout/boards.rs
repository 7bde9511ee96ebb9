//! Board metadata (`board.json`) and board lifecycle on disk: list, create,
//! remove/archive, switch, rename, default workdir.
//!
//! `board.json` keeps the reference's keys, order and formatting (two-space
//! indented JSON, UTF-8 unescaped, trailing newline) so the Python
//! `list_boards` reads what we write and vice versa. Keys we do not know are
//! preserved on rewrite. Reading never fails: a missing or malformed file
//! yields synthesised defaults, like the reference.
//!
//! Nothing here touches a database: callers that create a board open it
//! with the store afterwards so its schema exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kanban_store::backend::{
    BoardCatalogue, RemoveAction, RemovedBoard, now_secs, workdir_problem,
};
pub use kanban_store::backend::{BoardMeta, CreatedBoard, MetaUpdate, default_display_name};
use serde::Serialize;
use serde_json::Value;

use super::{
    BOARD_JSON_FILE_NAME, DB_FILE_NAME, DEFAULT_BOARD, LayoutError, PRIVATE_FILE_MODE, Root,
    create_private_dir, require_slug,
};

/// The on-disk shape: same keys and order as the reference writes.
#[derive(Serialize)]
struct BoardFile<'a> {
    slug: &'a str,
    name: &'a str,
    description: &'a str,
    icon: &'a str,
    color: &'a str,
    default_workdir: &'a Option<String>,
    created_at: Option<i64>,
    archived: bool,
    #[serde(flatten)]
    extra: &'a BTreeMap<String, Value>,
}

fn str_field(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Metadata of a board (normalised slug). Never fails.
pub fn read_board_metadata(root: &Root, slug: &str) -> BoardMeta {
    let db = root.board_paths(slug).db;
    let mut meta = BoardMeta::defaults(slug, db.to_string_lossy());
    let path = root.board_dir(slug).join(BOARD_JSON_FILE_NAME);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return meta;
    };
    let Ok(Value::Object(mut raw)) = serde_json::from_str::<Value>(&text) else {
        return meta;
    };
    // The directory is the identity: a file claiming another slug is ignored
    // on that point; `db_path` is always recomputed.
    raw.remove("slug");
    raw.remove("db_path");
    if let Some(v) = str_field(raw.remove("name").as_ref()) {
        meta.name = v;
    }
    meta.description = str_field(raw.remove("description").as_ref()).unwrap_or_default();
    meta.icon = str_field(raw.remove("icon").as_ref()).unwrap_or_default();
    meta.color = str_field(raw.remove("color").as_ref()).unwrap_or_default();
    meta.default_workdir =
        str_field(raw.remove("default_workdir").as_ref()).filter(|s| !s.is_empty());
    meta.created_at = match raw.remove("created_at") {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    };
    meta.archived = match raw.remove("archived") {
        Some(Value::Bool(b)) => b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    };
    meta.extra = raw.into_iter().collect();
    meta
}

/// Create or update `board.json` (creating the board directory, 0700).
/// Fields not in `update` are preserved; `created_at` is set on first write.
pub fn write_board_metadata(
    root: &Root,
    slug: &str,
    update: &MetaUpdate,
) -> Result<BoardMeta, LayoutError> {
    let mut meta = read_board_metadata(root, slug);
    update.apply(&mut meta);
    let dir = root.board_dir(slug);
    create_private_dir(&dir)?;
    let file = BoardFile {
        slug: &meta.slug,
        name: &meta.name,
        description: &meta.description,
        icon: &meta.icon,
        color: &meta.color,
        default_workdir: &meta.default_workdir,
        created_at: meta.created_at,
        archived: meta.archived,
        extra: &meta.extra,
    };
    let mut text = serde_json::to_string_pretty(&file)
        .map_err(|e| LayoutError::io("cannot encode board.json", e.into()))?;
    text.push('\n');
    write_atomic(&dir.join(BOARD_JSON_FILE_NAME), text.as_bytes())?;
    Ok(meta)
}

/// Write via a temporary sibling and rename, so a concurrent reader never
/// sees a half-written file. The file is private (0600) whatever the umask:
/// board metadata and pointers live under the operator's root (SPEC §4).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let ctx = || format!("cannot write {}", path.display());
    write_private(&tmp, bytes).map_err(|e| LayoutError::io(ctx(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        LayoutError::io(ctx(), e)
    })
}

/// Create or replace `path` with mode 0600 and write `bytes` to it. A file
/// left over with another mode (a crashed earlier write) is made private
/// before anything is written into it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(PRIVATE_FILE_MODE);
        let mut f = o.open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
        f.write_all(bytes)
    }
    #[cfg(not(unix))]
    o.open(path)?.write_all(bytes)
}

/// Every board on disk: `default` first (always), then each directory of
/// `kanban/boards/` holding a `kanban.db` or `board.json`, sorted by slug.
/// Directories that are not valid slugs (`_archived`, junk) are skipped;
/// boards whose metadata says `archived` only with `include_archived`.
pub fn list_boards(root: &Root, include_archived: bool) -> Vec<BoardMeta> {
    let mut out = vec![read_board_metadata(root, DEFAULT_BOARD)];
    let Ok(rd) = std::fs::read_dir(root.boards_root()) else {
        return out;
    };
    let mut names: Vec<String> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    for name in names {
        // Only directories that are already canonical slugs: a mixed-case
        // directory would not be found again by its normalised slug.
        if !matches!(require_slug(&name), Ok(ref s) if *s == name) || name == DEFAULT_BOARD {
            continue;
        }
        let d = root.board_dir(&name);
        if !(d.join(DB_FILE_NAME).exists() || d.join(BOARD_JSON_FILE_NAME).exists()) {
            continue;
        }
        let meta = read_board_metadata(root, &name);
        if meta.archived && !include_archived {
            continue;
        }
        out.push(meta);
    }
    out
}

/// Create a board's directory and metadata; idempotent (an existing board
/// gets the given fields updated). The caller then opens the DB with
/// `create: true` so the schema exists and the board is listed.
pub fn create_board(
    root: &Root,
    slug: &str,
    update: &MetaUpdate,
) -> Result<CreatedBoard, LayoutError> {
    let slug = require_slug(slug)?;
    if let Some(wd) = update.workdir_to_set() {
        check_workdir(wd)?;
    }
    let already_existed = slug != DEFAULT_BOARD && root.board_exists(&slug);
    let meta = write_board_metadata(root, &slug, update)?;
    Ok(CreatedBoard {
        meta,
        already_existed,
        restored: false,
    })
}

/// Archive a board to `boards/_archived/<slug>-<ts>[-n]/` (`archive`) or
/// delete its directory. `default` is refused. Clears the current pointer
/// when it names the removed board.
pub fn remove_board(root: &Root, slug: &str, archive: bool) -> Result<RemovedBoard, LayoutError> {
    remove_board_at(root, slug, archive, now_secs())
}

pub(crate) fn remove_board_at(
    root: &Root,
    slug: &str,
    archive: bool,
    now: i64,
) -> Result<RemovedBoard, LayoutError> {
    let slug = require_slug(slug)?;
    if slug == DEFAULT_BOARD {
        return Err(LayoutError::DefaultNotRemovable);
    }
    let dir = root.board_dir(&slug);
    if !dir.is_dir() {
        return Err(LayoutError::BoardNotFound(slug));
    }
    if root.pointer_slug().as_deref() == Some(slug.as_str()) {
        clear_current_board(root)?;
    }
    if !archive {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| LayoutError::io(format!("cannot delete {}", dir.display()), e))?;
        return Ok(RemovedBoard {
            slug,
            action: RemoveAction::Deleted,
            new_path: None,
        });
    }
    let archive_root = root.archived_root();
    create_private_dir(&archive_root)?;
    let mut target = archive_root.join(format!("{slug}-{now}"));
    let mut n = 1;
    while target.exists() {
        target = archive_root.join(format!("{slug}-{now}-{n}"));
        n += 1;
    }
    std::fs::rename(&dir, &target)
        .map_err(|e| LayoutError::io(format!("cannot archive {}", dir.display()), e))?;
    Ok(RemovedBoard {
        slug,
        action: RemoveAction::Archived,
        new_path: Some(target),
    })
}

/// `catalogue::set_current_board`, asking `catalogue` whether the board exists.
pub fn set_current_board_in(
    root: &Root,
    slug: &str,
    catalogue: &dyn BoardCatalogue,
) -> Result<PathBuf, LayoutError> {
    let slug = require_slug(slug)?;
    if slug != DEFAULT_BOARD && !catalogue.contains(&slug)? {
        return Err(LayoutError::BoardNotFound(slug));
    }
    create_private_dir(&root.kanban_dir())?;
    let path = root.current_pointer();
    write_atomic(&path, format!("{slug}\n").as_bytes())?;
    Ok(path)
}

/// Remove the pointer so the current board reverts to `default`.
pub fn clear_current_board(root: &Root) -> Result<(), LayoutError> {
    match std::fs::remove_file(root.current_pointer()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LayoutError::io(
            "cannot remove the current-board pointer",
            e,
        )),
        _ => Ok(()),
    }
}

fn existing_board(root: &Root, slug: &str) -> Result<String, LayoutError> {
    let slug = require_slug(slug)?;
    if !root.board_exists(&slug) {
        return Err(LayoutError::BoardNotFound(slug));
    }
    Ok(slug)
}

/// Change a board's display name (the slug is immutable).
pub fn rename_board(root: &Root, slug: &str, name: &str) -> Result<BoardMeta, LayoutError> {
    let slug = existing_board(root, slug)?;
    write_board_metadata(
        root,
        &slug,
        &MetaUpdate {
            name: Some(name.into()),
            ..Default::default()
        },
    )
}

/// Set (absolute path to an existing directory) or clear (`None`/blank)
/// a board's default workdir.
pub fn set_default_workdir(
    root: &Root,
    slug: &str,
    path: Option<&str>,
) -> Result<BoardMeta, LayoutError> {
    let slug = existing_board(root, slug)?;
    let path = path.map(str::trim).filter(|p| !p.is_empty());
    if let Some(p) = path {
        check_workdir(p)?;
    }
    let update = MetaUpdate {
        default_workdir: Some(path.map(str::to_string)),
        ..Default::default()
    };
    write_board_metadata(root, &slug, &update)
}

fn check_workdir(path: &str) -> Result<(), LayoutError> {
    match workdir_problem(path) {
        Some(reason) => Err(LayoutError::BadWorkdir {
            path: path.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}
