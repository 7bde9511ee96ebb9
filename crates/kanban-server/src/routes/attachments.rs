//! Task attachments: list, multipart upload (streamed to disk with a hard
//! size cap), download confined to the board's attachments root, delete.
//!
//! Blobs live in `<attachments_root>/<task_id>/<name>` exactly as the
//! reference lays them out, so Python workers find them; names that try
//! to leave that directory are refused, not rewritten. A board shared by
//! hosts also copies each blob into itself (`Store::attachment_blob`), and
//! downloads are served from that copy on every gateway.

use std::path::Path as FsPath;

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kanban_core::Attachment;
use kanban_core::defaults::ATTACHMENT_MAX_BYTES;
use kanban_hermes::attachments::{self, PendingBlob, resolved_under, safe_attachment_name};
use kanban_store::NewAttachment;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::api::*;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Multipart framing allowed on top of the file itself.
const MULTIPART_OVERHEAD_BYTES: usize = 1024 * 1024;
/// Request body limit of the upload route.
pub const UPLOAD_BODY_LIMIT: usize = ATTACHMENT_MAX_BYTES as usize + MULTIPART_OVERHEAD_BYTES;
/// `uploaded_by` when the form does not say.
const DEFAULT_UPLOADER: &str = "dashboard";

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        attachments::too_large_message(),
    )
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large();
    }
    ApiError::bad_request(format!("invalid multipart body: {}", e.body_text()))
}

/// Attachments of a task.
#[utoipa::path(get, path = "/api/v1/tasks/{task_id}/attachments", params(("task_id" = String, Path), BoardQuery),
    tag = "tasks", responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        require_task(board.store.as_ref(), &task_id)?;
        Ok(Json(
            json!({"attachments": board.store.attachments(&task_id)?}),
        ))
    })
    .await
}

/// Create the blob file (exclusively, private, collision-free: the write
/// path the CLI and the MCP tools share), as an async file.
async fn create_blob(dir: &FsPath, name: &str) -> ApiResult<(PendingBlob, tokio::fs::File)> {
    let (dir, name) = (dir.to_path_buf(), name.to_string());
    let (blob, file) = tokio::task::spawn_blocking(move || attachments::create_blob(&dir, &name))
        .await?
        .map_err(|e| ApiError::internal(format!("failed to store attachment: {e}")))?;
    Ok((blob, tokio::fs::File::from_std(file)))
}

/// Upload a file (multipart field `file`, optional field `uploaded_by`):
/// 413 over the size cap, 400 for a name with path components.
#[utoipa::path(post, path = "/api/v1/tasks/{task_id}/attachments", params(("task_id" = String, Path), BoardQuery),
    tag = "tasks", request_body(content_type = "multipart/form-data", content = Object),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn upload(
    State(st): State<AppState>,
    Path(task_id): Path<String>,
    ApiQuery(q): ApiQuery<BoardQuery>,
    mut form: Multipart,
) -> ApiResult<Json<Value>> {
    let st2 = st.clone();
    let tid = task_id.clone();
    let board = blocking(move || {
        let board = st2.hub.board(q.board.as_deref())?;
        require_task(board.store.as_ref(), &tid)?;
        Ok(board)
    })
    .await?;
    let mut uploaded_by: Option<String> = None;
    let mut stored: Option<(PendingBlob, String, Option<String>, u64)> = None;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("uploaded_by") => {
                let v = field.text().await.map_err(multipart_error)?;
                uploaded_by = Some(v.trim().to_string()).filter(|v| !v.is_empty());
            }
            Some("file") if stored.is_none() => {
                let name = safe_attachment_name(field.file_name().unwrap_or_default())?;
                let content_type = field.content_type().map(str::to_string);
                let dir = board.paths.task_attachments_dir(&task_id);
                let (blob, mut file) = create_blob(&dir, &name).await?;
                let io_err = |e: std::io::Error| {
                    ApiError::internal(format!("failed to store attachment: {e}"))
                };
                let mut total: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    total += chunk.len() as u64;
                    if total > ATTACHMENT_MAX_BYTES {
                        return Err(too_large());
                    }
                    file.write_all(&chunk).await.map_err(io_err)?;
                }
                file.flush().await.map_err(io_err)?;
                file.sync_all().await.map_err(io_err)?;
                stored = Some((blob, name, content_type, total));
            }
            _ => {}
        }
    }
    let Some((blob, _, content_type, size)) = stored else {
        return Err(ApiError::bad_request("multipart field 'file' is required"));
    };
    let req = NewAttachment {
        task_id,
        filename: blob.file_name(),
        stored_path: blob.path().display().to_string(),
        content_type,
        size: size as i64,
        uploaded_by: Some(uploaded_by.unwrap_or_else(|| DEFAULT_UPLOADER.into())),
    };
    let store = board.store.clone();
    let att = blocking(move || Ok(store.add_attachment(&req)?)).await?;
    blob.keep();
    Ok(Json(json!({"attachment": att})))
}

