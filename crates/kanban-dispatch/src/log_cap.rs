//! The per-run cap on a worker's log: one run may write at most
//! `max_bytes` into `<logs>/<task>.log`; past that its first quarter and its
//! latest output are kept and the middle is replaced by a visible note.
//!
//! Who enforces it: the worker wrapper (`kanban __worker-exec`), which
//! already is the worker's session leader. It gives the worker a pipe as
//! stdout/stderr and copies the pipe into the log through [`CappedLog`].
//! Why there: the wrapper lives exactly as long as the worker and in its
//! session, so the cap holds at every moment (not once per dispatcher tick),
//! holds after the worker's task is done, and survives a gateway restart or a
//! one-shot `kanban dispatch` exiting: no pipe is held by the dispatcher.
//! The dispatcher only passes the cap down, in [`ENV_LOG_MAX_RUN_BYTES`].
//!
//! The file stays a plain append-only log between cuts, so `tail -f` and the
//! reference's `hermes kanban log` read it as before; a cut shrinks it.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

/// Carries the cap from the dispatcher to the wrapper (removed from the
/// worker's own environment by the wrapper). Internal, not an interface.
pub const ENV_LOG_MAX_RUN_BYTES: &str = "KANBAN_WORKER_LOG_MAX_RUN_BYTES";
/// Smallest cap honoured: head, note and tail must all fit.
pub const LOG_CAP_MIN_BYTES: u64 = 16 * 1024;
/// Room reserved for the cut note (its text is far shorter).
const NOTE_RESERVE_BYTES: u64 = 256;
/// Read size of the pump and chunk size of the in-file copy.
const CHUNK_BYTES: usize = 64 * 1024;

/// A per-run cap and its split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLogCap {
    max_bytes: u64,
}

impl RunLogCap {
    /// `None` for 0 (no cap); small values are raised to [`LOG_CAP_MIN_BYTES`].
    pub fn new(max_bytes: u64) -> Option<RunLogCap> {
        (max_bytes > 0).then(|| RunLogCap {
            max_bytes: max_bytes.max(LOG_CAP_MIN_BYTES),
        })
    }

    /// From the wrapper's environment value.
    pub fn from_env_value(v: Option<&str>) -> Option<RunLogCap> {
        RunLogCap::new(v?.trim().parse().ok()?)
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Bytes of the run's beginning that are always kept.
    pub fn head_bytes(&self) -> u64 {
        self.max_bytes / 4
    }

    /// Growth allowed after a cut before the next one: amortises the tail
    /// rewrite (each cut copies the kept tail once).
    fn slack_bytes(&self) -> u64 {
        self.max_bytes / 8
    }

    /// Latest output kept by a cut.
    fn tail_bytes(&self) -> u64 {
        self.max_bytes - self.head_bytes() - self.slack_bytes() - NOTE_RESERVE_BYTES
    }
}

/// The note standing where output was cut.
pub fn cut_note(cut_bytes: u64, cap: &RunLogCap) -> String {
    format!(
        "\n[kanban: {cut_bytes} bytes of this run's output were cut here; a run keeps its first \
         {} bytes and its latest output within worker_log_max_run_bytes = {}]\n",
        cap.head_bytes(),
        cap.max_bytes()
    )
}

/// One run's output appended to a log file, never more than the cap.
/// Writes go at offsets this writer tracks: it must be the file's only
/// writer while the run lasts (the worker writes into the pipe).
pub struct CappedLog {
    file: File,
    cap: RunLogCap,
    /// Where this run's output starts (earlier runs stay untouched).
    base: u64,
    end: u64,
    /// Length of the note currently in the file (0 before the first cut).
    note_len: u64,
    cut_total: u64,
}

impl CappedLog {
    /// Append to `file` (opened for writing, without `O_APPEND`) from its
    /// current end.
    pub fn new(file: File, cap: RunLogCap) -> io::Result<CappedLog> {
        let base = file.metadata()?.len();
        Ok(CappedLog {
            file,
            cap,
            base,
            end: base,
            note_len: 0,
            cut_total: 0,
        })
    }

    /// Bytes of output cut so far.
    pub fn cut_bytes(&self) -> u64 {
        self.cut_total
    }

    /// Length of this run's output in the file now (at most the cap).
    pub fn run_len(&self) -> u64 {
        self.end - self.base
    }

    /// The cap this log keeps.
    pub fn cap(&self) -> RunLogCap {
        self.cap
    }

