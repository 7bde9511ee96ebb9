//! The review flow of newer Hermes (reference §2.2 [newer]): an implementer
//! hands its work to review on the same card, an active reviewer sends it
//! back with required changes, and an operator reopens a card waiting in
//! review. Kept apart from [`super::decide`] so the 0.19 table stays as the
//! reference has it; the stores follow these decisions the same way.

use serde_json::{Value, json};

use super::{Action, Decision, Refusal, TaskFacts, decide, require};
use crate::payload::first_line;
use crate::{EventKind, Status};

/// Run outcome (and run status) of an attempt that handed its work to review.
pub const OUTCOME_REVIEW_REQUESTED: &str = "review_requested";
/// Run outcome (and run status) of a review that asked for changes.
pub const OUTCOME_CHANGES_REQUESTED: &str = "changes_requested";
/// `source` of the `review_reopened` event written by an active reviewer.
pub const SOURCE_REQUEST_CHANGES: &str = "request_changes";
/// `source` of the `review_reopened` event written by an operator.
pub const SOURCE_REOPEN_REVIEW: &str = "reopen_review";
/// `source` of the `completed` event of an operator's approval.
pub const SOURCE_APPROVE: &str = "approve";

/// A review-flow action on one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAction {
    /// The implementer asks for review: running/ready → review.
    RequestReview,
    /// The active reviewer's verdict: running (a review run) → ready/todo.
    RequestChanges,
    /// An operator sends a card waiting in review back to its implementer.
    ReopenReview,
    /// An operator's verdict on a card waiting in review (no reviewer on
    /// it): review → done. Ours: with `kanban.review_dispatch: false`
    /// nothing else can finish it; `complete` still never applies to a
    /// card in review (only to the running review attempt).
    Approve,
}

impl ReviewAction {
    /// The CLI verb, for messages.
    pub fn verb(self) -> &'static str {
        match self {
            ReviewAction::RequestReview => "request-review",
            ReviewAction::RequestChanges => "request-changes",
            ReviewAction::ReopenReview => "reopen-review",
            ReviewAction::Approve => "approve",
        }
    }
}

/// What the review rules need to know, read in the write transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewFacts {
    pub status: Status,
    /// Every parent is done or archived.
    pub parents_satisfied: bool,
    /// `claim_lock` is set.
    pub claimed: bool,
    /// The open run was claimed from the review column (its `claimed`
    /// event says `source_status: review`).
    pub review_run: bool,
}

/// Why a review action was refused, beyond a wrong status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewRefusal {
    /// The action does not apply in this status.
    WrongStatus { allowed: &'static [Status] },
    /// `request-changes` on a running task whose run is not a review.
    NotAReviewRun,
    /// `reopen-review` while a reviewer holds the claim.
    Claimed,
}

impl From<Refusal> for ReviewRefusal {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::WrongStatus { allowed } => ReviewRefusal::WrongStatus { allowed },
            _ => ReviewRefusal::Claimed,
        }
    }
}

const REVIEWABLE: &[Status] = &[Status::Running, Status::Ready];

/// Where work sent back to its implementer lands: parent gating applies
/// again, as for an unblock, but without block-loop accounting.
fn back_to_implementer(f: &ReviewFacts) -> Status {
    if f.parents_satisfied {
        Status::Ready
    } else {
        Status::Todo
    }
}

