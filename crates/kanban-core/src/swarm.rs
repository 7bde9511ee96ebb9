//! Swarm graphs (reference `kanban swarm`, "Kanban Swarm v1"): a planning
//! root completed at once, N parallel workers under it, a verifier waiting
//! for every worker and a synthesizer waiting for the verifier. The root
//! keeps the swarm's shared blackboard: structured comments
//! `[swarm:blackboard] {"key": ..., "value": ...}`.
//!
//! Pure functions: parsing `--worker` specs, titles, bodies, the topology
//! comment and reading it back. The store writes the planned graph in one
//! transaction; ids are drawn up front so bodies can name the root.

use serde_json::{Map, Value};

use crate::error::CoreError;
use crate::ids::new_task_id;

/// Prefix of a structured blackboard comment on a swarm root.
pub const BLACKBOARD_PREFIX: &str = "[swarm:blackboard] ";
/// Blackboard key of the graph's ids.
pub const TOPOLOGY_KEY: &str = "topology";
/// `kind` recorded in the root's completion metadata.
pub const SWARM_KIND: &str = "kanban_swarm_v1";
/// Default author of a swarm's cards.
pub const DEFAULT_CREATED_BY: &str = "swarm-orchestrator";
pub const VERIFIER_TITLE: &str = "Verify swarm outputs";
pub const SYNTHESIZER_TITLE: &str = "Synthesize swarm outputs";
/// Skill forced on the verifier card.
pub const VERIFIER_SKILL: &str = "requesting-code-review";
/// Skill forced on the synthesizer card.
pub const SYNTHESIZER_SKILL: &str = "humanizer";
/// Characters of the goal's first line kept in the root title.
pub const ROOT_TITLE_GOAL_CHARS: usize = 80;
/// Workspace kind of every swarm card.
pub const SWARM_WORKSPACE_KIND: &str = "scratch";
pub const ROOT_SUMMARY: &str = "Swarm topology planned; root remains the shared blackboard.";

/// One parallel worker card (`--worker PROFILE:TITLE[:SKILL,SKILL]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmWorker {
    pub profile: String,
    pub title: String,
    pub body: String,
    pub skills: Vec<String>,
}

/// What a swarm is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmSpec {
    pub goal: String,
    pub workers: Vec<SwarmWorker>,
    pub verifier: String,
    pub synthesizer: String,
    pub created_by: String,
    pub tenant: Option<String>,
    pub priority: i64,
    pub idempotency_key: Option<String>,
}

/// Ids of a swarm graph (the reference's `as_dict` shape).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SwarmIds {
    pub root_id: String,
    pub worker_ids: Vec<String>,
    pub verifier_id: String,
    pub synthesizer_id: String,
}

impl SwarmIds {
    /// Fresh random ids for a graph of `workers` workers.
    pub fn fresh(workers: usize) -> Self {
        SwarmIds {
            root_id: new_task_id(),
            worker_ids: (0..workers).map(|_| new_task_id()).collect(),
            verifier_id: new_task_id(),
            synthesizer_id: new_task_id(),
        }
    }
}

/// One card of the planned graph, in creation order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCard {
    pub id: String,
    pub title: String,
    pub body: String,
    pub assignee: String,
    pub parents: Vec<String>,
    pub skills: Option<Vec<String>>,
    /// Idempotency key (the root only).
    pub idempotency_key: Option<String>,
}

/// The whole graph: cards in creation order (root first), the root's
/// completion, and the topology comment written on the root last.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmPlan {
    pub cards: Vec<PlannedCard>,
    pub root_summary: String,
    pub root_metadata: Value,
    pub comment_author: String,
    pub comment_body: String,
    pub ids: SwarmIds,
}

fn require(value: &str, field: &str) -> Result<String, CoreError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(CoreError::invalid(format!("{field} is required")));
    }
    Ok(v.to_string())
}

/// Parses `PROFILE:TITLE[:SKILL,SKILL]`: at most two splits on `:` (a
/// title cannot hold one, the skills part can), each part trimmed, empty
/// skills dropped. The title doubles as the card's body text.
pub fn parse_worker_arg(raw: &str) -> Result<SwarmWorker, CoreError> {
    let parts: Vec<&str> = raw.splitn(3, ':').map(str::trim).collect();
    if parts.len() < 2 {
        return Err(CoreError::invalid(format!(
            "--worker {raw:?}: expected PROFILE:TITLE or PROFILE:TITLE:SKILL,SKILL"
        )));
    }
    let skills = parts
        .get(2)
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    Ok(SwarmWorker {
        profile: parts[0].to_string(),
        title: parts[1].to_string(),
        body: parts[1].to_string(),
        skills,
    })
}

