//! The `kanban:` section of `<root>/config.yaml`, typed.
//!
//! Reference keys keep the reference's defaults and its forgiving coercion
//! (`max_spawn: "3"` works, an invalid number falls back to the default, a
//! non-positive cap means "no cap"), so a Hermes config file works unchanged.
//! Our own keys (`profiles`, `profile_limits`, `gateway`) are strict: a typo
//! there is an error naming the file and line, not a silently idle lane.
//! Unknown keys and other top-level sections are ignored.
//!
//! ```yaml
//! kanban:
//!   dispatch_in_gateway: true          # HERMES_KANBAN_DISPATCH_IN_GATEWAY=0 turns it off
//!   dispatch_interval_seconds: 60      # 0 = no internal ticker (external cron drives dispatch)
//!   failure_limit: 2
//!   spawn_retry_base_seconds: 5        # ours: first retry after a failed spawn (doubles, jitter)
//!   spawn_retry_max_seconds: 300       # ours: cap of that delay
//!   max_spawn: 4                       # per pass; unset = unlimited
//!   max_in_progress: 8                 # board-wide running ceiling
//!   max_in_progress_per_profile: 2     # default per-profile ceiling
//!   profile_limits: {reasoning: 1, lightweight: 6}   # per-profile ceilings (win over the above)
//!   review_dispatch: true              # false: cards in Review wait for a human verdict
//!   profiles:
//!     claude:
//!       command: ["claude", "-p", "{prompt}", "--model", "{model}"]
//!       env: {CLAUDE_PROJECT: "{board}"}
//!       description: "Claude Code worker"
//!       model: "sonnet"
//! ```
//!
//! Command-template placeholders (in `command` items and `env` values):
//! `{task_id}`, `{prompt}` (self-contained worker prompt: context + protocol),
//! `{workspace}` (absolute workspace path), `{skills}` (comma-separated),
//! `{model}` (task override, else the profile's `model`, else empty),
//! `{board}` (board slug), `{title}` (task title). `{{` and `}}` are literal
//! braces; a `{…}` whose content is not a placeholder-like name (e.g. JSON)
//! is literal too, but an unknown name such as `{taskid}` is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kanban_core::defaults;
use kanban_store::backend::OpenRequest;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::layout::{Env, Root};
pub use crate::template::{ProfileSpec, TEMPLATE_PLACEHOLDERS, TemplateVars};

/// Turns the gateway dispatcher off when `0`, `false`, `no` or `off`;
/// any other value defers to the config (it never forces it on).
pub const ENV_DISPATCH_IN_GATEWAY: &str = "HERMES_KANBAN_DISPATCH_IN_GATEWAY";
pub const ENV_CLAIM_TTL_SECONDS: &str = "HERMES_KANBAN_CLAIM_TTL_SECONDS";
pub const ENV_CRASH_GRACE_SECONDS: &str = "HERMES_KANBAN_CRASH_GRACE_SECONDS";
pub const ENV_RATE_LIMIT_COOLDOWN_SECONDS: &str = "HERMES_KANBAN_RATE_LIMIT_COOLDOWN_SECONDS";
pub const ENV_BUSY_TIMEOUT_MS: &str = "HERMES_KANBAN_BUSY_TIMEOUT_MS";
/// Validated by the binary through `crate::pool_size`.
pub use crate::pool_size::ENV_DATABASE_POOL_SIZE;
/// `kanban.review_dispatch` when unset: the newer reference documents the
/// key without a default; on keeps the dispatcher's review pass as it was.
pub const REVIEW_DISPATCH: bool = true;
/// Triage tasks decomposed per tick (`kanban.auto_decompose_per_tick`).
pub const AUTO_DECOMPOSE_PER_TICK: u32 = 3;
/// The reference never ticks faster than this.
pub const DISPATCH_INTERVAL_FLOOR_SECONDS: u64 = 1;
/// Why the config could not be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Malformed YAML or a wrong type in one of our strict keys.
    #[error("{path}: {message}")]
    Yaml {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A profile definition that cannot be spawned.
    #[error("{path}: kanban.profiles.{profile}: {message}")]
    Profile {
        path: PathBuf,
        profile: String,
        message: String,
    },
}

