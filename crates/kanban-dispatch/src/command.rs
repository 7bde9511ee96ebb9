//! The worker's command line: the Hermes form for Hermes profiles
//! (reference §3.4) or a config-defined template with placeholders.
//! Everything is an argv vector; nothing ever goes through a shell.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kanban_hermes::config::{ProfileSpec, TemplateVars};

use crate::error::{DispatchError, Result};

/// Operator override of the Hermes executable (path or PATH-resolved name).
pub const ENV_HERMES_BIN: &str = "HERMES_BIN";
/// Name looked up on `PATH` when `HERMES_BIN` is unset.
pub const HERMES_PROGRAM: &str = "hermes";
/// Last resort: run the CLI module with the system interpreter.
pub const HERMES_MODULE_ARGV: [&str; 3] = ["python3", "-m", "hermes_cli.main"];
/// Hint appended to "`hermes` executable not found".
pub const HERMES_NOT_FOUND_HINT: &str = "Install Hermes Agent or activate its venv before running the kanban dispatcher, or set HERMES_BIN.";

/// How to invoke Hermes: `$HERMES_BIN` (a path is made absolute; a bare
/// name is looked up on PATH only, never in the current directory), else
/// `hermes` on PATH, else `python3 -m hermes_cli.main`.
pub fn resolve_hermes_argv(var: &dyn Fn(&str) -> Option<String>, cwd: &Path) -> Vec<String> {
    let home = var("HOME")
        .filter(|h| !h.trim().is_empty())
        .map(PathBuf::from);
    let path_var = var("PATH");
    let found = |name: &str| which_no_cwd(name, path_var.as_deref(), home.as_deref());
    if let Some(bin) = var(ENV_HERMES_BIN)
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
    {
        if looks_like_path(&bin) {
            let p = expand_tilde(&bin, home.as_deref());
            let abs = if p.is_absolute() { p } else { cwd.join(p) };
            return vec![abs.to_string_lossy().into_owned()];
        }
        return match found(&bin) {
            Some(p) => vec![p.to_string_lossy().into_owned()],
            None => module_argv(&found),
        };
    }
    match found(HERMES_PROGRAM) {
        Some(p) => vec![p.to_string_lossy().into_owned()],
        None => module_argv(&found),
    }
}

fn module_argv(found: &dyn Fn(&str) -> Option<PathBuf>) -> Vec<String> {
    let python = found(HERMES_MODULE_ARGV[0])
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| HERMES_MODULE_ARGV[0].to_string());
    vec![
        python,
        HERMES_MODULE_ARGV[1].into(),
        HERMES_MODULE_ARGV[2].into(),
    ]
}

/// An explicit path rather than a command name.
fn looks_like_path(v: &str) -> bool {
    v.starts_with('~') || v.contains('/')
}

fn expand_tilde(raw: &str, home: Option<&Path>) -> PathBuf {
    match (raw, home) {
        ("~", Some(h)) => h.to_path_buf(),
        (r, Some(h)) if r.starts_with("~/") => h.join(&r[2..]),
        (r, _) => PathBuf::from(r),
    }
}

/// Find an executable `name` in the `PATH` entries, skipping empty and `.`
/// entries so a file in the current directory can never be picked up.
pub fn which_no_cwd(name: &str, path_var: Option<&str>, home: Option<&Path>) -> Option<PathBuf> {
    for dir in path_var?.split(':') {
        if dir.is_empty() || dir == "." {
            continue;
        }
        let dir = expand_tilde(dir, home);
        if !dir.is_absolute() {
            continue;
        }
        let candidate = dir.join(name);
        if let Ok(meta) = std::fs::metadata(&candidate)
            && meta.is_file()
            && meta.permissions().mode() & 0o111 != 0
        {
            return Some(candidate);
        }
    }
    None
}

/// Inputs of the Hermes worker command.
#[derive(Debug, Clone, Copy)]
pub struct HermesWorkerArgs<'a> {
    pub profile: &'a str,
    pub task_id: &'a str,
    /// Force-loaded skills, one `--skills` pair each.
    pub skills: &'a [String],
    pub model: Option<&'a str>,
    /// The profile's CLI toolsets, pinned with `--toolsets a,b`.
    pub toolsets: &'a [String],
    /// Goal-mode workers need the fully quiet single-query path (`-Q`).
    pub goal_mode: bool,
}

