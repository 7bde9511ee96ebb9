//! The board operations that ask the model: specify and decompose a
//! triage card, judge a goal-mode completion, describe a profile. Each
//! reads, asks, validates the answer, and only then makes its one store
//! call; an expected failure is an [`Outcome`] with `ok: false` and a
//! reason, never a panic or a half-applied change.

use kanban_core::{Status, Task};
use kanban_store::triage::{DecomposeRequest, SpecifyRequest};
use kanban_store::{Store, StoreError};
use serde::Serialize;

use crate::AuxError;
use crate::client::{ChatRequest, ModelClient};
use crate::plan::{self, DecomposePlan, Routing, SpecPlan, Verdict};
use crate::prompts;

/// Call settings per operation (the reference's).
const SPECIFY_TEMPERATURE: f64 = 0.3;
const SPECIFY_MAX_TOKENS: u32 = 6000;
const DECOMPOSE_TEMPERATURE: f64 = 0.3;
const DECOMPOSE_MAX_TOKENS: u32 = 4000;
const JUDGE_MAX_TOKENS: u32 = 1024;
const JUDGE_TEMPERATURE: f64 = 0.0;
const DESCRIBE_MAX_TOKENS: u32 = 400;
const DESCRIBE_TEMPERATURE: f64 = 0.3;

/// What happened to one card (the per-id line of `--json`, the API body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub task_id: String,
    pub ok: bool,
    pub reason: String,
    pub fanout: bool,
    pub child_ids: Option<Vec<String>>,
    pub new_title: Option<String>,
}

impl Outcome {
    fn fail(task_id: &str, reason: impl Into<String>) -> Outcome {
        Outcome {
            task_id: task_id.to_string(),
            ok: false,
            reason: reason.into(),
            fanout: false,
            child_ids: None,
            new_title: None,
        }
    }
}

/// Where the decomposer routes work.
#[derive(Debug, Clone, Default)]
pub struct DecomposeSetup {
    /// (name, description) of every profile.
    pub roster: Vec<(String, String)>,
    pub default_assignee: Option<String>,
    /// The root's assignee after a fan-out (it wakes when all children are done).
    pub orchestrator: Option<String>,
    /// `kanban.auto_promote_children: false`: the children stay in todo
    /// for the next dispatcher pass.
    pub keep_children_in_todo: bool,
}

/// The triage card `id`, or why it cannot be triaged.
fn triage_card(store: &dyn Store, id: &str) -> Result<Task, String> {
    match store.get_task(id) {
        Ok(Some(t)) if t.status == Status::Triage => Ok(t),
        Ok(Some(t)) => Err(format!(
            "task is not in triage (status={})",
            t.status.as_str()
        )),
        Ok(None) => Err("unknown task id".into()),
        Err(e) => Err(format!("cannot read the task: {e}")),
    }
}

fn not_configured(task: &str) -> String {
    format!(
        "no auxiliary model is configured (set auxiliary.{task} or auxiliary.default in config.yaml)"
    )
}

fn ask(client: &dyn ModelClient, req: &ChatRequest<'_>) -> Result<String, String> {
    client.chat(req).map_err(|e| match e {
        AuxError::Transport(m) => format!("model call failed: {m}"),
        AuxError::Malformed(m) => format!("model answer refused: {m}"),
    })
}

fn store_refusal(e: StoreError) -> String {
    match e {
        StoreError::Refused { .. } => "task moved out of triage before it could be changed".into(),
        StoreError::TaskNotFound(_) => "unknown task id".into(),
        other => format!("the board refused the change: {other}"),
    }
}

/// Specify one triage card: ask for a title and body, move it to todo.
pub fn specify(
    store: &dyn Store,
    client: Option<&dyn ModelClient>,
    id: &str,
    author: &str,
) -> Outcome {
    let task = match triage_card(store, id) {
        Ok(t) => t,
        Err(why) => return Outcome::fail(id, why),
    };
    let Some(client) = client else {
        return Outcome::fail(
            id,
            not_configured(kanban_hermes::auxiliary::TASK_TRIAGE_SPECIFIER),
        );
    };
    let user = prompts::specify_user(&task.id, &task.title, task.body.as_deref());
    let raw = match ask(
        client,
        &ChatRequest {
            system: prompts::SPECIFY_SYSTEM,
            user: &user,
            temperature: SPECIFY_TEMPERATURE,
            max_tokens: SPECIFY_MAX_TOKENS,
        },
    ) {
        Ok(r) => r,
        Err(why) => return Outcome::fail(id, why),
    };
    let spec = match plan::parse_spec(&raw) {
        Ok(s) => s,
        Err(why) => return Outcome::fail(id, format!("model answer refused: {why}")),
    };
    apply_spec(store, &task, spec, None, author, "specified")
}

