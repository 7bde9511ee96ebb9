//! Table tests: every expected value was produced by the reference's
//! `redact_sensitive_text(text, force=True)` (hermes-agent 0.19.0).

use super::*;
use serde_json::json;

/// (input, redacted). Rows whose two sides are equal are near misses that
/// must pass through unchanged.
const CASES: &[(&str, &str)] = &[
    (
        "key sk-proj-abcdefghijklmnopqrstuvwx done",
        "key sk-pro...uvwx done",
    ),
    (
        "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 here",
        "token ghp_ab...6789 here",
    ),
    ("short ghp_abcdefghij1", "short ***"),
    ("aws AKIAABCDEFGHIJKLMNOP key", "aws AKIAAB...MNOP key"),
    ("slack xoxb-1234567890-abcdefghij", "slack xoxb-1...ghij"),
    (
        "google AIzaSyA1234567890abcdefghijklmnopqrstu",
        "google AIzaSy...rstu",
    ),
    (
        "anthropic sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123",
        "anthropic sk-ant...0123",
    ),
    ("stripe sk_live_abcdefghijklmnop", "stripe sk_liv...mnop"),
    ("hf hf_abcdefghijklmnopqrstu", "hf hf_abc...rstu"),
    (
        "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx",
        "OPENAI_API_KEY=***",
    ),
    ("MY_SECRET = \"hunter2hunter2\"", "MY_SECRET=\"***\""),
    ("DB_PASSWORD=hunter2", "DB_PASSWORD=***"),
    ("export api_key=abcdef123456", "export api_key=***"),
    (
        "spring.datasource.password=s3cr3tvalue",
        "spring.datasource.password=***",
    ),
    (
        "{\"api_key\": \"abcdefghijklmnopqrstuvwxyz\"}",
        "{\"api_key\": \"abcdef...wxyz\"}",
    ),
    ("{\"token\": \"short\"}", "{\"token\": \"***\"}"),
    ("password: hunter2", "password: ***"),
    (
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123",
        "Authorization: Bearer abcdef...0123",
    ),
    (
        "authorization: Basic dXNlcjpwYXNzd29yZA==",
        "authorization: Basic dXNlcj...ZA==",
    ),
    ("x-api-key: 1234567890abcdefghij", "x-api-key: ***"),
    (
        "bot123456789:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789",
        "bot123456789:***",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "[REDACTED PRIVATE KEY]",
    ),
    (
        "db postgres://admin:hunter2@db.example.com:5432/app",
        "db postgres://admin:***@db.example.com:5432/app",
    ),
    (
        "git https://ghtoken12345678@github.com/org/repo.git",
        "git https://***@github.com/org/repo.git",
    ),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "jwt eyJhbG...sR8U",
    ),
    ("user=bob&password=hunter2&x=1", "user=bob&password=***&x=1"),
    ("call +14155552671 now", "call +141****2671 now"),
    ("see sk-short ok", "see sk-short ok"),
    ("skills: web, pdf", "skills: web, pdf"),
    ("the token expired at noon", "the token expired at noon"),
    (
        "I have password=foo in prose",
        "I have password=foo in prose",
    ),
    ("MAX_TOKENS is a constant", "MAX_TOKENS is a constant"),
    (
        "https://user:pass@example.com/path",
        "https://user:pass@example.com/path",
    ),
    (
        "https://example.com/cb?code=ABC123&state=xyz",
        "https://example.com/cb?code=ABC123&state=xyz",
    ),
    ("KEY=os.getenv('X')", "KEY=os.getenv('X')"),
    (
        "ask-proj-abcdefghijklmnopqrstuvwx",
        "ask-proj-abcdefghijklmnopqrstuvwx",
    ),
    ("ghp_abcdefghijklmnop_x", "ghp_abcdefghijklmnop_x"),
    ("author: alice", "author: alice"),
    ("note: secret meeting", "note: secret meeting"),
    ("task t_1234abcd done", "task t_1234abcd done"),
    ("version 1.2.3 +5", "version 1.2.3 +5"),
    ("http://localhost:8080/api", "http://localhost:8080/api"),
    (
        "postgresql://{user}:{pass}@{host}",
        "postgresql://{user}:***@{host}",
    ),
];

#[test]
fn secrets_are_masked_and_near_misses_kept() {
    let mut wrong = Vec::new();
    for (input, want) in CASES {
        let got = redact_text(input);
        if got != *want {
            wrong.push(format!("{input:?}\n   got  {got:?}\n   want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn near_misses_are_a_real_part_of_the_table() {
    let kept = CASES.iter().filter(|(a, b)| a == b).count();
    let masked = CASES.len() - kept;
    assert!(kept >= 10 && masked >= 20, "kept {kept}, masked {masked}");
}

#[test]
fn masks_keep_head_and_tail_of_long_tokens_only() {
    assert_eq!(mask_token(""), "***");
    assert_eq!(mask_token("abcdefghijklmnopq"), "***");
    assert_eq!(mask_token("abcdefghijklmnopqr"), "abcdef...opqr");
}

#[test]
fn metadata_is_redacted_by_key_and_recursively() {
    let meta = json!({
        "api_key": "short",
        "nested": {"list": ["ghp_abcdefghijklmnopqrstuvwxyz0123456789", 3]},
        "note": "X_TOKEN=abc",
        "count": 2,
        "plain": "nothing here"
    });
    let got = redact_json(&meta);
    assert_eq!(got["api_key"], "***");
    assert_eq!(got["nested"]["list"][0], "ghp_ab...6789");
    assert_eq!(got["nested"]["list"][1], 3);
    assert_eq!(got["note"], "X_TOKEN=***");
    assert_eq!(got["count"], 2);
    assert_eq!(got["plain"], "nothing here");
    let clean = json!({"a": "b", "n": [1, 2]});
    assert_eq!(redact_json(&clean), clean);
}

#[test]
fn text_without_secrets_is_unchanged() {
    for s in [
        "",
        "done: wrote 3 files",
        "é ü — ok",
        "a=b c=d",
        "see https://example.com/?q=1",
    ] {
        assert_eq!(redact_text(s), s);
    }
}
