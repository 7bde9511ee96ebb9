//! The `auxiliary:` section of `<root>/config.yaml`: which model answers
//! the board's side questions (reference §7.7) — `triage_specifier`,
//! `kanban_decomposer`, `profile_describer`, `goal_judge`.
//!
//! Each task names either an OpenAI-compatible chat-completions endpoint
//! (any hosted provider, or a local server such as Ollama or vLLM) or a
//! command template that reads the prompt on stdin and prints the answer
//! (any agent CLI). `auxiliary.default` (ours) is used by every task that
//! has no entry of its own. A task with neither is "not configured": the
//! verbs that need it say so and change nothing.
//!
//! ```yaml
//! auxiliary:
//!   default:
//!     base_url: http://127.0.0.1:11434/v1   # Ollama; vLLM: http://host:8000/v1
//!     model: qwen2.5:7b
//!     api_key_env: OLLAMA_API_KEY            # optional: the variable holding the key
//!     timeout: 120                           # seconds
//!   goal_judge:
//!     command: ["llm", "-m", "{model}"]     # prompt on stdin, JSON on stdout
//!     model: gpt-4o-mini
//! ```
//!
//! Hermes' own keys (`provider`, `api_key`, `extra_body`,
//! `reasoning_effort`) are read too: `api_key` works but puts a secret in
//! the file, so `api_key_env` is preferred.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::layout::Root;

/// The specifier's task name (`kanban specify`).
pub const TASK_TRIAGE_SPECIFIER: &str = "triage_specifier";
/// The decomposer's task name (`kanban decompose`, auto-decompose).
pub const TASK_KANBAN_DECOMPOSER: &str = "kanban_decomposer";
/// The profile describer's task name (`describe-auto`).
pub const TASK_PROFILE_DESCRIBER: &str = "profile_describer";
/// The goal-mode completion judge's task name.
pub const TASK_GOAL_JUDGE: &str = "goal_judge";
/// Ours: the entry used by tasks without their own.
pub const TASK_DEFAULT: &str = "default";

/// The reference's per-task call timeouts, seconds.
pub const SPECIFIER_TIMEOUT_SECONDS: u64 = 120;
pub const DECOMPOSER_TIMEOUT_SECONDS: u64 = 180;
pub const OTHER_TIMEOUT_SECONDS: u64 = 60;

/// Seconds one model call may take when the entry sets no `timeout`.
pub fn default_timeout_seconds(task: &str) -> u64 {
    match task {
        TASK_TRIAGE_SPECIFIER => SPECIFIER_TIMEOUT_SECONDS,
        TASK_KANBAN_DECOMPOSER => DECOMPOSER_TIMEOUT_SECONDS,
        _ => OTHER_TIMEOUT_SECONDS,
    }
}

/// Placeholders an auxiliary command template may use.
pub const AUX_TEMPLATE_PLACEHOLDERS: [&str; 2] = ["model", "task"];

/// One `auxiliary.<task>` entry, as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct AuxModelConfig {
    /// Chat-completions base URL (`…/v1`); `/chat/completions` is appended.
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// Name of the environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Hermes' literal key (prefer `api_key_env`).
    pub api_key: Option<String>,
    /// Seconds per call.
    pub timeout: Option<f64>,
    /// Extra request-body keys (Hermes `extra_body`).
    pub extra_body: Option<serde_json::Value>,
    /// Command template (argv): prompt on stdin, answer on stdout.
    pub command: Vec<String>,
    /// Extra environment of the command.
    pub env: BTreeMap<String, String>,
    /// Hermes' provider name; informational here.
    pub provider: Option<String>,
}

impl AuxModelConfig {
    /// An endpoint (base URL and model) or a command is set.
    pub fn is_configured(&self) -> bool {
        !self.command.is_empty() || (non_blank(&self.base_url) && non_blank(&self.model))
    }
}

fn non_blank(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.trim().is_empty())
}

/// The whole `auxiliary:` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuxiliaryConfig {
    pub tasks: BTreeMap<String, AuxModelConfig>,
}

#[derive(Deserialize)]
struct AuxFile {
    #[serde(default)]
    auxiliary: Option<BTreeMap<String, serde_norway::Value>>,
}

