//! Triage by the auxiliary model over REST (reference §6): Specify and
//! Decompose on a triage card, the orchestration settings the decomposer
//! routes by, and the profile roster with its descriptions. The model
//! is the one `auxiliary.<task>` in config.yaml names, re-read per call.
//!
//! A model that fails or answers badly is not an HTTP error: the reply is
//! 200 `{ok: false, reason}` and nothing changed (the reference's shape).
//! Bad input is a 400, an unknown card or profile a 404, a card that is
//! not in triage a 409.

use axum::Json;
use axum::extract::{Path, State};
use kanban_aux::{Outcome, client_from_root, decompose_setup, ops};
use kanban_core::Status;
use kanban_hermes::auxiliary::{
    TASK_KANBAN_DECOMPOSER, TASK_PROFILE_DESCRIBER, TASK_TRIAGE_SPECIFIER,
};
use kanban_hermes::orchestration::{self, Orchestration, OrchestrationChange};
use kanban_hermes::profile_meta::{self, DESCRIPTION_MAX_CHARS, DescribeError, ProfileDescription};
use kanban_hermes::profiles::{ProfileKind, Profiles};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::*;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Author of the audit comment when the request names none.
pub const DASHBOARD_AUTHOR: &str = "dashboard";

/// `POST /tasks/{id}/specify` and `/decompose` (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TriageBody {
    /// Author of the audit comment (default `dashboard`).
    pub author: Option<String>,
}

/// What one Specify/Decompose did.
#[derive(Debug, Serialize, ToSchema)]
pub struct TriageOutcome {
    pub task_id: String,
    pub ok: bool,
    /// What happened, or why nothing did.
    pub reason: String,
    /// Children were created (decompose).
    pub fanout: bool,
    pub child_ids: Option<Vec<String>>,
    pub new_title: Option<String>,
}

impl From<Outcome> for TriageOutcome {
    fn from(o: Outcome) -> Self {
        TriageOutcome {
            task_id: o.task_id,
            ok: o.ok,
            reason: o.reason,
            fanout: o.fanout,
            child_ids: o.child_ids,
            new_title: o.new_title,
        }
    }
}

fn author_of(body: &TriageBody) -> String {
    body.author
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or(DASHBOARD_AUTHOR)
        .to_string()
}

/// 404 for an unknown card, 409 for one outside triage.
fn require_triage(store: &dyn kanban_store::Store, id: &str) -> ApiResult<()> {
    let task = require_task(store, id)?;
    if task.status != Status::Triage {
        return Err(ApiError::conflict(format!(
            "task {id} is not in triage (status={})",
            task.status.as_str()
        )));
    }
    Ok(())
}

fn model_client(st: &AppState, task: &str) -> ApiResult<Option<Box<dyn kanban_aux::ModelClient>>> {
    client_from_root(st.root(), task).map_err(ApiError::internal)
}

/// Ask the specifier (`auxiliary.triage_specifier`) for a title and a
/// specification, and move the card triage → todo.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/specify", params(("task_id" = String, Path), BoardQuery),
    request_body(content = TriageBody, description = "Optional"), tag = "triage",
    responses((status = 200, description = "Done, or `ok: false` with the reason (nothing changed)", body = TriageOutcome),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not in triage", body = ErrorBody)))]
pub async fn specify(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<TriageOutcome>> {
    let body: TriageBody = optional_json(&body)?;
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        require_triage(board.store.as_ref(), &task_id)?;
        let client = model_client(&st, TASK_TRIAGE_SPECIFIER)?;
        let out = ops::specify(
            board.store.as_ref(),
            client.as_deref(),
            &task_id,
            &author_of(&body),
        );
        Ok(Json(out.into()))
    })
    .await
}

