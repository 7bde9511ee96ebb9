//! What a profile is good at, in a sentence or two: the roster the
//! decomposer routes child cards by. A Hermes profile keeps it in
//! `profile.yaml` in its directory (`description`, and `description_auto`
//! when a model wrote it), as the reference does; a command-template
//! profile in its `description` key of `kanban.profiles`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::KanbanConfig;
use crate::layout::Root;
use crate::profiles::{ProfileKind, Profiles};

/// Longest description kept (a paragraph, not a document).
pub const DESCRIPTION_MAX_CHARS: usize = 600;
/// The metadata file of a Hermes profile directory.
pub const PROFILE_META_FILE: &str = "profile.yaml";

/// One roster entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileDescription {
    pub name: String,
    /// `hermes` or `template`.
    pub kind: &'static str,
    pub description: String,
    /// Written by the profile describer rather than a person.
    pub description_auto: bool,
    /// Template descriptions live in config.yaml and are edited there.
    pub editable: bool,
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct MetaFile {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    description_auto: Option<bool>,
    /// Keys we do not know are kept as they were.
    #[serde(flatten)]
    rest: serde_norway::Mapping,
}

fn meta_path(kind: &ProfileKind) -> Option<PathBuf> {
    match kind {
        ProfileKind::Hermes { dir } => Some(dir.join(PROFILE_META_FILE)),
        ProfileKind::Template { .. } => None,
    }
}

fn read_meta(path: &std::path::Path) -> MetaFile {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            serde_norway::from_str::<Option<MetaFile>>(&t)
                .ok()
                .flatten()
        })
        .unwrap_or_default()
}

/// Every profile with its description, sorted by name.
pub fn roster(root: &Root, config: &KanbanConfig) -> Vec<ProfileDescription> {
    Profiles::new(root, config)
        .list_profiles()
        .into_iter()
        .map(|p| describe(&p.name, &p.kind))
        .collect()
}

fn describe(name: &str, kind: &ProfileKind) -> ProfileDescription {
    match kind {
        ProfileKind::Template { spec } => ProfileDescription {
            name: name.to_string(),
            kind: "template",
            description: spec
                .description
                .clone()
                .unwrap_or_default()
                .trim()
                .to_string(),
            description_auto: false,
            editable: false,
        },
        ProfileKind::Hermes { .. } => {
            let meta = meta_path(kind).map(|p| read_meta(&p)).unwrap_or_default();
            ProfileDescription {
                name: name.to_string(),
                kind: "hermes",
                description: meta.description.unwrap_or_default().trim().to_string(),
                description_auto: meta.description_auto.unwrap_or(false),
                editable: true,
            }
        }
    }
}

/// Why a description could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("no such profile: {0}")]
    UnknownProfile(String),
    #[error(
        "profile {0} is a command template; its description is the `description` key of kanban.profiles.{0} in config.yaml"
    )]
    Template(String),
    #[error("description is longer than {DESCRIPTION_MAX_CHARS} characters")]
    TooLong,
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Set (or, with an empty text, clear) a Hermes profile's description.
pub fn set_description(
    root: &Root,
    config: &KanbanConfig,
    name: &str,
    description: &str,
    auto: bool,
) -> Result<ProfileDescription, DescribeError> {
    let profiles = Profiles::new(root, config);
    let key = name.trim().to_lowercase();
    let kind = profiles
        .resolve_profile(&key)
        .ok_or_else(|| DescribeError::UnknownProfile(name.to_string()))?;
    let Some(path) = meta_path(&kind) else {
        return Err(DescribeError::Template(key));
    };
    let text = description.trim();
    if text.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(DescribeError::TooLong);
    }
    let mut meta = read_meta(&path);
    meta.description = Some(text.to_string());
    meta.description_auto = Some(auto && !text.is_empty());
    let write_err = |source| DescribeError::Write {
        path: path.clone(),
        source,
    };
    let yaml = serde_norway::to_string(&meta).map_err(|e| write_err(std::io::Error::other(e)))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, yaml).map_err(write_err)?;
    std::fs::rename(&tmp, &path).map_err(write_err)?;
    Ok(describe(&key, &kind))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn descriptions_round_trip_and_templates_are_read_only() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::at(t.path());
        std::fs::create_dir_all(root.profiles_dir().join("coder")).unwrap();
        std::fs::write(
            root.profiles_dir().join("coder").join(PROFILE_META_FILE),
            "role: builder\n",
        )
        .unwrap();
        let cfg = KanbanConfig::from_yaml_str(
            "kanban:\n  profiles:\n    cl:\n      command: [x]\n      description: Writes docs\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        let d = set_description(&root, &cfg, "Coder", "Writes Rust", true).unwrap();
        assert_eq!(
            (d.description.as_str(), d.description_auto),
            ("Writes Rust", true)
        );
        let kept = std::fs::read_to_string(root.profiles_dir().join("coder/profile.yaml")).unwrap();
        assert!(kept.contains("role: builder"), "{kept}");
        let r = roster(&root, &cfg);
        let names: Vec<_> = r
            .iter()
            .map(|p| (p.name.as_str(), p.description.as_str()))
            .collect();
        assert!(
            names.contains(&("cl", "Writes docs")) && names.contains(&("coder", "Writes Rust"))
        );
        assert!(matches!(
            set_description(&root, &cfg, "cl", "x", false),
            Err(DescribeError::Template(_))
        ));
        assert!(matches!(
            set_description(&root, &cfg, "nobody", "x", false),
            Err(DescribeError::UnknownProfile(_))
        ));
    }
}
