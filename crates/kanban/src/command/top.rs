//! `kanban top`: a live terminal view of the current board (counts per
//! status, running workers, per-profile usage against its ceiling, recent
//! events, a throughput sparkline).
//!
//! The data ([`snapshot::TopSnapshot`], read from the store) is separate
//! from the drawing ([`render::render`]); the loop here reads the board
//! again when its change probe moves (and every few seconds for the clocks
//! and the gateway line), and quits on `q`, Esc or Ctrl-C. A plain
//! terminal is enough (no mouse), so it works over SSH; `--once` prints
//! one frame as text instead.

mod render;
mod snapshot;
#[cfg(test)]
mod tests;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use kanban_hermes::layout::Root;
use kanban_server::lock::{current_record, dispatcher_lock_held};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::context::Ctx;
use snapshot::{CompletionLog, Inputs, TopSnapshot};

/// Default minutes of throughput in the sparkline.
const THROUGHPUT_MINUTES: u32 = 30;
/// Longest throughput window (a day of minutes).
const THROUGHPUT_MINUTES_MAX: u32 = 1_440;
/// How often keys and the change probe are looked at.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// The board is read again at least this often, change or not (the
/// throughput window moves, the gateway may come and go).
const FULL_REFRESH: Duration = Duration::from_secs(5);
/// `--once` width when stdout is not a terminal and none is given.
const ONCE_WIDTH: u16 = 100;
/// Narrowest `--width` that still draws every box.
const MIN_WIDTH: u16 = 40;

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Print one frame as text and exit (for scripts; no terminal needed).
    #[arg(long)]
    pub once: bool,
    /// Minutes of history in the throughput sparkline.
    #[arg(long, value_name = "N", default_value_t = THROUGHPUT_MINUTES,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(THROUGHPUT_MINUTES_MAX)))]
    pub minutes: u32,
    /// With --once: width of the frame in columns (default: the terminal's,
    /// else 100).
    #[arg(long, value_name = "COLUMNS", requires = "once",
          value_parser = clap::value_parser!(u16).range(i64::from(MIN_WIDTH)..))]
    pub width: Option<u16>,
}

pub fn run(args: TopArgs, ctx: &Ctx) -> Result<i32> {
    if args.once {
        return print_once(&args, ctx);
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(crate::error::usage(
            "kanban top needs a terminal; use `kanban top --once` to print one frame",
        ));
    }
    live(&args, ctx)
}

/// The gateway as `gateway status` would put it, in a few words.
fn gateway_summary(root: &Root) -> String {
    match current_record(root) {
        Some(r) if r.dispatch => format!("pid {}, dispatching", r.pid),
        Some(r) => format!("pid {}, not dispatching", r.pid),
        None if dispatcher_lock_held(root) => "lock held (starting, or a Hermes gateway)".into(),
        None => "not running".into(),
    }
}

fn gather(ctx: &Ctx, args: &TopArgs, completions: &mut CompletionLog) -> Result<TopSnapshot> {
    let handle = ctx.board_handle()?;
    let inputs = Inputs {
        board: &ctx.board.slug,
        location: handle.location().redacted(),
        gateway: gateway_summary(&ctx.root),
        config: ctx.config(),
        now: ctx.now(),
        minutes: args.minutes,
    };
    Ok(TopSnapshot::gather(
        handle.as_dispatch(),
        &inputs,
        completions,
    )?)
}

fn print_once(args: &TopArgs, ctx: &Ctx) -> Result<i32> {
    let snap = gather(ctx, args, &mut CompletionLog::default())?;
    let width = args.width.unwrap_or_else(|| {
        ratatui::crossterm::terminal::size()
            .ok()
            .filter(|_| std::io::stdout().is_terminal())
            .map_or(ONCE_WIDTH, |(w, _)| w.max(MIN_WIDTH))
    });
    let text = render::render_text(&snap, width, render::full_height(&snap));
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(0)
}

/// Restores the terminal however the loop ends (error or not).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn quits(key: &KeyEvent) -> bool {
    key.kind == KeyEventKind::Press
        && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
            || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)))
}

fn live(args: &TopArgs, ctx: &Ctx) -> Result<i32> {
    let mut completions = CompletionLog::default();
    let mut snap = gather(ctx, args, &mut completions)?;
    let mut probe = ctx.board_handle()?.change_probe()?;
    let mut version = probe.version()?;
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let _guard = TerminalGuard;
    let mut gathered = Instant::now();
    loop {
        snap.now = ctx.now();
        terminal.draw(|f| render::render(f, &snap))?;
        if event::poll(POLL_INTERVAL)?
            && let Event::Key(key) = event::read()?
            && quits(&key)
        {
            return Ok(0);
        }
        let changed = match probe.version() {
            Ok(v) => std::mem::replace(&mut version, v) != v,
            // A failing probe: read the board, which reports the error.
            Err(_) => true,
        };
        if changed || gathered.elapsed() >= FULL_REFRESH {
            gathered = Instant::now();
            match gather(ctx, args, &mut completions) {
                Ok(s) => snap = s,
                // Keep the last frame's data and say why it is not fresh.
                Err(e) => snap.notice = Some(crate::error::message(&e)),
            }
        }
    }
}
