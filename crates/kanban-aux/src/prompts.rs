//! What the auxiliary model is asked. Each prompt asks for one JSON object
//! and says so plainly; answers are checked by `plan`, never trusted.

use crate::extract::truncate;

/// Title/body characters shown to the model.
const PROMPT_TITLE_CHARS: usize = 400;
const PROMPT_BODY_CHARS: usize = 4000;
/// Characters of a goal-mode handoff shown to the judge.
const JUDGE_EVIDENCE_CHARS: usize = 4000;

pub const SPECIFY_SYSTEM: &str = "\
You turn rough ideas parked in the Triage column of a task board into task \
specifications that an autonomous worker can carry out without asking back.

Answer with exactly one JSON object and nothing else (no code fences, no \
commentary):
{\"title\": \"<short imperative title, at most 80 characters>\", \
\"body\": \"<the specification>\"}

The body has these Markdown sections, in order, each introduced by a bold \
heading: **Goal** (one sentence: the outcome for the user), **Approach** \
(two to five bullets), **Acceptance criteria** (a checklist of verifiable \
conditions), and **Out of scope** (only when something obviously is).

Stay with the idea you were given: tighten it, do not replace it, and do \
not add requirements it does not suggest. A detailed idea keeps its \
substance and is only reorganised into the sections.";

pub fn specify_user(id: &str, title: &str, body: Option<&str>) -> String {
    format!(
        "Card {id}\nTitle: {}\nDescription:\n{}\n",
        truncate(title, PROMPT_TITLE_CHARS),
        truncate(
            body.filter(|b| !b.trim().is_empty()).unwrap_or("(none)"),
            PROMPT_BODY_CHARS
        ),
    )
}

pub const DECOMPOSE_SYSTEM: &str = "\
You split rough ideas parked in the Triage column of a task board into a \
small graph of concrete cards, each routed to the worker profile best \
suited to it. You get the idea, the roster of profiles (name and what each \
is good at) and the fallback profile.

Answer with exactly one JSON object and nothing else (no code fences, no \
commentary). To split the work:
{\"fanout\": true, \"rationale\": \"<one sentence>\", \"tasks\": [
  {\"title\": \"<imperative, at most 80 characters>\", \
\"body\": \"<what a worker with no other context must know: goal, approach, \
acceptance criteria>\", \"assignee\": \"<a roster name, or null for the \
fallback>\", \"parents\": [<0-based positions in this tasks list that must \
finish first>]}
]}

Cards without parents run in parallel, so only list a parent when its \
output is really needed. Two to six cards is usual; never more than twenty. \
Choose assignees by what the roster says a profile does, and only from the \
roster.

When the idea is one piece of work, do not split it; answer instead:
{\"fanout\": false, \"rationale\": \"<one sentence>\", \"title\": \"<title>\", \
\"body\": \"<specification>\", \"assignee\": \"<a roster name or null>\"}";

/// One roster line per profile for the decomposer.
pub fn roster_lines(roster: &[(String, String)]) -> String {
    if roster.is_empty() {
        return "  (no profiles: leave every assignee null)".into();
    }
    roster
        .iter()
        .map(|(name, desc)| {
            if desc.trim().is_empty() {
                format!("  - {name}: (not described; judge by the name)")
            } else {
                format!("  - {name}: {}", truncate(desc.trim(), 600))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn decompose_user(
    id: &str,
    title: &str,
    body: Option<&str>,
    roster: &str,
    fallback: Option<&str>,
) -> String {
    format!(
        "Card {id}\nTitle: {}\nDescription:\n{}\n\nProfiles you may assign:\n{roster}\n\n\
         Fallback when none fits (assignee null): {}\n",
        truncate(title, PROMPT_TITLE_CHARS),
        truncate(
            body.filter(|b| !b.trim().is_empty()).unwrap_or("(none)"),
            PROMPT_BODY_CHARS
        ),
        fallback.unwrap_or("(none: the card stays unassigned)"),
    )
}

pub const JUDGE_SYSTEM: &str = "\
You check whether an autonomous worker really finished the goal of its \
task-board card. You get the card (its title and description are the goal) \
and the worker's closing report. Be strict: the report must show the goal \
met, not promise it.

Answer with exactly one JSON object on one line and nothing else:
{\"verdict\": \"done\", \"reason\": \"<one sentence>\"} when the report shows \
the goal met (or shows convincingly that it cannot be met and why), or
{\"verdict\": \"continue\", \"reason\": \"<one sentence naming what is missing>\"} \
otherwise. When in doubt, continue.";

pub fn judge_user(goal: &str, evidence: &str) -> String {
    format!(
        "Goal:\n{}\n\nWorker's closing report:\n{}\n\nIs the goal met?",
        truncate(goal, 2000),
        truncate(evidence, JUDGE_EVIDENCE_CHARS)
    )
}

pub const DESCRIBE_SYSTEM: &str = "\
You write the one- or two-sentence description of a worker profile that a \
task router reads to decide which cards to give it. Say what kind of work \
it is good at, concretely; no marketing, no preamble.

Answer with exactly one JSON object and nothing else:
{\"description\": \"<one or two sentences>\"}";

pub fn describe_user(name: &str, facts: &str) -> String {
    format!(
        "Profile: {name}\nWhat is known about it:\n{}\n",
        truncate(facts, 4000)
    )
}