/// `kanban.gateway`: where our gateway listens (filled in by the gateway work).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct GatewayConfig {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub token: Option<String>,
    /// The gateway log's format and level, as written (checked by
    /// `crate::gateway_log`, so a bad value never fails the whole load).
    #[serde(deserialize_with = "crate::pool_size::raw_scalar")]
    pub log_format: Option<String>,
    #[serde(deserialize_with = "crate::pool_size::raw_scalar")]
    pub log_level: Option<String>,
}

/// The `kanban:` section. `Default` is the reference's defaults.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct KanbanConfig {
    /// Run the dispatcher inside the gateway (after the env override).
    #[serde(deserialize_with = "lenient_bool::<_, true>")]
    pub dispatch_in_gateway: bool,
    /// Seconds between gateway ticks; 0 = no internal ticker.
    #[serde(deserialize_with = "interval_seconds")]
    pub dispatch_interval_seconds: u64,
    /// Consecutive failures before a task is auto-blocked (≥ 1).
    #[serde(deserialize_with = "failure_limit")]
    pub failure_limit: i64,
    /// Spawns per dispatch pass; `None` = unlimited.
    #[serde(deserialize_with = "positive")]
    pub max_spawn: Option<u32>,
    /// Board-wide running ceiling.
    #[serde(deserialize_with = "positive")]
    pub max_in_progress: Option<u32>,
    /// Per-profile running ceiling for profiles without a `profile_limits` entry.
    #[serde(deserialize_with = "positive")]
    pub max_in_progress_per_profile: Option<u32>,
    /// Profile for unassigned ready tasks; `None` = leave them.
    #[serde(deserialize_with = "opt_name")]
    pub default_assignee: Option<String>,
    #[serde(deserialize_with = "opt_name")]
    pub orchestrator_profile: Option<String>,
    #[serde(deserialize_with = "lenient_bool::<_, true>")]
    pub auto_decompose: bool,
    #[serde(deserialize_with = "decompose_per_tick")]
    pub auto_decompose_per_tick: u32,
    #[serde(deserialize_with = "lenient_bool::<_, true>")]
    pub auto_promote_children: bool,
    /// Running tasks without a heartbeat for this long are reclaimed; 0 = off.
    #[serde(deserialize_with = "stale_timeout")]
    pub dispatch_stale_timeout_seconds: i64,
    #[serde(deserialize_with = "rotate_bytes")]
    pub worker_log_rotate_bytes: u64,
    #[serde(deserialize_with = "backup_count")]
    pub worker_log_backup_count: u32,
    /// Ours: most bytes one run writes into its log (head and latest
    /// output kept around a cut note); 0 = no cap.
    #[serde(deserialize_with = "max_run_bytes")]
    pub worker_log_max_run_bytes: u64,
    #[serde(deserialize_with = "lenient_bool::<_, true>")]
    pub auto_subscribe_on_create: bool,
    /// Newer Hermes: the dispatcher spawns a reviewer for cards waiting in
    /// Review. `false`: they wait for a human verdict (dashboard, CLI).
    #[serde(deserialize_with = "lenient_bool::<_, true>")]
    pub review_dispatch: bool,
    /// Ours: delay before the first retry of a task whose worker could not
    /// be started, doubled per consecutive failure (with jitter).
    #[serde(deserialize_with = "retry_base_seconds")]
    pub spawn_retry_base_seconds: i64,
    /// Ours: cap of that delay.
    #[serde(deserialize_with = "retry_max_seconds")]
    pub spawn_retry_max_seconds: i64,
    /// Ours: per-profile running ceilings (names lower-cased).
    pub profile_limits: BTreeMap<String, u32>,
    /// Ours: template-defined worker profiles (names lower-cased).
    pub profiles: BTreeMap<String, ProfileSpec>,
    /// Ours: gateway listener.
    pub gateway: GatewayConfig,
    /// Ours: a `postgres://` URL; boards then live in that database
    /// (`HERMES_KANBAN_DATABASE_URL` and `--db` override it).
    #[serde(deserialize_with = "opt_name")]
    pub database_url: Option<String>,
    /// Ours: connections per database per process, as written (checked
    /// by `crate::pool_size`, so a bad value never fails the whole load).
    #[serde(deserialize_with = "crate::pool_size::raw_scalar")]
    pub database_pool_size: Option<String>,
    /// Set when `HERMES_KANBAN_DISPATCH_IN_GATEWAY` turned dispatch off.
    #[serde(skip)]
    pub dispatch_disabled_by_env: bool,
}