/// Ask the decomposer (`auxiliary.kanban_decomposer`) to fan the card out
/// into child cards routed to profiles; the card waits for them in todo.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/decompose", params(("task_id" = String, Path), BoardQuery),
    request_body(content = TriageBody, description = "Optional"), tag = "triage",
    responses((status = 200, description = "Done, or `ok: false` with the reason (nothing changed)", body = TriageOutcome),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not in triage", body = ErrorBody)))]
pub async fn decompose(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<TriageOutcome>> {
    let body: TriageBody = optional_json(&body)?;
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        require_triage(board.store.as_ref(), &task_id)?;
        let client = model_client(&st, TASK_KANBAN_DECOMPOSER)?;
        let setup = decompose_setup(st.root(), &st.config()?);
        let out = ops::decompose(
            board.store.as_ref(),
            client.as_deref(),
            &setup,
            &task_id,
            &author_of(&body),
        );
        Ok(Json(out.into()))
    })
    .await
}

/// One profile of the roster.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub name: String,
    /// `hermes` (a profile directory) or `template` (`kanban.profiles`).
    pub kind: String,
    pub description: String,
    /// Written by the profile describer.
    pub description_auto: bool,
    /// False for templates: their description lives in config.yaml.
    pub editable: bool,
}

impl From<ProfileDescription> for ProfileView {
    fn from(p: ProfileDescription) -> Self {
        ProfileView {
            name: p.name,
            kind: p.kind.to_string(),
            description: p.description,
            description_auto: p.description_auto,
            editable: p.editable,
        }
    }
}

/// `GET /profiles`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfilesView {
    pub profiles: Vec<ProfileView>,
}

/// The profiles the decomposer may route to, with their descriptions.
#[utoipa::path(get, path = "/api/v1/profiles", tag = "triage",
    responses((status = 200, body = ProfilesView)))]
pub async fn list_profiles(State(st): State<AppState>) -> ApiResult<Json<ProfilesView>> {
    blocking(move || {
        let config = st.config()?;
        let profiles = profile_meta::roster(st.root(), &config)
            .into_iter()
            .map(ProfileView::from)
            .collect();
        Ok(Json(ProfilesView { profiles }))
    })
    .await
}

/// `PATCH /profiles/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// One or two sentences on what the profile is good at; empty clears it.
    #[schema(max_length = 600)]
    pub description: String,
}

fn describe_error(e: DescribeError) -> ApiError {
    match e {
        DescribeError::UnknownProfile(_) => ApiError::not_found(e.to_string()),
        DescribeError::Template(_) | DescribeError::TooLong => ApiError::bad_request(e.to_string()),
        DescribeError::Write { .. } => ApiError::internal(e.to_string()),
    }
}

