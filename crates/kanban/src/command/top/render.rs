//! Drawing a [`TopSnapshot`]: one function from a snapshot to a frame,
//! and the same frame as plain text for `--once`.

use chrono::{Local, TimeZone};
use ratatui::Frame;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Sparkline, Table};

use kanban_core::Status;

use super::snapshot::{EventLine, ProfileUsage, RunningWorker, TopSnapshot};
use crate::output::line;

/// Cells of a profile's usage bar.
const USAGE_BAR_CELLS: usize = 10;
/// Worker rows the running box keeps when the terminal is short.
const RUNNING_ROWS_KEPT: u16 = 5;
/// Event rows kept when many workers run.
const EVENT_ROWS_KEPT: usize = 3;
const HEADER_ROWS: u16 = 1;
const COUNTS_ROWS: u16 = 3;
const FOOTER_ROWS: u16 = 1;
/// Height of the profiles / throughput row when it has few profiles.
const MIDDLE_MIN_ROWS: u16 = 3;

const KEY_HELP: &str = "q / Esc / Ctrl-C quit";

/// Draw the whole view into `frame`.
pub fn render(frame: &mut Frame<'_>, snap: &TopSnapshot) {
    let area = frame.area();
    let middle_rows = (snap.profiles.len() as u16).max(MIDDLE_MIN_ROWS) + 2;
    // Workers get what the other boxes leave (a few recent events kept).
    let events_kept = snap.events.len().clamp(1, EVENT_ROWS_KEPT) as u16 + 2;
    let workers_room = area
        .height
        .saturating_sub(HEADER_ROWS + COUNTS_ROWS + middle_rows + events_kept + FOOTER_ROWS + 3)
        .max(RUNNING_ROWS_KEPT);
    let [header, counts, running, middle, events, footer] = Layout::vertical([
        Constraint::Length(HEADER_ROWS),
        Constraint::Length(COUNTS_ROWS),
        Constraint::Length(running_rows(snap, workers_room)),
        Constraint::Length(middle_rows),
        Constraint::Fill(1),
        Constraint::Length(FOOTER_ROWS),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header_line(snap)), header);
    frame.render_widget(counts_widget(snap), counts);
    if snap.running.is_empty() {
        let idle = Paragraph::new("no worker is running").block(running_block(snap));
        frame.render_widget(idle, running);
    } else {
        frame.render_widget(running_table(snap), running);
    }
    let [profiles, throughput] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    frame.render_widget(profiles_table(snap), profiles);
    render_throughput(frame, throughput, snap);
    frame.render_widget(events_list(snap, events.height), events);
    let footer_text = match &snap.notice {
        Some(n) => Line::from(vec![
            Span::styled(
                format!("refresh failed: {}", line(n)),
                Style::new().fg(Color::Red),
            ),
            Span::raw(format!("  ·  {KEY_HELP}")),
        ]),
        None => Line::from(Span::styled(
            KEY_HELP,
            Style::new().add_modifier(Modifier::DIM),
        )),
    };
    frame.render_widget(Paragraph::new(footer_text), footer);
}

/// The height that shows every running worker, profile and event.
pub fn full_height(snap: &TopSnapshot) -> u16 {
    let running = running_rows(snap, u16::MAX);
    let middle = (snap.profiles.len() as u16).max(MIDDLE_MIN_ROWS) + 2;
    let events = snap.events.len().max(1) as u16 + 2;
    HEADER_ROWS + COUNTS_ROWS + running + middle + events + FOOTER_ROWS
}

/// Height of the running box showing up to `most` workers (header row
/// and borders included; one line when none runs).
fn running_rows(snap: &TopSnapshot, most: u16) -> u16 {
    match snap.running.len() {
        0 => 3,
        n => u16::try_from(n)
            .unwrap_or(u16::MAX)
            .min(most)
            .saturating_add(3),
    }
}

/// One frame as text: each row of cells, trailing blanks trimmed.
pub fn render_text(snap: &TopSnapshot, width: u16, height: u16) -> String {
    // The test backend cannot fail (its error type is `Infallible`).
    let Ok(mut terminal) = Terminal::new(TestBackend::new(width, height));
    let Ok(_) = terminal.draw(|f| render(f, snap));
    buffer_text(terminal.backend().buffer())
}

/// The text of a buffer, one line per row. A wide character covers the
/// cells after it, which are skipped.
pub fn buffer_text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in buf.area.top()..buf.area.bottom() {
        let mut row = String::new();
        let mut hidden = 0usize;
        for x in buf.area.left()..buf.area.right() {
            if hidden > 0 {
                hidden -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            hidden = Span::raw(sym).width().saturating_sub(1);
            row.push_str(sym);
        }
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

fn status_style(s: Status) -> Style {
    let color = match s {
        Status::Ready => Color::Cyan,
        Status::Running => Color::Green,
        Status::Blocked => Color::Red,
        Status::Review => Color::Magenta,
        Status::Done => Color::Blue,
        Status::Scheduled | Status::Triage => Color::Yellow,
        Status::Todo | Status::Archived => Color::Gray,
    };
    Style::new().fg(color)
}

fn header_line(snap: &TopSnapshot) -> Line<'static> {
    let clock = Local
        .timestamp_opt(snap.now, 0)
        .single()
        .map(|d| d.format("%H:%M:%S").to_string())
        .unwrap_or_default();
    // The location goes last: on a narrow terminal it is what is cut.
    Line::from(vec![
        Span::styled("kanban top", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  board {}  ·  {clock}  ·  gateway: {}  ·  ",
            line(&snap.board),
            line(&snap.gateway)
        )),
        Span::styled(
            line(&snap.location).into_owned(),
            Style::new().add_modifier(Modifier::DIM),
        ),
    ])
}