impl Default for KanbanConfig {
    fn default() -> Self {
        KanbanConfig {
            dispatch_in_gateway: true,
            dispatch_interval_seconds: defaults::DISPATCH_INTERVAL_SECONDS,
            failure_limit: defaults::FAILURE_LIMIT,
            max_spawn: None,
            max_in_progress: None,
            max_in_progress_per_profile: None,
            default_assignee: None,
            orchestrator_profile: None,
            auto_decompose: true,
            auto_decompose_per_tick: AUTO_DECOMPOSE_PER_TICK,
            auto_promote_children: true,
            dispatch_stale_timeout_seconds: defaults::GATEWAY_STALE_TIMEOUT_SECONDS,
            worker_log_rotate_bytes: defaults::WORKER_LOG_ROTATE_BYTES,
            worker_log_backup_count: defaults::WORKER_LOG_BACKUP_COUNT,
            worker_log_max_run_bytes: defaults::WORKER_LOG_MAX_RUN_BYTES,
            auto_subscribe_on_create: true,
            review_dispatch: REVIEW_DISPATCH,
            spawn_retry_base_seconds: defaults::SPAWN_RETRY_BASE_SECONDS,
            spawn_retry_max_seconds: defaults::SPAWN_RETRY_MAX_SECONDS,
            profile_limits: BTreeMap::new(),
            profiles: BTreeMap::new(),
            gateway: GatewayConfig::default(),
            database_url: None,
            database_pool_size: None,
            dispatch_disabled_by_env: false,
        }
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    kanban: Option<KanbanConfig>,
}

impl KanbanConfig {
    /// `<root>/config.yaml` with env overrides applied; a missing file
    /// gives the defaults.
    pub fn load(root: &Root, env: &dyn Env) -> Result<KanbanConfig, ConfigError> {
        let mut cfg = KanbanConfig::load_file(&root.config_file())?;
        cfg.apply_env(env);
        Ok(cfg)
    }