/// Set a Hermes profile's description (`profile.yaml` in its directory).
#[utoipa::path(patch, path = "/api/v1/profiles/{name}", params(("name" = String, Path)),
    request_body = ProfilePatch, tag = "triage",
    responses((status = 200, body = ProfileView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn patch_profile(
    State(st): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ProfilePatch>,
) -> ApiResult<Json<ProfileView>> {
    blocking(move || {
        let config = st.config()?;
        let p = profile_meta::set_description(st.root(), &config, &name, &body.description, false)
            .map_err(describe_error)?;
        Ok(Json(p.into()))
    })
    .await
}

/// `POST /profiles/{name}/describe-auto`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DescribeOutcome {
    pub ok: bool,
    pub reason: String,
    pub profile: Option<ProfileView>,
}

/// What the describer is told about a profile.
fn profile_facts(kind: &ProfileKind) -> String {
    match kind {
        ProfileKind::Template { spec } => format!(
            "A worker started by the command {:?}{}.",
            spec.command.first().cloned().unwrap_or_default(),
            spec.model
                .as_deref()
                .map(|m| format!(" with model {m}"))
                .unwrap_or_default()
        ),
        ProfileKind::Hermes { dir } => {
            let soul = std::fs::read_to_string(dir.join("SOUL.md")).unwrap_or_default();
            let cfg = std::fs::read_to_string(dir.join("config.yaml")).unwrap_or_default();
            format!("A Hermes agent profile.\nSOUL.md:\n{soul}\nconfig.yaml:\n{cfg}")
        }
    }
}

/// Have the describer (`auxiliary.profile_describer`) write the profile's
/// description.
#[utoipa::path(post, path = "/api/v1/profiles/{name}/describe-auto", params(("name" = String, Path)), tag = "triage",
    responses((status = 200, description = "Done, or `ok: false` with the reason (nothing changed)", body = DescribeOutcome),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn describe_auto(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<DescribeOutcome>> {
    blocking(move || {
        let config = st.config()?;
        let kind = Profiles::new(st.root(), &config)
            .resolve_profile(&name)
            .ok_or_else(|| ApiError::not_found(format!("no such profile: {name}")))?;
        if matches!(kind, ProfileKind::Template { .. }) {
            return Err(describe_error(DescribeError::Template(name.trim().to_lowercase())));
        }
        let fail = |reason: String| {
            Ok(Json(DescribeOutcome {
                ok: false,
                reason,
                profile: None,
            }))
        };
        let Some(client) = model_client(&st, TASK_PROFILE_DESCRIBER)? else {
            return fail(format!(
                "no auxiliary model is configured (set auxiliary.{TASK_PROFILE_DESCRIBER} or auxiliary.default in config.yaml)"
            ));
        };
        let text = match ops::describe_profile(client.as_ref(), &name, &profile_facts(&kind), DESCRIPTION_MAX_CHARS) {
            Ok(t) => t,
            Err(why) => return fail(why),
        };
        let p = profile_meta::set_description(st.root(), &config, &name, &text, true)
            .map_err(describe_error)?;
        Ok(Json(DescribeOutcome {
            ok: true,
            reason: "described".into(),
            profile: Some(p.into()),
        }))
    })
    .await
}

/// `GET/PUT /orchestration`: the `kanban:` keys the decomposer works by.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrchestrationView {
    /// Owner of a decomposed root (wakes when its children are done).
    pub orchestrator_profile: Option<String>,
    /// Catches cards no profile fits.
    pub default_assignee: Option<String>,
    /// The gateway decomposes triage cards on its own each tick.
    pub auto_decompose: bool,
    pub auto_promote_children: bool,
}

impl From<Orchestration> for OrchestrationView {
    fn from(o: Orchestration) -> Self {
        OrchestrationView {
            orchestrator_profile: o.orchestrator_profile,
            default_assignee: o.default_assignee,
            auto_decompose: o.auto_decompose,
            auto_promote_children: o.auto_promote_children,
        }
    }
}

/// `PUT /orchestration`: absent keys are kept; `""` clears a profile.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrchestrationBody {
    pub orchestrator_profile: Option<String>,
    pub default_assignee: Option<String>,
    pub auto_decompose: Option<bool>,
    pub auto_promote_children: Option<bool>,
}

/// The orchestration settings.
#[utoipa::path(get, path = "/api/v1/orchestration", tag = "triage",
    responses((status = 200, body = OrchestrationView)))]
pub async fn get_orchestration(State(st): State<AppState>) -> ApiResult<Json<OrchestrationView>> {
    blocking(move || Ok(Json(Orchestration::of(&st.config()?).into()))).await
}

/// Change the orchestration settings in config.yaml (the gateway picks
/// them up on its next tick). A profile that does not exist is a 400.
#[utoipa::path(put, path = "/api/v1/orchestration", request_body = OrchestrationBody, tag = "triage",
    responses((status = 200, body = OrchestrationView), (status = 400, body = ErrorBody)))]
pub async fn put_orchestration(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<OrchestrationBody>,
) -> ApiResult<Json<OrchestrationView>> {
    blocking(move || {
        let config = st.config()?;
        let profiles = Profiles::new(st.root(), &config);
        for (key, v) in [
            ("orchestrator_profile", &body.orchestrator_profile),
            ("default_assignee", &body.default_assignee),
        ] {
            if let Some(name) = v.as_deref().map(str::trim).filter(|n| !n.is_empty())
                && !profiles.is_spawnable(name)
            {
                return Err(ApiError::bad_request(format!(
                    "{key}: no such profile: {name}"
                )));
            }
        }
        let change = OrchestrationChange {
            orchestrator_profile: body.orchestrator_profile,
            default_assignee: body.default_assignee,
            auto_decompose: body.auto_decompose,
            auto_promote_children: body.auto_promote_children,
        };
        let o = orchestration::write(&st.root().config_file(), &change)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(Json(o.into()))
    })
    .await
}
