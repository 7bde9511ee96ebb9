//! Task statuses, block kinds and run outcomes, spelled exactly as the
//! reference stores them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = CoreError;
            fn from_str(s: &str) -> Result<Self, CoreError> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(CoreError::invalid(format!(
                        concat!("invalid ", $what, " {:?}: use one of {}"),
                        s,
                        $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ))),
                }
            }
        }
    };
}

string_enum!(
    /// The nine task statuses. Order of declaration = dashboard column order.
    Status, "status" {
        Triage => "triage",
        Todo => "todo",
        Scheduled => "scheduled",
        Ready => "ready",
        Running => "running",
        Blocked => "blocked",
        Review => "review",
        Done => "done",
        Archived => "archived",
    }
);

impl Status {
    /// Icon used in `kanban list` lines (reference §4).
    pub fn icon(self) -> &'static str {
        match self {
            Status::Todo => "◻",
            Status::Ready => "▶",
            Status::Running => "●",
            Status::Scheduled => "⏱",
            Status::Blocked => "⊘",
            Status::Done => "✓",
            Status::Archived => "—",
            Status::Triage | Status::Review => "?",
        }
    }

    /// A parent in this status no longer gates its children. One meaning
    /// everywhere (SPEC §4), unlike the reference's done-only paths.
    pub fn satisfies_children(self) -> bool {
        matches!(self, Status::Done | Status::Archived)
    }

    /// Statuses that end a task's active life.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Done | Status::Archived)
    }
}

string_enum!(
    /// Typed reason of a block (`--kind`).
    BlockKind, "block kind" {
        Dependency => "dependency",
        NeedsInput => "needs_input",
        Capability => "capability",
        Transient => "transient",
    }
);

string_enum!(
    /// Status/outcome values of `task_runs` rows.
    RunOutcome, "run outcome" {
        Running => "running",
        Done => "done",
        Completed => "completed",
        Blocked => "blocked",
        Crashed => "crashed",
        TimedOut => "timed_out",
        SpawnFailed => "spawn_failed",
        GaveUp => "gave_up",
        Reclaimed => "reclaimed",
        Stale => "stale",
        RateLimited => "rate_limited",
        Scheduled => "scheduled",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_reject_unknown() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), *s);
        }
        assert_eq!("READY".parse::<Status>().unwrap(), Status::Ready);
        let err = "doing".parse::<Status>().unwrap_err().to_string();
        assert!(err.contains("invalid status \"doing\""), "{err}");
        assert!(err.contains("triage, todo"), "{err}");
    }

    #[test]
    fn only_done_and_archived_satisfy_children() {
        let sat: Vec<_> = Status::ALL
            .iter()
            .filter(|s| s.satisfies_children())
            .collect();
        assert_eq!(sat, vec![&Status::Done, &Status::Archived]);
    }
}
