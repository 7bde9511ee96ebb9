//! Secret redaction of free text a worker or operator hands to the board
//! (completion summary/result/metadata, block reason, comment body,
//! review handoffs), with the patterns of the reference's forced
//! `redact_sensitive_text` (hermes-agent `agent/redact.py`): provider API
//! key prefixes, `KEY=value` / config / JSON / YAML secret assignments,
//! authorization and API-key headers, Telegram bot tokens, private key
//! blocks, database URLs with a password, bare-token URL userinfo, JWTs,
//! form bodies and phone numbers.
//!
//! As in the reference, ordinary web URLs keep their query strings and
//! `user:pass@` userinfo (OAuth callbacks and pre-signed links must keep
//! working); known key shapes inside them are still masked.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::Value;

/// Tokens shorter than this are masked whole (`***`).
pub const MASK_FLOOR_CHARS: usize = 18;
/// Characters kept at the start of a longer masked token.
pub const MASK_HEAD_CHARS: usize = 6;
/// Characters kept at the end of a longer masked token.
pub const MASK_TAIL_CHARS: usize = 4;
const MASK: &str = "***";

/// Vendor key shapes, in the reference's priority order: (literal start,
/// pattern). A token must stand alone: no `[A-Za-z0-9_-]` right before or
/// after it.
const PREFIXES: &[(&str, &str)] = &[
    ("sk-", r"sk-[A-Za-z0-9_-]{10,}"),
    ("ghp_", r"ghp_[A-Za-z0-9]{10,}"),
    ("github_pat_", r"github_pat_[A-Za-z0-9_]{10,}"),
    ("gho_", r"gho_[A-Za-z0-9]{10,}"),
    ("ghu_", r"ghu_[A-Za-z0-9]{10,}"),
    ("ghs_", r"ghs_[A-Za-z0-9]{10,}"),
    ("ghr_", r"ghr_[A-Za-z0-9]{10,}"),
    ("xapp-", r"xapp-\d+-[A-Za-z0-9-]{10,}"),
    ("xox", r"xox[baprs]-[A-Za-z0-9-]{10,}"),
    ("AIza", r"AIza[A-Za-z0-9_-]{30,}"),
    ("pplx-", r"pplx-[A-Za-z0-9]{10,}"),
    ("fal_", r"fal_[A-Za-z0-9_-]{10,}"),
    ("fc-", r"fc-[A-Za-z0-9]{10,}"),
    ("bb_live_", r"bb_live_[A-Za-z0-9_-]{10,}"),
    ("gAAAA", r"gAAAA[A-Za-z0-9_=-]{20,}"),
    ("AKIA", r"AKIA[A-Z0-9]{16}"),
    ("sk_live_", r"sk_live_[A-Za-z0-9]{10,}"),
    ("sk_test_", r"sk_test_[A-Za-z0-9]{10,}"),
    ("rk_live_", r"rk_live_[A-Za-z0-9]{10,}"),
    ("SG", r"SG\.[A-Za-z0-9_-]{10,}"),
    ("hf_", r"hf_[A-Za-z0-9]{10,}"),
    ("r8_", r"r8_[A-Za-z0-9]{10,}"),
    ("npm_", r"npm_[A-Za-z0-9]{10,}"),
    ("pypi-", r"pypi-[A-Za-z0-9_-]{10,}"),
    ("dop_v1_", r"dop_v1_[A-Za-z0-9]{10,}"),
    ("doo_v1_", r"doo_v1_[A-Za-z0-9]{10,}"),
    ("am_", r"am_[A-Za-z0-9_-]{10,}"),
    ("sk_", r"sk_[A-Za-z0-9_]{10,}"),
    ("tvly-", r"tvly-[A-Za-z0-9]{10,}"),
    ("exa_", r"exa_[A-Za-z0-9]{10,}"),
    ("gsk_", r"gsk_[A-Za-z0-9]{10,}"),
    ("syt_", r"syt_[A-Za-z0-9]{10,}"),
    ("retaindb_", r"retaindb_[A-Za-z0-9]{10,}"),
    ("hsk-", r"hsk-[A-Za-z0-9]{10,}"),
    ("mem0_", r"mem0_[A-Za-z0-9]{10,}"),
    ("brv_", r"brv_[A-Za-z0-9]{10,}"),
    ("xai-", r"xai-[A-Za-z0-9]{30,}"),
    ("ntn_", r"ntn_[A-Za-z0-9]{10,}"),
    ("fw-", r"fw-[A-Za-z0-9]{30,}"),
    ("fw_", r"fw_[A-Za-z0-9]{30,}"),
    ("fpk_", r"fpk_[A-Za-z0-9]{30,}"),
];

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("redaction pattern compiles")
}

