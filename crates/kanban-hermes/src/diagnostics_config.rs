//! The diagnostics' thresholds and triage context from `<root>/config.yaml`
//! (reference `config_from_runtime_config`): `kanban.diagnostics.*`
//! overrides, the repeated-failure threshold following
//! `kanban.failure_limit` unless set explicitly, and whether the triage
//! helpers (`auxiliary.kanban_decomposer`, `auxiliary.triage_specifier`)
//! have a model the way the model client resolves them
//! ([`AuxiliaryConfig::for_task`]: the task's entry, else `auxiliary.default`;
//! an endpoint or a command).
//!
//! Read leniently: a missing or unreadable file, or a value of the wrong
//! type, gives the defaults (a broken file is reported by the commands that
//! need it, not by diagnostics). Without a file there is no triage context,
//! so `triage_aux_unavailable` stays quiet.

use std::path::Path;

use kanban_core::diagnostics::{DiagnosticsConfig, TriageAuxStatus};
use serde_norway::Value;

use crate::auxiliary::{AuxiliaryConfig, TASK_KANBAN_DECOMPOSER, TASK_TRIAGE_SPECIFIER};
use crate::layout::Root;

/// The diagnostics config of a root; `failure_limit` is the dispatcher's
/// resolved `kanban.failure_limit`.
pub fn load(root: &Root, failure_limit: i64) -> DiagnosticsConfig {
    load_file(&root.config_file(), failure_limit)
}

pub fn load_file(path: &Path, failure_limit: i64) -> DiagnosticsConfig {
    let parsed = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_norway::from_str::<Value>(&text).ok());
    match parsed {
        Some(v) => from_value(&v, failure_limit),
        None => DiagnosticsConfig::with_failure_limit(failure_limit),
    }
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(key)
}

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn float(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The config from a parsed file.
pub fn from_value(root: &Value, failure_limit: i64) -> DiagnosticsConfig {
    let mut cfg = DiagnosticsConfig::with_failure_limit(failure_limit);
    let kanban = get(root, "kanban").filter(|k| k.is_mapping());
    if let Some(d) = kanban.and_then(|k| get(k, "diagnostics")) {
        let positive = |key: &str| int(get(d, key)).filter(|n| *n >= 1);
        if let Some(n) =
            positive("failure_threshold").or_else(|| positive("spawn_failure_threshold"))
        {
            cfg.failure_threshold = n;
        }
        if let Some(n) = positive("failure_limit") {
            cfg.failure_limit = n;
        }
        if let Some(n) = int(get(d, "crash_threshold")) {
            cfg.crash_threshold = n;
        }
        if let Some(h) = float(get(d, "blocked_stale_hours")) {
            cfg.blocked_stale_hours = h;
        }
        if let Some(n) = positive("block_cycle_threshold") {
            cfg.block_cycle_threshold = n;
        }
        if let Some(n) = int(get(d, "block_cycle_window_seconds")) {
            cfg.block_cycle_window_seconds = n;
        }
        if let Some(n) = int(get(d, "stranded_threshold_seconds")) {
            cfg.stranded_threshold_seconds = n;
        }
    }
    let aux = get(root, "auxiliary").filter(|a| a.is_mapping());
    let model = get(root, "model");
    if aux.is_none() && kanban.is_none() && model.is_none() {
        return cfg;
    }
    let auto_decompose = match kanban.and_then(|k| get(k, "auto_decompose")) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Null) | None => true,
        Some(other) => !matches!(
            text(Some(other)).to_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off"
        ),
    };
    // A section the client cannot read runs no model.
    let aux = AuxiliaryConfig::from_document(root, Path::new("config.yaml")).unwrap_or_default();
    cfg.triage = Some(TriageAuxStatus {
        auto_decompose,
        decomposer_available: aux.for_task(TASK_KANBAN_DECOMPOSER).is_some(),
        specifier_available: aux.for_task(TASK_TRIAGE_SPECIFIER).is_some(),
    });
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> DiagnosticsConfig {
        from_value(&serde_norway::from_str(yaml).unwrap(), 3)
    }

    #[test]
    fn threshold_follows_the_failure_limit_unless_set() {
        let c = parse("kanban: {failure_limit: 3}\n");
        assert_eq!((c.failure_threshold, c.failure_limit), (3, 3));
        let c = parse(
            "kanban: {diagnostics: {failure_threshold: 5, stranded_threshold_seconds: 60, blocked_stale_hours: 0.5}}\n",
        );
        assert_eq!((c.failure_threshold, c.failure_limit), (5, 3));
        assert_eq!(c.stranded_threshold_seconds, 60);
        assert_eq!(c.blocked_stale_hours, 0.5);
        let c =
            parse("kanban: {diagnostics: {spawn_failure_threshold: 4, failure_threshold: 0}}\n");
        assert_eq!(c.failure_threshold, 4);
    }

    #[test]
    fn triage_context_follows_what_the_model_client_runs() {
        assert_eq!(parse("other: 1\n").triage, None);
        // Hermes' `provider: auto` slots and a main model run nothing here.
        let t = parse("model: {provider: openrouter, default: x}\nauxiliary: {triage_specifier: {provider: auto}}\n")
            .triage
            .unwrap();
        assert!(t.auto_decompose && !t.decomposer_available && !t.specifier_available);
        // `default` answers every task; the command form counts.
        let t = parse("kanban: {auto_decompose: false}\nauxiliary: {default: {base_url: 'http://127.0.0.1:1/v1', model: m}}\n")
            .triage
            .unwrap();
        assert!(!t.auto_decompose && t.decomposer_available && t.specifier_available);
        let t = parse(
            "auxiliary: {kanban_decomposer: {command: [llm]}, triage_specifier: {model: m}}\n",
        )
        .triage
        .unwrap();
        assert!(t.decomposer_available && !t.specifier_available);
        // An unreadable section runs nothing.
        let t = parse("auxiliary: {default: [1, 2]}\n").triage.unwrap();
        assert!(!t.decomposer_available);
    }

    #[test]
    fn a_missing_file_gives_the_defaults_without_triage() {
        let c = load_file(Path::new("/nonexistent/config.yaml"), 2);
        assert_eq!(c, DiagnosticsConfig::with_failure_limit(2));
    }
}
