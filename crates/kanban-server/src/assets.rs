//! The dashboard: the files of `web/` embedded into the binary at build
//! time (read from disk in debug builds, so editing `web/` needs no
//! rebuild), served at `/` with their content types and the security
//! headers that keep markdown from ever running script.
//!
//! Assets are public (no token): the page itself holds no data, and it
//! asks for the token before calling the API.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use crate::error::ApiError;

#[derive(Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../../web/"]
struct WebAssets;

/// No inline script, no foreign origin for anything, WebSocket to self.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Headers every dashboard response carries.
pub fn security_headers(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fallback of the router: an embedded file for `GET`/`HEAD` outside the
/// API, else the JSON 404 every unknown route gets.
pub async fn serve(req: Request) -> Response {
    let not_found = || ApiError::not_found("no such route").into_response();
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return not_found();
    }
    let path = req.uri().path().trim_start_matches('/');
    if path.starts_with("api/") || path.split('/').any(|c| c == ".." || c.starts_with('.')) {
        return not_found();
    }
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(file) = WebAssets::get(path) else {
        return not_found();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()));
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        file.data.into_owned().into_response()
    };
    let headers = resp.headers_mut();
    security_headers(headers);
    if let Ok(v) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    // Revalidate every time: a new binary must never run stale scripts.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