impl AuxiliaryConfig {
    /// `<root>/config.yaml`; a missing file or section configures nothing.
    pub fn load(root: &Root) -> Result<AuxiliaryConfig, ConfigError> {
        Self::load_file(&root.config_file())
    }

    pub fn load_file(path: &Path) -> Result<AuxiliaryConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_yaml_str(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuxiliaryConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Entries that are not a mapping of the expected keys are errors
    /// naming the task: a typo here would otherwise silently disable it.
    pub fn from_yaml_str(text: &str, path: &Path) -> Result<AuxiliaryConfig, ConfigError> {
        let yaml_err = |message: String, line: Option<usize>| ConfigError::Yaml {
            path: path.to_path_buf(),
            line,
            message,
        };
        let file: Option<AuxFile> = serde_norway::from_str(text)
            .map_err(|e| yaml_err(e.to_string(), e.location().map(|l| l.line())))?;
        Self::from_entries(file.and_then(|f| f.auxiliary).unwrap_or_default(), path)
    }

    /// The section from an already parsed file (its top-level mapping);
    /// the same checks as [`AuxiliaryConfig::from_yaml_str`].
    pub fn from_document(
        doc: &serde_norway::Value,
        path: &Path,
    ) -> Result<AuxiliaryConfig, ConfigError> {
        let section = doc
            .as_mapping()
            .and_then(|m| m.get("auxiliary"))
            .cloned()
            .unwrap_or(serde_norway::Value::Null);
        let entries: Option<BTreeMap<String, serde_norway::Value>> =
            serde_norway::from_value(section).map_err(|e| ConfigError::Yaml {
                path: path.to_path_buf(),
                line: None,
                message: format!("auxiliary: {e}"),
            })?;
        Self::from_entries(entries.unwrap_or_default(), path)
    }

    fn from_entries(
        entries: BTreeMap<String, serde_norway::Value>,
        path: &Path,
    ) -> Result<AuxiliaryConfig, ConfigError> {
        let yaml_err = |message: String, line: Option<usize>| ConfigError::Yaml {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut tasks = BTreeMap::new();
        for (name, value) in entries {
            if value.is_null() {
                continue;
            }
            let entry: AuxModelConfig = serde_norway::from_value(value)
                .map_err(|e| yaml_err(format!("auxiliary.{name}: {e}"), None))?;
            if entry.command.first().is_some_and(|c| c.trim().is_empty()) {
                return Err(yaml_err(
                    format!("auxiliary.{name}.command: the first item must name a program"),
                    None,
                ));
            }
            tasks.insert(name.trim().to_string(), entry);
        }
        Ok(AuxiliaryConfig { tasks })
    }

    /// The entry answering `task`: its own when configured, else `default`.
    pub fn for_task(&self, task: &str) -> Option<&AuxModelConfig> {
        [task, TASK_DEFAULT]
            .into_iter()
            .filter_map(|t| self.tasks.get(t))
            .find(|c| c.is_configured())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AuxiliaryConfig, ConfigError> {
        AuxiliaryConfig::from_yaml_str(text, Path::new("config.yaml"))
    }

    #[test]
    fn task_entry_wins_over_default() {
        let c = parse(
            "auxiliary:\n  default:\n    base_url: http://127.0.0.1:11434/v1\n    model: a\n  goal_judge:\n    command: [judge, '{model}']\n    model: b\n  triage_specifier:\n    provider: auto\n    model: ''\n",
        )
        .unwrap();
        assert_eq!(c.for_task(TASK_GOAL_JUDGE).unwrap().command[0], "judge");
        // An unconfigured Hermes-style entry falls back to the default.
        assert_eq!(
            c.for_task(TASK_TRIAGE_SPECIFIER).unwrap().model.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn nothing_configured_and_bad_entries() {
        assert!(
            parse("kanban: {}\n")
                .unwrap()
                .for_task(TASK_GOAL_JUDGE)
                .is_none()
        );
        assert!(parse("").unwrap().tasks.is_empty());
        assert!(parse("auxiliary:\n  goal_judge: [1, 2]\n").is_err());
        assert!(parse("auxiliary:\n  goal_judge:\n    command: ['']\n").is_err());
    }
}
