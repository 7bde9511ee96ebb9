//! Which assignees can be spawned: Hermes profiles on disk, and worker
//! templates from `kanban.profiles`. An assignee that is neither is a
//! non-spawnable lane (the dispatcher skips it without claiming).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Root;
use crate::config::{KanbanConfig, ProfileSpec};

/// How a profile's worker is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKind {
    /// A Hermes profile: the reference's worker command runs with
    /// `HERMES_HOME=dir` (`<root>` for `default`).
    Hermes { dir: PathBuf },
    /// A command template from `kanban.profiles.<name>`.
    Template { spec: ProfileSpec },
}

/// One entry of [`Profiles::list_profiles`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    pub name: String,
    pub kind: ProfileKind,
}

/// The profiles known to one installation. A config template wins over a
/// profile directory of the same name: it is the more explicit statement of
/// how to run that lane.
#[derive(Debug, Clone)]
pub struct Profiles {
    root: Root,
    templates: BTreeMap<String, ProfileSpec>,
}

impl Profiles {
    pub fn new(root: &Root, config: &KanbanConfig) -> Profiles {
        Profiles {
            root: root.clone(),
            templates: config.profiles.clone(),
        }
    }

    /// The profile named `name` (case-insensitive, trimmed), if spawnable.
    /// `default` always exists as the Hermes profile living at the root.
    pub fn resolve_profile(&self, name: &str) -> Option<ProfileKind> {
        let name = name.trim().to_lowercase();
        if let Some(spec) = self.templates.get(&name) {
            return Some(ProfileKind::Template { spec: spec.clone() });
        }
        let dir = self.root.profile_dir(&name)?;
        (name == "default" || dir.is_dir()).then_some(ProfileKind::Hermes { dir })
    }

    /// Whether the dispatcher may spawn a worker for this assignee.
    pub fn is_spawnable(&self, name: &str) -> bool {
        self.resolve_profile(name).is_some()
    }

    /// All profiles, sorted by name: `default` when the root exists, each
    /// directory under `<root>/profiles/`, and every template.
    pub fn list_profiles(&self) -> Vec<ProfileInfo> {
        let mut names: Vec<String> = self.templates.keys().cloned().collect();
        if self.root.path().is_dir() {
            names.push("default".into());
        }
        if let Ok(rd) = std::fs::read_dir(self.root.profiles_dir()) {
            for e in rd.filter_map(Result::ok) {
                if e.path().is_dir()
                    && let Some(n) = e.file_name().to_str()
                    && !n.starts_with('.')
                {
                    names.push(n.to_lowercase());
                }
            }
        }
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| {
                Some(ProfileInfo {
                    kind: self.resolve_profile(&name)?,
                    name,
                })
            })
            .collect()
    }
}
