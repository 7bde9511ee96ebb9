//! How the gateway logs: `kanban.gateway.log_format` (`text` or `json`)
//! and `kanban.gateway.log_level` (`error` … `trace`, or `off`) in
//! `config.yaml`. Both are strict (our keys), but kept as written in
//! [`GatewayConfig`] and checked by the gateway at start-up
//! ([`gateway_log_config`]), like the pool size: a typo there stops the
//! gateway with the key and the fix, and never fails the whole config
//! load (profiles and limits of every other verb).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use thiserror::Error;

use crate::config::GatewayConfig;

/// The key of the log format under `kanban:` in `config.yaml`.
pub const CONFIG_LOG_FORMAT: &str = "gateway.log_format";
/// The key of the log level under `kanban:` in `config.yaml`.
pub const CONFIG_LOG_LEVEL: &str = "gateway.log_level";

/// How each log event is written: one line either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: time, level, message, `key=value` fields.
    #[default]
    Text,
    /// For log shippers: one JSON object per line.
    Json,
}

impl LogFormat {
    /// Every accepted spelling, as written in `--log-format` and the config.
    pub const NAMES: [&'static str; 2] = ["text", "json"];

    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogFormat {
    /// What was expected (the value is the caller's to quote).
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected {}", LogFormat::NAMES.join(" or "))),
        }
    }
}

/// The least severe events the gateway logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// Every accepted spelling, most severe first.
    pub const NAMES: [&'static str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(LogLevel::Off),
            "error" => Ok(LogLevel::Error),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            _ => Err(format!("expected one of {}", LogLevel::NAMES.join(", "))),
        }
    }
}

/// A log key of `config.yaml` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("kanban.{key} in {file} is {value:?}: {expected}; fix or remove it")]
pub struct LogConfigError {
    pub key: &'static str,
    pub file: String,
    pub value: String,
    /// The accepted values.
    pub expected: String,
}

/// The gateway log's settings from `config.yaml` (`None`: not set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayLogConfig {
    pub format: Option<LogFormat>,
    pub level: Option<LogLevel>,
}

/// Check `kanban.gateway.log_format` and `log_level` of `config` (read
/// from `config_file`, named in the error).
pub fn gateway_log_config(
    config: &GatewayConfig,
    config_file: &Path,
) -> Result<GatewayLogConfig, LogConfigError> {
    fn parse<T: FromStr<Err = String>>(
        key: &'static str,
        raw: Option<&str>,
        file: &Path,
    ) -> Result<Option<T>, LogConfigError> {
        raw.map(|v| {
            v.parse().map_err(|expected| LogConfigError {
                key,
                file: file.display().to_string(),
                value: v.to_string(),
                expected,
            })
        })
        .transpose()
    }
    Ok(GatewayLogConfig {
        format: parse(CONFIG_LOG_FORMAT, config.log_format.as_deref(), config_file)?,
        level: parse(CONFIG_LOG_LEVEL, config.log_level.as_deref(), config_file)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KanbanConfig;

    fn load(yaml: &str) -> Result<GatewayLogConfig, LogConfigError> {
        let path = Path::new("/h/config.yaml");
        let c =
            KanbanConfig::from_yaml_str(yaml, path).expect("a bad log key never fails the load");
        gateway_log_config(&c.gateway, path)
    }

    #[test]
    fn unset_keys_are_none() {
        assert_eq!(load("kanban: {}\n").unwrap(), GatewayLogConfig::default());
    }

    #[test]
    fn accepted_values_any_case() {
        let c = load("kanban:\n  gateway: {log_format: JSON, log_level: Debug}\n").unwrap();
        assert_eq!(c.format, Some(LogFormat::Json));
        assert_eq!(c.level, Some(LogLevel::Debug));
        for name in LogLevel::NAMES {
            assert_eq!(name.parse::<LogLevel>().unwrap().as_str(), name);
        }
        for name in LogFormat::NAMES {
            assert_eq!(name.parse::<LogFormat>().unwrap().as_str(), name);
        }
    }

    #[test]
    fn bad_values_name_the_key_the_file_and_the_choices() {
        let e = load("kanban:\n  gateway: {log_format: xml}\n").unwrap_err();
        let msg = e.to_string();
        for part in [
            "kanban.gateway.log_format",
            "/h/config.yaml",
            "\"xml\"",
            "text or json",
        ] {
            assert!(msg.contains(part), "{part}: {msg}");
        }
        let e = load("kanban:\n  gateway: {log_level: 3}\n").unwrap_err();
        assert_eq!(e.key, CONFIG_LOG_LEVEL);
        assert!(e.to_string().contains("info, debug"), "{e}");
    }
}
