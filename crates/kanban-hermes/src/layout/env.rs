//! The environment as an explicit input: production reads the process
//! environment, tests pass a map and never touch global state.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Read-only view of environment variables.
pub trait Env {
    /// The raw value, `None` when unset (or not valid UTF-8).
    fn var(&self, key: &str) -> Option<String>;

    /// The trimmed value, `None` when unset or blank: every Hermes path
    /// override ignores blank values.
    fn non_blank(&self, key: &str) -> Option<String> {
        let v = self.var(key)?;
        let t = v.trim();
        (!t.is_empty()).then(|| t.to_string())
    }

    /// The user's home directory (`$HOME`).
    fn home_dir(&self) -> Option<PathBuf> {
        self.non_blank("HOME").map(PathBuf::from)
    }
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
    fn home_dir(&self) -> Option<PathBuf> {
        self.non_blank("HOME")
            .map(PathBuf::from)
            .or_else(std::env::home_dir)
    }
}

/// A fixed set of variables (tests, or an environment prepared for a child).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapEnv(pub BTreeMap<String, String>);

impl MapEnv {
    pub fn new() -> Self {
        MapEnv::default()
    }
    /// Builder-style insert.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }
}

impl Env for MapEnv {
    fn var(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}
