//! Worker command templates (`kanban.profiles.<name>` in config.yaml):
//! the argv and environment of a non-Hermes worker, with placeholders the
//! dispatcher fills in per task. Pure text work: no files, no processes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Placeholders a profile command template may use.
pub const TEMPLATE_PLACEHOLDERS: [&str; 7] = [
    "task_id",
    "prompt",
    "workspace",
    "skills",
    "model",
    "board",
    "title",
];

/// A worker defined by a command template rather than a Hermes profile dir.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct ProfileSpec {
    /// argv template; the first item is the executable.
    pub command: Vec<String>,
    /// Extra environment for the worker; values are templates too.
    pub env: BTreeMap<String, String>,
    pub description: Option<String>,
    /// Default for `{model}` when the task has no model override.
    pub model: Option<String>,
}

/// Values substituted into a [`ProfileSpec`] template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateVars {
    pub task_id: String,
    pub prompt: String,
    pub workspace: String,
    pub skills: Vec<String>,
    /// Task-level model override.
    pub model: Option<String>,
    pub board: String,
    pub title: String,
}

impl ProfileSpec {
    /// argv with placeholders expanded. Every item stays one argument (no
    /// shell), so a prompt with spaces or quotes is passed verbatim.
    pub fn render_command(&self, vars: &TemplateVars) -> Vec<String> {
        self.command.iter().map(|a| self.render(a, vars)).collect()
    }

    /// `env` with placeholders expanded.
    pub fn render_env(&self, vars: &TemplateVars) -> BTreeMap<String, String> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), self.render(v, vars)))
            .collect()
    }

    fn render(&self, template: &str, vars: &TemplateVars) -> String {
        let mut out = String::with_capacity(template.len());
        for piece in parse_template(template) {
            match piece {
                Piece::Text(t) => out.push_str(&t),
                Piece::Var(name) => out.push_str(&match name.as_str() {
                    "task_id" => vars.task_id.clone(),
                    "prompt" => vars.prompt.clone(),
                    "workspace" => vars.workspace.clone(),
                    "skills" => vars.skills.join(","),
                    "model" => vars
                        .model
                        .clone()
                        .or_else(|| self.model.clone())
                        .unwrap_or_default(),
                    "board" => vars.board.clone(),
                    "title" => vars.title.clone(),
                    // Refused at load time; keep the text if built by hand.
                    other => format!("{{{other}}}"),
                }),
            }
        }
        out
    }

    /// Non-empty command, known placeholders only.
    pub fn validate(&self) -> Result<(), String> {
        if self.command.first().is_none_or(|c| c.trim().is_empty()) {
            return Err(
                "command is required: a non-empty list, e.g. [\"claude\", \"-p\", \"{prompt}\"]"
                    .into(),
            );
        }
        for t in self.command.iter().chain(self.env.values()) {
            for piece in parse_template(t) {
                if let Piece::Var(name) = piece
                    && !TEMPLATE_PLACEHOLDERS.contains(&name.as_str())
                {
                    return Err(format!(
                        "unknown placeholder {{{name}}} in {t:?}; known: {}",
                        TEMPLATE_PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

enum Piece {
    Text(String),
    Var(String),
}

fn parse_template(t: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = t;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") || rest.starts_with("}}") {
            text.push(c);
            rest = &rest[2..];
            continue;
        }
        if c == '{'
            && let Some(end) = rest.find('}')
        {
            let name = &rest[1..end];
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Var(name.to_string()));
                rest = &rest[end + 1..];
                continue;
            }
        }
        text.push(c);
        rest = &rest[c.len_utf8()..];
    }
    pieces.push(Piece::Text(text));
    pieces
}