static PREFIX_RES: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    PREFIXES
        .iter()
        .map(|(lit, p)| (*lit, re(&format!("^(?:{p})"))))
        .collect()
});

const SECRET_ENV_NAMES: &str = "(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)";
const SECRET_CFG_NAMES: &str = r"(?:api[ _.\-]?key|token|secret|passwd|password|credential|auth)";
const YAML_CFG_NAMES: &str = r"(?:api[ _.\-]?key|token|secret|passwd|password|credential)";

static ENV_KEY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"([A-Z0-9_]{{0,50}}{SECRET_ENV_NAMES}[A-Z0-9_]{{0,50}})\s*=\s*"
    ))
});
static CFG_DOTTED_KEY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)((?:[A-Za-z0-9_\-]+\.)+[A-Za-z0-9_.\-]*{SECRET_CFG_NAMES}[A-Za-z0-9_.\-]*|[A-Za-z0-9_.\-]*{SECRET_CFG_NAMES}[A-Za-z0-9_.\-]*\.[A-Za-z0-9_.\-]+)="
    ))
});
static CFG_ANCHORED_KEY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?im)(^[ \t]*(?:export[ \t]+)?[A-Za-z0-9_\-]*{SECRET_CFG_NAMES}[A-Za-z0-9_\-]*)="
    ))
});
static YAML_ASSIGN: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?im)(^[ \t]*[A-Za-z0-9_.\-]*{YAML_CFG_NAMES}[A-Za-z0-9_.\-]*)(:[ \t]*)([^\s&]+)"
    ))
});
static JSON_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?i)("(?:api_?[Kk]ey|token|secret|password|access_token|refresh_token|auth_token|bearer|secret_value|raw_secret|secret_input|key_material)")\s*:\s*"([^"]+)""#,
    )
});
static SECRET_JSON_KEY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^(?:api_?key|token|secret|password|access_token|refresh_token|auth_token|bearer|secret_value|raw_secret|secret_input|key_material)$",
    )
});
static ENV_LOOKUP_VALUE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:os\.(?:getenv|environ)|process\.env|\$ENV\{)"));
static AUTH_HEADER: LazyLock<Regex> =
    LazyLock::new(|| re(r#"(?i)((?:Proxy-)?Authorization:\s*)([A-Za-z][\w.+-]*\s+)?([^\s"']+)"#));
static SECRET_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)((?:x-api-key|x-goog-api-key|api-key|apikey|x-api-token|x-auth-token|x-access-token)\s*:\s*)(\S+)",
    )
});
static TELEGRAM: LazyLock<Regex> = LazyLock::new(|| re(r"(bot)?(\d{8,}):([-A-Za-z0-9_]{30,})"));
static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    re(r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?-----END[A-Z ]*PRIVATE KEY-----")
});
static DB_CONNSTR: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)((?:postgres(?:ql)?|mysql|mongodb(?:\+srv)?|redis|amqp)://[^:\s]+:)([^@\s]+)(@)")
});
static URL_BARE_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)((?:https?|wss?|git|ssh|ftp|ftps|sftp)://)([^\s:@/]{8,})(@[^\s]+)"));
static JWT: LazyLock<Regex> =
    LazyLock::new(|| re(r"eyJ[A-Za-z0-9_-]{10,}(?:\.[A-Za-z0-9_=-]{4,}){0,2}"));
static FORM_BODY: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^[A-Za-z_][A-Za-z0-9_.-]*=[^&\s]*(?:&[A-Za-z_][A-Za-z0-9_.-]*=[^&\s]*)+$")
});
static PHONE: LazyLock<Regex> = LazyLock::new(|| re(r"\+[1-9]\d{6,14}"));

