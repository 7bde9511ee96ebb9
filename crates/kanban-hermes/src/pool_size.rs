//! How many connections a process keeps to its PostgreSQL database:
//! `kanban.database_pool_size` in `config.yaml`, which the environment
//! variable `KANBAN_DATABASE_POOL_SIZE` overrides; neither set, the
//! backend's default. Both are strict (our keys): a value that is not a
//! whole number from 1 to [`MAX_DATABASE_POOL_SIZE`] is refused with the
//! key and the fix, never silently replaced by the default.
//!
//! The pool is one per database per process, so its size is a setting of
//! the process: the binary validates it once at start-up
//! ([`database_pool_size`]) and records it ([`use_database_pool_size`]);
//! every board and catalogue the process opens afterwards asks for it
//! (`config::open_request`).

use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::layout::Env;

/// Ours: most connections a process keeps to one PostgreSQL database
/// (every board of it shares them); overrides `kanban.database_pool_size`.
pub const ENV_DATABASE_POOL_SIZE: &str = "KANBAN_DATABASE_POOL_SIZE";

/// The key under `kanban:` in `config.yaml`.
pub const CONFIG_DATABASE_POOL_SIZE: &str = "database_pool_size";
/// Largest accepted pool size: far beyond what one process can use on
/// the synchronous store, and well under a server's `max_connections`.
pub const MAX_DATABASE_POOL_SIZE: u32 = 256;

/// A pool size that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "{origin} is {value:?}: the database pool size must be a whole number of connections \
     from 1 to {MAX_DATABASE_POOL_SIZE}; {fix}"
)]
pub struct PoolSizeError {
    /// The key (and file) or variable the value came from.
    pub origin: String,
    pub value: String,
    /// What to do about it.
    pub fix: String,
}

/// The pool size this process was configured with: `KANBAN_DATABASE_POOL_SIZE`
/// › `configured`, the raw `kanban.database_pool_size` of `config_file`;
/// `None` when neither is set.
pub fn database_pool_size(
    configured: Option<&str>,
    config_file: &Path,
    env: &dyn Env,
) -> Result<Option<u32>, PoolSizeError> {
    if let Some(value) = env.non_blank(ENV_DATABASE_POOL_SIZE) {
        return parse(&value).map(Some).ok_or_else(|| PoolSizeError {
            origin: ENV_DATABASE_POOL_SIZE.into(),
            value,
            fix: "fix or unset the variable".into(),
        });
    }
    let Some(value) = configured.map(str::to_string) else {
        return Ok(None);
    };
    parse(&value).map(Some).ok_or_else(|| PoolSizeError {
        origin: format!(
            "kanban.{CONFIG_DATABASE_POOL_SIZE} in {}",
            config_file.display()
        ),
        value,
        fix: "fix the value or remove the key to use the default".into(),
    })
}

/// A whole number from 1 to [`MAX_DATABASE_POOL_SIZE`].
fn parse(value: &str) -> Option<u32> {
    let v = value.trim();
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_DATABASE_POOL_SIZE).contains(n))
}

/// `kanban.database_pool_size` as written (`None` when absent or null);
/// anything but a scalar as its YAML text, for [`database_pool_size`] to
/// refuse: a bad value never fails the whole config.
pub(crate) fn raw_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde_norway::Value as Yaml;
    Ok(match Yaml::deserialize(d)? {
        Yaml::Null => None,
        Yaml::String(s) => Some(s),
        Yaml::Number(n) => Some(n.to_string()),
        other => Some(
            serde_norway::to_string(&other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
    })
}

static PROCESS_POOL_SIZE: OnceLock<u32> = OnceLock::new();

/// Record this process's validated pool size (the first call wins; `None`
/// records nothing: the backend's default).
pub fn use_database_pool_size(size: Option<u32>) {
    if let Some(n) = size {
        let _ = PROCESS_POOL_SIZE.set(n);
    }
}

/// What [`use_database_pool_size`] recorded.
pub fn process_pool_size() -> Option<u32> {
    PROCESS_POOL_SIZE.get().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KanbanConfig;
    use crate::layout::MapEnv;

    fn config(text: &str) -> KanbanConfig {
        KanbanConfig::from_yaml_str(text, Path::new("/h/config.yaml")).expect("loads")
    }

    fn size(text: &str, env: &MapEnv) -> Result<Option<u32>, PoolSizeError> {
        database_pool_size(
            config(text).database_pool_size.as_deref(),
            Path::new("/h/config.yaml"),
            env,
        )
    }

    #[test]
    fn the_variable_overrides_the_config_and_neither_means_the_default() {
        let none = MapEnv::new();
        assert_eq!(size("", &none), Ok(None));
        assert_eq!(size("kanban:\n  database_pool_size:\n", &none), Ok(None));
        assert_eq!(
            size("kanban:\n  database_pool_size: 16\n", &none),
            Ok(Some(16))
        );
        assert_eq!(
            size("kanban:\n  database_pool_size: '4'\n", &none),
            Ok(Some(4))
        );
        let env = MapEnv::new().with(ENV_DATABASE_POOL_SIZE, " 3 ");
        assert_eq!(
            size("kanban:\n  database_pool_size: 16\n", &env),
            Ok(Some(3))
        );
        // The variable wins even over a bad config value.
        assert_eq!(
            size("kanban:\n  database_pool_size: 0\n", &env),
            Ok(Some(3))
        );
        let max = format!("kanban:\n  database_pool_size: {MAX_DATABASE_POOL_SIZE}\n");
        assert_eq!(size(&max, &none), Ok(Some(MAX_DATABASE_POOL_SIZE)));
    }

    #[test]
    fn bad_values_are_refused_naming_the_key_and_the_fix() {
        let none = MapEnv::new();
        for bad in [
            "0",
            "-1",
            "1.5",
            "many",
            "257",
            "[4]",
            "true",
            "99999999999",
        ] {
            let text = format!("kanban:\n  database_pool_size: {bad}\n");
            let err = size(&text, &none).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with("kanban.database_pool_size in /h/config.yaml is "),
                "{bad}: {msg}"
            );
            assert!(msg.contains("from 1 to 256"), "{bad}: {msg}");
            assert!(msg.contains("remove the key"), "{bad}: {msg}");
        }
        for bad in ["0", "-3", "2x", "1e3", "300"] {
            let env = MapEnv::new().with(ENV_DATABASE_POOL_SIZE, bad);
            let msg = size("", &env).unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!("KANBAN_DATABASE_POOL_SIZE is \"{bad}\"")),
                "{msg}"
            );
            assert!(msg.contains("unset the variable"), "{msg}");
        }
    }
}
