//! Refusing a corrupt board file: the bytes are copied to a
//! content-addressed backup next to it and the error names both, so
//! nothing is overwritten and the user can recover (SPEC §6).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::private_fs::PRIVATE_FILE_MODE;

/// Copy the corrupt file (and its `-wal`/`-shm`) to a content-addressed
/// `<db>.corrupt.<sha256[:16]>.bak` next to it, then describe the refusal.
/// Repeated failures on the same bytes reuse one backup.
pub(crate) fn corrupt_error(path: &Path, detail: &str) -> StoreError {
    match backup_corrupt(path) {
        Ok(backup) => StoreError::Corrupt {
            path: path.to_path_buf(),
            backup,
            detail: detail.to_string(),
        },
        Err(e) => StoreError::io(
            format!(
                "{}: database is corrupt ({detail}) and could not be backed up; the original was left untouched",
                path.display()
            ),
            e,
        ),
    }
}

fn backup_corrupt(path: &Path) -> std::io::Result<PathBuf> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hex::encode(hasher.finalize());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let backup = path.with_file_name(format!("{name}.corrupt.{}.bak", &digest[..16]));
    if !backup.exists() {
        std::fs::copy(path, &backup)?;
        make_private(&backup);
    }
    for suffix in ["-wal", "-shm"] {
        let side = sidecar(path, suffix);
        let side_backup = sidecar(&backup, suffix);
        if side.exists() && !side_backup.exists() {
            // Best effort, like the reference: the main copy is what matters.
            if std::fs::copy(&side, &side_backup).is_ok() {
                make_private(&side_backup);
            }
        }
    }
    Ok(backup)
}

/// `copy` keeps the source's mode, which may be the reference's 0644: a
/// backup of board data is private like the board.
fn make_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(PRIVATE_FILE_MODE));
    }
}

/// `<path><suffix>`, e.g. `kanban.db-wal` beside `kanban.db`.
pub(crate) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}
