//! `kanban log <id>`: the worker log `<logs_dir>/<id>.log`.

use std::io::{Read, Seek, SeekFrom, Write};

use anyhow::Result;

use crate::cli::LogArgs;
use crate::context::Ctx;

/// The last `tail` bytes, starting after the first newline of the window
/// unless the window has none (one giant line is shown raw).
pub fn read_tail(path: &std::path::Path, tail: Option<u64>) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    let Some(n) = tail.filter(|n| *n < size) else {
        let mut all = Vec::new();
        f.read_to_end(&mut all)?;
        return Ok(all);
    };
    f.seek(SeekFrom::Start(size - n))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    match buf.iter().position(|b| *b == b'\n') {
        Some(i) if i + 1 < buf.len() => Ok(buf.split_off(i + 1)),
        _ => Ok(buf),
    }
}

pub fn run(args: LogArgs, ctx: &Ctx) -> Result<i32> {
    // Task ids name files here: refuse anything that could leave the dir.
    if args.task_id.is_empty()
        || args.task_id.contains(['/', '\\', '\0'])
        || args.task_id.starts_with('.')
    {
        return Err(crate::error::usage(format!(
            "invalid task id {:?}",
            args.task_id
        )));
    }
    let path = ctx.board.log_file(&args.task_id);
    let Ok(data) = read_tail(&path, args.tail) else {
        eprintln!(
            "(no log for {} — task may not have spawned yet)",
            args.task_id
        );
        return Ok(1);
    };
    let text = String::from_utf8_lossy(&data);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    Ok(0)
}
