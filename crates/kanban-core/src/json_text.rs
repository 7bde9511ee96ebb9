//! Flat JSON objects written straight as pretty text, for output too big
//! for serde's generic path: `kanban list --json` writes 100k task dicts,
//! and a formatter call per key, value and indent cost a quarter of its
//! time. The bytes are serde_json's pretty printer's (two-space indent);
//! the tests below hold them to it. In this crate for its opt-level (see
//! the workspace's release profile): the byte loops need the optimiser.

/// One value of the dict.
pub enum Value<'a> {
    Str(&'a str),
    OptStr(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    List(&'a [String]),
}

/// The same value through serde (for output that is not a long listing),
/// so a dict's keys and values are written down once, as `fields`.
impl serde::Serialize for Value<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(v) => s.serialize_str(v),
            Value::OptStr(v) => v.serialize(s),
            Value::Int(v) => s.serialize_i64(*v),
            Value::OptInt(v) => v.serialize(s),
            Value::List(v) => v.serialize(s),
        }
    }
}

/// Serialize the object of `fields` (keys in order) through serde.
pub fn serialize_fields<S: serde::Serializer>(
    s: S,
    name: &'static str,
    fields: &[(&'static str, Value<'_>)],
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct(name, fields.len())?;
    for (key, value) in fields {
        st.serialize_field(key, value)?;
    }
    st.end()
}

/// Append the object of `fields` as an element of a top-level array:
/// two spaces before its braces, four before its keys. The keys are field
/// names and are written unescaped.
pub fn push_element(out: &mut Vec<u8>, fields: &[(&str, Value<'_>)]) {
    out.extend_from_slice(b"  {");
    for (i, (key, value)) in fields.iter().enumerate() {
        push_key(out, i, key);
        match value {
            Value::Str(s) | Value::OptStr(Some(s)) => push_str(out, s),
            Value::Int(n) | Value::OptInt(Some(n)) => push_int(out, *n),
            Value::OptStr(None) | Value::OptInt(None) => out.extend_from_slice(b"null"),
            Value::List(items) => {
                for (j, item) in items.iter().enumerate() {
                    push_list_item(out, j, item);
                }
                close_list(out, items.len());
            }
        }
    }
    close_element(out, fields.len());
}

/// The separator before field `i` of an element, its key and `": "`.
/// Keys are field names, which need no escaping: written as they are (an
/// escape scan per key was a tenth of `list --json` on a big board).
fn push_key(out: &mut Vec<u8>, i: usize, key: &str) {
    debug_assert!(
        crate::bytescan::first_json_escape(key.as_bytes(), 0).is_none(),
        "key {key:?} needs escaping"
    );
    out.extend_from_slice(if i == 0 { b"\n    \"" } else { b",\n    \"" });
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\": ");
}

fn push_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Item `j` of a list value (the list's `[` comes with the first).
fn push_list_item(out: &mut Vec<u8>, j: usize, item: &str) {
    out.extend_from_slice(if j == 0 { b"[\n      " } else { b",\n      " });
    push_str(out, item);
}

/// The end of a list value of `count` items (`[]` when empty).
fn close_list(out: &mut Vec<u8>, count: usize) {
    out.extend_from_slice(if count == 0 { b"[]" } else { b"\n    ]" });
}

fn close_element(out: &mut Vec<u8>, fields: usize) {
    out.extend_from_slice(if fields == 0 { b"}" } else { b"\n  }" });
}

/// `s` as a JSON string, escaped as serde_json escapes: `"`, `\` and the
/// C0 controls (short forms where JSON has them, else `\u00XX`, lowercase).
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(i) = crate::bytescan::first_json_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
        };
        out.extend_from_slice(short);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Sample<'a> {
        id: &'a str,
        body: Option<&'a str>,
        n: i64,
        at: Option<i64>,
        skills: &'a [String],
    }

    fn ours(s: &Sample<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        push_element(
            &mut out,
            &[
                ("id", Value::Str(s.id)),
                ("body", Value::OptStr(s.body)),
                ("n", Value::Int(s.n)),
                ("at", Value::OptInt(s.at)),
                ("skills", Value::List(s.skills)),
            ],
        );
        out
    }

    /// serde_json's bytes for the same object as an array element.
    fn serdes(s: &Sample<'_>) -> Vec<u8> {
        let whole = serde_json::to_string_pretty(&[s]).unwrap();
        // "[\n" + element + "\n]"
        whole.as_bytes()[2..whole.len() - 2].to_vec()
    }

    #[test]
    fn elements_are_serde_json_pretty_bytes() {
        let skills = vec!["a \"quoted\" one".to_string(), "é ✓ \u{7f}".to_string()];
        let samples = [
            Sample {
                id: "t_1",
                body: None,
                n: 0,
                at: None,
                skills: &[],
            },
            Sample {
                id: "t_\"2\\",
                body: Some("line\nnext\r\ttab \u{8}\u{c} \u{0}\u{1b}[31m \u{1f} \u{9b} 😀"),
                n: i64::MIN,
                at: Some(i64::MAX),
                skills: &skills,
            },
            Sample {
                id: "",
                body: Some(""),
                n: -7,
                at: Some(0),
                skills: &skills[..1],
            },
        ];
        for s in &samples {
            assert_eq!(
                String::from_utf8(ours(s)).unwrap(),
                String::from_utf8(serdes(s)).unwrap()
            );
        }
    }

    #[test]
    fn through_serde_the_fields_make_the_same_object() {
        let skills = vec!["x".to_string()];
        let fields = [
            ("id", Value::Str("t_1")),
            ("body", Value::OptStr(None)),
            ("n", Value::Int(-2)),
            ("at", Value::OptInt(Some(5))),
            ("skills", Value::List(&skills)),
        ];
        struct Fields<'a>(&'a [(&'static str, Value<'a>)]);
        impl serde::Serialize for Fields<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_fields(s, "Sample", self.0)
            }
        }
        let mut direct = Vec::new();
        push_element(&mut direct, &fields);
        let whole = serde_json::to_string_pretty(&[Fields(&fields)]).unwrap();
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            whole[2..whole.len() - 2]
        );
    }

    #[test]
    fn every_control_byte_is_escaped_as_serde_json_does() {
        let all: String = (0u8..0x80).map(char::from).collect();
        let mut out = Vec::new();
        push_str(&mut out, &all);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&all).unwrap()
        );
    }
}