    /// One file, no env overrides; missing → defaults.
    pub fn load_file(path: &Path) -> Result<KanbanConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => KanbanConfig::from_yaml_str(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KanbanConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parse a whole config file's text (`path` only names it in errors).
    pub fn from_yaml_str(text: &str, path: &Path) -> Result<KanbanConfig, ConfigError> {
        // An empty or comment-only file is a valid "nothing configured".
        let file: Option<ConfigFile> = serde_norway::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line());
            ConfigError::Yaml {
                path: path.to_path_buf(),
                line,
                message: e.to_string(),
            }
        })?;
        let mut cfg = file.and_then(|f| f.kanban).unwrap_or_default();
        cfg.normalize(path)?;
        Ok(cfg)
    }

    fn normalize(&mut self, path: &Path) -> Result<(), ConfigError> {
        self.profile_limits = std::mem::take(&mut self.profile_limits)
            .into_iter()
            .map(|(k, v)| (k.trim().to_lowercase(), v))
            .collect();
        let mut profiles = BTreeMap::new();
        for (name, spec) in std::mem::take(&mut self.profiles) {
            let key = name.trim().to_lowercase();
            spec.validate().map_err(|message| ConfigError::Profile {
                path: path.to_path_buf(),
                profile: name.clone(),
                message,
            })?;
            profiles.insert(key, spec);
        }
        self.profiles = profiles;
        Ok(())
    }

    /// `HERMES_KANBAN_DISPATCH_IN_GATEWAY=0|false|no|off` disables gateway
    /// dispatch; a truthy value defers to the config.
    pub fn apply_env(&mut self, env: &dyn Env) {
        let v = env
            .non_blank(ENV_DISPATCH_IN_GATEWAY)
            .map(|v| v.to_lowercase());
        if matches!(v.as_deref(), Some("0" | "false" | "no" | "off")) {
            self.dispatch_in_gateway = false;
            self.dispatch_disabled_by_env = true;
        }
    }

    /// The tick period, `None` when the internal ticker is off (0).
    pub fn dispatch_interval(&self) -> Option<std::time::Duration> {
        (self.dispatch_interval_seconds > 0)
            .then(|| std::time::Duration::from_secs(self.dispatch_interval_seconds))
    }

    /// Running ceiling of one profile: its `profile_limits` entry, else
    /// `max_in_progress_per_profile`.
    pub fn profile_limit(&self, profile: &str) -> Option<u32> {
        self.profile_limits
            .get(&profile.trim().to_lowercase())
            .copied()
            .or(self.max_in_progress_per_profile)
    }
}

/// Process-environment tunables of the reference (not in config.yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvTunables {
    pub claim_ttl_seconds: i64,
    pub crash_grace_seconds: i64,
    pub rate_limit_cooldown_seconds: i64,
    pub busy_timeout_ms: u64,
    /// `KANBAN_DATABASE_POOL_SIZE`; `None`: the backend's default.
    pub database_pool_size: Option<u32>,
}

impl EnvTunables {
    /// Invalid values fall back to the defaults silently, as in the
    /// reference; TTL and busy timeout must be positive, the two graces may be 0.
    pub fn from_env(env: &dyn Env) -> EnvTunables {
        let int = |k: &str| env.non_blank(k).and_then(|v| v.parse::<i64>().ok());
        EnvTunables {
            claim_ttl_seconds: int(ENV_CLAIM_TTL_SECONDS)
                .filter(|v| *v > 0)
                .unwrap_or(defaults::CLAIM_TTL_SECONDS),
            crash_grace_seconds: int(ENV_CRASH_GRACE_SECONDS)
                .filter(|v| *v >= 0)
                .unwrap_or(defaults::CRASH_GRACE_SECONDS),
            rate_limit_cooldown_seconds: int(ENV_RATE_LIMIT_COOLDOWN_SECONDS)
                .filter(|v| *v >= 0)
                .unwrap_or(defaults::RATE_LIMIT_COOLDOWN_SECONDS),
            busy_timeout_ms: int(ENV_BUSY_TIMEOUT_MS)
                .filter(|v| *v > 0)
                .map(|v| v as u64)
                .unwrap_or(defaults::BUSY_TIMEOUT_MS),
            database_pool_size: env
                .non_blank(ENV_DATABASE_POOL_SIZE)
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|v| *v > 0),
        }
    }

    /// How a process opens a board with these tunables: the store reads
    /// no environment itself, so the busy timeout is handed in here.
    pub fn open_request(&self, create: bool) -> OpenRequest {
        let req = if create {
            OpenRequest::create()
        } else {
            OpenRequest::existing()
        };
        req.with_busy_timeout_ms(Some(self.busy_timeout_ms))
            .with_pool_size(self.database_pool_size)
    }
}

