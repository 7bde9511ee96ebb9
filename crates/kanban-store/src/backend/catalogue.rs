//! The boards of one installation: which exist, where each lives, and
//! creating and removing them. On SQLite the catalogue is the Hermes
//! directory layout (`kanban-hermes`); a server backend keeps it in its
//! database. What a board *is* (its tasks) is the store's business.

use std::path::PathBuf;

use serde::{Serialize, Serializer};
use thiserror::Error;

use super::{BoardHandle, BoardLocation, OpenRequest, open_board};
use crate::StoreError;

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

impl CatalogueError {
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
    /// that cannot be read is still listed and fails when opened.
    fn boards(&self, include_archived: bool) -> Vec<CatalogueEntry>;
    /// Whether the board exists (`default` always does).
    fn exists(&self, slug: &str) -> bool;
    /// Where an existing board lives; refused for a bad slug or an
    /// unknown board.
    fn locate(&self, slug: &str) -> Result<BoardLocation, CatalogueError>;
    /// Make the board and its storage (schema included) exist, then open
    /// it. Idempotent: an existing board is opened as it is.
    fn create(&self, slug: &str, req: &OpenRequest) -> Result<BoardHandle, CatalogueError>;
    /// Archive (recoverable) or delete a board; never the default board.
    fn remove(&self, slug: &str, archive: bool) -> Result<RemovedBoard, CatalogueError>;
    /// Open an existing board by slug.
    fn open(&self, slug: &str, req: &OpenRequest) -> Result<BoardHandle, CatalogueError> {
        Ok(open_board(&self.locate(slug)?, req)?)
    }
}