/// The single source of truth for review-flow transitions.
pub fn decide_review(action: ReviewAction, f: &ReviewFacts) -> Result<Decision, ReviewRefusal> {
    match action {
        ReviewAction::RequestReview => {
            require(f.status, REVIEWABLE)?;
            Ok(Decision::to(Status::Review, EventKind::ReviewRequested))
        }
        ReviewAction::RequestChanges => {
            require(f.status, &[Status::Running])?;
            if !f.review_run {
                return Err(ReviewRefusal::NotAReviewRun);
            }
            Ok(Decision::to(
                back_to_implementer(f),
                EventKind::ReviewReopened,
            ))
        }
        ReviewAction::ReopenReview => {
            require(f.status, &[Status::Review])?;
            if f.claimed {
                return Err(ReviewRefusal::Claimed);
            }
            Ok(Decision::to(
                back_to_implementer(f),
                EventKind::ReviewReopened,
            ))
        }
        ReviewAction::Approve => {
            require(f.status, &[Status::Review])?;
            if f.claimed {
                return Err(ReviewRefusal::Claimed);
            }
            Ok(Decision::to(Status::Done, EventKind::Completed)
                .with(super::children_effects(f.status, Status::Done)))
        }
    }
}

/// Where a running attempt that ended without a verdict goes (the
/// dispatcher's release after a crash, timeout, expired claim, stale
/// heartbeat, rate limit or spawn failure, and an operator's reclaim):
/// [`decide`]'s answer, except that a review attempt (`review_run`: its
/// `claimed` event says `source_status: review`) goes back to review,
/// waiting for a reviewer again. In ready the implementer's profile would
/// pick it up as ordinary work, without the review skill. The failure
/// counting and the breaker ([`Action::GiveUp`]) apply the same way.
pub fn decide_release(
    action: Action,
    f: &TaskFacts,
    review_run: bool,
) -> Result<Decision, Refusal> {
    let mut d = decide(action, f)?;
    let ends_attempt = matches!(action, Action::Release(_) | Action::Reclaim);
    if review_run && ends_attempt && f.status == Status::Running && d.to == Status::Ready {
        d.to = Status::Review;
    }
    Ok(d)
}

/// `review_requested{summary, reviewer, implementer}`: the first line of the
/// handoff (the run keeps all of it), who reviews (the new assignee) and
/// whom `request-changes` sends the card back to.
pub fn review_requested_payload(
    summary: &str,
    reviewer: Option<&str>,
    implementer: Option<&str>,
) -> Value {
    json!({"summary": first_line(summary), "reviewer": reviewer, "implementer": implementer})
}

/// `review_reopened{reason, status, assignee, source}`: why, where the card
/// landed, the implementer it went back to, and which verb sent it.
pub fn review_reopened_payload(
    reason: Option<&str>,
    to: Status,
    assignee: Option<&str>,
    source: &str,
) -> Value {
    json!({
        "reason": reason.filter(|r| !r.is_empty()),
        "status": to.as_str(),
        "assignee": assignee,
        "source": source,
    })
}

/// `completed{result_len, summary, source: approve}`: the completion
/// payload (what notifiers and hooks read) of an operator's approval.
pub fn approved_payload(summary: Option<&str>) -> Value {
    let mut p = crate::payload::completed(&crate::payload::CompletedFacts {
        result: None,
        summary,
        verified_cards: &[],
        metadata: None,
    });
    p["source"] = json!(SOURCE_APPROVE);
    p
}

