//! Task ids: `t_` + 8 lowercase hex characters (4 random bytes), as the
//! reference generates them.

use rand::{RngExt, TryRng};

/// A fresh random task id. Four bytes straight from the system's source:
/// seeding a thread generator first (and probing the CPU for its SIMD
/// code) cost more than the rest of `kanban create`'s id.
pub fn new_task_id() -> String {
    let mut bytes = [0u8; 4];
    if rand::rngs::SysRng.try_fill_bytes(&mut bytes).is_err() {
        bytes = rand::rng().random();
    }
    format!(
        "t_{:02x}{:02x}{:02x}{:02x}",
        bytes[0], bytes[1], bytes[2], bytes[3]
    )
}

/// True for strings shaped like a task id (`t_` followed by hex).
pub fn looks_like_task_id(s: &str) -> bool {
    s.len() > 2 && s.starts_with("t_") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Task ids mentioned in `text`, in order (repeats included): the matches
/// of the reference's `\bt_[a-f0-9]{8,}\b`, word boundaries in Unicode's
/// sense. A scan rather than that regex: compiling it (and the CPU probe
/// of its prefilter) was a tenth of a `kanban complete` process.
pub fn task_id_mentions(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(at) = text[from..].find("t_").map(|i| from + i) {
            from = at + 1;
            if text[..at].chars().next_back().is_some_and(is_word_char) {
                continue;
            }
            let digits = bytes[at + 2..]
                .iter()
                .take_while(|b| matches!(b, b'a'..=b'f' | b'0'..=b'9'))
                .count();
            let end = at + 2 + digits;
            // The run is greedy and every hex digit is a word character, so
            // a run followed by a word character never ends on a boundary.
            if digits >= 8 && !text[end..].chars().next().is_some_and(is_word_char) {
                from = end;
                return Some(&text[at..end]);
            }
        }
        None
    })
}

/// A word character of the regex `\b` (Unicode `\w`).
fn is_word_char(c: char) -> bool {
    regex_syntax::try_is_word_character(c).unwrap_or_else(|_| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan finds exactly what the reference's regex finds.
    #[test]
    fn mentions_match_the_reference_pattern() {
        let re = regex::Regex::new(r"\bt_[a-f0-9]{8,}\b").unwrap();
        let texts = [
            "done: t_0123abcd and t_0123abcd, see (t_deadbeef01).",
            "xt_0123abcd t_0123abc t_0123abcdg t_0123abcd_ t_0123abcdé ét_0123abcd",
            "t_0123ABCD t_0123abcd9 «t_89abcdef» t_t_0123abcd -t_0123abcd-",
            "t_0123abcdt_0123abcd t_ t_0123abc\u{300} t_0123abcd\u{300}",
            "",
            "t_01234567",
        ];
        for text in texts {
            let want: Vec<&str> = re.find_iter(text).map(|m| m.as_str()).collect();
            let got: Vec<&str> = task_id_mentions(text).collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn mentions_agree_with_the_regex_on_any_text(text in "[ t_a-g0-9éA\u{300}.]{0,40}") {
            let re = regex::Regex::new(r"\bt_[a-f0-9]{8,}\b").unwrap();
            let want: Vec<&str> = re.find_iter(&text).map(|m| m.as_str()).collect();
            let got: Vec<&str> = task_id_mentions(&text).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn ids_have_reference_shape() {
        for _ in 0..100 {
            let id = new_task_id();
            assert_eq!(id.len(), 10);
            assert!(looks_like_task_id(&id));
            assert_eq!(id, id.to_lowercase());
        }
        assert!(!looks_like_task_id("t_"));
        assert!(!looks_like_task_id("x_12345678"));
        assert!(!looks_like_task_id("t_zz"));
    }
}
