//! The served OpenAPI document: the one generated from the handlers, plus
//! the conventions every route shares, declared once here rather than on
//! each of ~30 handlers (so a new route cannot forget them):
//! - 401 (bearer token, when the gateway has one) and 403 (`Host` not
//!   allowed, cross-origin write) on every operation;
//! - 413 (body too large) and 415 (wrong content type) on every operation
//!   with a request body;
//! - 400 on every operation with parameters or a body (malformed query,
//!   path or JSON);
//! - on every `board` query parameter and `{slug}` path parameter: the
//!   board slug pattern, 400/404 (bad / unknown board) and 503 (busy).

use std::sync::OnceLock;

use serde_json::{Value, json};
use utoipa::OpenApi;

/// Board slugs, as `kanban_core::validate::normalize_board_slug` accepts
/// them after trimming and lower-casing.
pub const BOARD_SLUG_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";
/// "Contains a non-whitespace character": required titles, bodies, ids.
pub const NON_BLANK_PATTERN: &str = r"\S";

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document `GET /api/v1/openapi.json` serves (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(super::ApiDoc::openapi()).unwrap_or(Value::Null);
        apply_conventions(&mut doc);
        doc
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

/// Add the shared responses and parameter rules to every operation.
pub fn apply_conventions(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if HTTP_METHODS.contains(&method.as_str()) {
                apply_to_operation(op);
            }
        }
    }
}

fn apply_to_operation(op: &mut Value) {
    let has_body = op.get("requestBody").is_some();
    let mut has_params = false;
    let mut names_board = false;
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        has_params = !params.is_empty();
        for p in params {
            let board = p["name"] == "board" && p["in"] == "query";
            let slug = p["name"] == "slug" && p["in"] == "path";
            if !(board || slug) {
                continue;
            }
            names_board = true;
            if let Some(schema) = p.get_mut("schema").and_then(Value::as_object_mut) {
                schema.insert("pattern".into(), json!(BOARD_SLUG_PATTERN));
            }
        }
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    let mut add = |code: &str, text: &str| {
        responses
            .entry(code)
            .or_insert_with(|| error_response(text));
    };
    add(
        "401",
        "Missing or wrong bearer token (only when the gateway has a token)",
    );
    add(
        "403",
        "Refused: a Host that is neither loopback nor allowed (DNS-rebinding guard, without a \
         token), or a cross-origin write",
    );
    if has_body {
        add("413", "Request body too large");
        add("415", "Unsupported content type");
    }
    if has_body || has_params {
        add("400", "Malformed query, path parameter or body");
    }
    if names_board {
        add("404", "No such board (or task)");
        add("503", "The board's database is busy; retry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The declared pattern and the validator agree (they cannot share
    /// one regex: one is a JSON-schema string, the other Rust code).
    #[test]
    fn slug_pattern_matches_the_validator() {
        let re = |s: &str| {
            let ok_first = s
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            ok_first
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        };
        assert_eq!(BOARD_SLUG_PATTERN, "^[a-z0-9][a-z0-9_-]{0,63}$");
        for s in [
            "default",
            "a",
            "x-1_y",
            &"a".repeat(64),
            &"a".repeat(65),
            "-a",
            "_a",
            "A",
            "a b",
            "",
        ] {
            let valid = kanban_core::validate::normalize_board_slug(s)
                .ok()
                .flatten()
                .is_some_and(|n| n == s);
            assert_eq!(valid, re(s), "{s:?}");
        }
    }

    #[test]
    fn every_operation_declares_the_guards() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if !HTTP_METHODS.contains(&method.as_str()) {
                    continue;
                }
                for code in ["401", "403"] {
                    assert!(
                        op["responses"].get(code).is_some(),
                        "{method} {path} {code}"
                    );
                }
            }
        }
    }
}
