//! File modes of what the product writes (SPEC §4: board data, prompts,
//! logs and attachments are private to the operator), and the one helper
//! that creates directories with them.

use std::path::Path;

/// Mode of every file the product writes (database, metadata, blobs).
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of every directory the product creates.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// `mkdir -p` with mode 0700 on the directories it creates.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, PRIVATE_DIR_MODE);
    b.create(dir)
}
