//! What a demo task's worker does: how long it works and which twist it
//! plays (a crash, a rate limit, a question for a human). The plan travels
//! in the task's body, the one channel a real agent reads too, as a line
//! the worker script parses: `[demo-plan secs=3 twist=fail-once]`.

use std::fmt;

/// Marker the worker script looks for in its prompt.
pub(crate) const PLAN_MARKER: &str = "[demo-plan";
/// Shortest and longest time a demo worker pretends to work.
pub(crate) const MIN_WORK_SECS: u64 = 1;
pub(crate) const MAX_WORK_SECS: u64 = 6;

/// The twist a demo worker plays on its first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Twist {
    /// Works, comments, completes.
    None,
    /// Crashes (exit 1); the dispatcher counts a failure and retries.
    FailOnce,
    /// Exits 75 (EX_TEMPFAIL), as an agent hitting its quota does; the
    /// dispatcher requeues it without counting a failure, after a cooldown.
    RateLimitOnce,
    /// Blocks with `--kind needs_input`; a human (or the demo's stand-in)
    /// answers and unblocks it, and the next attempt completes.
    NeedsHuman,
    /// Asks for review (`kanban request-review`); the stand-in reviewer
    /// sends it back with a remark, and the next attempt completes.
    ReviewOnce,
}

impl Twist {
    /// As the worker script spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Twist::None => "none",
            Twist::FailOnce => "fail-once",
            Twist::RateLimitOnce => "rate-limit-once",
            Twist::NeedsHuman => "needs-human",
            Twist::ReviewOnce => "review-once",
        }
    }

    /// What a person opening the task reads about it.
    fn story(self, role: &str, secs: u64) -> String {
        match self {
            Twist::None => format!(
                "The {role} worker (a shell script standing in for an agent) works for about \
                 {secs}s, comments and completes the task with `kanban complete`."
            ),
            Twist::FailOnce => format!(
                "Its first attempt crashes (exit 1): the dispatcher records the crash and retries \
                 it; the second attempt works for about {secs}s and completes."
            ),
            Twist::RateLimitOnce => format!(
                "Its first call is rate-limited (exit 75, like an agent hitting its quota): the \
                 dispatcher requeues it without counting a failure and retries it after a \
                 cooldown; then it works for about {secs}s and completes."
            ),
            Twist::ReviewOnce => format!(
                "The {role} worker asks for a review (`kanban request-review`) and the card \
                 waits in Review. Send it back with a remark, or the demo's stand-in reviewer \
                 does after a while; then the next attempt works for about {secs}s and completes."
            ),
            Twist::NeedsHuman => format!(
                "The {role} worker needs a decision: it blocks the task asking a human \
                 (`kanban block --kind needs_input`). Answer and unblock it on the dashboard, or \
                 the demo answers it after a while; then it works for about {secs}s and completes."
            ),
        }
    }
}

/// A demo worker's script for one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub secs: u64,
    pub twist: Twist,
}

impl Plan {
    pub const fn new(secs: u64, twist: Twist) -> Plan {
        Plan { secs, twist }
    }

    /// The task body: the story, then the line the worker parses.
    pub fn body(self, role: &str) -> String {
        format!("Demo task. {}\n\n{self}", self.twist.story(role, self.secs))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PLAN_MARKER} secs={} twist={}]",
            self.secs,
            self.twist.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_ends_with_the_line_the_script_parses() {
        let body = Plan::new(4, Twist::RateLimitOnce).body("api client");
        assert!(body.starts_with("Demo task. "), "{body}");
        assert!(
            body.ends_with("\n\n[demo-plan secs=4 twist=rate-limit-once]"),
            "{body}"
        );
        assert!(body.contains("exit 75"), "{body}");
    }
}