/// `attachment; filename*=UTF-8''<percent-encoded>` (RFC 6266/5987), so
/// no name can break out of the header.
fn content_disposition(name: &str) -> String {
    let enc = percent_encoding::utf8_percent_encode(name, FILENAME_ESCAPED);
    format!("attachment; filename*=UTF-8''{enc}")
}

/// Every byte but the unreserved `A-Z a-z 0-9 - . _ ~` is escaped (a
/// subset of RFC 5987 `attr-char`, safe in any header).
const FILENAME_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn require_attachment(store: &dyn kanban_store::Store, id: i64) -> ApiResult<Attachment> {
    store
        .get_attachment(id)?
        .ok_or_else(|| ApiError::not_found("attachment not found"))
}

/// Download. The stored path must resolve inside the board's attachments
/// root (a tampered row cannot expose other files); always served as a
/// download in a sandbox, never rendered on this origin.
#[utoipa::path(get, path = "/api/v1/attachments/{attachment_id}", params(("attachment_id" = i64, Path), BoardQuery),
    tag = "tasks", responses((status = 200, content_type = "application/octet-stream", body = String),
        (status = 404, body = ErrorBody)))]
pub async fn download(
    State(st): State<AppState>,
    Path(attachment_id): Path<i64>,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Response> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        let att = require_attachment(board.store.as_ref(), attachment_id)?;
        // A board shared by hosts keeps the blob itself (ADR 0002); else
        // it is the file, wherever this host keeps it.
        let data = match board.store.attachment_blob(attachment_id)? {
            Some(data) => data,
            None => {
                let file =
                    resolved_under(&board.paths.attachments_root, FsPath::new(&att.stored_path))
                        .ok_or_else(|| ApiError::not_found("attachment file unavailable"))?;
                std::fs::read(&file)
                    .map_err(|e| ApiError::not_found(format!("attachment file unreadable: {e}")))?
            }
        };
        let mut resp = data.into_response();
        let h = resp.headers_mut();
        let ctype = att
            .content_type
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        h.insert(header::CONTENT_TYPE, ctype);
        if let Ok(v) = HeaderValue::from_str(&content_disposition(&att.filename)) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("sandbox"),
        );
        Ok(resp)
    })
    .await
}

/// Delete the row and, when it lies under the attachments root, the blob.
#[utoipa::path(delete, path = "/api/v1/attachments/{attachment_id}", params(("attachment_id" = i64, Path), BoardQuery),
    tag = "tasks", responses((status = 200, body = Ack), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    Path(attachment_id): Path<i64>,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> ApiResult<Json<Ack>> {
    blocking(move || {
        let board = st.hub.board(q.board.as_deref())?;
        attachments::remove_attachment(
            board.store.as_ref(),
            &board.paths.attachments_root,
            attachment_id,
        )?
        .ok_or_else(|| ApiError::not_found("attachment not found"))?;
        Ok(Json(Ack::ok().with("id", attachment_id)))
    })
    .await
}

/// Remove the blobs of a task that is being deleted (rows go with it).
pub fn remove_task_blobs(attachments_root: &FsPath, atts: &[Attachment]) {
    for a in atts {
        if let Some(file) = resolved_under(attachments_root, FsPath::new(&a.stored_path)) {
            let _ = std::fs::remove_file(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn file_names_are_percent_encoded_in_the_header() {
        assert_eq!(
            content_disposition("a b-c.txt"),
            "attachment; filename*=UTF-8''a%20b-c.txt"
        );
        assert_eq!(
            content_disposition("é\"\r\n;~_"),
            "attachment; filename*=UTF-8''%C3%A9%22%0D%0A%3B~_"
        );
    }
}
