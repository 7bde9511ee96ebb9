//! `kanban attach <id> <path>`: store a local file as an attachment of a
//! task, through the same write path as the dashboard upload and the MCP
//! tools (`kanban_hermes::attachments::store_attachment_bytes`), so the
//! size cap, the name rules and the on-disk layout are the same everywhere.

use std::io::Read;
use std::path::Path;

use anyhow::{Result, anyhow};
use clap::Args;
use kanban_core::defaults::ATTACHMENT_MAX_BYTES;
use kanban_hermes::attachments::{BlobUpload, store_attachment_bytes, too_large_message};
use kanban_hermes::layout::{ProcessEnv, expand_tilde};

use crate::context::Ctx;
use crate::output::{line, print_json, profile_author};

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Task id (t_xxxxxxxx).
    pub task_id: String,
    /// Path to the local file to attach.
    pub path: String,
    /// MIME type (default: guessed from the file name's extension).
    #[arg(long)]
    pub content_type: Option<String>,
    /// Stored file name (default: the source file's name).
    #[arg(long)]
    pub name: Option<String>,
    /// `uploaded_by` label (default: $HERMES_PROFILE or `user`).
    #[arg(long)]
    pub author: Option<String>,
    /// Print the stored attachment as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The MIME type of `name` from its extension, if it has a known one.
pub fn guess_content_type(name: &str) -> Option<String> {
    mime_guess::from_path(name).first_raw().map(str::to_string)
}

/// The bytes of `path`, refused when it is missing, not a regular file or
/// over the cap (checked before reading, and again while reading, for a
/// file that grows meanwhile).
fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|_| anyhow!("no such file: {shown}"))?;
    if meta.is_dir() {
        return Err(anyhow!("not a file: {shown} is a directory"));
    }
    if !meta.is_file() {
        return Err(anyhow!("not a regular file: {shown}"));
    }
    if meta.len() > ATTACHMENT_MAX_BYTES {
        return Err(anyhow!("{}: {shown}", too_large_message()));
    }
    let file = std::fs::File::open(path).map_err(|e| anyhow!("cannot read {shown}: {e}"))?;
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(ATTACHMENT_MAX_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| anyhow!("cannot read {shown}: {e}"))?;
    if data.len() as u64 > ATTACHMENT_MAX_BYTES {
        return Err(anyhow!("{}: {shown}", too_large_message()));
    }
    Ok(data)
}

pub fn run(args: AttachArgs, ctx: &Ctx) -> Result<i32> {
    let path = expand_tilde(&args.path, &ProcessEnv);
    let data = read_capped(&path)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let content_type = args
        .content_type
        .clone()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| guess_content_type(&name));
    let uploaded_by = args.author.clone().unwrap_or_else(profile_author);
    let up = BlobUpload {
        task_id: &args.task_id,
        filename: &name,
        data: &data,
        content_type: content_type.as_deref(),
        uploaded_by: Some(&uploaded_by),
    };
    let att = store_attachment_bytes(ctx.store()?, &ctx.board.attachments_root, &up)?;
    if args.json {
        print_json(&att);
    } else {
        println!(
            "Attached {} to {} (attachment {}, {} bytes)",
            line(&att.filename),
            att.task_id,
            att.id,
            att.size
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_come_from_the_extension() {
        assert_eq!(
            guess_content_type("a.pdf").as_deref(),
            Some("application/pdf")
        );
        assert_eq!(
            guess_content_type("notes.txt").as_deref(),
            Some("text/plain")
        );
        assert_eq!(guess_content_type("no-extension"), None);
    }
}