/// [`EnvTunables::open_request`] from this process's environment, naming
/// this host by its `KANBAN_HOST_ID` when set, with the pool size the
/// process was configured with (`crate::pool_size`).
pub fn open_request(create: bool) -> OpenRequest {
    let tunables = EnvTunables::from_env(&crate::layout::ProcessEnv);
    let pool_size = crate::pool_size::process_pool_size().or(tunables.database_pool_size);
    tunables
        .open_request(create)
        .with_pool_size(pool_size)
        .with_local_host(crate::host::process_host_id())
}

// ---- forgiving coercion of reference keys (Python `int()` / truthiness) ----

type Yaml = serde_norway::Value;

/// Python `int(x)` over a YAML scalar; `None` when it would raise.
fn as_int(v: &Yaml) -> Option<i64> {
    match v {
        Yaml::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        Yaml::Bool(b) => Some(i64::from(*b)),
        Yaml::String(s) => s.trim().parse().ok(),
        Yaml::Tagged(t) => as_int(&t.value),
        _ => None,
    }
}

fn yaml<'de, D: Deserializer<'de>>(d: D) -> Result<Yaml, D::Error> {
    Yaml::deserialize(d)
}

fn lenient_bool<'de, D: Deserializer<'de>, const DEFAULT: bool>(d: D) -> Result<bool, D::Error> {
    // PyYAML reads yes/no/on/off as booleans; serde_norway (YAML 1.2) reads
    // them as strings, so accept both spellings.
    Ok(match yaml(d)? {
        Yaml::Bool(b) => b,
        Yaml::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Yaml::String(s) => match s.trim().to_lowercase().as_str() {
            "true" | "yes" | "on" | "1" | "y" => true,
            "false" | "no" | "off" | "0" | "n" | "" => false,
            _ => DEFAULT,
        },
        _ => DEFAULT,
    })
}

fn interval_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = yaml(d)?;
    let secs = match &v {
        Yaml::Number(n) => n.as_f64(),
        Yaml::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    Ok(match secs {
        Some(0.0) => 0,
        Some(f) if f.is_finite() => (f as u64).max(DISPATCH_INTERVAL_FLOOR_SECONDS),
        _ => defaults::DISPATCH_INTERVAL_SECONDS,
    })
}

fn failure_limit<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(as_int(&yaml(d)?)
        .filter(|v| *v >= 1)
        .unwrap_or(defaults::FAILURE_LIMIT))
}

fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(as_int(&yaml(d)?)
        .filter(|v| *v >= 1)
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX)))
}

fn opt_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = match yaml(d)? {
        Yaml::String(s) => s,
        Yaml::Number(n) => n.to_string(),
        _ => return Ok(None),
    };
    let t = s.trim();
    Ok((!t.is_empty()).then(|| t.to_string()))
}

fn decompose_per_tick<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(as_int(&yaml(d)?)
        .filter(|v| *v >= 1)
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
        .unwrap_or(AUTO_DECOMPOSE_PER_TICK))
}

fn stale_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    // The reference disables stale detection on an unparsable value.
    Ok(as_int(&yaml(d)?).map(|v| v.max(0)).unwrap_or(0))
}

fn rotate_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(as_int(&yaml(d)?)
        .filter(|v| *v >= 1)
        .map(|v| v as u64)
        .unwrap_or(defaults::WORKER_LOG_ROTATE_BYTES))
}

fn backup_count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(as_int(&yaml(d)?)
        .filter(|v| *v >= 0)
        .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
        .unwrap_or(defaults::WORKER_LOG_BACKUP_COUNT))
}

/// Strict (our key): a whole number of bytes, 0 meaning no cap.
fn max_run_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match yaml(d)? {
        Yaml::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
        other => Err(serde::de::Error::custom(format!(
            "worker_log_max_run_bytes must be a whole number of bytes (0 = no cap), got {}",
            serde_norway::to_string(&other).unwrap_or_default().trim()
        ))),
    }
}

