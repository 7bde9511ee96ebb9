//! Can each worker profile's program be started? A template's `command[0]`
//! is looked up as the spawner will (a path as it is, a bare name on PATH,
//! never in the current directory); Hermes profiles need the `hermes`
//! executable (`$HERMES_BIN`, `hermes` on PATH, else `python3 -m
//! hermes_cli.main`).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kanban_core::Status;
use kanban_dispatch::command::{HERMES_MODULE_ARGV, resolve_hermes_argv, which_no_cwd};
use kanban_hermes::config::{ProfileSpec, TemplateVars};
use kanban_hermes::profiles::{ProfileKind, Profiles};

use super::boards::{BoardReport, Outcome};
use super::{Finding, Site};

/// The Hermes profile that lives at the root itself (always listed).
const DEFAULT_PROFILE: &str = "default";
/// Unassigned-lane names shown in the report; the rest are counted.
const LANES_SHOWN: usize = 8;

/// How a program named by a profile resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// An executable file.
    Found(PathBuf),
    /// A bare name that is on no PATH entry.
    NotOnPath(String),
    /// A path that is not an executable file.
    NotExecutable(PathBuf),
    /// Resolved in each task's workspace (a relative path) or per task
    /// (a placeholder), so it cannot be checked here.
    PerTask(String),
}

