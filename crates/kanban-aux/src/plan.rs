//! Model answers turned into plans, or refused with a reason: pure
//! functions, so hostile answers (cycles, unknown profiles, injected ids,
//! huge or malformed JSON) are tested without a model or a board.

use kanban_core::validate::normalize_assignee;
use kanban_store::triage::{
    CHILD_TITLE_MAX_CHARS, ChildCard, DECOMPOSE_MAX_CHILDREN, topological_order,
};
use serde_json::{Map, Value};

use crate::extract::json_object;

/// Longest title a model may propose (the prompt asks for ≤ 80).
pub const TITLE_MAX_CHARS: usize = CHILD_TITLE_MAX_CHARS;
/// Longest body a model may write for one card.
pub const BODY_MAX_CHARS: usize = 32 * 1024;

/// A specification: new title and/or body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecPlan {
    pub title: Option<String>,
    pub body: Option<String>,
}

/// Who may be assigned: the known profiles and the fallback.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// Known profile names (lower-case).
    pub profiles: Vec<String>,
    /// Where a card goes when the model names nobody; `None`: unassigned.
    pub default_assignee: Option<String>,
}

/// A decomposition: one card re-specified, or a graph of children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecomposePlan {
    Single {
        spec: SpecPlan,
        assignee: Option<String>,
    },
    Fanout {
        children: Vec<ChildCard>,
    },
}

fn title_of(v: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            if t.contains(['\n', '\r']) {
                return Err(format!("{field} spans several lines"));
            }
            if t.chars().count() > TITLE_MAX_CHARS {
                return Err(format!(
                    "{field} is longer than {TITLE_MAX_CHARS} characters"
                ));
            }
            Ok(Some(t.to_string()))
        }
        Some(_) => Err(format!("{field} is not a string")),
    }
}

fn body_of(v: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > BODY_MAX_CHARS => Err(format!(
            "{field} is longer than {BODY_MAX_CHARS} characters"
        )),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(format!("{field} is not a string")),
    }
}

/// The specifier's answer: `{"title", "body"}`; a reply that is not JSON
/// at all is taken as the body (the reference's fallback).
pub fn parse_spec(raw: &str) -> Result<SpecPlan, String> {
    let Some(obj) = json_object(raw) else {
        let text = raw.trim();
        if text.is_empty() {
            return Err("the model returned an empty answer".into());
        }
        if text.starts_with('{') || text.starts_with("```") {
            return Err("the model returned malformed JSON".into());
        }
        let body = body_of(Some(&Value::String(text.to_string())), "the answer")?;
        return Ok(SpecPlan { title: None, body });
    };
    let plan = SpecPlan {
        title: title_of(obj.get("title"), "title")?,
        body: body_of(obj.get("body"), "body")?,
    };
    if plan.title.is_none() && plan.body.is_none() {
        return Err("the model's answer has neither a title nor a body".into());
    }
    Ok(plan)
}

fn assignee_of(
    v: Option<&Value>,
    field: &str,
    routing: &Routing,
) -> Result<Option<String>, String> {
    let name = match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => normalize_assignee(Some(s)),
        Some(_) => return Err(format!("{field} is not a string")),
    };
    match name {
        None => Ok(routing.default_assignee.clone()),
        Some(n) if routing.profiles.contains(&n) => Ok(Some(n)),
        Some(n) => Err(format!(
            "{field} names {n:?}, which is not a known profile (known: {})",
            if routing.profiles.is_empty() {
                "none".to_string()
            } else {
                routing.profiles.join(", ")
            }
        )),
    }
}

fn parents_of(v: Option<&Value>, i: usize, n: usize) -> Result<Vec<usize>, String> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(format!("tasks[{i}].parents is not a list")),
    };
    let mut out = Vec::new();
    for p in items {
        let idx = p
            .as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| {
                format!("tasks[{i}].parents holds {p}, which is not an index into tasks")
            })?;
        if idx >= n {
            return Err(format!(
                "tasks[{i}].parents names {idx}, past the last task"
            ));
        }
        if idx == i {
            return Err(format!("tasks[{i}] lists itself as a parent"));
        }
        if !out.contains(&idx) {
            out.push(idx);
        }
    }
    Ok(out)
}

fn fanout_flag(obj: &Map<String, Value>) -> Result<bool, String> {
    match obj.get("fanout") {
        None | Some(Value::Null) => Ok(obj.contains_key("tasks")),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err("fanout is not true or false".into()),
    }
}

