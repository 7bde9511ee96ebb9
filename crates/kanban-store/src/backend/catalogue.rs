//! The boards of one installation: which exist, where each lives, their
//! display metadata, and creating and removing them. On SQLite the
//! catalogue is the Hermes directory layout (`kanban-hermes`); a server
//! backend keeps it in its database, so every host sees the same boards.
//! What a board *is* (its tasks) is the store's business.
//!
//! Every method takes the slug as the caller got it (trimmed and
//! lower-cased here; a bad one is a usage refusal).

use std::path::PathBuf;

use kanban_core::validate::normalize_board_slug;
use serde::{Serialize, Serializer};
use thiserror::Error;

use super::board_meta::{BoardMeta, CreatedBoard, MetaUpdate, workdir_problem, workdir_refusal};
use super::{BoardHandle, BoardLocation, OpenRequest, open_board};
use crate::StoreError;

/// The board that always exists and cannot be removed.
pub const DEFAULT_BOARD_SLUG: &str = "default";

/// Exit code of a refusal caused by the caller's input (bad slug).
const USAGE_EXIT_CODE: i32 = 2;
/// Exit code of every other refusal or failure.
const FAILURE_EXIT_CODE: i32 = 1;

/// Why a catalogue operation did nothing.
#[derive(Debug, Error)]
pub enum CatalogueError {
    /// The request names no usable board (bad or missing slug, unknown
    /// board, the default board cannot be removed, ...). `usage` marks a
    /// mistake in the caller's input.
    #[error("{message}")]
    Refused { message: String, usage: bool },
    /// No such board (or it is archived).
    #[error("{}", board_not_found_message(.slug))]
    NotFound { slug: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Opening or creating the board's storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The one wording of "no such board", whichever catalogue says it.
pub fn board_not_found_message(slug: &str) -> String {
    format!("board '{slug}' does not exist. Create it with `kanban boards create {slug}`.")
}

/// The refusal to remove the default board.
pub const DEFAULT_NOT_REMOVABLE: &str = "the 'default' board cannot be removed";

/// A valid, normalised slug; blank or bad input is a usage refusal.
pub fn require_board_slug(raw: &str) -> Result<String, CatalogueError> {
    match normalize_board_slug(raw) {
        Ok(Some(slug)) => Ok(slug),
        Ok(None) => Err(CatalogueError::usage("board slug is required")),
        Err(e) => Err(CatalogueError::usage(e.to_string())),
    }
}

impl CatalogueError {
    /// A mistake in the caller's input (exit code 2, HTTP 400).
    pub fn usage(message: impl Into<String>) -> CatalogueError {
        CatalogueError::Refused {
            message: message.into(),
            usage: true,
        }
    }

    /// A refusal that is not an input mistake (exit code 1).
    pub fn refused(message: impl Into<String>) -> CatalogueError {
        CatalogueError::Refused {
            message: message.into(),
            usage: false,
        }
    }

    /// An expected refusal (bad slug, unknown board, ...), as opposed to
    /// a failure of the storage underneath.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            CatalogueError::Refused { .. } | CatalogueError::NotFound { .. }
        )
    }

    /// CLI exit code: 2 for a usage mistake, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            CatalogueError::Refused { usage: true, .. } => USAGE_EXIT_CODE,
            _ => FAILURE_EXIT_CODE,
        }
    }
}

/// One board of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub slug: String,
    pub archived: bool,
    pub location: BoardLocation,
}

/// What [`BoardCatalogue::remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoveAction {
    Archived,
    Deleted,
}

/// Outcome of [`BoardCatalogue::remove`]; serialises as the reference's
/// `{"slug", "action", "new_path"}` (`new_path` empty after a delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedBoard {
    pub slug: String,
    pub action: RemoveAction,
    /// Where an archived board's files went (file-based catalogues).
    #[serde(serialize_with = "opt_path_as_str")]
    pub new_path: Option<PathBuf>,
}

fn opt_path_as_str<S: Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(
        &p.as_deref()
            .map(|p| p.to_string_lossy())
            .unwrap_or_default(),
    )
}

