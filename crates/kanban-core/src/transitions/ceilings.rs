//! Concurrency ceilings (reference §3.1 step 7, `kanban.max_spawn`,
//! `max_in_progress`, `max_in_progress_per_profile`, our `profile_limits`):
//! which cap a claim must fit under, and when it is full.
//!
//! The store counts running tasks inside the claim's transaction and asks
//! [`first_full`]; the dispatcher asks [`profile_cap`] to skip candidates
//! it knows would be refused. One rule for both.

use std::collections::BTreeMap;
use std::fmt;

/// The caps a claim is checked against, inside the claim transaction, so
/// no number of dispatchers racing on one board can exceed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ceilings {
    /// Live cap on running tasks board-wide (`max_spawn` / `--max`).
    pub max_running: Option<i64>,
    /// Second global cap (`max_in_progress`).
    pub max_in_progress: Option<i64>,
    /// Cap on running tasks per assignee.
    pub max_per_profile: Option<i64>,
    /// Per-profile overrides (`kanban.profile_limits`).
    pub profile_limits: BTreeMap<String, i64>,
}

/// Which ceiling, by the name the reference's config gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ceiling {
    MaxRunning,
    MaxInProgress,
    /// A `profile_limits` entry of this profile.
    ProfileLimit(String),
    /// The default per-profile cap, applied to this profile.
    MaxPerProfile(String),
}

impl Ceiling {
    /// Board-wide: every later claim would hit it too.
    pub fn is_global(&self) -> bool {
        matches!(self, Ceiling::MaxRunning | Ceiling::MaxInProgress)
    }
}

impl fmt::Display for Ceiling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ceiling::MaxRunning => f.write_str("max_running"),
            Ceiling::MaxInProgress => f.write_str("max_in_progress"),
            Ceiling::ProfileLimit(p) => write!(f, "{PROFILE_LIMIT_PREFIX}{p}]"),
            Ceiling::MaxPerProfile(p) => write!(f, "{MAX_PER_PROFILE_PREFIX}{p}]"),
        }
    }
}

const PROFILE_LIMIT_PREFIX: &str = "profile_limits[";
const MAX_PER_PROFILE_PREFIX: &str = "max_per_profile[";

/// A full ceiling: which one, how many run, its cap. Displayed as the
/// store reports it (`max_running (3 running, cap 3)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullCeiling {
    pub ceiling: Ceiling,
    pub running: i64,
    pub cap: i64,
}

impl fmt::Display for FullCeiling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} running, cap {})",
            self.ceiling, self.running, self.cap
        )
    }
}

/// Whether a reported ceiling (a [`FullCeiling`] as text) is a per-profile
/// one, as opposed to a board-wide one.
pub fn is_per_profile(reported: &str) -> bool {
    reported.starts_with(PROFILE_LIMIT_PREFIX) || reported.starts_with(MAX_PER_PROFILE_PREFIX)
}

/// Running ceiling of one profile: its `profile_limits` entry (0 = never
/// run it; a negative entry is ignored), else the default per-profile cap
/// when positive (as in the reference, a non-positive default means no
/// cap).
pub fn profile_cap(
    profile_limits: &BTreeMap<String, i64>,
    max_per_profile: Option<i64>,
    assignee: &str,
) -> Option<(Ceiling, i64)> {
    match profile_limits.get(assignee).filter(|n| **n >= 0) {
        Some(n) => Some((Ceiling::ProfileLimit(assignee.to_string()), *n)),
        None => max_per_profile
            .filter(|n| *n > 0)
            .map(|n| (Ceiling::MaxPerProfile(assignee.to_string()), n)),
    }
}

/// What [`first_full`] asks the store to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Running<'a> {
    /// Running tasks board-wide.
    Total,
    /// Running tasks of this assignee.
    Of(&'a str),
}

impl Ceilings {
    /// The board-wide caps, in the order they are checked.
    pub fn globals(&self) -> [(Ceiling, Option<i64>); 2] {
        [
            (Ceiling::MaxRunning, self.max_running),
            (Ceiling::MaxInProgress, self.max_in_progress),
        ]
    }

    /// Lowest board-wide cap.
    pub fn global_cap(&self) -> Option<i64> {
        [self.max_running, self.max_in_progress]
            .into_iter()
            .flatten()
            .min()
    }

