//! `kanban comment <id> <text...>`.

use anyhow::Result;

use crate::cli::CommentArgs;
use crate::context::Ctx;
use crate::error::usage;
use crate::output::profile_author;

/// Cut `body` to `max_len` characters, marker included, so the stored
/// comment says it was trimmed.
pub fn trim_comment(body: &str, max_len: usize) -> String {
    if body.chars().count() <= max_len {
        return body.to_string();
    }
    let suffix = format!("\n\n[trimmed to {max_len} chars by --max-len]");
    let keep = max_len.saturating_sub(suffix.chars().count());
    let head: String = body.chars().take(keep).collect();
    format!("{}{suffix}", head.trim_end())
}

pub fn run(args: CommentArgs, ctx: &Ctx) -> Result<i32> {
    let mut body = args.text.join(" ").trim().to_string();
    if let Some(max) = args.max_len {
        if max < 1 {
            return Err(usage("--max-len must be positive"));
        }
        body = trim_comment(&body, max as usize);
    }
    if body.is_empty() {
        return Err(usage("comment text is empty"));
    }
    let author = args.author.unwrap_or_else(profile_author);
    ctx.store()?.add_comment(&args.task_id, &author, &body)?;
    println!("Comment added to {}", args.task_id);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_with_marker() {
        assert_eq!(trim_comment("short", 10), "short");
        let t = trim_comment(&"x".repeat(100), 60);
        assert!(t.ends_with("[trimmed to 60 chars by --max-len]"));
        assert!(t.chars().count() <= 60);
    }
}
