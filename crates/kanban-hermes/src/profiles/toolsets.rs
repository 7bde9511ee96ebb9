//! The CLI toolsets a Hermes profile's worker is pinned to.
//!
//! The reference resolves the assignee profile's effective CLI tool surface
//! at dispatch time and passes it as `--toolsets a,b`, so a worker cannot
//! fall back to another profile's config (reference `_default_spawn`,
//! `_resolve_worker_cli_toolsets`). These are Hermes 0.19.0's rules for the
//! `cli` platform over its static catalogue (`toolsets_data.rs`):
//!
//! - no `platform_toolsets.cli` list: every checklist toolset whose tools
//!   the `hermes-cli` composite covers, minus the default-off ones;
//! - a list naming checklist toolsets: exactly those, plus what composites
//!   in the list cover; other names (custom toolsets, MCP servers) pass
//!   through;
//! - then, in both cases: non-checklist toolsets of the platform (such as
//!   `kanban`), a non-default context engine, the enabled MCP servers
//!   (unless the list names some, or `no_mcp`), minus
//!   `agent.disabled_toolsets`.
//!
//! Plugin-provided toolsets are not known here (Hermes discovers them by
//! importing the plugins); a plugin toolset named in the list passes
//! through like any custom name.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use regex::Regex;
use serde_norway::Value as Yaml;

use super::toolsets_data::{
    CONFIGURABLE, CORE_TOOLS, DEFAULT_OFF, PLATFORM_DEFAULTS, PLATFORM_RESTRICTED, StaticToolset,
    TOOLSETS,
};

/// The platform a kanban worker runs on (`hermes ... --cli`).
const PLATFORM: &str = "cli";
/// The `cli` platform's default composite.
const PLATFORM_DEFAULT_TOOLSET: &str = "hermes-cli";
/// Engine that needs no `context_engine` tools.
const DEFAULT_CONTEXT_ENGINE: &str = "compressor";
/// List entry that turns every MCP server off.
const NO_MCP: &str = "no_mcp";
/// Administrator-pinned config directory override.
pub const ENV_MANAGED_DIR: &str = "HERMES_MANAGED_DIR";
/// Administrator-pinned config directory.
const DEFAULT_MANAGED_DIR: &str = "/etc/hermes";
/// A set Home Assistant token opts into the `homeassistant` toolset.
const ENV_HASS_TOKEN: &str = "HASS_TOKEN";
/// A set xAI key opts into `x_search` (profiles without a saved list).
const ENV_XAI_API_KEY: &str = "XAI_API_KEY";

type Names = BTreeSet<String>;

fn find(name: &str) -> Option<&'static StaticToolset> {
    TOOLSETS.iter().find(|t| t.name == name)
}

/// Every tool of a toolset, includes followed (`all`/`*` = every toolset).
fn resolve(name: &str) -> Names {
    let mut out = Names::new();
    if matches!(name, "all" | "*") {
        for t in TOOLSETS {
            out.extend(resolve(t.name));
        }
        return out;
    }
    collect(name, &mut BTreeSet::new(), &mut out);
    out
}

fn collect(name: &str, visited: &mut BTreeSet<String>, out: &mut Names) {
    if !visited.insert(name.to_string()) {
        return;
    }
    let Some(t) = find(name) else { return };
    if t.core {
        out.extend(CORE_TOOLS.iter().map(|s| s.to_string()));
    }
    out.extend(t.tools.iter().map(|s| s.to_string()));
    for inc in t.includes {
        collect(inc, visited, out);
    }
}

fn allowed_on_platform(toolset: &str) -> bool {
    PLATFORM_RESTRICTED
        .iter()
        .find(|(t, _)| *t == toolset)
        .is_none_or(|(_, platforms)| platforms.contains(&PLATFORM))
}

fn configurable(name: &str) -> bool {
    CONFIGURABLE.contains(&name)
}

/// Python truthiness of a YAML value.
fn truthy(v: &Yaml) -> bool {
    match v {
        Yaml::Null => false,
        Yaml::Bool(b) => *b,
        Yaml::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Yaml::String(s) => !s.is_empty(),
        Yaml::Sequence(s) => !s.is_empty(),
        Yaml::Mapping(m) => !m.is_empty(),
        Yaml::Tagged(t) => truthy(&t.value),
    }
}