/// Resolve a template's program the way the spawner will: absolute paths
/// as they are, relative paths in the task's workspace (its working
/// directory), bare names on `path_var` only.
pub fn resolve_program(raw: &str, rendered: &str, path_var: Option<&str>) -> Program {
    if raw != rendered {
        return Program::PerTask(format!("`{raw}` depends on the task"));
    }
    if raw.starts_with('~') {
        return Program::PerTask(format!(
            "`{raw}`: `~` is not expanded (no shell runs the command)"
        ));
    }
    if raw.contains('/') {
        let p = Path::new(raw);
        if !p.is_absolute() {
            return Program::PerTask(format!(
                "`{raw}` is resolved in each task's workspace (its working directory)"
            ));
        }
        return if is_executable(p) {
            Program::Found(p.to_path_buf())
        } else {
            Program::NotExecutable(p.to_path_buf())
        };
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match which_no_cwd(raw, path_var, home.as_deref()) {
        Some(p) => Program::Found(p),
        None => Program::NotOnPath(raw.to_string()),
    }
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Assignees with unfinished tasks on any board, with how many.
fn open_lanes(boards: &[BoardReport]) -> BTreeMap<String, i64> {
    let mut lanes: BTreeMap<String, i64> = BTreeMap::new();
    for b in boards {
        let Outcome::Open { stats, .. } = &b.outcome else {
            continue;
        };
        for (who, counts) in &stats.by_assignee {
            let open: i64 = counts
                .iter()
                .filter(|(s, _)| s.parse::<Status>().is_ok_and(|s| !s.is_terminal()))
                .map(|(_, n)| n)
                .sum();
            if open > 0 {
                *lanes.entry(who.clone()).or_default() += open;
            }
        }
    }
    lanes
}

pub fn findings(site: &Site, boards: &[BoardReport]) -> Vec<Finding> {
    let Some(config) = site.config() else {
        return vec![Finding::warn(
            "not checked: config.yaml cannot be read",
            "fix config.yaml first (see the config check)",
        )];
    };
    let profiles = Profiles::new(&site.root, config);
    let lanes = open_lanes(boards);
    let path_var = std::env::var("PATH").ok();
    let mut out = Vec::new();
    let mut hermes_users: Vec<String> = Vec::new();
    for info in profiles.list_profiles() {
        match &info.kind {
            ProfileKind::Template { spec } => {
                out.push(template_finding(&info.name, spec, path_var.as_deref()));
            }
            // The implicit `default` Hermes profile matters only when
            // tasks wait for it.
            ProfileKind::Hermes { .. }
                if info.name != DEFAULT_PROFILE || lanes.contains_key(&info.name) =>
            {
                hermes_users.push(info.name.clone());
            }
            ProfileKind::Hermes { .. } => {}
        }
    }
    if !hermes_users.is_empty() {
        out.push(hermes_finding(&hermes_users));
    }
    let idle: Vec<String> = lanes
        .iter()
        .filter(|(who, _)| !profiles.is_spawnable(who))
        .map(|(who, n)| format!("{who} ({n})"))
        .collect();
    if out.is_empty() {
        out.push(Finding::ok(
            "no worker profile is defined (kanban.profiles in config.yaml; see docs/workers.md)",
        ));
    }
    if !idle.is_empty() {
        let mut shown: Vec<String> = idle.iter().take(LANES_SHOWN).cloned().collect();
        if idle.len() > LANES_SHOWN {
            shown.push(format!("and {} more", idle.len() - LANES_SHOWN));
        }
        out.push(Finding::ok(format!(
            "assignees without a worker profile (their tasks wait for a person): {}",
            shown.join(", ")
        )));
    }
    out
}

fn template_finding(name: &str, spec: &ProfileSpec, path_var: Option<&str>) -> Finding {
    let raw = spec.command.first().map(String::as_str).unwrap_or("");
    let rendered = spec
        .render_command(&TemplateVars::default())
        .into_iter()
        .next()
        .unwrap_or_default();
    // The worker's own PATH, when the profile sets one.
    let path = spec.env.get("PATH").map(String::as_str).or(path_var);
    let at = format!("kanban.profiles.{name}.command[0]");
    match resolve_program(raw, &rendered, path) {
        Program::Found(p) => Finding::ok(format!("{name}: {raw} -> {}", p.display())),
        Program::NotOnPath(prog) => Finding::fail(
            format!("{name}: `{prog}` is not on PATH"),
            format!(
                "install `{prog}`, or put its absolute path in {at}; a gateway started by \
                 systemd has its own PATH (Environment=PATH=... in the unit)"
            ),
        ),
        Program::NotExecutable(p) => Finding::fail(
            format!("{name}: {} is not an executable file", p.display()),
            format!("fix the path in {at}, or `chmod +x {}`", p.display()),
        ),
        Program::PerTask(why) => Finding::warn(
            format!("{name}: {why}: it cannot be checked here"),
            format!("put an absolute path in {at}"),
        ),
    }
}

/// The one Hermes executable every Hermes profile runs.
fn hermes_finding(names: &[String]) -> Finding {
    let who = names.join(", ");
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let argv = resolve_hermes_argv(&|k| std::env::var(k).ok(), &cwd);
    let hint = kanban_dispatch::command::HERMES_NOT_FOUND_HINT;
    match argv.as_slice() {
        [bin] if is_executable(Path::new(bin)) => {
            Finding::ok(format!("Hermes profile(s) {who}: hermes -> {bin}"))
        }
        [bin] => Finding::fail(
            format!("Hermes profile(s) {who}: {bin} is not an executable file"),
            hint,
        ),
        [python, ..] if python.as_str() != HERMES_MODULE_ARGV[0] => Finding::warn(
            format!(
                "Hermes profile(s) {who}: `hermes` is not on PATH; workers would run \
                 `{}` (needs the hermes_cli module)",
                argv.join(" ")
            ),
            hint,
        ),
        _ => Finding::fail(
            format!("Hermes profile(s) {who}: neither `hermes` nor `python3` is on PATH"),
            hint,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_resolve_as_the_spawner_resolves_them() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().display().to_string();
        assert_eq!(
            resolve_program("tool", "tool", Some(&path)),
            Program::Found(tool.clone())
        );
        assert_eq!(
            resolve_program("nope", "nope", Some(&path)),
            Program::NotOnPath("nope".into())
        );
        let abs = tool.display().to_string();
        assert_eq!(
            resolve_program(&abs, &abs, None),
            Program::Found(tool.clone())
        );
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            resolve_program(&abs, &abs, None),
            Program::NotExecutable(tool)
        );
        assert!(matches!(
            resolve_program("./build-report", "./build-report", Some(&path)),
            Program::PerTask(_)
        ));
        assert!(matches!(
            resolve_program("{workspace}/run", "/run", Some(&path)),
            Program::PerTask(_)
        ));
        // Never the current directory, as the spawner.
        assert_eq!(
            resolve_program("tool", "tool", Some(".")),
            Program::NotOnPath("tool".into())
        );
    }
}