/// `<hermes> -p <profile> --cli --accept-hooks [--skills S]… [-m M]
/// [--toolsets a,b] chat -q "work kanban task <id>" [-Q]`.
pub fn hermes_worker_argv(hermes: &[String], a: &HermesWorkerArgs<'_>) -> Vec<String> {
    let mut argv: Vec<String> = hermes.to_vec();
    argv.extend(["-p", a.profile, "--cli", "--accept-hooks"].map(String::from));
    for skill in a.skills.iter().filter(|s| !s.is_empty()) {
        argv.extend(["--skills".to_string(), skill.clone()]);
    }
    if let Some(model) = a.model.filter(|m| !m.is_empty()) {
        argv.extend(["-m".to_string(), model.to_string()]);
    }
    if !a.toolsets.is_empty() {
        argv.extend(["--toolsets".to_string(), a.toolsets.join(",")]);
    }
    argv.extend([
        "chat".to_string(),
        "-q".to_string(),
        format!("work kanban task {}", a.task_id),
    ]);
    if a.goal_mode {
        argv.push("-Q".into());
    }
    argv
}

/// A template profile's argv (`kanban.profiles.<name>.command`), expanded
/// by the config's own renderer (one engine for every template, validated
/// when the config is loaded). One addition: an element that is exactly
/// `{model}` or `{skills}` and expands to nothing is dropped, together with
/// the literal flag right before it, so `["-m", "{model}"]` disappears when
/// neither the task nor the profile names a model instead of passing `-m ""`.
pub fn template_argv(spec: &ProfileSpec, vars: &TemplateVars) -> Result<Vec<String>> {
    let rendered = spec.render_command(vars);
    let mut out: Vec<String> = Vec::with_capacity(rendered.len());
    let mut prev_literal_flag = false;
    for (raw, value) in spec.command.iter().zip(rendered) {
        if matches!(raw.as_str(), "{model}" | "{skills}") && value.is_empty() {
            if prev_literal_flag {
                out.pop();
            }
            prev_literal_flag = false;
            continue;
        }
        prev_literal_flag = raw.starts_with('-') && !raw.contains('{');
        out.push(value);
    }
    match out.first() {
        Some(p) if !p.trim().is_empty() => Ok(out),
        _ => Err(DispatchError::Command(
            "the profile's command template has no program".into(),
        )),
    }
}

/// Inputs of the self-contained prompt given to template-profile agents.
#[derive(Debug, Clone, Copy)]
pub struct PromptInput<'a> {
    pub task_id: &'a str,
    pub title: &'a str,
    /// The worker context text (reference §5.3), built by the caller.
    pub context: &'a str,
    /// How the agent invokes this board's CLI (`kanban`, or an absolute
    /// path to this binary).
    pub kanban: &'a str,
}

/// A prompt an agent that has never heard of this board can follow: who
/// it is, how to report progress, how to finish, then the task context.
pub fn worker_prompt(p: &PromptInput<'_>) -> String {
    let k = shell_quote(p.kanban);
    let id = p.task_id;
    format!(
        "You are a worker agent. You have been assigned one task from a kanban board: \
{id} ({title}). Your current directory is the task's workspace; do the work there.\n\
\n\
## How to report (required)\n\
The board tracks you through the `{k}` command line. Run these from a shell; the \
environment already points them at the right board, task and attempt.\n\
- Heartbeat at least every 10 minutes while you work, with a short note on what you \
are doing: `{k} heartbeat {id} --note \"<what you are doing>\"`\n\
- Optional notes for humans: `{k} comment {id} \"<text>\"`\n\
- When the task is done: `{k} complete {id} --summary \"<what you did and where the \
results are>\"` (add `--metadata '<json object>'` for structured results).\n\
- If you cannot finish (missing information, access or a decision only a human can \
make): `{k} block {id} \"<reason>\"`\n\
End with exactly one of `complete` or `block`, then exit. Exiting without either \
counts as a failed attempt and the task is retried. To look at the task again: \
`{k} show {id}`.\n\
\n\
## Task\n\
{context}\n",
        title = p.title,
        context = p.context.trim_end(),
    )
}

/// Quote for a POSIX shell when needed (the prompt shows copy-pasteable
/// commands).
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