/// Whole seconds ≥ 1, else the default (like the reference's own keys).
fn retry_base_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(as_int(&yaml(d)?)
        .filter(|v| *v >= 1)
        .unwrap_or(defaults::SPAWN_RETRY_BASE_SECONDS))
}

fn retry_max_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(as_int(&yaml(d)?)
        .filter(|v| *v >= 1)
        .unwrap_or(defaults::SPAWN_RETRY_MAX_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MapEnv;

    fn parse(text: &str) -> Result<KanbanConfig, ConfigError> {
        KanbanConfig::from_yaml_str(text, Path::new("/h/config.yaml"))
    }

    #[test]
    fn defaults_match_reference() {
        let c = KanbanConfig::default();
        assert!(c.dispatch_in_gateway);
        assert_eq!(c.dispatch_interval_seconds, 60);
        assert_eq!(c.failure_limit, 2);
        assert_eq!(
            (
                c.max_spawn,
                c.max_in_progress,
                c.max_in_progress_per_profile
            ),
            (None, None, None)
        );
        assert_eq!(c.default_assignee, None);
        assert_eq!(c.dispatch_stale_timeout_seconds, 14_400);
        assert_eq!(c.worker_log_rotate_bytes, 2 * 1024 * 1024);
        assert_eq!(c.worker_log_backup_count, 1);
        assert!(c.auto_subscribe_on_create && c.auto_decompose && c.auto_promote_children);
        for text in [
            "",
            "# only a comment\n",
            "model: x\n",
            "kanban:\n",
            "kanban: {}\n",
        ] {
            assert_eq!(parse(text).unwrap(), c, "{text:?}");
        }
    }

    #[test]
    fn review_dispatch_defaults_on_and_reads_yaml_spellings() {
        assert!(KanbanConfig::default().review_dispatch);
        for (text, want) in [
            ("kanban:\n  review_dispatch: false\n", false),
            ("kanban:\n  review_dispatch: 'off'\n", false),
            ("kanban:\n  review_dispatch: no\n", false),
            ("kanban:\n  review_dispatch: 0\n", false),
            ("kanban:\n  review_dispatch: true\n", true),
            ("kanban:\n  review_dispatch: bogus\n", true),
            ("kanban:\n  max_spawn: 2\n", true),
        ] {
            assert_eq!(parse(text).unwrap().review_dispatch, want, "{text:?}");
        }
    }

    #[test]
    fn missing_file_is_defaults() {
        let t = tempfile::tempdir().unwrap();
        let root = Root::at(t.path());
        assert_eq!(
            KanbanConfig::load(&root, &MapEnv::new()).unwrap(),
            KanbanConfig::default()
        );
    }

    #[test]
    fn reads_reference_keys_with_python_coercion() {
        let c = parse(
            "model: {default: x}\nkanban:\n  dispatch_in_gateway: false\n  dispatch_interval_seconds: 0\n  failure_limit: '3'\n  max_spawn: 4\n  max_in_progress: 0\n  max_in_progress_per_profile: bogus\n  default_assignee: ' coder '\n  orchestrator_profile: ''\n  dispatch_stale_timeout_seconds: 0\n  worker_log_rotate_bytes: 1024\n  worker_log_backup_count: 0\n  auto_subscribe_on_create: no\n  some_future_key: [1, 2]\n",
        )
        .unwrap();
        assert!(!c.dispatch_in_gateway);
        assert_eq!(c.dispatch_interval_seconds, 0);
        assert_eq!(c.dispatch_interval(), None);
        assert_eq!(c.failure_limit, 3);
        assert_eq!(c.max_spawn, Some(4));
        assert_eq!(c.max_in_progress, None, "non-positive cap means no cap");
        assert_eq!(c.max_in_progress_per_profile, None, "invalid cap ignored");
        assert_eq!(c.default_assignee.as_deref(), Some("coder"));
        assert_eq!(c.orchestrator_profile, None);
        assert_eq!(c.dispatch_stale_timeout_seconds, 0);
        assert_eq!(
            (c.worker_log_rotate_bytes, c.worker_log_backup_count),
            (1024, 0)
        );
        assert!(!c.auto_subscribe_on_create);
        let c = parse("kanban:\n  failure_limit: 0\n  dispatch_interval_seconds: 0.2\n").unwrap();
        assert_eq!(c.failure_limit, 2);
        assert_eq!(c.dispatch_interval_seconds, 1);
    }

    #[test]
    fn worker_log_run_cap_is_ours_and_strict() {
        assert_eq!(
            KanbanConfig::default().worker_log_max_run_bytes,
            defaults::WORKER_LOG_MAX_RUN_BYTES
        );
        let c = parse("kanban:\n  worker_log_max_run_bytes: 100000\n").unwrap();
        assert_eq!(c.worker_log_max_run_bytes, 100_000);
        assert_eq!(
            parse("kanban:\n  worker_log_max_run_bytes: 0\n")
                .unwrap()
                .worker_log_max_run_bytes,
            0
        );
        for bad in ["-1", "'8M'", "1.5"] {
            let err = parse(&format!("kanban:\n  worker_log_max_run_bytes: {bad}\n")).unwrap_err();
            assert!(
                err.to_string().contains("worker_log_max_run_bytes"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn spawn_retry_backoff_keys() {
        let d = KanbanConfig::default();
        assert_eq!(
            d.spawn_retry_base_seconds,
            defaults::SPAWN_RETRY_BASE_SECONDS
        );
        assert_eq!(d.spawn_retry_max_seconds, defaults::SPAWN_RETRY_MAX_SECONDS);
        let c = parse("kanban:\n  spawn_retry_base_seconds: 2\n  spawn_retry_max_seconds: '60'\n")
            .unwrap();
        assert_eq!(
            (c.spawn_retry_base_seconds, c.spawn_retry_max_seconds),
            (2, 60)
        );
        let c = parse("kanban:\n  spawn_retry_base_seconds: 0\n  spawn_retry_max_seconds: x\n")
            .unwrap();
        assert_eq!(
            c.spawn_retry_base_seconds,
            defaults::SPAWN_RETRY_BASE_SECONDS
        );
        assert_eq!(c.spawn_retry_max_seconds, defaults::SPAWN_RETRY_MAX_SECONDS);
    }

    #[test]
    fn env_override_only_disables() {
        let mut c = KanbanConfig::default();
        for off in ["0", "false", "NO", " off "] {
            let mut c = c.clone();
            c.apply_env(&MapEnv::new().with(ENV_DISPATCH_IN_GATEWAY, off));
            assert!(
                !c.dispatch_in_gateway && c.dispatch_disabled_by_env,
                "{off}"
            );
        }
        c.dispatch_in_gateway = false;
        c.apply_env(&MapEnv::new().with(ENV_DISPATCH_IN_GATEWAY, "1"));
        assert!(!c.dispatch_in_gateway, "truthy env defers to config");
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("config.yaml"),
            "kanban:\n  dispatch_in_gateway: true\n",
        )
        .unwrap();
        let env = MapEnv::new().with(ENV_DISPATCH_IN_GATEWAY, "off");
        assert!(
            !KanbanConfig::load(&Root::at(t.path()), &env)
                .unwrap()
                .dispatch_in_gateway
        );
    }

    #[test]
    fn malformed_yaml_names_file_and_line() {
        let e = parse("kanban:\n  max_spawn: 1\n   bad: [\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("/h/config.yaml: "), "{msg}");
        assert!(msg.contains("line"), "{msg}");
        assert!(matches!(e, ConfigError::Yaml { line: Some(_), .. }));
        // Strict keys: wrong type is an error too.
        let msg = parse("kanban:\n  profile_limits: {a: many}\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn our_keys_profiles_and_limits() {
        let c = parse(
            "kanban:\n  max_in_progress_per_profile: 2\n  profile_limits: {Reasoning: 1, light: 6}\n  profiles:\n    Claude:\n      command: [claude, -p, '{prompt}', --model, '{model}']\n      env: {BOARD: 'b-{board}'}\n      description: Claude Code\n      model: sonnet\n  gateway: {host: 127.0.0.1, port: 8080}\n",
        )
        .unwrap();
        assert_eq!(c.profile_limit("reasoning"), Some(1));
        assert_eq!(c.profile_limit("LIGHT"), Some(6));
        assert_eq!(c.profile_limit("other"), Some(2));
        assert_eq!(c.gateway.port, Some(8080));
        let spec = &c.profiles["claude"];
        let vars = TemplateVars {
            task_id: "t_1".into(),
            prompt: "do it \"now\"".into(),
            board: "main".into(),
            ..Default::default()
        };
        assert_eq!(
            spec.render_command(&vars),
            ["claude", "-p", "do it \"now\"", "--model", "sonnet"]
        );
        let vars = TemplateVars {
            model: Some("opus".into()),
            ..vars
        };
        assert_eq!(spec.render_command(&vars)[4], "opus");
        assert_eq!(spec.render_env(&vars)["BOARD"], "b-main");
    }

    #[test]
    fn template_rules() {
        let spec = |cmd: &[&str]| ProfileSpec {
            command: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let vars = TemplateVars {
            task_id: "t_9".into(),
            skills: vec!["a".into(), "b".into()],
            workspace: "/w".into(),
            title: "T".into(),
            ..Default::default()
        };
        let s = spec(&[
            "run",
            "{{task_id}}",
            "{\"k\": 1}",
            "{task_id}:{skills}@{workspace}/{title}",
        ]);
        assert!(s.validate().is_ok());
        assert_eq!(
            s.render_command(&vars),
            ["run", "{task_id}", "{\"k\": 1}", "t_9:a,b@/w/T"]
        );
        assert!(
            spec(&["x", "{taskid}"])
                .validate()
                .unwrap_err()
                .contains("unknown placeholder {taskid}")
        );
        assert!(spec(&[]).validate().is_err());
        let e =
            parse("kanban:\n  profiles:\n    bad:\n      command: [x, '{nope}']\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("kanban.profiles.bad: unknown placeholder"),
            "{e}"
        );
        assert!(parse("kanban:\n  profiles:\n    bad: {description: x}\n").is_err());
    }

    #[test]
    fn env_tunables() {
        let d = EnvTunables::from_env(&MapEnv::new());
        assert_eq!((d.claim_ttl_seconds, d.crash_grace_seconds), (900, 30));
        let e = MapEnv::new()
            .with(ENV_CLAIM_TTL_SECONDS, "0")
            .with(ENV_CRASH_GRACE_SECONDS, "0")
            .with(ENV_RATE_LIMIT_COOLDOWN_SECONDS, "x")
            .with(ENV_BUSY_TIMEOUT_MS, "500");
        let t = EnvTunables::from_env(&e);
        assert_eq!(t.claim_ttl_seconds, 900);
        assert_eq!(t.crash_grace_seconds, 0);
        assert_eq!(t.rate_limit_cooldown_seconds, 300);
        assert_eq!(t.busy_timeout_ms, 500);
        assert_eq!(d.database_pool_size, None);
        let sized = |v: &str| {
            EnvTunables::from_env(&MapEnv::new().with(ENV_DATABASE_POOL_SIZE, v)).database_pool_size
        };
        assert_eq!(sized("3"), Some(3));
        assert_eq!(sized("0"), None);
        assert_eq!(sized("many"), None);
        assert_eq!(
            EnvTunables::from_env(&e).open_request(false).pool_size,
            None
        );
        let req = EnvTunables::from_env(&MapEnv::new().with(ENV_DATABASE_POOL_SIZE, "4"))
            .open_request(true);
        assert_eq!(req.pool_size, Some(4));
    }
}
