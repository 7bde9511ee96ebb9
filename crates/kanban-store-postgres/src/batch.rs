//! A task batch (`Store::create_task_batch`) in one write transaction,
//! built from the single-task steps so each row and event is exactly what
//! `create`, `complete` and `add_comment` write.

use crate::db::{DbResult, Tx};
use crate::lifecycle::{self, CompleteStep};
use crate::tasks;
use kanban_store::batch::{BatchCreated, NewTaskBatch};

pub(crate) fn create_batch(tx: &Tx<'_>, req: &NewTaskBatch) -> DbResult<BatchCreated> {
    req.validate()?;
    for t in &req.tasks {
        let created = tasks::create_with_id(tx, &t.task, Some(&t.id))?;
        if created.existing {
            // Only the first task may carry a key: nothing written yet.
            return Ok(BatchCreated::Existing(Box::new(created.task)));
        }
        if let Some(done) = t.complete_request()
            && let CompleteStep::Rejected(e) = lifecycle::complete(tx, &done)?
        {
            return Err(e.into());
        }
    }
    for c in &req.comments {
        tasks::add_comment(tx, &c.task_id, &c.author, &c.body)?;
    }
    let stored = req
        .tasks
        .iter()
        .map(|t| tx.require_task(&t.id))
        .collect::<DbResult<Vec<_>>>()?;
    Ok(BatchCreated::Created(stored))
}
