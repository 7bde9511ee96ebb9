//! The orchestration settings of `config.yaml` the dashboard edits
//! (reference `GET/PUT /orchestration`): who owns a decomposed root, who
//! catches unrouted cards, and whether the gateway decomposes on its own.
//! Writing keeps every other key of the file; comments are not kept.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_norway::{Mapping, Value};

use crate::config::{ConfigError, KanbanConfig};

/// The settings, as `GET /orchestration` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Orchestration {
    pub orchestrator_profile: Option<String>,
    pub default_assignee: Option<String>,
    pub auto_decompose: bool,
    pub auto_promote_children: bool,
}

impl Orchestration {
    pub fn of(c: &KanbanConfig) -> Orchestration {
        Orchestration {
            orchestrator_profile: c.orchestrator_profile.clone(),
            default_assignee: c.default_assignee.clone(),
            auto_decompose: c.auto_decompose,
            auto_promote_children: c.auto_promote_children,
        }
    }
}

/// A change: `None` keeps a key; an empty profile name clears it.
#[derive(Debug, Clone, Default)]
pub struct OrchestrationChange {
    pub orchestrator_profile: Option<String>,
    pub default_assignee: Option<String>,
    pub auto_decompose: Option<bool>,
    pub auto_promote_children: Option<bool>,
}

/// Apply `change` to the `kanban:` section of the file at `path` (created
/// when missing), atomically, and return the new settings.
pub fn write(path: &Path, change: &OrchestrationChange) -> Result<Orchestration, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let yaml_err = |message: String| ConfigError::Yaml {
        path: path.to_path_buf(),
        line: None,
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(read_err(e)),
    };
    let mut doc: Value = serde_norway::from_str::<Option<Value>>(&text)
        .map_err(|e| yaml_err(e.to_string()))?
        .unwrap_or(Value::Mapping(Mapping::new()));
    let Value::Mapping(top) = &mut doc else {
        return Err(yaml_err("the file is not a mapping".into()));
    };
    let kanban = top
        .entry(Value::String("kanban".into()))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if kanban.is_null() {
        *kanban = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(k) = kanban else {
        return Err(yaml_err("kanban: is not a mapping".into()));
    };
    let mut set_name = |key: &str, v: &Option<String>| {
        if let Some(v) = v {
            let v = v.trim().to_lowercase();
            k.insert(
                Value::String(key.into()),
                if v.is_empty() {
                    Value::String(String::new())
                } else {
                    Value::String(v)
                },
            );
        }
    };
    set_name("orchestrator_profile", &change.orchestrator_profile);
    set_name("default_assignee", &change.default_assignee);
    for (key, v) in [
        ("auto_decompose", change.auto_decompose),
        ("auto_promote_children", change.auto_promote_children),
    ] {
        if let Some(b) = v {
            k.insert(Value::String(key.into()), Value::Bool(b));
        }
    }
    let out = serde_norway::to_string(&doc).map_err(|e| yaml_err(e.to_string()))?;
    // The whole file must still load before it replaces the old one.
    let cfg = KanbanConfig::from_yaml_str(&out, path)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(read_err)?;
    }
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, &out).map_err(read_err)?;
    std::fs::rename(&tmp, path).map_err(read_err)?;
    Ok(Orchestration::of(&cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_keep_other_keys() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("config.yaml");
        std::fs::write(&p, "model: x\nkanban:\n  failure_limit: 5\n").unwrap();
        let o = write(
            &p,
            &OrchestrationChange {
                orchestrator_profile: Some("Lead".into()),
                auto_decompose: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(o.orchestrator_profile.as_deref(), Some("lead"));
        assert!(!o.auto_decompose && o.auto_promote_children);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("model: x") && text.contains("failure_limit: 5"),
            "{text}"
        );
    }
}