/// Python `str()` of a YAML scalar.
fn py_str(v: &Yaml) -> String {
    match v {
        Yaml::Null => "None".into(),
        Yaml::Bool(true) => "True".into(),
        Yaml::Bool(false) => "False".into(),
        Yaml::Number(n) => n.to_string(),
        Yaml::String(s) => s.clone(),
        Yaml::Tagged(t) => py_str(&t.value),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// `enabled:` of an MCP server: bool-like, anything else means enabled.
fn enabled_flag(v: Option<&Yaml>) -> bool {
    match v {
        Some(Yaml::Bool(b)) => *b,
        Some(Yaml::Number(n)) if n.is_i64() || n.is_u64() => n.as_f64() != Some(0.0),
        Some(Yaml::String(s)) => !matches!(
            s.trim().to_lowercase().as_str(),
            "false" | "0" | "no" | "off"
        ),
        _ => true,
    }
}

fn read_yaml(path: &Path) -> Option<Yaml> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_norway::from_str::<Yaml>(&text).ok()
}

/// `${VAR}` in string values, from the environment; unknown ones stay.
fn expand_env(v: &mut Yaml, var: &dyn Fn(&str) -> Option<String>, re: &Regex) {
    match v {
        Yaml::String(s) if s.contains("${") => {
            *s = re
                .replace_all(s, |c: &regex::Captures<'_>| {
                    var(&c[1]).unwrap_or_else(|| c[0].to_string())
                })
                .into_owned();
        }
        Yaml::Sequence(items) => items.iter_mut().for_each(|i| expand_env(i, var, re)),
        Yaml::Mapping(m) => m.values_mut().for_each(|i| expand_env(i, var, re)),
        Yaml::Tagged(t) => expand_env(&mut t.value, var, re),
        _ => {}
    }
}

/// Leaf-wise merge of `over` into `base`; a null never replaces a mapping.
fn deep_merge(base: &mut Yaml, over: Yaml) {
    let (Yaml::Mapping(b), Yaml::Mapping(o)) = (&mut *base, over) else {
        return;
    };
    for (k, v) in o {
        match b.get_mut(&k) {
            Some(cur @ Yaml::Mapping(_)) if matches!(v, Yaml::Mapping(_)) => deep_merge(cur, v),
            Some(Yaml::Mapping(_)) if v.is_null() => {}
            _ => {
                b.insert(k, v);
            }
        }
    }
}

fn managed_dir(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    match var(ENV_MANAGED_DIR).map(|v| v.trim().to_string()) {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)).filter(|p| p.is_dir()),
        _ => Some(PathBuf::from(DEFAULT_MANAGED_DIR)).filter(|p| p.is_dir()),
    }
}

/// `${VAR}` in a config value (compiled once: it is used on every spawn).
static ENV_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{([^}]+)\}").expect("static regex"));

/// The profile's effective config as far as toolsets go: defaults, then
/// `<home>/config.yaml` (unreadable or not a mapping = defaults, as Hermes
/// falls back), `${VAR}` expanded, then the managed config on top.
fn load_config(home: &Path, var: &dyn Fn(&str) -> Option<String>) -> Yaml {
    let mut config: Yaml =
        serde_norway::from_str("context: {engine: compressor}\nagent: {}\n").expect("static YAML");
    let re = &*ENV_REFERENCE;
    if let Some(mut user @ Yaml::Mapping(_)) = read_yaml(&home.join("config.yaml")) {
        expand_env(&mut user, var, re);
        deep_merge(&mut config, user);
    }
    if let Some(mut managed @ Yaml::Mapping(_)) =
        managed_dir(var).and_then(|d| read_yaml(&d.join("config.yaml")))
    {
        expand_env(&mut managed, var, re);
        deep_merge(&mut config, managed);
    }
    config
}

fn non_blank_env(var: &dyn Fn(&str) -> Option<String>, key: &str) -> bool {
    var(key).is_some_and(|v| !v.trim().is_empty())
}

