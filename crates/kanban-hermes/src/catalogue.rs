//! The board catalogue of a Hermes root. Without a database, boards are
//! directories under `<root>/kanban/boards/` (plus the legacy default
//! board), each with its own database file and `board.json`: the layout
//! rules are `crate::layout`'s, and [`HermesCatalogue`] answers the
//! backend-neutral [`BoardCatalogue`] questions with them. With a database
//! configured, the database keeps the catalogue (every host sees the same
//! boards) and [`for_root`] hands out the backend's catalogue instead.
//! Every caller gets its catalogue from [`for_root`].

use kanban_store::backend::{
    BoardCatalogue, BoardHandle, BoardLocation, BoardMeta, CatalogueEntry, CatalogueError,
    CreatedBoard, DEFAULT_BOARD_SLUG, MetaUpdate, OpenRequest, RemovedBoard, check_update,
    open_board, postgres_catalogue, require_board_slug,
};

use kanban_store::{BackendError, StoreError};

use crate::layout::{
    LayoutError, Root, create_board, list_boards, read_board_metadata, remove_board, require_slug,
    write_board_metadata,
};

/// The catalogue of `root`: its directories without a database, the
/// database's catalogue with one. Never fails here: a catalogue that
/// cannot be had (a build without the backend) fails every question.
pub fn for_root(root: &Root) -> Box<dyn BoardCatalogue> {
    let Some(database) = root.database() else {
        return Box::new(HermesCatalogue::new(root.clone()));
    };
    // The catalogue shares the database's pool with the boards: it sizes
    // it when it comes first.
    match postgres_catalogue(database, &crate::config::open_request(false)) {
        Ok(catalogue) => catalogue,
        Err(e) => Box::new(Unavailable(e.to_string())),
    }
}

/// Remove (archive or delete) a board through `catalogue`, and forget it
/// as this root's current board when the pointer names it.
pub fn remove_board_of(
    root: &Root,
    catalogue: &dyn BoardCatalogue,
    slug: &str,
    archive: bool,
) -> Result<RemovedBoard, CatalogueError> {
    let removed = catalogue.remove(slug, archive)?;
    if root.pointer_slug().as_deref() == Some(removed.slug.as_str()) {
        crate::layout::clear_current_board(root)?;
    }
    Ok(removed)
}

/// The board's default workdir, as its catalogue records it.
pub fn default_workdir(
    catalogue: &dyn BoardCatalogue,
    slug: &str,
) -> Result<Option<String>, CatalogueError> {
    Ok(catalogue.metadata(slug)?.default_workdir)
}

/// The boards of one Hermes root on SQLite.
#[derive(Debug, Clone)]
pub struct HermesCatalogue {
    root: Root,
}

impl HermesCatalogue {
    pub fn new(root: Root) -> HermesCatalogue {
        HermesCatalogue { root }
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    fn existing(&self, slug: &str) -> Result<String, CatalogueError> {
        let slug = require_slug(slug)?;
        if !self.root.board_exists(&slug) {
            return Err(CatalogueError::NotFound { slug });
        }
        Ok(slug)
    }
}

impl From<LayoutError> for CatalogueError {
    fn from(e: LayoutError) -> CatalogueError {
        match e {
            LayoutError::Io { context, source } => CatalogueError::Io { context, source },
            LayoutError::BoardNotFound(slug) => CatalogueError::NotFound { slug },
            LayoutError::Catalogue(e) => e,
            other => CatalogueError::Refused {
                usage: other.exit_code() == 2,
                message: other.to_string(),
            },
        }
    }
}

impl BoardCatalogue for HermesCatalogue {
    fn boards(&self, include_archived: bool) -> Vec<CatalogueEntry> {
        list_boards(&self.root, include_archived)
            .into_iter()
            .map(|meta| CatalogueEntry {
                location: self.root.board_paths(&meta.slug).location(),
                archived: meta.archived,
                slug: meta.slug,
            })
            .collect()
    }

    fn list(&self, include_archived: bool) -> Result<Vec<BoardMeta>, CatalogueError> {
        Ok(list_boards(&self.root, include_archived))
    }

    fn contains(&self, slug: &str) -> Result<bool, CatalogueError> {
        let slug = require_slug(slug)?;
        Ok(self.root.board_exists(&slug))
    }

    fn location(&self, slug: &str) -> Result<BoardLocation, CatalogueError> {
        Ok(self.root.board_paths(&require_slug(slug)?).location())
    }

    fn metadata(&self, slug: &str) -> Result<BoardMeta, CatalogueError> {
        Ok(read_board_metadata(&self.root, &require_slug(slug)?))
    }

