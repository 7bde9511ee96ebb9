//! The board catalogue of a Hermes root on SQLite: boards are directories
//! under `<root>/kanban/boards/` (plus the legacy default board), each
//! with its own database file. The layout rules are `crate::layout`'s;
//! this module only answers the backend-neutral [`BoardCatalogue`]
//! questions with them.

use kanban_store::backend::{
    BoardCatalogue, BoardHandle, BoardLocation, CatalogueEntry, CatalogueError, OpenRequest,
    RemovedBoard, open_board,
};

use crate::layout::{
    LayoutError, MetaUpdate, Root, create_board, list_boards, remove_board, require_slug,
};

/// The boards of one Hermes root.
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
}

impl From<LayoutError> for CatalogueError {
    fn from(e: LayoutError) -> CatalogueError {
        match e {
            LayoutError::Io { context, source } => CatalogueError::Io { context, source },
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

    fn exists(&self, slug: &str) -> bool {
        require_slug(slug).is_ok_and(|s| self.root.board_exists(&s))
    }

    fn locate(&self, slug: &str) -> Result<BoardLocation, CatalogueError> {
        let slug = require_slug(slug)?;
        if !self.root.board_exists(&slug) {
            return Err(LayoutError::BoardNotFound(slug).into());
        }
        Ok(self.root.board_paths(&slug).location())
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
}
