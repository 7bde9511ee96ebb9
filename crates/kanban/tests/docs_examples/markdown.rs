//! The fenced code blocks of a markdown file, with the `docs-test` markers
//! written right before each fence.
//!
//! A marker is an HTML comment (invisible when rendered, visible in the
//! source) on the line(s) directly above a fence:
//! - `<!-- docs-test: skip — reason -->`: the block is not run;
//! - `<!-- docs-test: skip-line <command> — reason -->`: that one line of
//!   the block is not run (it must exist in the block);
//! - `<!-- docs-test: dispatched-command — note -->`: the block is the
//!   command line the dispatcher runs for the task the doc's commands just
//!   created; the test dispatches it and compares.
//!
//! Every marker needs its reason (or note) after ` — `.

use std::path::Path;

/// What a marker line looks like: `<!-- docs-test: … -->`.
const MARKER_OPEN: &str = "<!-- docs-test:";
const MARKER_CLOSE: &str = "-->";
/// Separates a directive from its reason (an em dash, or `--`).
const REASON_SEPARATORS: [&str; 2] = [" — ", " -- "];

/// One `docs-test` marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    Skip { reason: String },
    SkipLine { command: String, reason: String },
    DispatchedCommand { note: String },
}

/// One fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    /// `README.md:38` (the fence's line, 1-based).
    pub place: String,
    /// The info string's first word (`sh`, `yaml`, ...), empty if none.
    pub lang: String,
    /// The lines between the fences, with the fence's indentation removed.
    pub lines: Vec<String>,
    pub markers: Vec<Marker>,
}

impl Block {
    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }

    pub fn skip_reason(&self) -> Option<&str> {
        self.markers.iter().find_map(|m| match m {
            Marker::Skip { reason } => Some(reason.as_str()),
            _ => None,
        })
    }

    pub fn is_dispatched_command(&self) -> bool {
        self.markers
            .iter()
            .any(|m| matches!(m, Marker::DispatchedCommand { .. }))
    }

    /// The `skip-line` markers: (command, reason).
    pub fn skipped_lines(&self) -> impl Iterator<Item = (&str, &str)> {
        self.markers.iter().filter_map(|m| match m {
            Marker::SkipLine { command, reason } => Some((command.as_str(), reason.as_str())),
            _ => None,
        })
    }
}

/// The blocks of `path` (named `rel` in places); `Err` lists malformed
/// markers (no reason, unknown directive, not right before a fence) and
/// unclosed fences.
pub fn blocks(path: &Path, rel: &str) -> Result<Vec<Block>, Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    let mut pending: Vec<(usize, Marker)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if trimmed.starts_with(MARKER_OPEN) {
            match parse_marker(trimmed) {
                Ok(marker) => pending.push((i + 1, marker)),
                Err(why) => errors.push(format!("{rel}:{}: {why}", i + 1)),
            }
            i += 1;
            continue;
        }
        if let Some((indent, fence, info)) = fence_open(line) {
            let start = i + 1;
            let mut body = Vec::new();
            i += 1;
            let mut closed = false;
            while i < lines.len() {
                let l = lines[i];
                if l.trim_start().starts_with(fence)
                    && l.trim().trim_start_matches(fence).is_empty()
                {
                    closed = true;
                    break;
                }
                body.push(strip_indent(l, indent).to_string());
                i += 1;
            }
            if !closed {
                errors.push(format!("{rel}:{start}: unclosed code fence"));
            }
            blocks.push(Block {
                place: format!("{rel}:{start}"),
                lang: info.split_whitespace().next().unwrap_or("").to_string(),
                lines: body,
                markers: pending.drain(..).map(|(_, m)| m).collect(),
            });
            i += 1;
            continue;
        }
        for (at, _) in pending.drain(..) {
            errors.push(format!(
                "{rel}:{at}: a docs-test marker must be right before a code fence"
            ));
        }
        i += 1;
    }
    for (at, _) in pending {
        errors.push(format!(
            "{rel}:{at}: a docs-test marker must be right before a code fence"
        ));
    }
    for b in &blocks {
        for (command, _) in b.skipped_lines() {
            if !b.lines.iter().any(|l| command_part(l).trim() == command) {
                errors.push(format!(
                    "{}: skip-line `{command}` matches no line",
                    b.place
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(blocks)
    } else {
        Err(errors)
    }
}

/// `(indent, fence, info string)` when `line` opens a fence.
fn fence_open(line: &str) -> Option<(usize, &'static str, &str)> {
    let indent = line.len() - line.trim_start().len();
    let rest = line.trim_start();
    for fence in ["```", "~~~"] {
        if let Some(info) = rest.strip_prefix(fence) {
            return Some((indent, fence, info.trim().trim_start_matches(['`', '~'])));
        }
    }
    None
}

/// `line` without up to `indent` leading spaces.
fn strip_indent(line: &str, indent: usize) -> &str {
    let spaces = line.len() - line.trim_start_matches(' ').len();
    &line[spaces.min(indent)..]
}

fn parse_marker(line: &str) -> Result<Marker, String> {
    let inner = line
        .strip_prefix(MARKER_OPEN)
        .and_then(|r| r.trim_end().strip_suffix(MARKER_CLOSE))
        .ok_or("a docs-test marker is one line: <!-- docs-test: … -->")?
        .trim();
    let (directive, reason) = REASON_SEPARATORS
        .iter()
        .find_map(|sep| inner.split_once(sep))
        .map(|(d, r)| (d.trim(), r.trim()))
        .unwrap_or((inner, ""));
    if reason.is_empty() {
        return Err(format!(
            "docs-test marker `{inner}` has no reason (`… — why`)"
        ));
    }
    let reason = reason.to_string();
    match directive.split_once(' ') {
        None if directive == "skip" => Ok(Marker::Skip { reason }),
        None if directive == "dispatched-command" => Ok(Marker::DispatchedCommand { note: reason }),
        Some(("skip-line", command)) if !command.trim().is_empty() => Ok(Marker::SkipLine {
            command: command.trim().to_string(),
            reason,
        }),
        _ => Err(format!(
            "unknown docs-test directive `{directive}` (skip, skip-line <command>, dispatched-command)"
        )),
    }
}

/// `line` without its trailing shell comment (a `#` after whitespace,
/// outside quotes).
pub fn command_part(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return line[..i].trim_end(),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line.trim_end()
}

/// The words of a simple shell command line: whitespace-separated, with
/// `'…'` and `"…"` quoting (no escapes, no expansions).
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in command_part(line).chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_words() {
        assert_eq!(command_part("kanban list   # all"), "kanban list");
        assert_eq!(command_part("echo 'a # b' # c"), "echo 'a # b'");
        assert_eq!(command_part("x=a#b"), "x=a#b");
        assert_eq!(
            shell_words(r#"hermes -p coder chat -q "work kanban task <id>""#),
            [
                "hermes",
                "-p",
                "coder",
                "chat",
                "-q",
                "work kanban task <id>"
            ]
        );
    }

    #[test]
    fn markers_need_a_reason() {
        assert!(parse_marker("<!-- docs-test: skip -->").is_err());
        assert!(parse_marker("<!-- docs-test: skip — -->").is_err());
        assert!(parse_marker("<!-- docs-test: run — x -->").is_err());
        assert_eq!(
            parse_marker("<!-- docs-test: skip-line bash x.sh — recursion -->"),
            Ok(Marker::SkipLine {
                command: "bash x.sh".into(),
                reason: "recursion".into()
            })
        );
    }
}