/// The sorted CLI toolsets of the Hermes profile living at `home`, as the
/// reference passes them with `--toolsets`; `None` when it passes none
/// (nothing enabled, or a config shape Hermes itself fails on).
pub fn resolve_cli_toolsets(
    home: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Option<Vec<String>> {
    // The answer depends only on the config files and the variables read
    // while resolving: reuse it while both are unchanged (a dispatcher
    // resolves it for every spawn, and a full resolution costs more than
    // the claim itself).
    let mut cache = RESOLVED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(memo) = cache.get(home).filter(|m| m.still_valid(var)) {
        return memo.toolsets.clone();
    }
    let consulted = std::cell::RefCell::new(Vec::new());
    let recording = |k: &str| {
        let v = var(k);
        consulted.borrow_mut().push((k.to_string(), v.clone()));
        v
    };
    let toolsets = resolve_uncached(home, &recording);
    let vars = consulted.into_inner();
    let memo = Memo {
        files: config_files(home, &vars),
        vars,
        toolsets: toolsets.clone(),
    };
    if cache.len() >= RESOLVED_CAPACITY {
        cache.clear();
    }
    cache.insert(home.to_path_buf(), memo);
    toolsets
}

/// Profiles whose resolution is remembered (a bound, not a tuning knob).
const RESOLVED_CAPACITY: usize = 256;

static RESOLVED: LazyLock<Mutex<HashMap<PathBuf, Memo>>> = LazyLock::new(Default::default);

/// One remembered resolution and what it was computed from.
struct Memo {
    /// Each config file read (or looked for) with its stamp then.
    files: Vec<(PathBuf, Option<(SystemTime, u64)>)>,
    /// Each variable consulted with its value then.
    vars: Vec<(String, Option<String>)>,
    toolsets: Option<Vec<String>>,
}

impl Memo {
    fn still_valid(&self, var: &dyn Fn(&str) -> Option<String>) -> bool {
        self.vars.iter().all(|(k, v)| var(k) == *v)
            && self.files.iter().all(|(p, stamp)| file_stamp(p) == *stamp)
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The config files a resolution reads: the profile's and the managed one.
fn config_files(
    home: &Path,
    vars: &[(String, Option<String>)],
) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
    let replay = |k: &str| {
        vars.iter()
            .find(|(name, _)| name == k)
            .and_then(|(_, v)| v.clone())
    };
    // The managed config is looked for even when its directory is missing
    // now, so its appearance invalidates the memo.
    let managed = match replay(ENV_MANAGED_DIR).map(|v| v.trim().to_string()) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_MANAGED_DIR),
    };
    let files = vec![home.join("config.yaml"), managed.join("config.yaml")];
    files
        .into_iter()
        .map(|p| {
            let stamp = file_stamp(&p);
            (p, stamp)
        })
        .collect()
}

