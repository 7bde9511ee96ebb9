//! Quiet passes: a pass that would find what the last one found skips its
//! reads.
//!
//! A full pass that ends with nothing running, nothing terminating and
//! nothing claimed is remembered with the board's version read before its
//! first read (`DispatchStore::board_version`), the options it ran with,
//! the profiles its leftover candidates named without resolving, and when
//! something time-based falls due (a respawn guard ends, a finished
//! worker's grace runs out). While none of that changed, the board's state
//! is the one that pass decided on, so the next pass returns its result
//! without reading the board: one version read (one round trip on
//! PostgreSQL, a pragma on SQLite) instead of the dispatch lock and every
//! read of a pass.
//!
//! Every time-based rule of a pass is covered: claims, heartbeats, runtimes
//! and deaths only concern running tasks (none, or no memo); promotion has
//! no clock; the respawn guards and the linger grace give their end; the
//! safety-net sweeps still run (the memo lasts at most
//! [`QUIET_PASS_MAX_AGE`], and never past the full re-gate's time).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::dispatcher::{Dispatcher, QuietMemo};
use crate::error::Result;
use crate::options::DispatchOptions;
use crate::result::DispatchResult;

/// The longest a full pass stands for later ones: what no version sees
/// (an active pull request's comment ageing out of its window, a change of
/// the environment) is looked at again at least this often.
pub const QUIET_PASS_MAX_AGE: Duration = Duration::from_secs(30);

/// What a full pass learnt that decides whether it can be remembered.
#[derive(Debug, Default)]
pub(crate) struct PassFacts {
    /// The board's version before the pass's reads (`None`: the store
    /// cannot tell, or the pass did not read it).
    pub version: Option<u64>,
    /// Running tasks were read at the start of the pass.
    pub running: bool,
    /// Earliest store time something time-based falls due.
    pub due_at: Option<i64>,
    pub unresolved: BTreeSet<String>,
}

impl PassFacts {
    /// Fold in one more due time.
    pub(crate) fn due(&mut self, at: Option<i64>) {
        if let Some(at) = at {
            self.due_at = Some(self.due_at.map_or(at, |d| d.min(at)));
        }
    }
}

/// What the start of a pass decided.
pub(crate) enum QuietCheck {
    /// Nothing changed: the last pass's result stands; the next pass is
    /// due when the store's clock (now `now`) reads `due_at`.
    Quiet {
        result: Box<DispatchResult>,
        now: i64,
        due_at: Option<i64>,
    },
    /// Run the full pass; the version read on the way, if any.
    Full(Option<u64>),
}

impl Dispatcher {
    /// Answer this pass from the last one when it still stands
    /// (`regate_due`: the periodic full re-gate is due).
    pub(crate) fn quiet_check(
        &self,
        opts: &DispatchOptions,
        regate_due: bool,
    ) -> Result<QuietCheck> {
        if opts.dry_run {
            return Ok(QuietCheck::Full(None));
        }
        let memo = {
            let mut st = self.state();
            match st.quiet.take() {
                Some(m)
                    if !regate_due
                        && st.pending.is_empty()
                        && m.taken.elapsed() < QUIET_PASS_MAX_AGE
                        && m.opts == *opts =>
                {
                    Some(m)
                }
                _ => None,
            }
        };
        let Some(memo) = memo.filter(|m| self.still_unresolved(m)) else {
            return Ok(QuietCheck::Full(self.store.board_version()?));
        };
        let now = self.store.now();
        let idle = self.terminator.pending_count() == 0 && memo.due_at.is_none_or(|at| now < at);
        let version = self.store.board_version()?;
        if !idle || version != Some(memo.version) {
            return Ok(QuietCheck::Full(version));
        }
        // Our own exited children are reaped as a full pass would.
        self.spawner.reap();
        let mut result = memo.result.clone();
        result.next_pass_in_ms = None;
        let due_at = memo.due_at;
        let mut st = self.state();
        st.quiet_passes += 1;
        st.quiet = Some(memo);
        Ok(QuietCheck::Quiet {
            result: Box::new(result),
            now,
            due_at,
        })
    }

    /// Every assignee that did not resolve still does not.
    fn still_unresolved(&self, memo: &QuietMemo) -> bool {
        memo.unresolved
            .iter()
            .all(|a| self.profiles.resolve_profile(a).is_none())
    }

    /// Keep a full pass that found nothing to do for the next passes.
    pub(crate) fn remember_quiet(
        &self,
        opts: &DispatchOptions,
        facts: PassFacts,
        result: &DispatchResult,
    ) {
        let Some(version) = facts.version else {
            return;
        };
        let quiet = !opts.dry_run
            && !facts.running
            && result.is_idle()
            && result.auto_assigned_default.is_empty()
            && result.terminating.is_empty()
            && self.terminator.pending_count() == 0;
        let mut st = self.state();
        if !quiet || !st.pending.is_empty() {
            return;
        }
        st.quiet = Some(QuietMemo {
            version,
            opts: opts.clone(),
            due_at: facts.due_at,
            taken: Instant::now(),
            unresolved: facts.unresolved,
            result: result.clone(),
        });
    }
}

#[cfg(test)]
#[path = "quiet_tests.rs"]
mod tests;
