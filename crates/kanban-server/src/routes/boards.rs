//! Board management: list, create, update metadata, archive/delete, switch.

use std::path::Path as FsPath;

use axum::Json;
use axum::extract::{Path, State};
use kanban_hermes::catalogue::remove_board_of;
use kanban_hermes::layout::{
    BoardMeta, DEFAULT_BOARD, MetaUpdate, require_slug, set_current_board_in,
};
use serde_json::{Value, json};

use crate::api::*;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// `worktree` when the board's default workdir is inside a git repository,
/// `dir` when it is set otherwise, else `scratch`.
fn default_workspace_kind(meta: &BoardMeta) -> &'static str {
    let Some(wd) = meta
        .default_workdir
        .as_deref()
        .filter(|w| !w.trim().is_empty())
    else {
        return "scratch";
    };
    let in_git = FsPath::new(wd).ancestors().any(|d| d.join(".git").exists());
    if in_git { "worktree" } else { "dir" }
}

fn meta_json(meta: &BoardMeta) -> Value {
    let mut v = serde_json::to_value(meta).unwrap_or(Value::Null);
    v["default_workspace_kind"] = json!(default_workspace_kind(meta));
    v
}

fn current(st: &AppState) -> String {
    st.hub.current_board()
}

/// Absolute, existing directory (400 otherwise); `""` clears.
fn check_workdir(raw: &str) -> ApiResult<Option<String>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let p = FsPath::new(raw);
    if !p.is_absolute() {
        return Err(ApiError::bad_request(
            "Project directory must be an absolute path.",
        ));
    }
    if !p.is_dir() {
        return Err(ApiError::bad_request(
            "Project directory must be an existing directory.",
        ));
    }
    Ok(Some(raw.to_string()))
}

/// Every board with counts; `current` is the root's current board.
#[utoipa::path(get, path = "/api/v1/boards", params(BoardsListQuery), tag = "boards",
    responses((status = 200, body = Object)))]
pub async fn list(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<BoardsListQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let current = current(&st);
        let mut out = Vec::new();
        let catalogue = st.hub.catalogue();
        for meta in catalogue.list(q.include_archived)? {
            // A SQLite board whose file is not there yet has no counts.
            let stored = catalogue
                .location(&meta.slug)?
                .sqlite_path()
                .is_none_or(FsPath::exists);
            let counts = if stored {
                st.hub.open(&meta.slug)?.store.stats()?.by_status
            } else {
                Default::default()
            };
            let mut v = meta_json(&meta);
            v["is_current"] = json!(meta.slug == current);
            v["total"] = json!(counts.values().sum::<i64>());
            v["counts"] = json!(counts);
            out.push(v);
        }
        Ok(Json(json!({"boards": out, "current": current})))
    })
    .await
}

/// Create a board (idempotent) and its database; optionally switch to it.
#[utoipa::path(post, path = "/api/v1/boards", request_body = CreateBoardBody, tag = "boards",
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<CreateBoardBody>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let workdir = body
            .default_workdir
            .as_deref()
            .map(check_workdir)
            .transpose()?
            .flatten();
        let update = MetaUpdate {
            name: body.name,
            description: body.description,
            icon: body.icon,
            color: body.color,
            default_workdir: workdir.map(Some),
            ..Default::default()
        };
        let catalogue = st.hub.catalogue();
        let created = catalogue.write_metadata(&body.slug, &update)?;
        st.hub.open(&created.meta.slug)?;
        if body.switch {
            set_current_board_in(st.root(), &created.meta.slug, catalogue)?;
        }
        Ok(Json(json!({
            "board": meta_json(&created.meta),
            "created": !created.already_existed,
            "current": current(&st),
        })))
    })
    .await
}

fn existing_slug(st: &AppState, raw: &str) -> ApiResult<String> {
    let slug = require_slug(raw)?;
    if !st.hub.catalogue().contains(&slug)? {
        return Err(ApiError::not_found(format!(
            "board '{slug}' does not exist"
        )));
    }
    Ok(slug)
}

/// Update display metadata and the default workdir (the slug is immutable).
#[utoipa::path(patch, path = "/api/v1/boards/{slug}", params(("slug" = String, Path)), request_body = UpdateBoardBody,
    tag = "boards", responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<UpdateBoardBody>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let slug = existing_slug(&st, &slug)?;
        let workdir = body
            .default_workdir
            .as_deref()
            .map(check_workdir)
            .transpose()?;
        let update = MetaUpdate {
            name: body.name,
            description: body.description,
            icon: body.icon,
            color: body.color,
            default_workdir: workdir,
            ..Default::default()
        };
        let meta = st.hub.catalogue().update_metadata(&slug, &update)?;
        Ok(Json(json!({"board": meta_json(&meta)})))
    })
    .await
}

/// Archive (default) or hard-delete a board; `default` is refused (400).
#[utoipa::path(delete, path = "/api/v1/boards/{slug}", params(("slug" = String, Path), BoardDeleteQuery), tag = "boards",
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    Path(slug): Path<String>,
    ApiQuery(q): ApiQuery<BoardDeleteQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let slug = require_slug(&slug)?;
        if slug == DEFAULT_BOARD {
            return Err(ApiError::bad_request(
                "the 'default' board cannot be removed",
            ));
        }
        st.hub.forget(&slug);
        let removed = remove_board_of(st.root(), st.hub.catalogue(), &slug, !q.delete)?;
        Ok(Json(json!({"result": removed, "current": current(&st)})))
    })
    .await
}

/// Persist a board as the root's current board.
#[utoipa::path(post, path = "/api/v1/boards/{slug}/switch", params(("slug" = String, Path)), tag = "boards",
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn switch(
    State(st): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let slug = existing_slug(&st, &slug)?;
        set_current_board_in(st.root(), &slug, st.hub.catalogue())?;
        Ok(Json(json!({"current": slug})))
    })
    .await
}