/// The decomposer's answer, checked against the roster: every field has
/// its type, titles and bodies their bounds, parents are in-range sibling
/// indices without cycles, and every assignee is a known profile.
pub fn parse_decompose(raw: &str, routing: &Routing) -> Result<DecomposePlan, String> {
    let obj = json_object(raw).ok_or("the model did not return a JSON object")?;
    if !fanout_flag(&obj)? {
        let spec = SpecPlan {
            title: title_of(obj.get("title"), "title")?,
            body: body_of(obj.get("body"), "body")?,
        };
        if spec.title.is_none() && spec.body.is_none() {
            return Err("the model chose no fan-out but gave neither a title nor a body".into());
        }
        let assignee = assignee_of(obj.get("assignee"), "assignee", routing)?;
        return Ok(DecomposePlan::Single { spec, assignee });
    }
    let tasks = match obj.get("tasks") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            return Err("the model chose fan-out but listed no tasks".into());
        }
        Some(_) => return Err("tasks is not a list".into()),
    };
    if tasks.len() > DECOMPOSE_MAX_CHILDREN {
        return Err(format!(
            "the model listed {} tasks; at most {DECOMPOSE_MAX_CHILDREN} are accepted",
            tasks.len()
        ));
    }
    let n = tasks.len();
    let mut children = Vec::with_capacity(n);
    for (i, t) in tasks.iter().enumerate() {
        let Value::Object(t) = t else {
            return Err(format!("tasks[{i}] is not an object"));
        };
        let title = title_of(t.get("title"), &format!("tasks[{i}].title"))?
            .ok_or_else(|| format!("tasks[{i}].title is missing or empty"))?;
        children.push(ChildCard {
            title,
            body: body_of(t.get("body"), &format!("tasks[{i}].body"))?,
            assignee: assignee_of(t.get("assignee"), &format!("tasks[{i}].assignee"), routing)?,
            parents: parents_of(t.get("parents"), i, n)?,
        });
    }
    if topological_order(&children).is_none() {
        return Err("the tasks' parents form a cycle".into());
    }
    Ok(DecomposePlan::Fanout { children })
}

/// The judge's verdict on a goal-mode completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub done: bool,
    pub reason: String,
}

/// `{"verdict": "done"|"continue"|"wait", "reason"}` or the legacy
/// `{"done": bool, "reason"}`; anything else is refused.
pub fn parse_verdict(raw: &str) -> Result<Verdict, String> {
    let obj = json_object(raw).ok_or("the judge did not return a JSON object")?;
    let reason = match obj.get("reason") {
        Some(Value::String(s)) => crate::extract::truncate(s.trim(), 500),
        _ => String::new(),
    };
    let done = match (obj.get("verdict"), obj.get("done")) {
        (Some(Value::String(v)), _) => match v.trim().to_lowercase().as_str() {
            "done" => true,
            "continue" | "wait" => false,
            other => {
                return Err(format!(
                    "the judge's verdict {other:?} is not done/continue/wait"
                ));
            }
        },
        (None, Some(Value::Bool(b))) => *b,
        _ => return Err("the judge's answer has no verdict".into()),
    };
    Ok(Verdict { done, reason })
}

