//! The goal-mode completion gate (reference §5.4, Hermes #38367): a
//! goal-mode card completes only when the auxiliary judge
//! (`auxiliary.goal_judge`) agrees its handoff shows the goal met. Both
//! exits — `kanban complete` and the `kanban_complete` tool — ask here.
//! With no judge configured the gate is open, as in the reference: an
//! unconfigured model must not wedge every goal-mode worker.

use kanban_aux::{client_from_root, ops};
use kanban_hermes::auxiliary::TASK_GOAL_JUDGE;
use kanban_hermes::layout::Root;
use kanban_store::Store;

/// `Err(reason)` when the judge refuses the completion of `task_id` with
/// this `evidence` (summary, else result); `Ok` for other cards, an
/// unknown id (the completion reports that itself) or no judge.
pub fn check(root: &Root, store: &dyn Store, task_id: &str, evidence: &str) -> Result<(), String> {
    let Ok(Some(task)) = store.get_task(task_id) else {
        return Ok(());
    };
    if !task.goal_mode {
        return Ok(());
    }
    let client = match client_from_root(root, TASK_GOAL_JUDGE) {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(()),
        Err(e) => {
            crate::error::warning(format_args!("goal judge not consulted: {e}"));
            return Ok(());
        }
    };
    match ops::judge_completion(client.as_ref(), &task, evidence) {
        Ok(v) if v.done => Ok(()),
        Ok(v) => Err(v.reason),
        Err(why) => Err(why),
    }
}