fn counts_widget(snap: &TopSnapshot) -> Paragraph<'static> {
    let mut spans = Vec::new();
    for (i, (status, n)) in snap.counts.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("   "));
        }
        spans.push(Span::styled(format!("{status} "), status_style(*status)));
        let bold = if *n > 0 {
            Style::new().add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        spans.push(Span::styled(n.to_string(), bold));
    }
    Paragraph::new(Line::from(spans)).block(Block::bordered().title(" Tasks "))
}

/// `3m05s`, `2h04m`, `1d03h`: the two largest units.
pub fn fmt_span(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m{:02}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h{:02}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3_600),
    }
}

fn worker_row(w: &RunningWorker, now: i64) -> Row<'static> {
    let heartbeat = match w.last_heartbeat_at {
        Some(t) => format!("{} ago", fmt_span(now - t)),
        None => "-".into(),
    };
    Row::new(vec![
        w.task_id.clone(),
        line(w.profile.as_deref().unwrap_or("-")).into_owned(),
        w.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
        fmt_span(now - w.started_at),
        heartbeat,
        line(&w.title).into_owned(),
    ])
}

/// `Running n/max_in_progress`.
fn running_block(snap: &TopSnapshot) -> Block<'static> {
    let limit = snap
        .running_limit
        .map(|l| format!("/{l}"))
        .unwrap_or_default();
    Block::bordered().title(format!(" Running {}{limit} ", snap.running_count()))
}

fn running_table(snap: &TopSnapshot) -> Table<'static> {
    let rows: Vec<Row> = snap
        .running
        .iter()
        .map(|w| worker_row(w, snap.now))
        .collect();
    let header = Row::new(["TASK", "PROFILE", "PID", "ELAPSED", "HEARTBEAT", "TITLE"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    Table::new(
        rows,
        [
            Constraint::Length(11),
            Constraint::Length(14),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(11),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .block(running_block(snap))
}

/// `███░░░░░░░` for `running` of `limit` (empty without a limit).
fn usage_bar(running: i64, limit: Option<u32>) -> String {
    let Some(limit) = limit.filter(|l| *l > 0) else {
        return String::new();
    };
    let filled =
        ((running.max(0) as usize * USAGE_BAR_CELLS).div_ceil(limit as usize)).min(USAGE_BAR_CELLS);
    format!(
        "{}{}",
        "█".repeat(filled),
        "░".repeat(USAGE_BAR_CELLS - filled)
    )
}

/// `n/limit`, or `n/-` when the profile has no ceiling.
pub fn usage_text(u: &ProfileUsage) -> String {
    match u.limit {
        Some(l) => format!("{}/{l}", u.running),
        None => format!("{}/-", u.running),
    }
}

fn profiles_table(snap: &TopSnapshot) -> Table<'static> {
    let mut rows: Vec<Row> = snap
        .profiles
        .iter()
        .map(|u| {
            let full = u.limit.is_some_and(|l| u.running >= i64::from(l));
            let style = if full {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            };
            Row::new(vec![
                line(&u.name).into_owned(),
                usage_text(u),
                usage_bar(u.running, u.limit),
                format!("{} ready", u.ready),
            ])
            .style(style)
        })
        .collect();
    if rows.is_empty() {
        rows.push(Row::new(vec!["no profile".to_string()]));
    }
    Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(7),
            Constraint::Length(USAGE_BAR_CELLS as u16),
            Constraint::Length(10),
        ],
    )
    .block(Block::bordered().title(" Profiles (running/limit) "))
}

fn render_throughput(frame: &mut Frame<'_>, area: Rect, snap: &TopSnapshot) {
    let total: u64 = snap.throughput.iter().sum();
    let peak = snap.throughput.iter().copied().max().unwrap_or(0);
    let title = format!(
        " Done/min, last {} min: {total} total, peak {peak} ",
        snap.throughput.len()
    );
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // The newest minutes when the window is wider than the box.
    let shown = &snap.throughput[snap.throughput.len().saturating_sub(inner.width as usize)..];
    frame.render_widget(
        Sparkline::default()
            .data(shown.iter().copied())
            .style(Style::new().fg(Color::Green)),
        inner,
    );
}

fn event_line(e: &EventLine) -> Line<'static> {
    let at = Local
        .timestamp_opt(e.at, 0)
        .single()
        .map(|d| d.format("%H:%M:%S").to_string())
        .unwrap_or_default();
    let who = e
        .assignee
        .as_deref()
        .map(|a| format!(" @{}", line(a)))
        .unwrap_or_default();
    Line::from(vec![
        Span::styled(at, Style::new().add_modifier(Modifier::DIM)),
        Span::raw(format!(" {} ", e.task_id)),
        Span::styled(format!("{:<13}", line(&e.kind)), kind_style(&e.kind)),
        Span::raw(format!("{who}  {}", line(&e.title))),
    ])
}

fn kind_style(kind: &str) -> Style {
    match kind {
        "completed" => Style::new().fg(Color::Blue),
        "crashed" | "gave_up" | "timed_out" | "spawn_failed" | "blocked" => {
            Style::new().fg(Color::Red)
        }
        "claimed" | "spawned" => Style::new().fg(Color::Green),
        _ => Style::new(),
    }
}

fn events_list(snap: &TopSnapshot, height: u16) -> Paragraph<'static> {
    let room = height.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = snap.events.iter().take(room).map(event_line).collect();
    if lines.is_empty() {
        lines.push(Line::from("no events yet"));
    }
    Paragraph::new(lines).block(Block::bordered().title(" Recent events "))
}