/// Python's `str.splitlines()[0]` (empty for an empty string).
fn first_line(text: &str) -> &str {
    const BREAKS: &[char] = &[
        '\n', '\r', '\u{0b}', '\u{0c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{85}', '\u{2028}',
        '\u{2029}',
    ];
    text.split(BREAKS).next().unwrap_or("")
}

/// Title of the root card: `Swarm: ` + the goal's first line, cut.
pub fn root_title(goal: &str) -> String {
    let line: String = first_line(goal)
        .chars()
        .take(ROOT_TITLE_GOAL_CHARS)
        .collect();
    format!("Swarm: {line}")
}

pub fn root_body(goal: &str) -> String {
    format!(
        "Kanban Swarm v1 planning/root card. This card is completed immediately so parallel \
         workers can start while it remains the shared blackboard and audit anchor.\n\n\
         Goal:\n{goal}"
    )
}

/// The protocol appended to every non-root card's body.
pub fn context_suffix(root_id: &str, goal: &str) -> String {
    format!(
        "\n\n## Swarm protocol\n\
         - Swarm root / shared blackboard: `{root_id}`.\n\
         - Read sibling/parent handoffs from Kanban context before working.\n\
         - Put machine-readable facts in completion metadata.\n\
         - Put cross-worker notes on the root task using structured comments.\n\
         - Goal: {}\n",
        goal.trim()
    )
}

pub fn verifier_body(suffix: &str) -> String {
    format!(
        "Review every worker handoff and blackboard update. Gate the swarm: complete only \
         with metadata {{\"gate\": \"pass\"}} when evidence is sufficient; otherwise block \
         with exact missing work.{suffix}"
    )
}

pub fn synthesizer_body(suffix: &str) -> String {
    format!(
        "Synthesize the verified worker outputs into the final deliverable. Do not start \
         until the verifier has passed the gate.{suffix}"
    )
}

/// Checks the spec the way the reference does before writing anything.
pub fn validate(spec: &SwarmSpec) -> Result<(), CoreError> {
    require(&spec.goal, "goal")?;
    require(&spec.verifier, "verifier")?;
    require(&spec.synthesizer, "synthesizer")?;
    if spec.workers.is_empty() {
        return Err(CoreError::invalid("at least one --worker is required"));
    }
    for (i, w) in spec.workers.iter().enumerate() {
        require(&w.profile, &format!("workers[{}].profile", i + 1))?;
        require(&w.title, &format!("workers[{}].title", i + 1))?;
    }
    Ok(())
}

/// The graph of `spec` with the given ids (`ids.worker_ids` has one id
/// per worker).
pub fn plan(spec: &SwarmSpec, ids: SwarmIds) -> Result<SwarmPlan, CoreError> {
    validate(spec)?;
    if ids.worker_ids.len() != spec.workers.len() {
        return Err(CoreError::invalid("one worker id per worker is required"));
    }
    let verifier = require(&spec.verifier, "verifier")?;
    let synthesizer = require(&spec.synthesizer, "synthesizer")?;
    let suffix = context_suffix(&ids.root_id, &spec.goal);
    let mut cards = vec![PlannedCard {
        id: ids.root_id.clone(),
        title: root_title(&spec.goal),
        body: root_body(&spec.goal),
        assignee: spec.created_by.clone(),
        parents: vec![],
        skills: None,
        idempotency_key: spec.idempotency_key.clone(),
    }];
    for (w, id) in spec.workers.iter().zip(&ids.worker_ids) {
        cards.push(PlannedCard {
            id: id.clone(),
            title: w.title.clone(),
            body: format!("{}{suffix}", w.body),
            assignee: w.profile.clone(),
            parents: vec![ids.root_id.clone()],
            skills: (!w.skills.is_empty()).then(|| w.skills.clone()),
            idempotency_key: None,
        });
    }
    cards.push(PlannedCard {
        id: ids.verifier_id.clone(),
        title: VERIFIER_TITLE.into(),
        body: verifier_body(&suffix),
        assignee: verifier,
        parents: ids.worker_ids.clone(),
        skills: Some(vec![VERIFIER_SKILL.into()]),
        idempotency_key: None,
    });
    cards.push(PlannedCard {
        id: ids.synthesizer_id.clone(),
        title: SYNTHESIZER_TITLE.into(),
        body: synthesizer_body(&suffix),
        assignee: synthesizer,
        parents: vec![ids.verifier_id.clone()],
        skills: Some(vec![SYNTHESIZER_SKILL.into()]),
        idempotency_key: None,
    });
    let mut meta = Map::new();
    meta.insert("kind".into(), SWARM_KIND.into());
    meta.insert("goal".into(), spec.goal.clone().into());
    meta.insert("worker_count".into(), spec.workers.len().into());
    Ok(SwarmPlan {
        cards,
        root_summary: ROOT_SUMMARY.into(),
        root_metadata: Value::Object(meta),
        comment_author: spec.created_by.clone(),
        comment_body: topology_comment(&ids, &spec.goal),
        ids,
    })
}

