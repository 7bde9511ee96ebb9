//! The `instructions` an MCP client receives at initialize: the worker
//! protocol for a dispatcher-spawned worker, the routing guide for an
//! orchestrator. Agents read them once; they must stand alone.

use crate::worker_env::WorkerEnv;

/// Worker protocol, with the task id filled in.
pub fn worker(task_id: &str) -> String {
    format!(
        "You are a worker spawned by a kanban board for exactly one task: {task_id}. \
The board tracks your attempt through these tools; the environment already pins the \
board, the task and this attempt.\n\
\n\
1. Start with kanban_show (no arguments): it returns the task, its parents' handoffs, \
earlier attempts, comments, and a `worker_context` text written for you. Read it first.\n\
2. Work in your current directory (the task's workspace).\n\
3. While you work, call kanban_heartbeat with a short note at least every few minutes, \
especially before and after long operations; a silent worker can be reclaimed and \
retried.\n\
4. Use kanban_comment for durable notes a human or the next worker should read, \
kanban_create to hand follow-up work to another profile (pass parents=[\"{task_id}\"] to \
make it a child), and kanban_link to add a dependency between existing tasks. Store \
files a human or the next worker should download with kanban_attach (inline base64) or \
kanban_attach_url (a public http(s) URL); kanban_attachments lists a task's files.\n\
5. Finish with exactly one of:\n\
   - kanban_complete with a `summary` (what you did, where the results are, what the \
next worker must know) and optional `metadata` (an object of structured facts). List \
the ids of tasks you created in `created_cards`; an id you did not create makes the \
completion fail with no change, so only list real ones.\n\
   - kanban_block with a `reason` (what you need, from whom) and a `kind` \
(dependency, needs_input, capability, transient) when you cannot finish.\n\
   - kanban_request_review with a `summary` when the work should be reviewed before it \
counts as done; as the reviewer of a card, kanban_request_changes with a `reason` sends \
it back to its implementer.\n\
Then stop. Ending without complete or block counts as a failed attempt and the task \
is retried.\n\
\n\
You can only complete, block or heartbeat your own task; to pass information to \
another task, comment on it."
    )
}

/// Orchestrator guide: routing work through the board.
pub const ORCHESTRATOR: &str = "You route work through a kanban board. Break work into \
tasks with kanban_create (title, assignee profile, body with acceptance criteria), wire \
dependencies with parents=[...] or kanban_link (a child waits until all its parents are \
done), watch progress with kanban_list and kanban_show, answer blocked tasks with \
kanban_comment and release them with kanban_unblock. Workers finish their own tasks; \
the board's dispatcher spawns a worker for every ready task that has an assignee.";

pub fn for_env(env: &WorkerEnv) -> String {
    match &env.task {
        Some(task) => worker(task),
        None => ORCHESTRATOR.to_string(),
    }
}
