//! Which assignees can be spawned: Hermes profiles on disk, and worker
//! templates from `kanban.profiles`. An assignee that is neither is a
//! non-spawnable lane (the dispatcher skips it without claiming).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{KanbanConfig, ProfileSpec};
use crate::layout::Root;

mod toolsets;
mod toolsets_data;

/// How a profile's worker is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKind {
    /// A Hermes profile: the reference's worker command runs with
    /// `HERMES_HOME=dir` (`<root>` for `default`).
    Hermes { dir: PathBuf },
    /// A command template from `kanban.profiles.<name>`.
    Template { spec: ProfileSpec },
}

impl ProfileKind {
    /// The toolsets a Hermes profile's worker is pinned to with
    /// `--toolsets` (sorted; empty = no flag), resolved from the profile's
    /// config exactly as the reference does at spawn time. Always empty
    /// for templates, whose command line is their own.
    pub fn hermes_cli_toolsets(&self, var: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        match self {
            ProfileKind::Hermes { dir } => {
                toolsets::resolve_cli_toolsets(dir, var).unwrap_or_default()
            }
            ProfileKind::Template { .. } => Vec::new(),
        }
    }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn profiles_from_disk_and_config() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::at(t.path());
        std::fs::create_dir_all(root.profiles_dir().join("coder")).unwrap();
        std::fs::create_dir_all(root.profiles_dir().join("both")).unwrap();
        let cfg = KanbanConfig::from_yaml_str(
            "kanban:\n  profiles:\n    Claude:\n      command: [claude, -p, '{prompt}']\n    both:\n      command: [x]\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        let p = Profiles::new(&root, &cfg);
        assert_eq!(
            p.resolve_profile("default"),
            Some(ProfileKind::Hermes {
                dir: t.path().into()
            })
        );
        assert_eq!(
            p.resolve_profile("Coder"),
            Some(ProfileKind::Hermes {
                dir: root.profiles_dir().join("coder")
            })
        );
        assert!(matches!(
            p.resolve_profile("claude"),
            Some(ProfileKind::Template { .. })
        ));
        assert!(matches!(
            p.resolve_profile("both"),
            Some(ProfileKind::Template { .. })
        ));
        assert_eq!(p.resolve_profile("ghost"), None);
        assert_eq!(p.resolve_profile("../etc"), None);
        let names: Vec<_> = p.list_profiles().into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["both", "claude", "coder", "default"]);
    }
}