    fn write_metadata(
        &self,
        slug: &str,
        update: &MetaUpdate,
    ) -> Result<CreatedBoard, CatalogueError> {
        Ok(create_board(&self.root, slug, update)?)
    }

    fn update_metadata(
        &self,
        slug: &str,
        update: &MetaUpdate,
    ) -> Result<BoardMeta, CatalogueError> {
        let slug = self.existing(slug)?;
        check_update(update)?;
        Ok(write_board_metadata(&self.root, &slug, update)?)
    }

    /// A new board gets default metadata (`board.json`) first; then the
    /// board's directories and database are created, as the reference's
    /// `create_board` does, so the board is complete and listed by both.
    fn create(&self, slug: &str, req: &OpenRequest) -> Result<BoardHandle, CatalogueError> {
        let slug = require_slug(slug)?;
        if !self.root.board_exists(&slug) {
            create_board(&self.root, &slug, &MetaUpdate::default())?;
        }
        let paths = self.root.board_paths(&slug);
        paths.ensure_dirs()?;
        let req = OpenRequest {
            create: true,
            ..req.clone()
        };
        Ok(open_board(&paths.location(), &req)?)
    }

    fn remove(&self, slug: &str, archive: bool) -> Result<RemovedBoard, CatalogueError> {
        Ok(remove_board(&self.root, slug, archive)?)
    }
}

/// The catalogue of a root whose database this program cannot use: every
/// question fails with why, and it lists no board.
#[derive(Debug)]
struct Unavailable(String);

impl Unavailable {
    fn fail<T>(&self, slug: &str) -> Result<T, CatalogueError> {
        require_board_slug(slug)?;
        Err(CatalogueError::Store(StoreError::Backend(
            BackendError::msg(self.0.clone()),
        )))
    }
}

impl BoardCatalogue for Unavailable {
    fn boards(&self, _include_archived: bool) -> Vec<CatalogueEntry> {
        Vec::new()
    }
    fn list(&self, _include_archived: bool) -> Result<Vec<BoardMeta>, CatalogueError> {
        self.fail(DEFAULT_BOARD_SLUG)
    }
    fn contains(&self, slug: &str) -> Result<bool, CatalogueError> {
        self.fail(slug)
    }
    fn location(&self, slug: &str) -> Result<BoardLocation, CatalogueError> {
        self.fail(slug)
    }
    fn metadata(&self, slug: &str) -> Result<BoardMeta, CatalogueError> {
        self.fail(slug)
    }
    fn write_metadata(&self, slug: &str, _: &MetaUpdate) -> Result<CreatedBoard, CatalogueError> {
        self.fail(slug)
    }
    fn update_metadata(&self, slug: &str, _: &MetaUpdate) -> Result<BoardMeta, CatalogueError> {
        self.fail(slug)
    }
    fn create(&self, slug: &str, _: &OpenRequest) -> Result<BoardHandle, CatalogueError> {
        self.fail(slug)
    }
    fn remove(&self, slug: &str, _: bool) -> Result<RemovedBoard, CatalogueError> {
        self.fail(slug)
    }
}

/// Board questions of a root answered by its catalogue ([`for_root`]).
impl Root {
    /// Whether the root's board catalogue has the (normalised) board:
    /// `default` always; without a database, its directory here.
    pub fn has_board(&self, slug: &str) -> Result<bool, LayoutError> {
        self.has_board_in(slug, &*for_root(self))
    }
    /// The board the pointer file names, if it is valid and still exists.
    pub fn pointer_board(&self) -> Option<String> {
        let slug = self.pointer_slug()?;
        self.has_board(&slug).ok()?.then_some(slug)
    }
    /// The current board as `boards list/show` report it (reference
    /// `get_current_board`): `HERMES_KANBAN_BOARD` if valid and existing ›
    /// the pointer file if valid and existing › `default`. Never fails.
    pub fn current_board(&self, env: &dyn crate::layout::Env) -> String {
        self.current_board_in(env, &*for_root(self))
    }
    /// The board a task verb operates on, with its paths:
    /// explicit `--board` › `HERMES_KANBAN_BOARD` › `HERMES_KANBAN_DB` pin ›
    /// `kanban/current` › `default`.
    ///
    /// An explicit board must be a valid slug and, unless `default`, exist;
    /// so must `HERMES_KANBAN_BOARD` (the reference silently falls back to
    /// default, which puts work on the wrong board; see
    /// [`Root::env_board_value`] to name the variable in the message).
    /// A bad pointer file
    /// silently falls through, as in the reference: a hand-edited file must
    /// never stop the dispatcher.
    /// Path pins apply to every non-explicit resolution; an explicit board
    /// ignores them unless the caller is a fenced worker
    /// (`HERMES_KANBAN_TASK` set), which stays pinned to its own board file.
    pub fn resolve_board(
        &self,
        explicit: Option<&str>,
        env: &dyn crate::layout::Env,
    ) -> Result<crate::layout::BoardPaths, LayoutError> {
        self.resolve_board_in(explicit, env, &*for_root(self))
    }
}

/// Persist `slug` as the current board (`kanban/current`). The board must
/// exist, so a typo is an error instead of a pointer to nothing.
pub fn set_current_board(root: &Root, slug: &str) -> Result<std::path::PathBuf, LayoutError> {
    crate::layout::set_current_board_in(root, slug, &*for_root(root))
}

#[cfg(test)]
mod tests {
    use kanban_store::backend::RemoveAction;

