//! The `auxiliary:` section of config.yaml (the models behind `kanban
//! specify`/`decompose`, the dashboard's describe-auto and the goal
//! judge): each entry kanban uses must be able to answer. An endpoint's
//! `base_url` must be an http(s) URL, a command's program must resolve the
//! way the model client starts it, and a named `api_key_env` must be set
//! in this environment. Entries for Hermes' other auxiliary tasks share
//! the section and are not looked at.

use kanban_hermes::auxiliary::{
    AUX_TEMPLATE_PLACEHOLDERS, AuxModelConfig, AuxiliaryConfig, TASK_DEFAULT, TASK_GOAL_JUDGE,
    TASK_KANBAN_DECOMPOSER, TASK_PROFILE_DESCRIBER, TASK_TRIAGE_SPECIFIER,
};

use super::profiles::{Program, resolve_program};
use super::{Finding, Site};

/// The tasks kanban asks a model for.
const TASKS: [&str; 4] = [
    TASK_TRIAGE_SPECIFIER,
    TASK_KANBAN_DECOMPOSER,
    TASK_PROFILE_DESCRIBER,
    TASK_GOAL_JUDGE,
];

pub fn findings(site: &Site) -> Vec<Finding> {
    let path = site.root.config_file();
    let aux = match AuxiliaryConfig::load(&site.root) {
        Ok(a) => a,
        Err(e) => {
            return vec![Finding::fail(
                e.to_string(),
                format!("fix the auxiliary: section of {}", path.display()),
            )];
        }
    };
    let path_var = std::env::var("PATH").ok();
    let env = |k: &str| std::env::var(k).ok();
    let mut out = Vec::new();
    for name in std::iter::once(TASK_DEFAULT).chain(TASKS) {
        if let Some(cfg) = aux.tasks.get(name).filter(|c| c.is_configured()) {
            out.extend(entry_findings(name, cfg, path_var.as_deref(), &env));
        }
    }
    let (with, without): (Vec<&str>, Vec<&str>) =
        TASKS.iter().partition(|t| aux.for_task(t).is_some());
    let summary = match (with.is_empty(), without.is_empty()) {
        (true, _) => format!(
            "no auxiliary model configured: specify, decompose and describe-auto are off \
             (set auxiliary.{TASK_DEFAULT} in {} to turn them on)",
            path.display()
        ),
        (false, true) => format!("a model answers {}", with.join(", ")),
        (false, false) => format!(
            "a model answers {}; none for {}",
            with.join(", "),
            without.join(", ")
        ),
    };
    out.insert(0, Finding::ok(summary));
    out
}

/// The problems of one configured entry (or one `ok` line).
pub fn entry_findings(
    name: &str,
    cfg: &AuxModelConfig,
    path_var: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<Finding> {
    let key = format!("auxiliary.{name}");
    if let Some(raw) = cfg.command.first() {
        let rendered = render(raw, cfg, name);
        return vec![match resolve_program(&rendered, &rendered, path_var) {
            Program::Found(p) => Finding::ok(format!("{key}: command {}", p.display())),
            Program::PerTask(why) => Finding::ok(format!("{key}: command {why}")),
            Program::NotOnPath(p) => Finding::fail(
                format!("{key}.command: `{p}` is not on PATH"),
                format!("install `{p}`, or give its absolute path in {key}.command"),
            ),
            Program::NotExecutable(p) => Finding::fail(
                format!("{key}.command: {} is not an executable file", p.display()),
                format!(
                    "chmod +x {} (or fix the path in {key}.command)",
                    p.display()
                ),
            ),
        }];
    }
    let mut out = Vec::new();
    let base = cfg.base_url.as_deref().unwrap_or("").trim();
    match url::Url::parse(base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => out.push(Finding::fail(
            format!("{key}.base_url: `{base}` is not an http(s) URL"),
            format!(
                "set {key}.base_url to the endpoint's …/v1 URL, e.g. http://127.0.0.1:11434/v1"
            ),
        )),
    }
    if let Some(var) = cfg.api_key_env.as_deref().map(str::trim)
        && !var.is_empty()
        && env(var).is_none_or(|v| v.trim().is_empty())
    {
        out.push(Finding::warn(
            format!("{key}.api_key_env: {var} is not set in this environment"),
            format!("export {var} where the gateway and dashboard run"),
        ));
    }
    if out.is_empty() {
        out.push(Finding::ok(format!(
            "{key}: {base} model {}",
            cfg.model.as_deref().unwrap_or("")
        )));
    }
    out
}

/// The program as the client starts it: placeholders filled in.
fn render(raw: &str, cfg: &AuxModelConfig, task: &str) -> String {
    let mut s = raw.to_string();
    for p in AUX_TEMPLATE_PLACEHOLDERS {
        let v = match p {
            "model" => cfg.model.clone().unwrap_or_default(),
            _ => task.to_string(),
        };
        s = s.replace(&format!("{{{p}}}"), &v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::doctor::Level;

    fn levels(cfg: &AuxModelConfig, env: &[(&str, &str)]) -> Vec<Level> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        entry_findings("default", cfg, Some("/bin:/usr/bin"), &get)
            .iter()
            .map(|f| f.level)
            .collect()
    }

    #[test]
    fn endpoint_and_command_entries() {
        let http = |url: &str| AuxModelConfig {
            base_url: Some(url.into()),
            model: Some("m".into()),
            api_key_env: Some("K".into()),
            ..Default::default()
        };
        assert_eq!(
            levels(&http("http://127.0.0.1:1/v1"), &[("K", "x")]),
            [Level::Ok]
        );
        assert_eq!(levels(&http("http://127.0.0.1:1/v1"), &[]), [Level::Warn]);
        assert_eq!(
            levels(&http("localhost:11434"), &[("K", "x")]),
            [Level::Fail]
        );
        let cmd = |argv: &[&str]| AuxModelConfig {
            command: argv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(levels(&cmd(&["sh", "-c", "cat"]), &[]), [Level::Ok]);
        assert_eq!(levels(&cmd(&["no-such-model-cli"]), &[]), [Level::Fail]);
        assert_eq!(levels(&cmd(&["/etc/passwd"]), &[]), [Level::Fail]);
    }
}
