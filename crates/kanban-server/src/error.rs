//! The one place where library errors become HTTP statuses.
//!
//! Every error body is `{"error": <short code>, "detail": <message>}`. An
//! internal error's message may name files of the host (database paths,
//! config files): it is logged, and the body says only [`INTERNAL_DETAIL`].

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kanban_hermes::layout::LayoutError;
use kanban_store::StoreError;
use kanban_store::backend::CatalogueError;
use serde::Serialize;
use utoipa::ToSchema;

/// The `detail` of every internal-error answer (the real one is logged).
pub const INTERNAL_DETAIL: &str = "internal server error; the gateway log has the details";

/// Body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Short machine-readable code (`not_found`, `conflict`, `bad_request`, ...).
    pub error: String,
    /// Human-readable explanation.
    pub detail: String,
}

/// An error a handler returns; renders as [`ErrorBody`] with its status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, detail)
    }

    /// Whether the detail stays in the log: a server fault whose message is
    /// not one of ours (501 and 503 say what is missing or busy).
    fn is_internal(&self) -> bool {
        self.status.is_server_error()
            && !matches!(
                self.status,
                StatusCode::NOT_IMPLEMENTED | StatusCode::SERVICE_UNAVAILABLE
            )
    }

    /// The detail a client may see: [`INTERNAL_DETAIL`] for an internal
    /// error (whose real detail is logged here), else the detail itself.
    pub fn public_detail(self) -> String {
        if self.is_internal() {
            tracing::error!(status = %self.status, detail = %self.detail, "internal error");
            INTERNAL_DETAIL.to_string()
        } else {
            self.detail
        }
    }
}

/// Short code of a status, used as `error` in the body.
pub fn error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable_entity",
        StatusCode::NOT_IMPLEMENTED => "not_implemented",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ if status.is_server_error() => "internal",
        _ => "error",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = ErrorBody {
            error: error_code(status).into(),
            detail: self.public_detail(),
        };
        (status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::TaskNotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Refused { .. } | StoreError::Stale { .. } => StatusCode::CONFLICT,
            StoreError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::NotADatabase { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Io { .. }
            | StoreError::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, "store error");
        }
        ApiError::new(status, e.to_string())
    }
}

impl From<CatalogueError> for ApiError {
    fn from(e: CatalogueError) -> Self {
        let status = match e {
            CatalogueError::NotFound { .. } => StatusCode::NOT_FOUND,
            // Bad slug or workdir, the default board is not removable.
            CatalogueError::Refused { .. } => StatusCode::BAD_REQUEST,
            CatalogueError::Store(s) => return s.into(),
            CatalogueError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<LayoutError> for ApiError {
    fn from(e: LayoutError) -> Self {
        let e = match e {
            LayoutError::Catalogue(c) => return c.into(),
            other => other,
        };
        let status = match &e {
            LayoutError::InvalidSlug(_)
            | LayoutError::SlugRequired
            | LayoutError::BadWorkdir { .. }
            | LayoutError::DefaultNotRemovable => StatusCode::BAD_REQUEST,
            LayoutError::BoardNotFound(_) => StatusCode::NOT_FOUND,
            // The gateway's own configuration, not the request, is wrong.
            LayoutError::NoHome
            | LayoutError::Io { .. }
            | LayoutError::BadDatabaseUrl { .. }
            | LayoutError::Catalogue(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match &r {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            // Syntax and shape errors alike are the client's bad JSON.
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

/// A blocking task that panicked or was cancelled.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("background task failed: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    async fn body_of(e: ApiError) -> (StatusCode, serde_json::Value) {
        let resp = e.into_response();
        let status = resp.status();
        let bytes = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn internal_errors_answer_a_fixed_body_without_the_detail() {
        let store = StoreError::NotADatabase {
            path: "/home/someone/.hermes/kanban.db".into(),
            detail: "file is not a database".into(),
        };
        for e in [
            ApiError::from(store),
            ApiError::internal("cannot read /etc/secret: denied"),
        ] {
            let (status, v) = body_of(e).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(v["error"], "internal", "{v}");
            assert_eq!(v["detail"], INTERNAL_DETAIL, "{v}");
        }
        let (status, v) = body_of(ApiError::not_implemented("no dispatcher")).await;
        assert_eq!(
            (status, &v["detail"]),
            (StatusCode::NOT_IMPLEMENTED, &"no dispatcher".into())
        );
        let (_, v) = body_of(ApiError::not_found("no such task: t_1")).await;
        assert_eq!(v["detail"], "no such task: t_1");
    }
}
