//! Request guards applied to every route: the `Host` check (DNS
//! rebinding), bearer token, cross-origin write refusal, and JSON bodies
//! for errors produced outside handlers.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Query parameter carrying the token on WebSocket upgrades (browsers
/// cannot set headers there).
const WS_TOKEN_PARAM: &str = "token";

/// Compare without leaking the position of the first difference (only
/// the length may show).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == WS_TOKEN_PARAM)
        .map(|(_, v)| v.into_owned())
}

/// `host[:port]` of an Origin header value (`scheme://host[:port]`).
fn origin_authority(origin: &str) -> Option<&str> {
    let rest = origin.split_once("://")?.1;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// A browser request from another site that could change state (or read
/// the live feed): refused. Non-browser clients send no Origin and pass.
fn cross_origin(req: &Request, websocket: bool) -> bool {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe && !websocket {
        return false;
    }
    let headers = req.headers();
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin_authority(origin), host) {
        (Some(o), Some(h)) => !o.eq_ignore_ascii_case(h),
        _ => true,
    }
}

/// The authority the client addressed: `Host`, else (HTTP/2) the URI's.
fn request_host(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// DNS-rebinding guard on every route, the dashboard and the WebSocket:
/// without a token, a `Host` that is neither loopback nor allowed is a
/// 403. With a token, the token is the guard (a non-loopback bind needs one).
pub async fn host_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.token.is_none() {
        let host = request_host(&req);
        if !host.is_some_and(|h| state.allowed_hosts.allows(h)) {
            let shown = host.unwrap_or("");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {shown:?} is not served by this gateway (DNS-rebinding guard): use a \
                     loopback address such as 127.0.0.1, or allow the name with \
                     `kanban gateway run --allowed-host NAME` or kanban.gateway.allowed_hosts \
                     in config.yaml"
                ),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Token + origin checks.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let websocket = is_websocket_upgrade(req.headers());
    if let Some(expected) = state.token.as_deref() {
        let presented = bearer(req.headers()).map(str::to_string).or_else(|| {
            if websocket {
                query_token(req.uri().query())
            } else {
                None
            }
        });
        let ok = presented.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()));
        if !ok {
            let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
                .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    }
    if cross_origin(&req, websocket) {
        return ApiError::new(StatusCode::FORBIDDEN, "cross-origin request refused")
            .into_response();
    }
    let method = req.method().clone();
    let resp = next.run(req).await;
    metrics::counter!(
        crate::metrics::HTTP_REQUESTS,
        "method" => method.to_string(),
        "status" => resp.status().as_u16().to_string()
    )
    .increment(1);
    resp
}

/// Errors produced by layers (413 from the body limit, 405 from routing)
/// come as plain text: give them the `{error, detail}` body too.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let detail = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_string(),
            s => s.canonical_reason().unwrap_or("error").to_lowercase(),
        };
        return ApiError::new(status, detail).into_response();
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::AllowedHosts;

    #[test]
    fn hosts() {
        let allowed = AllowedHosts::parse(&[
            "Kanban.Test".into(),
            "pinned.test:8080".into(),
            "[fd00::1]".into(),
        ])
        .unwrap();
        for ok in [
            "localhost",
            "LOCALHOST:1",
            "localhost.:8765",
            "127.0.0.1:8765",
            "127.9.9.9",
            "[::1]:8765",
            "[::1]",
            "[::ffff:127.0.0.1]:80",
            "kanban.test:1234",
            "kanban.test",
            "pinned.test:8080",
            "[fd00::1]:9",
        ] {
            assert!(allowed.allows(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:8765",
            "localhost.evil.example",
            "127.0.0.1.nip.io:80",
            "pinned.test:9999",
            "pinned.test",
            "kanban.test.evil",
            "::1",
            "[::1",
            "localhost:",
            "localhost:99999",
            "localhost:80x",
            "10.0.0.1:8765",
            "[::2]:80",
            "a b",
        ] {
            assert!(!allowed.allows(bad), "{bad}");
        }
        assert!(
            AllowedHosts::parse(&["http://ok.test/".into()])
                .unwrap()
                .allows("ok.test")
        );
        assert!(AllowedHosts::parse(&["bad host".into()]).is_err());
        assert!(AllowedHosts::parse(&["x:port".into()]).is_err());
    }

    #[test]
    fn tokens_and_origins() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(query_token(Some("since=3&token=a%2Fb")), Some("a/b".into()));
        assert_eq!(query_token(Some("token=a+b%2F")), Some("a b/".into()));
        assert_eq!(query_token(Some("since=3")), None);
        assert_eq!(query_token(None), None);
        assert_eq!(
            origin_authority("http://127.0.0.1:8765"),
            Some("127.0.0.1:8765")
        );
    }
}