/// The implementer a `review_requested` payload names, if any.
pub fn implementer_of(payload: &Value) -> Option<String> {
    payload
        .get("implementer")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Whether a `claimed` payload is the claim of a review run.
pub fn is_review_claim(payload: &Value) -> bool {
    payload.get("source_status").and_then(Value::as_str) == Some(Status::Review.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReviewAction::*;
    use Status::*;

    fn facts(status: Status) -> ReviewFacts {
        ReviewFacts {
            status,
            parents_satisfied: true,
            claimed: status == Running,
            review_run: false,
        }
    }

    /// Every status × every review action: where it lands, or refused.
    #[test]
    fn every_status_and_review_action() {
        for status in Status::ALL.iter().copied() {
            for action in [RequestReview, RequestChanges, ReopenReview, Approve] {
                let mut f = facts(status);
                f.review_run = status == Running;
                let got = decide_review(action, &f).ok().map(|d| (d.to, d.event));
                let want = match (action, status) {
                    (RequestReview, Running | Ready) => Some((Review, EventKind::ReviewRequested)),
                    (RequestChanges, Running) | (ReopenReview, Review) => {
                        Some((Ready, EventKind::ReviewReopened))
                    }
                    (Approve, Review) => Some((Done, EventKind::Completed)),
                    _ => None,
                };
                assert_eq!(got, want, "{action:?} on {status}");
            }
        }
    }

    #[test]
    fn changes_need_a_review_run_and_respect_parents() {
        let mut f = facts(Running);
        assert_eq!(
            decide_review(RequestChanges, &f),
            Err(ReviewRefusal::NotAReviewRun)
        );
        f.review_run = true;
        f.parents_satisfied = false;
        assert_eq!(decide_review(RequestChanges, &f).unwrap().to, Todo);
        let mut r = facts(Review);
        r.parents_satisfied = false;
        assert_eq!(decide_review(ReopenReview, &r).unwrap().to, Todo);
    }

    #[test]
    fn payloads_keep_the_reference_shapes() {
        let p = review_requested_payload("did it\nmore", Some("rev"), Some("coder"));
        assert_eq!(
            p,
            json!({"summary": "did it", "reviewer": "rev", "implementer": "coder"})
        );
        assert_eq!(implementer_of(&p).as_deref(), Some("coder"));
        let r = review_reopened_payload(Some(""), Todo, None, SOURCE_REOPEN_REVIEW);
        assert_eq!(
            r,
            json!({"reason": null, "status": "todo", "assignee": null, "source": "reopen_review"})
        );
        assert!(is_review_claim(&json!({"source_status": "review"})));
        assert!(!is_review_claim(&json!({"lock": "x"})));
    }

    /// A review attempt that ends without a verdict waits for a reviewer
    /// again; ready work still goes back to ready; nothing else changes.
    #[test]
    fn a_failed_review_attempt_goes_back_to_review() {
        let running = TaskFacts::new(Running);
        for action in [
            Action::Release(EventKind::Crashed),
            Action::Release(EventKind::TimedOut),
            Action::Release(EventKind::SpawnFailed),
            Action::Release(EventKind::Reclaimed),
            Action::Reclaim,
        ] {
            let review = decide_release(action, &running, true).unwrap();
            let ready = decide_release(action, &running, false).unwrap();
            assert_eq!(review.to, Review, "{action:?}");
            assert_eq!(ready.to, Ready, "{action:?}");
            assert_eq!(review.event, ready.event, "{action:?}");
        }
        // Only the end of an attempt is redirected.
        let claim = decide_release(Action::Claim, &TaskFacts::new(Ready), true).unwrap();
        assert_eq!(claim.to, Running);
        let claimed_ready = TaskFacts {
            claimed: true,
            ..TaskFacts::new(Ready)
        };
        assert_eq!(
            decide_release(Action::Reclaim, &claimed_ready, true)
                .unwrap()
                .to,
            Ready
        );
        assert!(
            decide_release(
                Action::Release(EventKind::Crashed),
                &TaskFacts::new(Review),
                true
            )
            .is_err()
        );
        // The breaker still blocks a review card released by a failed attempt.
        let tripped = decide(Action::GiveUp, &TaskFacts::new(Review)).unwrap();
        assert_eq!((tripped.to, tripped.event), (Blocked, EventKind::GaveUp));
    }

    #[test]
    fn a_claimed_review_is_not_reopened() {
        let mut f = facts(Review);
        f.claimed = true;
        assert_eq!(decide_review(ReopenReview, &f), Err(ReviewRefusal::Claimed));
        assert_eq!(decide_review(Approve, &f), Err(ReviewRefusal::Claimed));
    }

    #[test]
    fn approval_regates_children_like_a_completion() {
        let d = decide_review(Approve, &facts(Review)).unwrap();
        assert!(d.effects.regate_children);
        assert!(!d.effects.demote_ready_children);
    }
}