    /// Bytes `[from, to)` of this run's output as the file holds them.
    pub fn read_run(&self, from: u64, to: u64) -> io::Result<Vec<u8>> {
        let to = to.min(self.run_len());
        let mut buf = vec![0u8; to.saturating_sub(from) as usize];
        self.file.read_exact_at(&mut buf, self.base + from)?;
        Ok(buf)
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let used = self.end - self.base;
            if used >= self.cap.max_bytes {
                self.cut()?;
                continue;
            }
            let n = data.len().min((self.cap.max_bytes - used) as usize);
            self.file.write_all_at(&data[..n], self.end)?;
            self.end += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Keep the head, put the note after it, move the latest
    /// `tail_bytes` right behind the note, truncate.
    fn cut(&mut self) -> io::Result<()> {
        let head_end = self.base + self.cap.head_bytes();
        let tail = self.cap.tail_bytes();
        let tail_src = self.end - tail;
        self.cut_total += tail_src - head_end - self.note_len;
        let note = cut_note(self.cut_total, &self.cap);
        debug_assert!(note.len() as u64 <= NOTE_RESERVE_BYTES);
        self.file.write_all_at(note.as_bytes(), head_end)?;
        let dest = head_end + note.len() as u64;
        // dest < tail_src: copying upwards chunk by chunk never reads
        // bytes already overwritten.
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut done = 0;
        while done < tail {
            let n = (tail - done).min(CHUNK_BYTES as u64) as usize;
            self.file.read_exact_at(&mut buf[..n], tail_src + done)?;
            self.file.write_all_at(&buf[..n], dest + done)?;
            done += n as u64;
        }
        self.end = dest + tail;
        self.file.set_len(self.end)?;
        self.note_len = note.len() as u64;
        Ok(())
    }
}

/// Copy `input` into `log` until end of input. A failing write (disk full)
/// does not stop the copy: the worker must never block on a full pipe.
pub fn pump(input: impl Read, log: &mut CappedLog) -> io::Result<()> {
    pump_with(input, |data| log.write_all(data))
}

/// [`pump`] through a writer closure (a log shared with a mirror, which
/// locks it per write).
pub fn pump_with(
    mut input: impl Read,
    mut write: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut first_error = None;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = write(&buf[..n]) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capped(dir: &std::path::Path, prior: &[u8], max: u64) -> (std::path::PathBuf, CappedLog) {
        let path = dir.join("t.log");
        std::fs::write(&path, prior).unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .open(&path)
            .unwrap();
        (
            path,
            CappedLog::new(file, RunLogCap::new(max).unwrap()).unwrap(),
        )
    }

    #[test]
    fn a_run_over_the_cap_keeps_head_note_and_latest_output() {
        let dir = tempfile::tempdir().unwrap();
        let max = 64 * 1024;
        let (path, mut log) = capped(dir.path(), b"earlier run\n", max);
        let mut written = Vec::new();
        for i in 0..20_000 {
            let line = format!("line {i:06}\n");
            written.extend_from_slice(line.as_bytes());
            log.write_all(line.as_bytes()).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let run = text
            .strip_prefix("earlier run\n")
            .expect("earlier runs untouched");
        assert!(run.len() as u64 <= max, "{} > {max}", run.len());
        let cap = RunLogCap::new(max).unwrap();
        let head = cap.head_bytes() as usize;
        assert_eq!(run.as_bytes()[..head], written[..head]);
        assert!(run.ends_with("line 019999\n"));
        let note = cut_note(log.cut_bytes(), &cap);
        let after = run[head..]
            .strip_prefix(note.as_str())
            .expect("note after the head");
        assert!(
            written.ends_with(after.as_bytes()),
            "tail is the latest output"
        );
        assert_eq!(
            head as u64 + log.cut_bytes() + after.len() as u64,
            written.len() as u64
        );
    }

    #[test]
    fn under_the_cap_nothing_changes_and_zero_means_no_cap() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut log) = capped(dir.path(), b"", 1 << 20);
        pump(&b"hello\nworld\n"[..], &mut log).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\nworld\n");
        assert_eq!(log.cut_bytes(), 0);
        assert!(RunLogCap::new(0).is_none());
        assert_eq!(RunLogCap::new(10).unwrap().max_bytes(), LOG_CAP_MIN_BYTES);
        assert_eq!(
            RunLogCap::from_env_value(Some(" 20000 "))
                .unwrap()
                .max_bytes(),
            20_000
        );
        assert!(RunLogCap::from_env_value(Some("x")).is_none());
    }

    #[test]
    fn one_huge_write_is_cut_as_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut log) = capped(dir.path(), b"", LOG_CAP_MIN_BYTES);
        let mut data = vec![b'a'; 1_000_000];
        data.extend_from_slice(b"END");
        let mut reader = &data[..];
        pump(&mut reader, &mut log).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() as u64 <= LOG_CAP_MIN_BYTES);
        assert!(bytes.ends_with(b"END"));
    }
}