fn apply_spec(
    store: &dyn Store,
    task: &Task,
    spec: SpecPlan,
    assignee: Option<String>,
    author: &str,
    what: &str,
) -> Outcome {
    let req = SpecifyRequest {
        task_id: task.id.clone(),
        title: spec.title.clone(),
        body: spec.body,
        // The reference only fills an empty assignee.
        assignee: assignee.filter(|_| task.assignee.is_none()),
        author: Some(author.to_string()),
    };
    match store.specify_triage_task(&req) {
        Ok(done) => Outcome {
            task_id: task.id.clone(),
            ok: true,
            reason: what.to_string(),
            fanout: false,
            child_ids: None,
            new_title: done
                .changed_fields
                .iter()
                .any(|f| f == "title")
                .then_some(done.task.title),
        },
        Err(e) => Outcome::fail(&task.id, store_refusal(e)),
    }
}

/// Decompose one triage card into children routed by the roster (or, when
/// the model sees one piece of work, specify it).
pub fn decompose(
    store: &dyn Store,
    client: Option<&dyn ModelClient>,
    setup: &DecomposeSetup,
    id: &str,
    author: &str,
) -> Outcome {
    let task = match triage_card(store, id) {
        Ok(t) => t,
        Err(why) => return Outcome::fail(id, why),
    };
    let Some(client) = client else {
        return Outcome::fail(
            id,
            not_configured(kanban_hermes::auxiliary::TASK_KANBAN_DECOMPOSER),
        );
    };
    let routing = Routing {
        profiles: setup.roster.iter().map(|(n, _)| n.clone()).collect(),
        default_assignee: setup.default_assignee.clone(),
    };
    let user = prompts::decompose_user(
        &task.id,
        &task.title,
        task.body.as_deref(),
        &prompts::roster_lines(&setup.roster),
        setup.default_assignee.as_deref(),
    );
    let raw = match ask(
        client,
        &ChatRequest {
            system: prompts::DECOMPOSE_SYSTEM,
            user: &user,
            temperature: DECOMPOSE_TEMPERATURE,
            max_tokens: DECOMPOSE_MAX_TOKENS,
        },
    ) {
        Ok(r) => r,
        Err(why) => return Outcome::fail(id, why),
    };
    let children = match plan::parse_decompose(&raw, &routing) {
        Ok(DecomposePlan::Single { spec, assignee }) => {
            return apply_spec(
                store,
                &task,
                spec,
                assignee,
                author,
                "single task (no fan-out)",
            );
        }
        Ok(DecomposePlan::Fanout { children }) => children,
        Err(why) => return Outcome::fail(id, format!("model answer refused: {why}")),
    };
    let req = DecomposeRequest {
        task_id: task.id.clone(),
        children,
        root_assignee: setup.orchestrator.clone(),
        author: Some(author.to_string()),
        keep_children_in_todo: setup.keep_children_in_todo,
    };
    match store.decompose_triage_task(&req) {
        Ok(done) => Outcome {
            task_id: task.id.clone(),
            ok: true,
            reason: format!("decomposed into {} children", done.child_ids.len()),
            fanout: true,
            child_ids: Some(done.child_ids),
            new_title: None,
        },
        Err(e) => Outcome::fail(&task.id, store_refusal(e)),
    }
}

/// The judge's decision on completing a goal-mode card with `evidence`
/// (its summary or result). `Err` carries the reason to refuse with.
pub fn judge_completion(
    client: &dyn ModelClient,
    task: &Task,
    evidence: &str,
) -> Result<Verdict, String> {
    if evidence.trim().is_empty() {
        return Ok(Verdict {
            done: false,
            reason: "no summary or result to judge".into(),
        });
    }
    let goal = format!("{}\n\n{}", task.title, task.body.as_deref().unwrap_or(""))
        .trim()
        .to_string();
    let raw = ask(
        client,
        &ChatRequest {
            system: prompts::JUDGE_SYSTEM,
            user: &prompts::judge_user(&goal, evidence),
            temperature: JUDGE_TEMPERATURE,
            max_tokens: JUDGE_MAX_TOKENS,
        },
    )?;
    plan::parse_verdict(&raw).map_err(|why| format!("judge answer refused: {why}"))
}

/// A description of profile `name` from what is known about it.
pub fn describe_profile(
    client: &dyn ModelClient,
    name: &str,
    facts: &str,
    max_chars: usize,
) -> Result<String, String> {
    let raw = ask(
        client,
        &ChatRequest {
            system: prompts::DESCRIBE_SYSTEM,
            user: &prompts::describe_user(name, facts),
            temperature: DESCRIBE_TEMPERATURE,
            max_tokens: DESCRIBE_MAX_TOKENS,
        },
    )?;
    plan::parse_description(&raw, max_chars).map_err(|why| format!("model answer refused: {why}"))
}

/// Ids of the board's triage cards (optionally of one tenant), oldest first.
pub fn triage_ids(store: &dyn Store, tenant: Option<&str>) -> Result<Vec<String>, StoreError> {
    let mut tasks = store.list_tasks(&kanban_store::TaskQuery {
        status: Some(Status::Triage),
        tenant: tenant.map(str::to_string),
        ..Default::default()
    })?;
    tasks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(tasks.into_iter().map(|t| t.id).collect())
}
