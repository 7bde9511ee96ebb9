//! Several new tasks, their links, completions and comments written as one
//! state change ([`crate::Store::create_task_batch`]): the swarm graph
//! (`kanban swarm`) is created all or nothing.

use kanban_core::Task;
use kanban_core::swarm::SwarmPlan;
use serde_json::Value;

use crate::{NewTask, StoreError};

/// One task of a batch. Its id is chosen by the caller (so bodies written
/// before the batch can name it); `task.parents` may name earlier tasks of
/// the batch as well as existing ones.
#[derive(Debug, Clone, Default)]
pub struct BatchTask {
    pub id: String,
    pub task: NewTask,
    /// Complete the task right after creating it (the swarm root).
    pub complete: Option<BatchCompletion>,
}

#[derive(Debug, Clone, Default)]
pub struct BatchCompletion {
    pub summary: Option<String>,
    /// Must be a JSON object when given.
    pub metadata: Option<Value>,
}

/// A comment written after every task of the batch.
#[derive(Debug, Clone, Default)]
pub struct BatchComment {
    pub task_id: String,
    pub author: String,
    pub body: String,
}

/// Input of [`crate::Store::create_task_batch`]: tasks in creation order,
/// then comments. Only the first task may carry an idempotency key.
#[derive(Debug, Clone, Default)]
pub struct NewTaskBatch {
    pub tasks: Vec<BatchTask>,
    pub comments: Vec<BatchComment>,
}

/// What a batch wrote.
#[derive(Debug, Clone)]
pub enum BatchCreated {
    /// Every task, in batch order, as stored after the whole batch.
    Created(Vec<Task>),
    /// The first task's idempotency key matched this live task: nothing
    /// was written.
    Existing(Box<Task>),
}

impl BatchTask {
    /// The completion this task is created with, as a `complete` request.
    pub fn complete_request(&self) -> Option<crate::params::CompleteRequest> {
        self.complete
            .as_ref()
            .map(|c| crate::params::CompleteRequest {
                task_id: self.id.clone(),
                summary: c.summary.clone(),
                metadata: c.metadata.clone(),
                ..Default::default()
            })
    }
}

impl NewTaskBatch {
    /// Refuses an empty batch, blank or repeated ids, and idempotency keys
    /// after the first task, before anything is written.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.tasks.is_empty() {
            return Err(StoreError::invalid("a task batch needs at least one task"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.tasks.iter().enumerate() {
            if !kanban_core::ids::looks_like_task_id(&t.id) {
                return Err(StoreError::invalid(format!(
                    "bad task id in batch: {:?}",
                    t.id
                )));
            }
            if !seen.insert(t.id.as_str()) {
                return Err(StoreError::invalid(format!(
                    "task id {} repeated in batch",
                    t.id
                )));
            }
            if i > 0 && t.task.idempotency_key.is_some() {
                return Err(StoreError::invalid(
                    "only the first task of a batch may carry an idempotency key",
                ));
            }
            if t.complete
                .as_ref()
                .and_then(|c| c.metadata.as_ref())
                .is_some_and(|m| !m.is_object())
            {
                return Err(StoreError::invalid("metadata must be a JSON object"));
            }
        }
        Ok(())
    }

    /// The batch of a planned swarm graph.
    pub fn from_swarm(plan: &SwarmPlan, tenant: Option<&str>, priority: i64) -> Self {
        let tasks = plan
            .cards
            .iter()
            .enumerate()
            .map(|(i, c)| BatchTask {
                id: c.id.clone(),
                task: NewTask {
                    title: c.title.clone(),
                    body: Some(c.body.clone()),
                    assignee: Some(c.assignee.clone()),
                    created_by: Some(plan.comment_author.clone()),
                    workspace_kind: Some(kanban_core::swarm::SWARM_WORKSPACE_KIND.into()),
                    tenant: tenant.map(String::from),
                    priority,
                    parents: c.parents.clone(),
                    idempotency_key: c.idempotency_key.clone(),
                    skills: c.skills.clone(),
                    ..Default::default()
                },
                complete: (i == 0).then(|| BatchCompletion {
                    summary: Some(plan.root_summary.clone()),
                    metadata: Some(plan.root_metadata.clone()),
                }),
            })
            .collect();
        NewTaskBatch {
            tasks,
            comments: vec![BatchComment {
                task_id: plan.ids.root_id.clone(),
                author: plan.comment_author.clone(),
                body: plan.comment_body.clone(),
            }],
        }
    }
}
