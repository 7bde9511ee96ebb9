//! Where attachment blobs live on a Hermes board: one directory per task,
//! `<attachments_root>/<task_id>/` (`BoardPaths::task_attachments_dir`),
//! named with the reference's collision scheme so both implementations lay
//! out a task's directory the same way. Name validation is the store's
//! ([`safe_attachment_name`], re-exported for the adapters that write blobs).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use kanban_core::Attachment;
use kanban_core::defaults::ATTACHMENT_MAX_BYTES;
use kanban_store::{NewAttachment, Store, StoreError};

pub use kanban_store::attachments::safe_attachment_name;

/// Attempts at an exclusive create when a racing writer takes a free name.
const CREATE_ATTEMPTS: usize = 8;
/// Mode of a stored blob: private to the operator.
const BLOB_MODE: u32 = 0o600;

/// The refusal of a blob over [`ATTACHMENT_MAX_BYTES`] (the same text on
/// every surface: REST, CLI, MCP).
pub fn too_large_message() -> String {
    format!(
        "attachment exceeds {} MB limit",
        ATTACHMENT_MAX_BYTES / (1024 * 1024)
    )
}

/// A blob being written; the file is removed on drop unless [`kept`](Self::keep).
#[derive(Debug)]
pub struct PendingBlob {
    path: PathBuf,
    kept: bool,
}

impl PendingBlob {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored file name (collision counter included).
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The blob is recorded: keep the file.
    pub fn keep(mut self) -> PathBuf {
        self.kept = true;
        std::mem::take(&mut self.path)
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Create `dir` (private) and a new file named `name` in it, or `name (1)`,
/// ... when taken: created exclusively (never clobbers, never follows a
/// planted link), mode 0600. `name` must already be a safe name.
pub fn create_blob(dir: &Path, name: &str) -> std::io::Result<(PendingBlob, File)> {
    kanban_store::private_fs::create_private_dir(dir)?;
    for _ in 0..CREATE_ATTEMPTS {
        let path = collision_free_path(dir, name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, BLOB_MODE);
        match opts.open(&path) {
            Ok(f) => return Ok((PendingBlob { path, kept: false }, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "could not find a free file name; retry",
    ))
}

/// An attachment given as bytes in memory (CLI file, MCP base64 or URL).
#[derive(Debug, Clone, Copy)]
pub struct BlobUpload<'a> {
    pub task_id: &'a str,
    /// The name asked for; refused unless [`safe_attachment_name`] accepts it.
    pub filename: &'a str,
    pub data: &'a [u8],
    pub content_type: Option<&'a str>,
    pub uploaded_by: Option<&'a str>,
}

/// The one write path of in-memory attachments: check the size cap, the
/// name and the task, write the blob under
/// `<attachments_root>/<task_id>/` (collision-free), then record the row
/// and its `attached` event (a board shared by hosts copies the blob in
/// the same transaction). Any refusal leaves nothing behind: no file, no
/// directory for an unknown task, no row.
pub fn store_attachment_bytes(
    store: &dyn Store,
    attachments_root: &Path,
    up: &BlobUpload<'_>,
) -> Result<Attachment, StoreError> {
    if up.data.len() as u64 > ATTACHMENT_MAX_BYTES {
        return Err(StoreError::invalid(too_large_message()));
    }
    let name = safe_attachment_name(up.filename)?;
    if store.get_task(up.task_id)?.is_none() {
        return Err(StoreError::TaskNotFound(up.task_id.to_string()));
    }
    let dir = attachments_root.join(up.task_id);
    let io_err = |e: std::io::Error| StoreError::io("failed to store attachment", e);
    let (blob, mut file) = create_blob(&dir, &name).map_err(io_err)?;
    file.write_all(up.data).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    drop(file);
    let req = NewAttachment {
        task_id: up.task_id.to_string(),
        filename: blob.file_name(),
        stored_path: blob.path().display().to_string(),
        content_type: up.content_type.map(str::to_string),
        size: up.data.len() as i64,
        uploaded_by: up.uploaded_by.map(str::to_string),
    };
    let att = store.add_attachment(&req)?;
    blob.keep();
    Ok(att)
}

/// Delete attachment `id`: the row (+ `attachment_removed` event), then
/// the blob when it lies under `attachments_root` (a tampered
/// `stored_path` cannot make us delete other files). `None` when there is
/// no such attachment.
pub fn remove_attachment(
    store: &dyn Store,
    attachments_root: &Path,
    id: i64,
) -> Result<Option<Attachment>, StoreError> {
    let Some(att) = store.remove_attachment(id)? else {
        return Ok(None);
    };
    if let Some(file) = resolved_under(attachments_root, Path::new(&att.stored_path)) {
        let _ = std::fs::remove_file(file);
    }
    Ok(Some(att))
}

/// A path in `dir` for `name` that does not exist yet: `a.pdf`, then
/// `a (1).pdf`, `a (2).pdf`, ... (the reference's scheme, so both
/// implementations lay out a task's directory the same way).
pub fn collision_free_path(dir: &Path, name: &str) -> PathBuf {
    let (stem, ext) = match name.split_once('.') {
        Some((s, e)) => (s, Some(e)),
        None => (name, None),
    };
    let mut candidate = dir.join(name);
    let mut n = 1;
    while candidate.exists() {
        let file = match ext {
            Some(e) => format!("{stem} ({n}).{e}"),
            None => format!("{stem} ({n})"),
        };
        candidate = dir.join(file);
        n += 1;
    }
    candidate
}

/// `path` resolves (symlinks followed) to a file strictly inside `root`:
/// a tampered `stored_path` must not make the server read other files.
pub fn resolved_under(root: &Path, path: &Path) -> Option<PathBuf> {
    let root = root.canonicalize().ok()?;
    let file = path.canonicalize().ok()?;
    (file.starts_with(&root) && file != root && file.is_file()).then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_get_a_counter_and_escapes_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let first = collision_free_path(dir.path(), "a.tar.gz");
        assert_eq!(first, dir.path().join("a.tar.gz"));
        std::fs::write(&first, b"x").unwrap();
        let second = collision_free_path(dir.path(), "a.tar.gz");
        assert_eq!(second, dir.path().join("a (1).tar.gz"));
        std::fs::write(&second, b"x").unwrap();
        assert_eq!(
            collision_free_path(dir.path(), "a.tar.gz"),
            dir.path().join("a (2).tar.gz")
        );
        assert!(resolved_under(dir.path(), &first).is_some());
        let outside = tempfile::NamedTempFile::new().unwrap();
        assert!(resolved_under(dir.path(), outside.path()).is_none());
        assert!(resolved_under(dir.path(), &dir.path().join("../x")).is_none());
    }
}
