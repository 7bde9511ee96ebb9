//! Requests of the triage column's two exits (reference §2.4): `specify`
//! rewrites a rough card and moves it triage → todo; `decompose` fans it
//! out into a graph of child cards in the same transaction. One parameter
//! struct per store operation, validated here so every backend refuses the
//! same input before it writes anything.

use kanban_core::Task;

use crate::StoreError;

/// Longest child title kept (longer ones are cut, as the reference does).
pub const CHILD_TITLE_MAX_CHARS: usize = 200;
/// Most children one decomposition may create.
pub const DECOMPOSE_MAX_CHILDREN: usize = 20;

/// `specify_triage_task`: new title/body/assignee, then triage → todo.
#[derive(Debug, Clone, Default)]
pub struct SpecifyRequest {
    pub task_id: String,
    /// `None` keeps the title; a blank one is refused.
    pub title: Option<String>,
    pub body: Option<String>,
    pub assignee: Option<String>,
    /// Writes the audit comment when something changed; `None`: no comment.
    pub author: Option<String>,
}

impl SpecifyRequest {
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.title.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(StoreError::invalid("title cannot be blank"));
        }
        Ok(())
    }
}

/// What `specify_triage_task` did.
#[derive(Debug, Clone)]
pub struct Specified {
    pub task: Task,
    /// `title`, `body`, `assignee`: the fields that actually changed.
    pub changed_fields: Vec<String>,
}

/// One child card of a decomposition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildCard {
    pub title: String,
    pub body: Option<String>,
    pub assignee: Option<String>,
    /// Indices of sibling cards (in the same request) this one waits for.
    pub parents: Vec<usize>,
}

/// `decompose_triage_task`: children in, root triage → todo, the root
/// waiting for every child.
#[derive(Debug, Clone, Default)]
pub struct DecomposeRequest {
    pub task_id: String,
    pub children: Vec<ChildCard>,
    /// The root's new assignee (the orchestrator); `None` keeps it.
    pub root_assignee: Option<String>,
    /// `created_by` of the children and author of the audit comment.
    pub author: Option<String>,
    /// `kanban.auto_promote_children: false`: every child stays in `todo`
    /// (the next dispatcher pass promotes the ready ones) instead of being
    /// promoted by the decomposition itself.
    pub keep_children_in_todo: bool,
}

impl DecomposeRequest {
    /// Refuses an empty or oversized list, blank titles, bad or self
    /// indices and cycles: nothing is written for a bad graph.
    pub fn validate(&self) -> Result<(), StoreError> {
        let n = self.children.len();
        if n == 0 {
            return Err(StoreError::invalid(
                "a decomposition needs at least one child",
            ));
        }
        if n > DECOMPOSE_MAX_CHILDREN {
            return Err(StoreError::invalid(format!(
                "a decomposition creates at most {DECOMPOSE_MAX_CHILDREN} children (got {n})"
            )));
        }
        for (i, c) in self.children.iter().enumerate() {
            if c.title.trim().is_empty() {
                return Err(StoreError::invalid(format!("child {i} has an empty title")));
            }
            for &p in &c.parents {
                if p >= n {
                    return Err(StoreError::invalid(format!(
                        "child {i} names parent {p}, which is not a child index"
                    )));
                }
                if p == i {
                    return Err(StoreError::invalid(format!(
                        "child {i} cannot depend on itself"
                    )));
                }
            }
        }
        if topological_order(&self.children).is_none() {
            return Err(StoreError::invalid(
                "the children's dependencies form a cycle",
            ));
        }
        Ok(())
    }

    /// Child indices, every parent before its children (`validate` first).
    pub fn creation_order(&self) -> Vec<usize> {
        topological_order(&self.children).unwrap_or_default()
    }
}

/// Kahn's order of the sibling graph; `None` when it has a cycle.
/// Out-of-range indices are ignored (`validate` refuses them).
pub fn topological_order(children: &[ChildCard]) -> Option<Vec<usize>> {
    let n = children.len();
    let mut indegree = vec![0usize; n];
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, c) in children.iter().enumerate() {
        let mut seen = Vec::new();
        for &p in c.parents.iter().filter(|&&p| p < n) {
            if !seen.contains(&p) {
                seen.push(p);
                next[p].push(i);
                indegree[i] += 1;
            }
        }
    }
    let mut queue: std::collections::VecDeque<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = queue.pop_front() {
        order.push(i);
        for &c in &next[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                queue.push_back(c);
            }
        }
    }
    (order.len() == n).then_some(order)
}

/// What `decompose_triage_task` did.
#[derive(Debug, Clone)]
pub struct Decomposed {
    pub root: Task,
    /// Created children, in request order.
    pub child_ids: Vec<String>,
}

/// The audit comment of a specification.
pub fn specified_comment(changed: &[String]) -> String {
    format!(
        "Specified — updated {} and promoted to todo.",
        changed.join(", ")
    )
}

/// The audit comment of a decomposition.
pub fn decomposed_comment(child_ids: &[String]) -> String {
    format!(
        "Decomposed into {}; this card waits for all of them and wakes when they are done.",
        child_ids.join(", ")
    )
}

/// The workspace children of `root` work in: the root's own directory or
/// worktree; `None` (a fresh scratch dir each) when the root's is scratch.
pub fn shared_workspace(root: &Task) -> Option<(&str, &str)> {
    match (root.workspace_kind.as_str(), root.workspace_path.as_deref()) {
        ("scratch", _) | (_, None) => None,
        (kind, Some(path)) => Some((kind, path)),
    }
}

/// The refusal when the card left triage (or never was there).
pub fn not_in_triage(action: &'static str, task: &Task) -> StoreError {
    StoreError::Refused {
        action,
        task_id: task.id.clone(),
        reason: format!("task is not in triage (status={})", task.status.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(parents: &[usize]) -> ChildCard {
        ChildCard {
            title: "t".into(),
            parents: parents.to_vec(),
            ..Default::default()
        }
    }

    fn req(children: Vec<ChildCard>) -> DecomposeRequest {
        DecomposeRequest {
            task_id: "t_1".into(),
            children,
            ..Default::default()
        }
    }

    #[test]
    fn order_puts_parents_first() {
        let r = req(vec![child(&[2]), child(&[]), child(&[1])]);
        r.validate().unwrap();
        assert_eq!(r.creation_order(), vec![1, 2, 0]);
    }

    #[test]
    fn refuses_cycles_self_links_bad_indices_and_empty() {
        for bad in [
            req(vec![child(&[1]), child(&[0])]),
            req(vec![child(&[0])]),
            req(vec![child(&[5])]),
            req(vec![]),
            req(vec![ChildCard::default()]),
            req((0..=DECOMPOSE_MAX_CHILDREN).map(|_| child(&[])).collect()),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