    use super::*;

    #[test]
    fn boards_are_created_located_listed_and_archived() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let cat = HermesCatalogue::new(root.clone());
        assert!(cat.exists("default") && !cat.exists("proj"));
        let refused = cat.locate("proj").unwrap_err();
        assert_eq!(refused.exit_code(), 1);
        assert!(refused.to_string().contains("does not exist"), "{refused}");
        assert_eq!(cat.locate("Bad Slug!").unwrap_err().exit_code(), 2);

        let board = cat.create("proj", &OpenRequest::existing()).unwrap();
        let db = root.board_dir("proj").join("kanban.db");
        assert_eq!(board.location(), &BoardLocation::sqlite(&db));
        assert!(db.exists() && root.board_dir("proj").join("board.json").exists());
        assert_eq!(cat.locate("proj").unwrap(), BoardLocation::sqlite(&db));
        // Idempotent: the existing board is opened as it is.
        cat.create("proj", &OpenRequest::existing()).unwrap();
        let slugs: Vec<_> = cat.boards(false).into_iter().map(|e| e.slug).collect();
        assert_eq!(slugs, ["default", "proj"]);

        let removed = cat.remove("proj", true).unwrap();
        assert_eq!(removed.action, RemoveAction::Archived);
        assert!(!cat.exists("proj"));
        assert_eq!(cat.remove("default", true).unwrap_err().exit_code(), 1);
    }

    #[test]
    fn the_default_board_keeps_its_legacy_file() {
        let dir = tempfile::tempdir().unwrap();
        let cat = HermesCatalogue::new(Root::at(dir.path()));
        let board = cat.create("default", &OpenRequest::existing()).unwrap();
        assert_eq!(
            board.location(),
            &BoardLocation::sqlite(dir.path().join("kanban.db"))
        );
        assert!(dir.path().join("kanban/workspaces").is_dir());
    }

    #[test]
    fn metadata_goes_through_the_catalogue_with_the_layout_messages() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::at(dir.path());
        let cat = for_root(&root);
        let update = MetaUpdate {
            name: Some("Project X".into()),
            ..MetaUpdate::default()
        };
        let created = cat.write_metadata("proj", &update).unwrap();
        assert!(!created.already_existed && !created.restored);
        assert!(cat.write_metadata("proj", &update).unwrap().already_existed);
        assert_eq!(cat.metadata("proj").unwrap().name, "Project X");
        assert_eq!(cat.rename("proj", "Y").unwrap().name, "Y");
        assert_eq!(cat.list(false).unwrap().len(), 2);
        // Unknown board first, then the workdir; messages as the layout's.
        let unknown = cat.set_default_workdir("nope", Some("rel")).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            LayoutError::BoardNotFound("nope".into()).to_string()
        );
        let bad = cat.set_default_workdir("proj", Some("rel")).unwrap_err();
        assert_eq!(bad.exit_code(), 2);
        assert!(bad.to_string().contains("is relative"), "{bad}");
    }

    #[test]
    fn board_resolution_asks_the_catalogue_it_is_given() {
        let (here, there) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (root, elsewhere) = (Root::at(here.path()), Root::at(there.path()));
        for_root(&elsewhere)
            .write_metadata("remote", &MetaUpdate::default())
            .unwrap();
        let remote = HermesCatalogue::new(elsewhere);
        let env = crate::layout::MapEnv::default();
        assert!(root.resolve_board(Some("remote"), &env).is_err());
        let paths = root
            .resolve_board_in(Some("remote"), &env, &remote)
            .unwrap();
        assert_eq!(paths.slug, "remote");
        crate::layout::set_current_board_in(&root, "remote", &remote).unwrap();
        assert_eq!(root.current_board_in(&env, &remote), "remote");
        // This root's own catalogue has no such board: the pointer is ignored.
        assert_eq!(root.current_board(&env), "default");
    }
}
