//! `kanban tail <id>`: follow one task's events until Ctrl-C (or
//! `--timeout` / `--once` for scripts).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use kanban_store::EventQuery;

use crate::cli::{FollowBound, TailArgs};
use crate::context::Ctx;
use crate::error::usage;
use crate::output::{fmt_ts, line, payload_suffix};

/// Shortest poll interval accepted (as the reference clamps it).
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Default poll interval of `tail`.
const TAIL_INTERVAL_SECONDS: f64 = 1.0;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The polling schedule of a follow loop.
pub struct Follow {
    interval: Duration,
    deadline: Option<Instant>,
    once: bool,
}

impl Follow {
    pub fn new(bound: &FollowBound, default_interval: f64) -> Result<Follow> {
        let secs = bound.interval.unwrap_or(default_interval);
        if !secs.is_finite() || secs < 0.0 {
            return Err(usage(format!(
                "--interval must be a positive number (got {secs})"
            )));
        }
        let deadline = match bound.timeout {
            Some(t) if !t.is_finite() || t < 0.0 => {
                return Err(usage(format!(
                    "--timeout must be a positive number (got {t})"
                )));
            }
            Some(t) => Some(Instant::now() + Duration::from_secs_f64(t)),
            None => None,
        };
        // Ctrl-C ends the loop cleanly instead of killing mid-line.
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        }
        Ok(Follow {
            interval: Duration::from_secs_f64(secs).max(MIN_INTERVAL),
            deadline,
            once: bound.once,
        })
    }

    /// Wait for the next poll; false when the loop should end.
    pub fn wait(&self) -> bool {
        if self.once {
            return false;
        }
        let until = Instant::now() + self.interval;
        loop {
            if INTERRUPTED.load(Ordering::SeqCst) {
                println!("\n(stopped)");
                return false;
            }
            let now = Instant::now();
            if self.deadline.is_some_and(|d| now >= d) {
                return false;
            }
            if now >= until {
                return true;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }
}

pub fn run(args: TailArgs, ctx: &Ctx) -> Result<i32> {
    let follow = Follow::new(&args.follow, TAIL_INTERVAL_SECONDS)?;
    let task = crate::command::require_task(ctx, &args.task_id)?;
    let store = ctx.store()?;
    println!("Tailing events for {}. Ctrl-C to stop.", line(&task.id));
    let mut cursor = 0;
    loop {
        let events = store.events(&EventQuery {
            task_id: Some(task.id.clone()),
            after_id: Some(cursor),
            ..Default::default()
        })?;
        for e in &events {
            println!(
                "[{}] {}{}",
                fmt_ts(Some(e.created_at)),
                line(&e.kind),
                payload_suffix(&e.payload)
            );
            cursor = cursor.max(e.id);
        }
        use std::io::Write;
        std::io::stdout().flush()?;
        if !follow.wait() {
            return Ok(0);
        }
    }
}
