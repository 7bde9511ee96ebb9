//! Triage by an auxiliary model: the model client (`client`: an
//! OpenAI-compatible chat-completions endpoint, or a command template that
//! reads the prompt on stdin), the prompts (`prompts`), validation of every
//! answer as pure functions (`plan`), and the board operations that use
//! them (`ops`: specify, decompose, goal judge, profile describer).
//!
//! This crate never trusts a model: an answer is parsed and checked
//! (types, bounds, sibling-index graph without cycles, known profiles)
//! before the one store call that applies it, so a malformed or hostile
//! answer changes nothing. It reads `auxiliary:` through `kanban-hermes`
//! and writes through the `Store` traits only.

pub mod client;
pub mod extract;
pub mod ops;
pub mod plan;
pub mod prompts;

use kanban_hermes::auxiliary::AuxiliaryConfig;
use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::Root;
use kanban_hermes::profile_meta;

pub use client::{ChatRequest, ModelClient, client_for};
pub use ops::{DecomposeSetup, Outcome};

/// Why a model call produced no usable text.
#[derive(Debug, thiserror::Error)]
pub enum AuxError {
    /// The endpoint or command could not be reached, failed or timed out.
    #[error("{0}")]
    Transport(String),
    /// It answered, but not in a shape we can read.
    #[error("{0}")]
    Malformed(String),
}

/// The model configured for `task` in `<root>/config.yaml`, with API keys
/// read from this process's environment. `Err`: the file is unreadable.
pub fn client_from_root(root: &Root, task: &str) -> Result<Option<Box<dyn ModelClient>>, String> {
    let aux = AuxiliaryConfig::load(root).map_err(|e| e.to_string())?;
    Ok(client_for(&aux, task, &|k| std::env::var(k).ok()))
}

/// A configured profile name, when it is a known one.
fn known(roster: &[(String, String)], name: Option<&str>) -> Option<String> {
    let name = name?.trim().to_lowercase();
    roster.iter().any(|(n, _)| *n == name).then_some(name)
}

/// The decomposer's routing from config: the roster with descriptions,
/// `kanban.default_assignee` (else `default`) for unrouted cards, and
/// `kanban.orchestrator_profile` (else `default`) for the root.
pub fn decompose_setup(root: &Root, config: &KanbanConfig) -> DecomposeSetup {
    let roster: Vec<(String, String)> = profile_meta::roster(root, config)
        .into_iter()
        .map(|p| (p.name, p.description))
        .collect();
    let default_assignee = known(&roster, config.default_assignee.as_deref())
        .or_else(|| known(&roster, Some("default")));
    let orchestrator = known(&roster, config.orchestrator_profile.as_deref())
        .or_else(|| known(&roster, Some("default")));
    DecomposeSetup {
        roster,
        default_assignee,
        orchestrator,
        keep_children_in_todo: !config.auto_promote_children,
    }
}