/// The boards of one installation.
pub trait BoardCatalogue: Send + Sync {
    /// Boards sorted by slug (the default board first when it exists);
    /// archived ones only with `include_archived`. Never fails: a board
    /// that cannot be read is still listed and fails when opened (a
    /// catalogue it cannot read lists the default board only).
    fn boards(&self, include_archived: bool) -> Vec<CatalogueEntry>;
    /// Every board's metadata, `default` first (always), then by slug;
    /// archived ones only with `include_archived`.
    fn list(&self, include_archived: bool) -> Result<Vec<BoardMeta>, CatalogueError>;
    /// Whether the board exists and is not archived (`default` always).
    fn contains(&self, slug: &str) -> Result<bool, CatalogueError>;
    /// Where the board lives or would live, whether it exists or not.
    fn location(&self, slug: &str) -> Result<BoardLocation, CatalogueError>;
    /// The board's metadata: what was written, else defaults (as the
    /// reference reads a board without `board.json`).
    fn metadata(&self, slug: &str) -> Result<BoardMeta, CatalogueError>;
    /// Create the board's catalogue entry, or update the fields `update`
    /// names when it exists (an archived one is restored where the
    /// catalogue keeps archived boards by slug). Safe to race: one entry.
    fn write_metadata(
        &self,
        slug: &str,
        update: &MetaUpdate,
    ) -> Result<CreatedBoard, CatalogueError>;
    /// Update an existing board's metadata; an unknown board is refused,
    /// then a bad default workdir (see [`check_update`]).
    fn update_metadata(&self, slug: &str, update: &MetaUpdate)
    -> Result<BoardMeta, CatalogueError>;
    /// Make the board and its storage (schema included) exist, then open
    /// it. Idempotent: an existing board is opened as it is.
    fn create(&self, slug: &str, req: &OpenRequest) -> Result<BoardHandle, CatalogueError>;
    /// Archive (recoverable) or delete a board; never the default board.
    fn remove(&self, slug: &str, archive: bool) -> Result<RemovedBoard, CatalogueError>;

    /// Whether the board exists (`default` always does); a bad slug or an
    /// unreadable catalogue answers no.
    fn exists(&self, slug: &str) -> bool {
        self.contains(slug).unwrap_or(false)
    }
    /// Where an existing board lives; refused for a bad slug or an
    /// unknown board.
    fn locate(&self, slug: &str) -> Result<BoardLocation, CatalogueError> {
        let slug = require_board_slug(slug)?;
        if !self.contains(&slug)? {
            return Err(CatalogueError::NotFound { slug });
        }
        self.location(&slug)
    }
    /// Open an existing board by slug.
    fn open(&self, slug: &str, req: &OpenRequest) -> Result<BoardHandle, CatalogueError> {
        Ok(open_board(&self.locate(slug)?, req)?)
    }
    /// Change an existing board's display name (the slug never changes;
    /// blank resets to the default name).
    fn rename(&self, slug: &str, name: &str) -> Result<BoardMeta, CatalogueError> {
        let update = MetaUpdate {
            name: Some(name.into()),
            ..MetaUpdate::default()
        };
        self.update_metadata(slug, &update)
    }
    /// Set (an absolute path to an existing directory) or clear
    /// (`None`/blank) an existing board's default workdir.
    fn set_default_workdir(
        &self,
        slug: &str,
        path: Option<&str>,
    ) -> Result<BoardMeta, CatalogueError> {
        let path = path.map(str::trim).filter(|p| !p.is_empty());
        let update = MetaUpdate {
            default_workdir: Some(path.map(str::to_string)),
            ..MetaUpdate::default()
        };
        self.update_metadata(slug, &update)
    }
}

/// Refuse (as a usage mistake) an update whose default workdir is not an
/// absolute path to an existing directory.
pub fn check_update(update: &MetaUpdate) -> Result<(), CatalogueError> {
    match update.workdir_to_set() {
        Some(wd) => match workdir_problem(wd) {
            Some(reason) => Err(CatalogueError::usage(workdir_refusal(wd, reason))),
            None => Ok(()),
        },
        None => Ok(()),
    }
}
