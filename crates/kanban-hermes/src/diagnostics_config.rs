//! The diagnostics' thresholds and triage context from `<root>/config.yaml`
//! (reference `config_from_runtime_config`): `kanban.diagnostics.*`
//! overrides, the repeated-failure threshold following
//! `kanban.failure_limit` unless set explicitly, and whether the triage
//! helper slots (`auxiliary.kanban_decomposer`, `auxiliary.triage_specifier`)
//! or a main model (`model`) are configured.
//!
//! Read leniently: a missing or unreadable file, or a value of the wrong
//! type, gives the defaults (a broken file is reported by the commands that
//! need it, not by diagnostics). Without a file there is no triage context,
//! so `triage_aux_unavailable` stays quiet.

use std::path::Path;

use kanban_core::diagnostics::{DiagnosticsConfig, TriageAuxStatus};
use serde_norway::Value;

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

/// A slot the user set: a provider other than `auto`, or a model, base URL
/// or key.
fn slot_explicit(slot: Option<&Value>) -> bool {
    let Some(slot) = slot.filter(|s| s.is_mapping()) else {
        return false;
    };
    let provider = text(get(slot, "provider")).to_lowercase();
    if !provider.is_empty() && provider != "auto" {
        return true;
    }
    ["model", "base_url", "api_key"]
        .iter()
        .any(|k| !text(get(slot, k)).is_empty())
}

fn main_model_visible(model: Option<&Value>) -> bool {
    match model {
        Some(m @ Value::Mapping(_)) => {
            let provider = text(get(m, "provider"));
            let name = ["default", "model", "name"]
                .iter()
                .map(|k| text(get(m, k)))
                .find(|s| !s.is_empty())
                .unwrap_or_default();
            !provider.is_empty() && !name.is_empty()
        }
        other => !text(other).is_empty(),
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
    cfg.triage = Some(TriageAuxStatus {
        auto_decompose,
        decomposer_explicit: slot_explicit(aux.and_then(|a| get(a, "kanban_decomposer"))),
        specifier_explicit: slot_explicit(aux.and_then(|a| get(a, "triage_specifier"))),
        main_model_visible: main_model_visible(model),
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
    fn triage_context_from_auxiliary_and_model() {
        assert_eq!(parse("other: 1\n").triage, None);
        let t = parse("model: {provider: openrouter, default: x}\n")
            .triage
            .unwrap();
        assert!(t.main_model_visible && t.auto_decompose);
        let t = parse("model: ''\nkanban: {auto_decompose: false}\nauxiliary: {triage_specifier: {provider: auto}, kanban_decomposer: {model: m}}\n")
            .triage
            .unwrap();
        assert!(!t.main_model_visible && !t.auto_decompose);
        assert!(!t.specifier_explicit && t.decomposer_explicit);
        assert!(parse("model: gpt-x\n").triage.unwrap().main_model_visible);
    }

    #[test]
    fn a_missing_file_gives_the_defaults_without_triage() {
        let c = load_file(Path::new("/nonexistent/config.yaml"), 2);
        assert_eq!(c, DiagnosticsConfig::with_failure_limit(2));
    }
}