/// The blackboard comment recording the graph's ids (keys sorted, Python
/// `json.dumps` separators, so both implementations write the same text).
pub fn topology_comment(ids: &SwarmIds, goal: &str) -> String {
    let mut value = serde_json::to_value(ids).unwrap_or_default();
    if let Value::Object(m) = &mut value {
        m.insert("goal".into(), goal.into());
    }
    let mut entry = Map::new();
    entry.insert("key".into(), TOPOLOGY_KEY.into());
    entry.insert("value".into(), value);
    format!("{BLACKBOARD_PREFIX}{}", python_json(&Value::Object(entry)))
}

/// `json.dumps(v, ensure_ascii=False, sort_keys=True)`.
pub fn python_json(v: &Value) -> String {
    let mut out = String::new();
    write_python_json(v, &mut out);
    out
}

fn write_python_json(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push_str(": ");
                write_python_json(&m[k], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Merges the root's blackboard comments (`(author, body)`, oldest first):
/// a later value of a key replaces an earlier one; bodies that are not
/// blackboard entries are ignored.
pub fn latest_blackboard<'a>(
    comments: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Map<String, Value> {
    let mut merged = Map::new();
    for (_author, body) in comments {
        let Some(raw) = body.strip_prefix(BLACKBOARD_PREFIX) else {
            continue;
        };
        let Ok(Value::Object(entry)) = serde_json::from_str::<Value>(raw) else {
            continue;
        };
        let Some(Value::String(key)) = entry.get("key") else {
            continue;
        };
        if key.is_empty() {
            continue;
        }
        merged.insert(
            key.clone(),
            entry.get("value").cloned().unwrap_or(Value::Null),
        );
    }
    merged
}

/// The graph recorded on a root's blackboard, when it is a complete one.
pub fn topology_from_blackboard(root_id: &str, board: &Map<String, Value>) -> Option<SwarmIds> {
    let t = board.get(TOPOLOGY_KEY)?.as_object()?;
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    let worker_ids: Vec<String> = t
        .get("worker_ids")?
        .as_array()?
        .iter()
        .filter_map(text)
        .filter(|s| !s.is_empty())
        .collect();
    let verifier_id = t
        .get("verifier_id")
        .and_then(text)
        .filter(|s| !s.is_empty())?;
    let synthesizer_id = t
        .get("synthesizer_id")
        .and_then(text)
        .filter(|s| !s.is_empty())?;
    if worker_ids.is_empty() {
        return None;
    }
    Some(SwarmIds {
        root_id: root_id.to_string(),
        worker_ids,
        verifier_id,
        synthesizer_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(workers: &[&str]) -> SwarmSpec {
        SwarmSpec {
            goal: "Ship the report\nwith details".into(),
            workers: workers
                .iter()
                .map(|w| parse_worker_arg(w).unwrap())
                .collect(),
            verifier: "rev".into(),
            synthesizer: "writer".into(),
            created_by: "boss".into(),
            tenant: None,
            priority: 3,
            idempotency_key: Some("k1".into()),
        }
    }

    fn ids(n: usize) -> SwarmIds {
        SwarmIds {
            root_id: "t_00000000".into(),
            worker_ids: (1..=n).map(|i| format!("t_0000000{i}")).collect(),
            verifier_id: "t_aaaaaaaa".into(),
            synthesizer_id: "t_bbbbbbbb".into(),
        }
    }

    #[test]
    fn worker_specs_parse_like_the_reference() {
        let w = parse_worker_arg(" alice : Research : web , ,pdf ").unwrap();
        assert_eq!(w.profile, "alice");
        assert_eq!(w.title, "Research");
        assert_eq!(w.body, "Research");
        assert_eq!(w.skills, vec!["web", "pdf"]);
        // Only two splits: the third part keeps its colons.
        let w = parse_worker_arg("bob:Title:a:b").unwrap();
        assert_eq!(w.skills, vec!["a:b"]);
        assert!(parse_worker_arg("bob:Title:").unwrap().skills.is_empty());
        assert!(parse_worker_arg("no-title").is_err());
        // Empty parts parse, validation refuses them.
        let mut s = spec(&["a:t"]);
        s.workers.push(parse_worker_arg(":t").unwrap());
        assert_eq!(
            validate(&s).unwrap_err().to_string(),
            "workers[2].profile is required"
        );
        s.workers[1] = parse_worker_arg("p: ").unwrap();
        assert_eq!(
            validate(&s).unwrap_err().to_string(),
            "workers[2].title is required"
        );
    }

    #[test]
    fn validation_requires_goal_roles_and_a_worker() {
        let mut s = spec(&[]);
        assert!(validate(&s).is_err());
        s = spec(&["a:t"]);
        s.goal = "  ".into();
        assert_eq!(validate(&s).unwrap_err().to_string(), "goal is required");
        s = spec(&["a:t"]);
        s.verifier = "".into();
        assert!(validate(&s).is_err());
    }

    #[test]
    fn titles_cut_the_first_line() {
        assert_eq!(root_title("Goal\nmore"), "Swarm: Goal");
        assert_eq!(root_title("a\r\nb"), "Swarm: a");
        let long = "x".repeat(100);
        assert_eq!(root_title(&long), format!("Swarm: {}", "x".repeat(80)));
        assert_eq!(root_title("é".repeat(90).as_str()).chars().count(), 7 + 80);
    }

    #[test]
    fn plan_builds_the_reference_graph() {
        let p = plan(&spec(&["a:Research:web", "b:Draft"]), ids(2)).unwrap();
        let c = &p.cards;
        assert_eq!(c.len(), 5);
        assert_eq!(c[0].title, "Swarm: Ship the report");
        assert_eq!(c[0].assignee, "boss");
        assert_eq!(c[0].idempotency_key.as_deref(), Some("k1"));
        assert!(c[0].body.ends_with("Goal:\nShip the report\nwith details"));
        assert_eq!(c[1].parents, vec!["t_00000000"]);
        assert_eq!(c[1].skills, Some(vec!["web".to_string()]));
        assert_eq!(c[2].skills, None);
        assert!(c[1].body.starts_with("Research\n\n## Swarm protocol\n"));
        assert!(c[1].body.contains("blackboard: `t_00000000`."));
        assert!(
            c[1].body
                .ends_with("- Goal: Ship the report\nwith details\n")
        );
        assert_eq!(c[3].title, VERIFIER_TITLE);
        assert_eq!(c[3].parents, vec!["t_00000001", "t_00000002"]);
        assert_eq!(c[3].skills, Some(vec![VERIFIER_SKILL.to_string()]));
        assert!(c[3].body.contains("{\"gate\": \"pass\"}"));
        assert_eq!(c[4].parents, vec!["t_aaaaaaaa"]);
        assert_eq!(c[4].assignee, "writer");
        assert_eq!(p.root_metadata["worker_count"], 2);
        assert_eq!(
            p.comment_body,
            "[swarm:blackboard] {\"key\": \"topology\", \"value\": {\"goal\": \"Ship the \
             report\\nwith details\", \"root_id\": \"t_00000000\", \"synthesizer_id\": \
             \"t_bbbbbbbb\", \"verifier_id\": \"t_aaaaaaaa\", \"worker_ids\": [\"t_00000001\", \
             \"t_00000002\"]}}"
        );
        assert!(plan(&spec(&["a:t"]), ids(2)).is_err());
    }

    #[test]
    fn topology_reads_back_from_the_blackboard() {
        let i = ids(2);
        let body = topology_comment(&i, "g");
        let board = latest_blackboard([
            ("x", "plain comment"),
            ("x", "[swarm:blackboard] not json"),
            ("y", body.as_str()),
        ]);
        assert_eq!(topology_from_blackboard("t_00000000", &board), Some(i));
        let later = "[swarm:blackboard] {\"key\": \"topology\", \"value\": {\"worker_ids\": []}}";
        let board = latest_blackboard([("y", body.as_str()), ("z", later)]);
        assert_eq!(topology_from_blackboard("t_00000000", &board), None);
    }
}
