//! `kanban log <id>`: the worker log `<logs_dir>/<id>.log`, streamed; on a
//! board that keeps logs itself (shared by hosts), the board's copy.
//!
//! Without `--tail` or `--all` only the latest
//! [`LOG_VIEW_DEFAULT_TAIL_BYTES`] are shown (the reference prints the whole
//! file): a log can hold several runs of several megabytes. Whatever the
//! range, the file is copied in chunks, never read whole into memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use anyhow::Result;
use kanban_core::defaults::LOG_VIEW_DEFAULT_TAIL_BYTES;
use kanban_store::board_files::{LogRange, LogSlice};

use crate::cli::LogArgs;
use crate::context::Ctx;

/// Read size of the copy.
const CHUNK_BYTES: usize = 64 * 1024;

/// Where the shown part of a `size`-byte log starts: the last `tail`
/// bytes, moved past the first newline of that window unless the window
/// has none before its last byte (one giant line is shown raw).
pub fn tail_start(f: &mut File, size: u64, tail: u64) -> std::io::Result<u64> {
    if tail >= size {
        return Ok(0);
    }
    let start = size - tail;
    f.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut pos = start;
    while pos < size {
        let want = ((size - pos) as usize).min(CHUNK_BYTES);
        let n = f.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        if let Some(i) = buf[..n].iter().position(|b| *b == b'\n') {
            let after = pos + i as u64 + 1;
            return Ok(if after < size { after } else { start });
        }
        pos += n as u64;
    }
    Ok(start)
}

/// Lossy UTF-8 over a byte stream: sequences split across chunks are
/// carried over, invalid bytes become U+FFFD.
#[derive(Default)]
struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn push(&mut self, bytes: &[u8], out: &mut String) {
        self.pending.extend_from_slice(bytes);
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                        // An incomplete sequence at the end: wait for more.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
    }

    fn finish(&mut self, out: &mut String) {
        if !self.pending.is_empty() {
            out.push_str(&String::from_utf8_lossy(&self.pending));
            self.pending.clear();
        }
    }
}

/// Copy `[start, end)` of the log to `out` as text; returns whether the
/// text ended with a newline.
fn stream(f: &mut File, start: u64, end: u64, out: &mut dyn Write) -> std::io::Result<bool> {
    f.seek(SeekFrom::Start(start))?;
    let mut reader = f.take(end - start);
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut utf8 = Utf8Stream::default();
    let mut text = String::new();
    let mut ends_with_newline = false;
    loop {
        let n = reader.read(&mut buf)?;
        text.clear();
        if n == 0 {
            utf8.finish(&mut text);
        } else {
            utf8.push(&buf[..n], &mut text);
        }
        if !text.is_empty() {
            // Worker output may carry terminal escapes: shown visibly,
            // newlines and tabs kept (issue 9 item 2).
            out.write_all(crate::output::block(&text).as_bytes())?;
            ends_with_newline = text.ends_with('\n');
        }
        if n == 0 {
            return Ok(ends_with_newline);
        }
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
    let tail = match (args.all, args.tail) {
        (true, _) => None,
        (false, Some(t)) => Some(t),
        (false, None) => Some(LOG_VIEW_DEFAULT_TAIL_BYTES),
    };
    if let Some(slice) = kept_log(ctx, &args.task_id, tail)? {
        return print_kept(slice, args.tail.is_none());
    }
    let path = ctx.board.log_file(&args.task_id);
    let Ok(mut f) = File::open(&path) else {
        crate::error::refusal(format_args!(
            "(no log for {} — task may not have spawned yet)",
            args.task_id
        ));
        return Ok(1);
    };
    // The size now bounds the copy: a live log keeps growing meanwhile.
    let size = f.metadata()?.len();
    let start = match tail {
        Some(t) => tail_start(&mut f, size, t)?,
        None => 0,
    };
    let mut out = std::io::stdout().lock();
    let ended = stream(&mut f, start, size, &mut out)?;
    if !ended {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if start > 0 && args.tail.is_none() {
        eprintln!(
            "(showing the last {} of {size} bytes; --tail BYTES for more or less, --all for the whole log)",
            size - start
        );
    }
    Ok(0)
}

/// The board's copy of the log, on a board that keeps one (a database
/// shared by hosts, ADR 0002): the same log on every host. A board in a
/// local file is not opened for this.
fn kept_log(ctx: &Ctx, task_id: &str, tail: Option<u64>) -> Result<Option<LogSlice>> {
    if ctx.board.location().sqlite_path().is_some() {
        return Ok(None);
    }
    let store = ctx.store()?;
    if !store.keeps_worker_logs() {
        return Ok(None);
    }
    let range = match tail {
        Some(t) => LogRange::Tail(t),
        None => LogRange::Page {
            offset: 0,
            limit: u64::MAX,
        },
    };
    Ok(store.worker_log(task_id, range)?)
}

/// Print a kept window as the file copy does: a tail starts after its
/// first newline unless it has none before its last byte.
fn print_kept(slice: LogSlice, default_tail: bool) -> Result<i32> {
    let mut bytes = &slice.bytes[..];
    let mut offset = slice.offset;
    if offset > 0
        && let Some(i) = bytes.iter().position(|b| *b == b'\n')
        && i + 1 < bytes.len()
    {
        bytes = &bytes[i + 1..];
        offset += i as u64 + 1;
    }
    let mut out = std::io::stdout().lock();
    let mut text = String::new();
    let mut utf8 = Utf8Stream::default();
    utf8.push(bytes, &mut text);
    utf8.finish(&mut text);
    out.write_all(crate::output::block(&text).as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if offset > 0 && default_tail {
        eprintln!(
            "(showing the last {} of {} bytes; --tail BYTES for more or less, --all for the whole log)",
            slice.size - offset,
            slice.size
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks_survives_and_bad_bytes_are_replaced() {
        let mut s = Utf8Stream::default();
        let mut out = String::new();
        let e = "é".as_bytes();
        s.push(&[b'a', e[0]], &mut out);
        s.push(&[e[1], 0xff, b'b'], &mut out);
        s.push(&[0xe2, 0x82], &mut out);
        s.finish(&mut out);
        assert_eq!(out, "aé\u{fffd}b\u{fffd}");
    }

    #[test]
    fn the_tail_starts_after_a_newline_unless_there_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(&p, "first line\nsecond line\nthird\n").unwrap();
        let mut f = File::open(&p).unwrap();
        let size = f.metadata().unwrap().len();
        assert_eq!(tail_start(&mut f, size, 100).unwrap(), 0);
        let start = tail_start(&mut f, size, 15).unwrap();
        let mut out = Vec::new();
        stream(&mut f, start, size, &mut out).unwrap();
        assert_eq!(out, b"third\n");
        std::fs::write(&p, "x".repeat(100)).unwrap();
        let mut f = File::open(&p).unwrap();
        assert_eq!(tail_start(&mut f, 100, 10).unwrap(), 90);
    }
}
