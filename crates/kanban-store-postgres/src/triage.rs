//! The triage column's exits (PostgreSQL): specify (rewrite, triage → todo) and
//! decompose (children + links + root triage → todo), each one write
//! transaction built from the `tasks` helpers.

use kanban_core::validate::normalize_assignee;
use kanban_core::{EventKind, Status};
use serde_json::json;

use kanban_store::params::NewTask;
use kanban_store::triage::*;

use crate::db::{DbResult, Tx};
use crate::lifecycle::{Scope, recompute_ready};
use crate::tasks;

pub(crate) fn specify(tx: &Tx<'_>, req: &SpecifyRequest) -> DbResult<Specified> {
    req.validate()?;
    let task = tx.require_task(&req.task_id)?;
    if task.status != Status::Triage {
        return Err(not_in_triage("specify", &task).into());
    }
    let mut changed = Vec::new();
    let title = req.title.as_deref().map(str::trim);
    if let Some(t) = title.filter(|t| *t != task.title) {
        tx.execute("UPDATE tasks SET title = $1 WHERE id = $2", &[&t, &task.id])?;
        changed.push("title".to_string());
    }
    if let Some(b) = req
        .body
        .as_deref()
        .filter(|b| Some(*b) != task.body.as_deref())
    {
        tx.execute("UPDATE tasks SET body = $1 WHERE id = $2", &[&b, &task.id])?;
        changed.push("body".to_string());
    }
    if let Some(a) = normalize_assignee(req.assignee.as_deref())
        .filter(|a| Some(a.as_str()) != task.assignee.as_deref())
    {
        tx.execute(
            "UPDATE tasks SET assignee = $1 WHERE id = $2",
            &[&a, &task.id],
        )?;
        changed.push("assignee".to_string());
    }
    tx.execute(
        "UPDATE tasks SET status = 'todo' WHERE id = $1 AND status = 'triage'",
        &[&task.id],
    )?;
    if let Some(author) = req.author.as_deref().filter(|a| !a.trim().is_empty())
        && !changed.is_empty()
    {
        tasks::add_audit_comment(tx, &task.id, author, &specified_comment(&changed))?;
    }
    let payload = (!changed.is_empty()).then(|| json!({ "changed_fields": changed }));
    tx.append_event(&task.id, EventKind::Specified, payload, None)?;
    let ids = [task.id.clone()];
    recompute_ready(tx, None, Some(Scope::Ids(&ids)))?;
    Ok(Specified {
        task: tx.require_task(&task.id)?,
        changed_fields: changed,
    })
}

pub(crate) fn decompose(tx: &Tx<'_>, req: &DecomposeRequest) -> DbResult<Decomposed> {
    req.validate()?;
    let root = tx.require_task(&req.task_id)?;
    if root.status != Status::Triage {
        return Err(not_in_triage("decompose", &root).into());
    }
    let author = req
        .author
        .as_deref()
        .filter(|a| !a.trim().is_empty())
        .map(str::trim);
    let shared = shared_workspace(&root);
    let mut ids: Vec<Option<String>> = vec![None; req.children.len()];
    for i in req.creation_order() {
        let c = &req.children[i];
        let parents = c
            .parents
            .iter()
            .filter_map(|&p| ids[p].clone())
            .collect::<Vec<_>>();
        let created = tasks::create(
            tx,
            &NewTask {
                title: c.title.trim().chars().take(CHILD_TITLE_MAX_CHARS).collect(),
                body: c.body.clone().filter(|b| !b.trim().is_empty()),
                assignee: c.assignee.clone(),
                created_by: Some(author.unwrap_or("decomposer").to_string()),
                workspace_kind: shared.map(|(k, _)| k.to_string()),
                workspace_path: shared.map(|(_, p)| p.to_string()),
                tenant: root.tenant.clone(),
                parents,
                ..Default::default()
            },
        )?;
        ids[i] = Some(created.task.id);
    }
    let child_ids: Vec<String> = ids.into_iter().flatten().collect();
    let root_assignee = normalize_assignee(req.root_assignee.as_deref());
    tx.execute(
        "UPDATE tasks SET status = 'todo', assignee = COALESCE($1, assignee) \
         WHERE id = $2 AND status = 'triage'",
        &[&root_assignee, &root.id],
    )?;
    for c in &child_ids {
        tasks::link(tx, c, &root.id)?;
    }
    if let Some(author) = author {
        tasks::add_audit_comment(tx, &root.id, author, &decomposed_comment(&child_ids))?;
    }
    tx.append_event(
        &root.id,
        EventKind::Decomposed,
        Some(json!({"child_ids": child_ids, "root_assignee": root_assignee})),
        None,
    )?;
    if req.keep_children_in_todo {
        for c in &child_ids {
            tx.execute(
                "UPDATE tasks SET status = 'todo' WHERE id = $1 AND status = 'ready'",
                &[c],
            )?;
        }
    } else {
        recompute_ready(tx, None, Some(Scope::Ids(&child_ids)))?;
    }
    Ok(Decomposed {
        root: tx.require_task(&root.id)?,
        child_ids,
    })
}
