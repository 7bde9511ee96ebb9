//! A board's display metadata, whichever catalogue keeps it (`board.json`
//! on SQLite, a catalogue table on a server database), and the rules every
//! catalogue applies when it changes: default name, blank resets, the
//! default workdir's checks, the first-write timestamp.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

/// Display metadata of one board, plus where its database is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardMeta {
    pub slug: String,
    /// Display name; Title Case of the slug by default (`atm10-server` →
    /// `Atm10 Server`).
    pub name: String,
    pub description: String,
    pub icon: String,
    pub color: String,
    /// Default workspace directory for tasks created on this board.
    pub default_workdir: Option<String>,
    /// Unix seconds of the first write; `None` until written.
    pub created_at: Option<i64>,
    pub archived: bool,
    /// Keys this version does not know, kept verbatim (`board.json`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
    /// Computed on every read, never stored: the SQLite file, or the
    /// redacted location of a server database (never a password).
    pub db_path: String,
}

impl BoardMeta {
    /// The metadata of a board nothing was written for yet.
    pub fn defaults(slug: &str, db_path: impl Into<String>) -> BoardMeta {
        BoardMeta {
            slug: slug.to_string(),
            name: default_display_name(slug),
            description: String::new(),
            icon: String::new(),
            color: String::new(),
            default_workdir: None,
            created_at: None,
            archived: false,
            extra: BTreeMap::new(),
            db_path: db_path.into(),
        }
    }
}

/// What a metadata write changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaUpdate {
    /// Blank resets to the default display name.
    pub name: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub color: Option<String>,
    pub archived: Option<bool>,
    /// `Some(None)` (or `Some(Some(""))`) clears it.
    pub default_workdir: Option<Option<String>>,
}

impl MetaUpdate {
    /// Apply the update to `meta`, and stamp `created_at` on first write.
    pub fn apply(&self, meta: &mut BoardMeta) {
        if let Some(name) = &self.name {
            let n = name.trim();
            meta.name = if n.is_empty() {
                default_display_name(&meta.slug)
            } else {
                n.to_string()
            };
        }
        if let Some(v) = &self.description {
            meta.description = v.clone();
        }
        if let Some(v) = &self.icon {
            meta.icon = v.clone();
        }
        if let Some(v) = &self.color {
            meta.color = v.clone();
        }
        if let Some(v) = self.archived {
            meta.archived = v;
        }
        if let Some(v) = &self.default_workdir {
            meta.default_workdir = v.clone().filter(|s| !s.is_empty());
        }
        if meta.created_at.is_none_or(|t| t == 0) {
            meta.created_at = Some(now_secs());
        }
    }

    /// The non-blank default workdir this update sets, if any.
    pub fn workdir_to_set(&self) -> Option<&str> {
        match &self.default_workdir {
            Some(Some(wd)) => Some(wd.trim()).filter(|w| !w.is_empty()),
            _ => None,
        }
    }
}

/// Outcome of creating (or updating) a board's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedBoard {
    pub meta: BoardMeta,
    /// The board was already there (never true for `default`, like the
    /// reference's message).
    pub already_existed: bool,
    /// An archived board was brought back (server catalogues, where an
    /// archived board keeps its slug).
    pub restored: bool,
}

/// `atm10-server` → `Atm10 Server`; `_` counts as a separator.
pub fn default_display_name(slug: &str) -> String {
    let words: Vec<String> = slug
        .replace('_', "-")
        .split('-')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut cs = p.chars();
            match cs.next() {
                Some(f) => f
                    .to_uppercase()
                    .chain(cs.flat_map(char::to_lowercase))
                    .collect(),
                None => String::new(),
            }
        })
        .collect();
    if words.is_empty() {
        slug.to_string()
    } else {
        words.join(" ")
    }
}

/// Why `path` cannot be a board's default workdir (it must be an absolute
/// path to an existing directory), or `None` when it can.
pub fn workdir_problem(path: &str) -> Option<&'static str> {
    if !Path::new(path).is_absolute() {
        return Some("is relative; use an absolute path");
    }
    if !Path::new(path).is_dir() {
        return Some("is not an existing directory");
    }
    None
}

/// The message of a refused default workdir (one wording everywhere).
pub fn workdir_refusal(path: &str, reason: &str) -> String {
    format!("default workdir {path:?} {reason}")
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_keep_what_they_do_not_name_and_blank_resets() {
        let mut m = BoardMeta::defaults("atm10-server", "/x/kanban.db");
        assert_eq!(m.name, "Atm10 Server");
        MetaUpdate {
            name: Some("  Ops  ".into()),
            icon: Some("🚀".into()),
            default_workdir: Some(Some(String::new())),
            ..Default::default()
        }
        .apply(&mut m);
        assert_eq!((m.name.as_str(), m.icon.as_str()), ("Ops", "🚀"));
        assert_eq!(m.default_workdir, None);
        let stamped = m.created_at.expect("stamped on first write");
        MetaUpdate {
            name: Some(" ".into()),
            ..Default::default()
        }
        .apply(&mut m);
        assert_eq!(m.name, "Atm10 Server");
        assert_eq!((m.icon.as_str(), m.created_at), ("🚀", Some(stamped)));
        assert_eq!(
            workdir_problem("rel"),
            Some("is relative; use an absolute path")
        );
        assert_eq!(workdir_problem("/"), None);
        assert_eq!(default_display_name("a__b-"), "A B");
    }
}
