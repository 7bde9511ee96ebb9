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

/// Append the object of `fields` as an element of a top-level array:
/// two spaces before its braces, four before its keys.
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
fn push_key(out: &mut Vec<u8>, i: usize, key: &str) {
    out.extend_from_slice(if i == 0 { b"\n    " } else { b",\n    " });
    push_str(out, key);
    out.extend_from_slice(b": ");
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

/// Records copied into one buffer, to be written as JSON on another
/// thread: a reader fills a batch while a writer formats the previous one,
/// so a long listing uses both cores.
#[derive(Debug, Default)]
pub struct RecordBatch {
    bytes: Vec<u8>,
    records: usize,
}

/// Tags of the batch encoding.
const TAG_STR: u8 = 0;
const TAG_NULL: u8 = 1;
const TAG_INT: u8 = 2;
const TAG_LIST: u8 = 3;

impl RecordBatch {
    /// Records held.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Empty it, keeping its buffer.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.records = 0;
    }

    /// Copy one record in (keys of at most 255 bytes).
    pub fn push(&mut self, fields: &[(&str, Value<'_>)]) {
        let b = &mut self.bytes;
        b.push(u8::try_from(fields.len()).unwrap_or(u8::MAX));
        for (key, value) in fields.iter().take(usize::from(u8::MAX)) {
            let key = &key.as_bytes()[..key.len().min(usize::from(u8::MAX))];
            b.push(key.len() as u8);
            b.extend_from_slice(key);
            match value {
                Value::Str(s) | Value::OptStr(Some(s)) => {
                    b.push(TAG_STR);
                    push_len_prefixed(b, s);
                }
                Value::OptStr(None) | Value::OptInt(None) => b.push(TAG_NULL),
                Value::Int(n) | Value::OptInt(Some(n)) => {
                    b.push(TAG_INT);
                    b.extend_from_slice(&n.to_le_bytes());
                }
                Value::List(items) => {
                    b.push(TAG_LIST);
                    b.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    for item in items.iter() {
                        push_len_prefixed(b, item);
                    }
                }
            }
        }
        self.records += 1;
    }

    /// Append every record as [`push_element`] would have, each after
    /// `",\n"` (or `"\n"` for the array's first, which `any` tracks).
    pub fn write_elements(&self, out: &mut Vec<u8>, any: &mut bool) {
        let mut r = Reader {
            bytes: &self.bytes,
            at: 0,
        };
        for _ in 0..self.records {
            out.extend_from_slice(if *any { b",\n  {" } else { b"\n  {" });
            *any = true;
            let fields = usize::from(r.byte());
            for i in 0..fields {
                let key_len = usize::from(r.byte());
                push_key(out, i, r.str(key_len));
                match r.byte() {
                    TAG_STR => {
                        let len = r.len();
                        push_str(out, r.str(len));
                    }
                    TAG_INT => push_int(out, r.u64() as i64),
                    TAG_LIST => {
                        let count = r.len();
                        for j in 0..count {
                            let len = r.len();
                            push_list_item(out, j, r.str(len));
                        }
                        close_list(out, count);
                    }
                    _ => out.extend_from_slice(b"null"),
                }
            }
            close_element(out, fields);
        }
    }
}

fn push_len_prefixed(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u64).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// Cursor over a batch's bytes (written by [`RecordBatch::push`] only).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        self.at += 1;
        self.bytes[self.at - 1]
    }
    fn u64(&mut self) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.bytes[self.at..self.at + 8]);
        self.at += 8;
        u64::from_le_bytes(word)
    }
    fn len(&mut self) -> usize {
        usize::try_from(self.u64()).unwrap_or(usize::MAX)
    }
    fn str(&mut self, len: usize) -> &'a str {
        let s = &self.bytes[self.at..self.at + len];
        self.at += len;
        // Copied from a `&str` by `push`, so always valid.
        std::str::from_utf8(s).unwrap_or_default()
    }
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
    fn a_batch_writes_the_bytes_of_its_records_pushed_one_by_one() {
        let skills = vec!["x".to_string(), "y \"z\"".to_string()];
        let samples = [
            Sample {
                id: "t_1",
                body: None,
                n: 0,
                at: None,
                skills: &[],
            },
            Sample {
                id: "t_2",
                body: Some("a\nb"),
                n: -3,
                at: Some(9),
                skills: &skills,
            },
            Sample {
                id: "t_3",
                body: Some(""),
                n: 1,
                at: Some(-1),
                skills: &skills[..1],
            },
        ];
        let mut batch = RecordBatch::default();
        let mut direct = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            let fields = [
                ("id", Value::Str(s.id)),
                ("body", Value::OptStr(s.body)),
                ("n", Value::Int(s.n)),
                ("at", Value::OptInt(s.at)),
                ("skills", Value::List(s.skills)),
            ];
            batch.push(&fields);
            direct.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            push_element(&mut direct, &fields);
        }
        assert_eq!(batch.len(), 3);
        let (mut out, mut any) = (Vec::new(), false);
        batch.write_elements(&mut out, &mut any);
        assert!(any);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(direct).unwrap()
        );
        batch.clear();
        assert!(batch.is_empty());
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