/// The describer's answer: `{"description"}` or plain text, one short
/// paragraph.
pub fn parse_description(raw: &str, max_chars: usize) -> Result<String, String> {
    let text = match json_object(raw) {
        Some(obj) => match obj.get("description") {
            Some(Value::String(s)) => s.trim().to_string(),
            _ => return Err("the model's answer has no description".into()),
        },
        None => raw.trim().to_string(),
    };
    if text.is_empty() {
        return Err("the model returned an empty description".into());
    }
    if text.chars().count() > max_chars {
        return Err(format!(
            "the description is longer than {max_chars} characters"
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing() -> Routing {
        Routing {
            profiles: vec!["coder".into(), "default".into(), "writer".into()],
            default_assignee: Some("default".into()),
        }
    }

    fn fanout(tasks: &str) -> Result<DecomposePlan, String> {
        parse_decompose(
            &format!("{{\"fanout\": true, \"tasks\": {tasks}}}"),
            &routing(),
        )
    }

    #[test]
    fn spec_answers() {
        let p = parse_spec("```json\n{\"title\": \"Fix login\", \"body\": \"**Goal** x\"}\n```")
            .unwrap();
        assert_eq!(p.title.as_deref(), Some("Fix login"));
        assert_eq!(
            parse_spec("Just prose").unwrap().body.as_deref(),
            Some("Just prose")
        );
        assert!(parse_spec("").is_err());
        assert!(parse_spec("{\"title\": \"x").is_err());
        assert!(parse_spec("{\"other\": 1}").is_err());
        assert!(parse_spec("{\"title\": 5}").is_err());
        assert!(parse_spec("{\"title\": \"a\\nb\"}").is_err());
        let huge = format!("{{\"body\": \"{}\"}}", "x".repeat(BODY_MAX_CHARS + 1));
        assert!(parse_spec(&huge).is_err());
    }

    #[test]
    fn fanout_graph_is_built_and_routed() {
        let p = fanout(
            r#"[{"title": "a", "assignee": "Coder"}, {"title": "b", "assignee": null, "parents": [0]}]"#,
        )
        .unwrap();
        let DecomposePlan::Fanout { children } = p else {
            panic!("not a fan-out")
        };
        assert_eq!(children[0].assignee.as_deref(), Some("coder"));
        assert_eq!(children[1].assignee.as_deref(), Some("default"));
        assert_eq!(children[1].parents, vec![0]);
    }

    #[test]
    fn hostile_fanouts_are_refused() {
        for (tasks, why) in [
            (
                r#"[{"title": "a", "parents": [1]}, {"title": "b", "parents": [0]}]"#,
                "cycle",
            ),
            (r#"[{"title": "a", "parents": [0]}]"#, "itself"),
            (r#"[{"title": "a", "parents": [7]}]"#, "past the last"),
            (
                r#"[{"title": "a", "parents": ["t_deadbeef"]}]"#,
                "not an index",
            ),
            (r#"[{"title": "a", "parents": [-1]}]"#, "not an index"),
            (
                r#"[{"title": "a", "assignee": "root; rm -rf /"}]"#,
                "not a known profile",
            ),
            (r#"[{"title": ""}]"#, "missing or empty"),
            (r#"["just a string"]"#, "not an object"),
            (r#"[]"#, "no tasks"),
            (r#"{"a": 1}"#, "not a list"),
            (r#"[{"title": "a", "body": 12}]"#, "not a string"),
        ] {
            let err = fanout(tasks).unwrap_err();
            assert!(err.contains(why), "{tasks}: {err}");
        }
        let many = format!(
            "[{}]",
            vec![r#"{"title": "x"}"#; DECOMPOSE_MAX_CHILDREN + 1].join(",")
        );
        assert!(fanout(&many).unwrap_err().contains("at most"));
        assert!(parse_decompose("not json", &routing()).is_err());
        assert!(parse_decompose(r#"{"fanout": "yes"}"#, &routing()).is_err());
    }

    #[test]
    fn injected_ids_are_ignored_not_used() {
        // An `id` the model makes up has no effect: ids are the store's.
        let p = fanout(r#"[{"id": "t_00000000", "title": "a"}]"#).unwrap();
        assert!(matches!(p, DecomposePlan::Fanout { .. }));
    }

    #[test]
    fn single_card_answers() {
        let p = parse_decompose(
            r#"{"fanout": false, "title": "t", "body": "b", "assignee": "writer"}"#,
            &routing(),
        )
        .unwrap();
        assert!(matches!(p, DecomposePlan::Single { assignee: Some(ref a), .. } if a == "writer"));
        assert!(parse_decompose(r#"{"fanout": false}"#, &routing()).is_err());
    }

    #[test]
    fn verdicts() {
        assert!(
            parse_verdict(r#"{"verdict": "done", "reason": "ok"}"#)
                .unwrap()
                .done
        );
        assert!(
            !parse_verdict(r#"{"verdict": "continue", "reason": "no"}"#)
                .unwrap()
                .done
        );
        assert!(parse_verdict(r#"{"done": true}"#).unwrap().done);
        assert!(parse_verdict(r#"{"verdict": "maybe"}"#).is_err());
        assert!(parse_verdict("DONE!").is_err());
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            parse_description("{\"description\": \"Writes Rust.\"}", 100).unwrap(),
            "Writes Rust."
        );
        assert_eq!(
            parse_description("Reviews PRs.", 100).unwrap(),
            "Reviews PRs."
        );
        assert!(parse_description("", 100).is_err());
        assert!(parse_description(&"x".repeat(101), 100).is_err());
    }
}