fn resolve_uncached(home: &Path, var: &dyn Fn(&str) -> Option<String>) -> Option<Vec<String>> {
    let config = load_config(home, var);
    let get = |k: &str| config.get(k).filter(|v| truthy(v));
    let empty = Yaml::Mapping(Default::default());
    let platform_toolsets = get("platform_toolsets").unwrap_or(&empty);
    if !platform_toolsets.is_mapping() {
        return None;
    }
    let raw = platform_toolsets.get(PLATFORM);
    let explicit_list = raw.and_then(Yaml::as_sequence);
    let names: Vec<String> = match explicit_list {
        Some(items) => items.iter().map(py_str).collect(),
        None => vec![PLATFORM_DEFAULT_TOOLSET.to_string()],
    };
    let has = |n: &str| names.iter().any(|x| x == n);
    let hass = non_blank_env(var, ENV_HASS_TOKEN);
    let mut default_off: Names = DEFAULT_OFF.iter().map(|s| s.to_string()).collect();
    if hass {
        default_off.remove("homeassistant");
    }
    // Checklist toolsets whose own tools a composite covers.
    let covered_by = |tools: &Names| -> Names {
        CONFIGURABLE
            .iter()
            .filter(|k| allowed_on_platform(k))
            .filter(|k| {
                let own = resolve(k);
                !own.is_empty() && own.is_subset(tools)
            })
            .map(|k| k.to_string())
            .collect()
    };
    let mut enabled: Names;
    if names.iter().any(|n| configurable(n)) {
        enabled = names
            .iter()
            .filter(|n| configurable(n) && allowed_on_platform(n))
            .cloned()
            .collect();
        let composite: Names = names
            .iter()
            .filter(|n| !configurable(n) && find(n).is_some())
            .flat_map(|n| resolve(n))
            .collect();
        if !composite.is_empty() {
            let expanded = covered_by(&composite);
            enabled.extend(expanded.difference(&default_off).cloned());
        }
    } else {
        let all: Names = names.iter().flat_map(|n| resolve(n)).collect();
        enabled = covered_by(&all);
        if allowed_on_platform("x_search") && non_blank_env(var, ENV_XAI_API_KEY) {
            enabled.insert("x_search".into());
            default_off.remove("x_search");
        }
        enabled.retain(|t| !default_off.contains(t));
    }
    // Platform toolsets the checklist does not offer (e.g. `kanban`).
    let universe = resolve(PLATFORM_DEFAULT_TOOLSET);
    let configurable_universe: Names = CONFIGURABLE.iter().flat_map(|k| resolve(k)).collect();
    let mut claimed: Names = enabled.iter().flat_map(|k| resolve(k)).collect();
    for t in TOOLSETS {
        let skip = configurable(t.name)
            || PLATFORM_DEFAULTS.contains(&t.name)
            || t.name.starts_with("hermes-")
            || (DEFAULT_OFF.contains(&t.name) && t.name != PLATFORM);
        if skip || !t.includes.is_empty() || t.posture {
            continue;
        }
        let tools = resolve(t.name);
        if tools.is_empty()
            || !tools.is_subset(&universe)
            || tools.is_subset(&configurable_universe)
        {
            continue;
        }
        if !tools.is_subset(&claimed) {
            enabled.insert(t.name.to_string());
            claimed.extend(tools);
        }
    }
    let context = config.get("context").filter(|c| c.is_mapping());
    let engine = context
        .and_then(|c| c.get("engine"))
        .filter(|e| truthy(e))
        .map(py_str)
        .unwrap_or_else(|| DEFAULT_CONTEXT_ENGINE.into())
        .trim()
        .to_lowercase();
    let explicit_empty = explicit_list.is_some_and(|l| l.is_empty());
    if !engine.is_empty() && engine != DEFAULT_CONTEXT_ENGINE && !explicit_empty {
        enabled.insert("context_engine".into());
    }
    let passthrough: Names = names
        .iter()
        .filter(|n| !configurable(n) && !PLATFORM_DEFAULTS.contains(&n.as_str()))
        .cloned()
        .collect();
    let mcp: Names = match get("mcp_servers") {
        None => Names::new(),
        Some(Yaml::Mapping(servers)) => servers
            .iter()
            .filter(|(_, cfg)| cfg.is_mapping() && enabled_flag(cfg.get("enabled")))
            .map(|(name, _)| py_str(name))
            .collect(),
        Some(_) => return None,
    };
    let explicit_mcp: Names = if has(NO_MCP) {
        enabled.extend(
            passthrough
                .iter()
                .filter(|n| !mcp.contains(*n) && *n != NO_MCP)
                .cloned(),
        );
        Names::new()
    } else {
        enabled.extend(passthrough.difference(&mcp).cloned());
        passthrough.intersection(&mcp).cloned().collect()
    };
    if !explicit_mcp.is_empty() || has(NO_MCP) {
        enabled.extend(explicit_mcp);
    } else {
        enabled.extend(mcp);
    }
    let disabled: Names = match config.get("agent") {
        Some(Yaml::Mapping(agent)) => match agent.get("disabled_toolsets").filter(|d| truthy(d)) {
            None => Names::new(),
            Some(Yaml::Sequence(items)) => items.iter().map(py_str).collect(),
            Some(Yaml::String(s)) => s.chars().map(String::from).collect(),
            Some(Yaml::Mapping(m)) => m.keys().map(py_str).collect(),
            Some(_) => return None,
        },
        Some(a) if truthy(a) => return None,
        _ => Names::new(),
    };
    enabled.retain(|t| !disabled.contains(t));
    (!enabled.is_empty()).then(|| enabled.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_with(config: Option<&str>, env: &[(&str, &str)]) -> Option<Vec<String>> {
        let home = tempfile::tempdir().unwrap();
        if let Some(c) = config {
            std::fs::write(home.path().join("config.yaml"), c).unwrap();
        }
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([(ENV_MANAGED_DIR.to_string(), "/nonexistent".to_string())])
            .collect();
        let var = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        resolve_cli_toolsets(home.path(), &var)
    }

    const BARE: [&str; 17] = [
        "browser",
        "clarify",
        "code_execution",
        "computer_use",
        "cronjob",
        "delegation",
        "file",
        "image_gen",
        "kanban",
        "memory",
        "session_search",
        "skills",
        "terminal",
        "todo",
        "tts",
        "vision",
        "web",
    ];

    #[test]
    fn a_remembered_resolution_follows_config_and_environment_changes() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("config.yaml");
        std::fs::write(&config, "platform_toolsets:\n  cli: [file]\n").unwrap();
        let no_env = |_: &str| None;
        let first = resolve_cli_toolsets(home.path(), &no_env).unwrap();
        assert_eq!(first, ["file", "kanban"]);
        assert_eq!(resolve_cli_toolsets(home.path(), &no_env).unwrap(), first);
        std::fs::write(&config, "platform_toolsets:\n  cli: [file, terminal]\n").unwrap();
        assert_eq!(
            resolve_cli_toolsets(home.path(), &no_env).unwrap(),
            ["file", "kanban", "terminal"]
        );
        std::fs::write(&config, "platform_toolsets:\n  cli: [\"${PICK}\"]\n").unwrap();
        let pick = |v: &'static str| move |k: &str| (k == "PICK").then(|| v.to_string());
        assert_eq!(
            resolve_cli_toolsets(home.path(), &pick("web")).unwrap(),
            ["kanban", "web"]
        );
        assert_eq!(
            resolve_cli_toolsets(home.path(), &pick("file")).unwrap(),
            ["file", "kanban"]
        );
    }

    #[test]
    fn a_bare_profile_gets_the_full_cli_surface() {
        assert_eq!(resolve_with(None, &[]).unwrap(), BARE);
        assert_eq!(resolve_with(Some("{{{ not yaml"), &[]).unwrap(), BARE);
        let hass = resolve_with(None, &[("HASS_TOKEN", "x")]).unwrap();
        assert!(hass.contains(&"homeassistant".to_string()));
    }

    #[test]
    fn a_pinned_list_is_kept_with_the_platform_extras() {
        let got = resolve_with(
            Some("platform_toolsets:\n  cli: [file, terminal, my_custom]\n"),
            &[],
        )
        .unwrap();
        assert_eq!(got, ["file", "kanban", "my_custom", "terminal"]);
        let mixed = resolve_with(
            Some("platform_toolsets: {cli: [hermes-cli, spotify]}\nagent: {disabled_toolsets: [memory]}\n"),
            &[],
        )
        .unwrap();
        assert!(mixed.contains(&"spotify".to_string()));
        assert!(!mixed.contains(&"memory".to_string()));
        assert_eq!(resolve_with(Some("platform_toolsets: [a]\n"), &[]), None);
    }

    #[test]
    fn mcp_servers_and_context_engines_join() {
        let got = resolve_with(
            Some(
                "mcp_servers: {gh: {command: x}, off: {command: y, enabled: false}}\n\
                 context: {engine: LCM}\nplatform_toolsets: {cli: [file]}\n",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(got, ["context_engine", "file", "gh", "kanban"]);
        let none = resolve_with(
            Some("mcp_servers: {gh: {command: x}}\nplatform_toolsets: {cli: [file, no_mcp]}\n"),
            &[],
        )
        .unwrap();
        assert_eq!(none, ["file", "kanban"]);
    }
}