    /// [`profile_cap`] of these ceilings.
    pub fn profile_cap(&self, assignee: &str) -> Option<(Ceiling, i64)> {
        profile_cap(&self.profile_limits, self.max_per_profile, assignee)
    }
}

/// The first full ceiling a claim of a task assigned to `assignee` would
/// exceed, or `None`. `count` gives the running counts; it is asked only
/// for the counts a set cap needs (a board without caps counts nothing).
pub fn first_full<E>(
    c: &Ceilings,
    assignee: Option<&str>,
    mut count: impl FnMut(Running<'_>) -> Result<i64, E>,
) -> Result<Option<FullCeiling>, E> {
    let globals = c.globals();
    if globals.iter().any(|g| g.1.is_some()) {
        let running = count(Running::Total)?;
        for (ceiling, cap) in globals {
            if let Some(cap) = cap
                && running >= cap
            {
                return Ok(Some(FullCeiling {
                    ceiling,
                    running,
                    cap,
                }));
            }
        }
    }
    let Some(assignee) = assignee else {
        return Ok(None);
    };
    if let Some((ceiling, cap)) = c.profile_cap(assignee) {
        let running = count(Running::Of(assignee))?;
        if running >= cap {
            return Ok(Some(FullCeiling {
                ceiling,
                running,
                cap,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(c: &Ceilings, assignee: Option<&str>, total: i64, of: i64) -> Option<String> {
        first_full(c, assignee, |r| {
            Ok::<_, ()>(match r {
                Running::Total => total,
                Running::Of(_) => of,
            })
        })
        .unwrap()
        .map(|f| f.to_string())
    }

    #[test]
    fn global_caps_first_then_the_profile() {
        let c = Ceilings {
            max_running: Some(3),
            max_in_progress: Some(5),
            max_per_profile: Some(1),
            ..Default::default()
        };
        assert_eq!(
            full(&c, Some("a"), 3, 0).as_deref(),
            Some("max_running (3 running, cap 3)")
        );
        let c2 = Ceilings {
            max_running: None,
            ..c.clone()
        };
        assert_eq!(
            full(&c2, None, 5, 0).as_deref(),
            Some("max_in_progress (5 running, cap 5)")
        );
        assert_eq!(
            full(&c, Some("a"), 1, 1).as_deref(),
            Some("max_per_profile[a] (1 running, cap 1)")
        );
        assert_eq!(full(&c, None, 1, 1), None);
        assert_eq!(full(&c, Some("a"), 2, 0), None);
    }

    #[test]
    fn profile_limits_win_and_zero_means_never() {
        let mut limits = BTreeMap::new();
        limits.insert("slow".to_string(), 0);
        limits.insert("odd".to_string(), -1);
        let c = Ceilings {
            max_per_profile: Some(4),
            profile_limits: limits,
            ..Default::default()
        };
        assert_eq!(
            full(&c, Some("slow"), 0, 0).as_deref(),
            Some("profile_limits[slow] (0 running, cap 0)")
        );
        assert_eq!(c.profile_cap("odd").map(|p| p.1), Some(4));
        assert_eq!(c.profile_cap("other").map(|p| p.1), Some(4));
        let no_default = Ceilings {
            max_per_profile: Some(0),
            ..Default::default()
        };
        assert_eq!(no_default.profile_cap("x"), None);
    }

    #[test]
    fn counts_only_what_a_cap_needs() {
        let mut asked = Vec::new();
        let none = first_full(&Ceilings::default(), Some("a"), |r| {
            asked.push(format!("{r:?}"));
            Ok::<_, ()>(0)
        });
        assert_eq!(none, Ok(None));
        assert!(asked.is_empty());
    }

    #[test]
    fn reported_names_tell_profile_from_board() {
        for c in [
            Ceiling::ProfileLimit("a".into()),
            Ceiling::MaxPerProfile("a".into()),
        ] {
            assert!(is_per_profile(&c.to_string()) && !c.is_global());
        }
        for c in [Ceiling::MaxRunning, Ceiling::MaxInProgress] {
            assert!(!is_per_profile(&c.to_string()) && c.is_global());
        }
        let c = Ceilings {
            max_running: Some(4),
            max_in_progress: Some(2),
            ..Default::default()
        };
        assert_eq!(c.global_cap(), Some(2));
    }
}
