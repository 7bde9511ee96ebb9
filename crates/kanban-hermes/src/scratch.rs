//! Which directories a Hermes board's completion may use: its attachments
//! root and every managed scratch-workspaces root of the installation. The
//! copy and removal mechanics are the store's (`kanban_store::scratch`,
//! re-exported here for the adapters); only the layout is ours.

pub use kanban_store::scratch::{ARTIFACT_REFUSAL, BoardFiles, complete_with_files};

use std::path::PathBuf;

use crate::layout::{BoardPaths, DEFAULT_BOARD, Root};

/// The board's own roots (env pins included) and, with the root, every
/// board's natural workspaces root (as the reference recognises them).
pub fn board_files(paths: &BoardPaths, root: Option<&Root>) -> BoardFiles {
    let mut roots = vec![paths.workspaces_root.clone()];
    if let Some(root) = root {
        roots.push(root.board_paths(&paths.slug).workspaces_root);
        roots.push(root.board_paths(DEFAULT_BOARD).workspaces_root);
        // Every board of the catalogue (the database's, with one): a
        // board's scratch workspaces on this host are under this root.
        let boards = crate::catalogue::for_root(root)
            .list(true)
            .unwrap_or_default();
        for b in boards {
            roots.push(root.board_paths(&b.slug).workspaces_root);
        }
    }
    roots.dedup();
    BoardFiles {
        attachments_root: paths.attachments_root.clone(),
        scratch_roots: roots,
        home: std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from),
    }
}
