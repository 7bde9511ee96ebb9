//! Secret redaction of the free text a request carries
//! (`kanban_core::redact`), applied by every backend as the request enters
//! the store: whatever surface wrote it (CLI, MCP tool, REST, a dispatcher
//! completion), a secret is stored masked. The reference masks these fields
//! in its worker tools; we mask them on every surface.

use std::borrow::Cow;

use kanban_core::redact::{redact_json, redact_text};
use serde_json::Value;

use crate::{BlockRequest, ChangesRequest, CompleteRequest, EditTask, ReviewRequest};

fn text(s: &Option<String>) -> Option<String> {
    s.as_deref().map(redact_text)
}

fn json(v: &Option<Value>) -> Option<Value> {
    v.as_ref().map(redact_json)
}

/// A comment body, masked.
pub fn comment_body(body: &str) -> Cow<'_, str> {
    let r = redact_text(body);
    if r == body {
        Cow::Borrowed(body)
    } else {
        Cow::Owned(r)
    }
}

impl CompleteRequest {
    /// Summary, result and metadata (recursively) masked.
    pub fn redacted(&self) -> CompleteRequest {
        CompleteRequest {
            result: text(&self.result),
            summary: text(&self.summary),
            metadata: json(&self.metadata),
            ..self.clone()
        }
    }
}

impl BlockRequest {
    /// The block reason masked.
    pub fn redacted(&self) -> BlockRequest {
        BlockRequest {
            reason: text(&self.reason),
            ..self.clone()
        }
    }
}

impl EditTask {
    /// The result and the back-filled summary/metadata masked.
    pub fn redacted(&self) -> EditTask {
        EditTask {
            result: text(&self.result),
            summary: text(&self.summary),
            metadata: json(&self.metadata),
            ..self.clone()
        }
    }
}

impl ReviewRequest {
    /// The handoff summary and metadata masked.
    pub fn redacted(&self) -> ReviewRequest {
        ReviewRequest {
            summary: redact_text(&self.summary),
            metadata: json(&self.metadata),
            ..self.clone()
        }
    }
}

impl ChangesRequest {
    /// The required changes masked.
    pub fn redacted(&self) -> ChangesRequest {
        ChangesRequest {
            reason: redact_text(&self.reason),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    const MASKED: &str = "ghp_ab...6789";

    #[test]
    fn every_free_text_field_is_masked() {
        let c = CompleteRequest {
            task_id: "t_1".into(),
            summary: Some(format!("used {KEY}")),
            result: Some(KEY.into()),
            metadata: Some(json!({"k": [KEY]})),
            ..Default::default()
        }
        .redacted();
        assert_eq!(
            c.summary.as_deref(),
            Some(format!("used {MASKED}").as_str())
        );
        assert_eq!(c.result.as_deref(), Some(MASKED));
        assert_eq!(c.metadata, Some(json!({"k": [MASKED]})));
        assert_eq!(c.task_id, "t_1");
        let b = BlockRequest {
            reason: Some(KEY.into()),
            ..Default::default()
        }
        .redacted();
        assert_eq!(b.reason.as_deref(), Some(MASKED));
        assert_eq!(comment_body(KEY), MASKED);
        assert!(matches!(comment_body("plain"), Cow::Borrowed("plain")));
        let r = ChangesRequest {
            reason: KEY.into(),
            ..Default::default()
        }
        .redacted();
        assert_eq!(r.reason, MASKED);
    }
}