/// Query/form keys whose values are secrets (exact, case-insensitive).
const SENSITIVE_PARAMS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "api_key",
    "apikey",
    "client_secret",
    "password",
    "auth",
    "jwt",
    "session",
    "secret",
    "key",
    "code",
    "signature",
    "x-amz-signature",
];

/// The reference's log mask: short tokens whole, longer ones keep a head
/// and a tail for debugging.
pub fn mask_token(token: &str) -> String {
    let n = token.chars().count();
    if n < MASK_FLOOR_CHARS {
        return MASK.to_string();
    }
    let head: String = token.chars().take(MASK_HEAD_CHARS).collect();
    let tail: String = token.chars().skip(n - MASK_TAIL_CHARS).collect();
    format!("{head}...{tail}")
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Redacts secrets in `text`; text without one comes back unchanged.
pub fn redact_text(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let mut t = text.to_string();
    if PREFIXES.iter().any(|(lit, _)| t.contains(lit)) {
        t = redact_prefixed(&t);
    }
    if t.contains('=') {
        t = redact_assignments(&t, &ENV_KEY, AssignValue::Env);
        if !t.contains("://") {
            t = redact_assignments(&t, &CFG_DOTTED_KEY, AssignValue::Config);
            t = redact_assignments(&t, &CFG_ANCHORED_KEY, AssignValue::Config);
        }
    }
    if t.contains(':') && t.contains('"') {
        t = JSON_FIELD
            .replace_all(&t, |c: &Captures| {
                if ENV_LOOKUP_VALUE.is_match(&c[2]) {
                    c[0].to_string()
                } else {
                    format!("{}: \"{}\"", &c[1], mask_token(&c[2]))
                }
            })
            .into_owned();
    }
    if t.contains(':') && !t.contains("://") {
        t = YAML_ASSIGN
            .replace_all(&t, |c: &Captures| {
                let v = &c[3];
                if v.starts_with(['"', '\'']) || ENV_LOOKUP_VALUE.is_match(v) {
                    c[0].to_string()
                } else {
                    format!("{}{}{}", &c[1], &c[2], mask_token(v))
                }
            })
            .into_owned();
    }
    if t.contains("uthorization") || t.contains("UTHORIZATION") {
        t = AUTH_HEADER
            .replace_all(&t, |c: &Captures| {
                let scheme = c.get(2).map_or("", |m| m.as_str());
                format!("{}{}{}", &c[1], scheme, mask_token(&c[3]))
            })
            .into_owned();
    }
    if t.contains(':') {
        t = SECRET_HEADER
            .replace_all(&t, |c: &Captures| format!("{}{}", &c[1], mask_token(&c[2])))
            .into_owned();
        t = TELEGRAM
            .replace_all(&t, |c: &Captures| {
                let bot = c.get(1).map_or("", |m| m.as_str());
                format!("{bot}{}:{MASK}", &c[2])
            })
            .into_owned();
    }
    if t.contains("BEGIN") && t.contains("-----") {
        t = PRIVATE_KEY
            .replace_all(&t, "[REDACTED PRIVATE KEY]")
            .into_owned();
    }
    if t.contains("://") {
        t = DB_CONNSTR.replace_all(&t, "${1}***${3}").into_owned();
        t = URL_BARE_TOKEN
            .replace_all(&t, |c: &Captures| {
                format!("{}{}{}", &c[1], mask_token(&c[2]), &c[3])
            })
            .into_owned();
    }
    if t.contains("eyJ") {
        t = JWT
            .replace_all(&t, |c: &Captures| mask_token(&c[0]))
            .into_owned();
    }
    if t.contains('&') && t.contains('=') && !t.contains('\n') && FORM_BODY.is_match(t.trim()) {
        t = redact_query(t.trim());
    }
    if t.contains('+') {
        t = redact_phones(&t);
    }
    t
}

/// Redacts every string of a JSON value. Objects are first redacted as
/// their JSON text, as the reference does (so `"token": "…"` pairs are
/// caught by key); when that text no longer parses, string by string.
pub fn redact_json(value: &Value) -> Value {
    if value.is_object() || value.is_array() {
        let text = value.to_string();
        let redacted = redact_text(&text);
        if redacted == text {
            return value.clone();
        }
        if let Ok(v) = serde_json::from_str::<Value>(&redacted) {
            return v;
        }
    }
    redact_json_values(value)
}

fn redact_json_values(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(redact_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(redact_json_values).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| match v {
                    // What the JSON-field pattern masks in the object's text.
                    Value::String(s) if SECRET_JSON_KEY.is_match(k) && !s.is_empty() => {
                        (k.clone(), Value::String(mask_token(s)))
                    }
                    _ => (k.clone(), redact_json_values(v)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Vendor-prefixed keys that stand alone as a token.
fn redact_prefixed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().unwrap_or_default();
        if !prev.is_some_and(is_token_char)
            && let Some(len) = prefixed_token_len(rest)
        {
            out.push_str(&mask_token(&rest[..len]));
            prev = rest[..len].chars().last();
            i += len;
            continue;
        }
        out.push(c);
        prev = Some(c);
        i += c.len_utf8();
    }
    out
}

fn prefixed_token_len(rest: &str) -> Option<usize> {
    for (lit, re) in PREFIX_RES.iter() {
        if !rest.starts_with(lit) {
            continue;
        }
        if let Some(m) = re.find(rest) {
            let next = rest[m.end()..].chars().next();
            if !next.is_some_and(is_token_char) {
                return Some(m.end());
            }
        }
    }
    None
}

#[derive(Clone, Copy)]
enum AssignValue {
    /// `\S+`, optionally wrapped in matching quotes.
    Env,
    /// `[^\s&]+`, optionally wrapped in matching quotes, ending at
    /// whitespace, `&` or the end.
    Config,
}

/// `(quote, value, consumed bytes)` of an assignment's value at `rest`.
fn assignment_value(rest: &str, kind: AssignValue) -> Option<(&str, &str, usize)> {
    let stop = |c: char| match kind {
        AssignValue::Env => c.is_whitespace(),
        AssignValue::Config => c.is_whitespace() || c == '&',
    };
    let run_len = rest.find(stop).unwrap_or(rest.len());
    let run = &rest[..run_len];
    if run.is_empty() {
        return None;
    }
    let q = &run[..1];
    if q == "\"" || q == "'" {
        let inner = &run[1..];
        let close = match kind {
            // Greedy: the last matching quote of the run.
            AssignValue::Env => inner.rfind(q).filter(|&k| k > 0),
            // Lazy, but the quote must end the run.
            AssignValue::Config => inner
                .ends_with(q)
                .then(|| inner.len() - 1)
                .filter(|&k| k > 0),
        };
        if let Some(k) = close {
            return Some((q, &inner[..k], 1 + k + 1));
        }
    }
    Some(("", run, run_len))
}

fn redact_assignments(text: &str, key: &Regex, kind: AssignValue) -> String {
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut from = 0;
    while let Some(c) = key.captures_at(text, from) {
        let whole = c.get(0).expect("match");
        let value_at = whole.end();
        match assignment_value(&text[value_at..], kind) {
            Some((quote, value, used)) if !ENV_LOOKUP_VALUE.is_match(value) => {
                out.push_str(&text[done..whole.start()]);
                out.push_str(&format!("{}={quote}{}{quote}", &c[1], mask_token(value)));
                done = value_at + used;
                from = done;
            }
            Some((_, _, used)) => {
                from = value_at + used;
            }
            None => {
                let step = text[whole.start()..]
                    .chars()
                    .next()
                    .map_or(1, char::len_utf8);
                from = whole.start() + step;
            }
        }
        if from >= text.len() {
            break;
        }
    }
    out.push_str(&text[done..]);
    out
}

fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SENSITIVE_PARAMS.contains(&k.to_lowercase().as_str()) => {
                format!("{k}={MASK}")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn redact_phones(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for m in PHONE.find_iter(text) {
        if text[m.end()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            continue;
        }
        let p = m.as_str();
        out.push_str(&text[done..m.start()]);
        if p.len() <= 8 {
            out.push_str(&format!("{}****{}", &p[..2], &p[p.len() - 2..]));
        } else {
            out.push_str(&format!("{}****{}", &p[..4], &p[p.len() - 4..]));
        }
        done = m.end();
    }
    out.push_str(&text[done..]);
    out
}

#[cfg(test)]
mod tests;
