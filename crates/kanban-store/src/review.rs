//! Requests of the review flow (newer Hermes): one parameter struct per
//! store operation, validated here so every backend refuses the same input.

use serde_json::Value;

use crate::StoreError;

/// `request_review`: the implementer hands the card to review.
#[derive(Debug, Clone, Default)]
pub struct ReviewRequest {
    pub task_id: String,
    /// The durable handoff (required, not blank); kept on the closed run.
    pub summary: String,
    /// Structured handoff on the run (a JSON object).
    pub metadata: Option<Value>,
    /// Profile that reviews; the card is reassigned to it. `None` keeps
    /// the current assignee (who then reviews with the review skill).
    pub reviewer: Option<String>,
    /// Only this attempt may hand over (run-id fencing).
    pub expected_run_id: Option<i64>,
}

impl ReviewRequest {
    /// Refuses a blank summary, non-object metadata and a blank reviewer.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.summary.trim().is_empty() {
            return Err(StoreError::invalid(
                "a summary is required to request review",
            ));
        }
        if self.metadata.as_ref().is_some_and(|m| !m.is_object()) {
            return Err(StoreError::invalid("metadata must be a JSON object"));
        }
        if self
            .reviewer
            .as_deref()
            .is_some_and(|r| r.trim().is_empty())
        {
            return Err(StoreError::invalid("reviewer must not be blank"));
        }
        Ok(())
    }
}

/// `request_changes`: the active reviewer's verdict.
#[derive(Debug, Clone, Default)]
pub struct ChangesRequest {
    pub task_id: String,
    /// The required changes (required, not blank).
    pub reason: String,
    /// Only this review attempt may give the verdict.
    pub expected_run_id: Option<i64>,
}

impl ChangesRequest {
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.reason.trim().is_empty() {
            return Err(StoreError::invalid(
                "a reason (the required changes) is required",
            ));
        }
        Ok(())
    }
}
