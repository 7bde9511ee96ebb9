//! Getting a JSON object out of a model's text, leniently (code fences,
//! prose around it) but within bounds.

use serde_json::{Map, Value};

/// The JSON object in `raw`: the text between its first `{` and last `}`,
/// after stripping Markdown code fences. `None` when that is not an object.
pub fn json_object(raw: &str) -> Option<Map<String, Value>> {
    let text = strip_fences(raw.trim());
    let first = text.find('{')?;
    let last = text.rfind('}')?;
    if last <= first {
        return None;
    }
    match serde_json::from_str::<Value>(&text[first..=last]).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn strip_fences(text: &str) -> &str {
    let mut t = text;
    if let Some(rest) = t.strip_prefix("```") {
        // Drop the info string (`json`) up to the end of that line.
        t = rest.split_once('\n').map(|(_, r)| r).unwrap_or("");
    }
    t.trim_end().strip_suffix("```").unwrap_or(t).trim()
}

/// `s` cut to `max` characters with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_objects_in_fences_and_prose() {
        assert!(json_object("```json\n{\"a\": 1}\n```").is_some());
        assert!(json_object("Sure! {\"a\": {\"b\": 2}} hope that helps").is_some());
        assert!(json_object("[1, 2]").is_none());
        assert!(json_object("no json here").is_none());
        assert!(json_object("{broken").is_none());
        assert!(json_object("} {").is_none());
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo", 3), "hé…");
    }
}
