//! Whole-process timing with per-child peak memory, and the summary statistics
//! the table reports.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One finished child process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub wall: Duration,
    /// Peak resident set size of that child alone, in KiB.
    pub max_rss_kib: i64,
}

/// Runs `cmd` to completion with stdout/stderr discarded; fails on a non-zero exit.
/// Reaps the child with `wait4` so its own rusage (not the sum of all children) is read.
pub fn run_timed(cmd: &mut Command) -> Result<Sample> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let stderr = child.stderr.take();
    // Drain stderr on a thread so a chatty child cannot block on a full pipe.
    let drain = std::thread::spawn(move || {
        let mut buf = String::new();
        if let Some(mut s) = stderr {
            use std::io::Read;
            let _ = s.read_to_string(&mut buf);
        }
        buf
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own un-reaped child; both out-pointers are valid.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    let err = drain.join().unwrap_or_default();
    if rc != pid {
        bail!(
            "wait4 failed for {cmd:?}: {}",
            std::io::Error::last_os_error()
        );
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{cmd:?} failed (wait status {status}): {}", err.trim());
    }
    Ok(Sample {
        wall,
        max_rss_kib: usage.ru_maxrss,
    })
}

/// Runs `cmd` once untimed (warm page cache), then `runs` times.
pub fn sample(make: &mut dyn FnMut() -> Command, runs: usize) -> Result<Vec<Sample>> {
    run_timed(&mut make())?;
    (0..runs).map(|_| run_timed(&mut make())).collect()
}

/// Nearest-rank percentile of already sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median and p95 wall time in milliseconds, and the largest peak RSS in MiB.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median_ms: f64,
    pub p95_ms: f64,
    pub max_rss_mib: f64,
}

pub fn summarize(samples: &[Sample]) -> Summary {
    let mut ms: Vec<f64> = samples.iter().map(|s| s.wall.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    Summary {
        median_ms: percentile(&ms, 50.0),
        p95_ms: percentile(&ms, 95.0),
        max_rss_mib: samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0,
    }
}

/// `12.3 ms` below a second, `1.23 s` above.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

impl Summary {
    /// `median 12.3 ms / p95 14.0 ms, 9 MiB` as shown in one table cell.
    pub fn cell(&self) -> String {
        format!(
            "{} (p95 {}), {:.0} MiB",
            fmt_ms(self.median_ms),
            fmt_ms(self.p95_ms),
            self.max_rss_mib
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 10.0);
        assert_eq!(percentile(&v, 95.0), 19.0);
        assert_eq!(percentile(&v, 100.0), 20.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
    }
}
