//! The gateway's log: one `tracing` subscriber writing one line per event
//! to stderr (which `gateway start` appends to `gateway.log`), as text for
//! people or JSON lines for log shippers, and the dispatcher's pass line.
//!
//! The level comes from `RUST_LOG` (`warn`, `kanban_dispatch=debug,info`),
//! else `kanban.gateway.log_level`, else [`DEFAULT_LOG_LEVEL`]. A pass
//! that did something is one info line; an idle pass is a debug line, so
//! an idle gateway's log stays quiet.

use std::collections::HashSet;
use std::time::Duration;

pub use kanban_hermes::gateway_log::{GatewayLogConfig, LogFormat, LogLevel};
use serde_json::Value;
use thiserror::Error;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// The filter that overrides the configured level (`tracing` syntax).
pub const ENV_RUST_LOG: &str = "RUST_LOG";
/// The level when neither `RUST_LOG` nor the config sets one.
pub const DEFAULT_LOG_LEVEL: LogLevel = LogLevel::Info;

/// Why the log could not be set up.
#[derive(Debug, Error)]
pub enum LoggingError {
    #[error("a tracing subscriber is already installed in this process")]
    AlreadyInstalled,
}

/// How the gateway logs: the `--log-format` flag › the config › text; the
/// level from `RUST_LOG` › the config › info.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    filter: Targets,
    /// A `RUST_LOG` that is not a filter, and why (warned about once the
    /// log is up; the configured level applies).
    rejected_env: Option<(String, String)>,
}

impl LogSettings {
    pub fn resolve(
        flag: Option<LogFormat>,
        config: &GatewayLogConfig,
        rust_log: Option<&str>,
    ) -> LogSettings {
        let level = config.level.unwrap_or(DEFAULT_LOG_LEVEL);
        let configured = Targets::new().with_default(level_filter(level));
        let mut rejected_env = None;
        let filter = match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
            None => configured,
            Some(spec) => spec.parse::<Targets>().unwrap_or_else(|e| {
                rejected_env = Some((spec.to_string(), e.to_string()));
                configured
            }),
        };
        LogSettings {
            format: flag.or(config.format).unwrap_or_default(),
            filter,
            rejected_env,
        }
    }

    /// [`LogSettings::resolve`] with this process's `RUST_LOG`.
    pub fn from_env(flag: Option<LogFormat>, config: &GatewayLogConfig) -> LogSettings {
        let rust_log = std::env::var(ENV_RUST_LOG).ok();
        LogSettings::resolve(flag, config, rust_log.as_deref())
    }
}

fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Off => LevelFilter::OFF,
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    }
}

/// Install the process-wide subscriber, writing to stderr. Once only.
pub fn install(settings: &LogSettings) -> Result<(), LoggingError> {
    tracing::subscriber::set_global_default(subscriber(settings, std::io::stderr))
        .map_err(|_| LoggingError::AlreadyInstalled)?;
    if let Some((spec, why)) = &settings.rejected_env {
        tracing::warn!(
            "{ENV_RUST_LOG}={spec:?} is not a log filter ({why}); using the configured level"
        );
    }
    Ok(())
}

/// The subscriber for `settings`, writing lines to `writer`. Targets are
/// left out of text lines (messages name their part of the gateway) but
/// kept in JSON, where they tell which `RUST_LOG` target to tune.
fn subscriber<W>(settings: &LogSettings, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry().with(settings.filter.clone());
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match settings.format {
        LogFormat::Text => Box::new(registry.with(layer.with_target(false).with_ansi(false))),
        LogFormat::Json => Box::new(
            registry.with(
                layer
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            ),
        ),
    }
}

/// What one dispatch pass did, read from its result (the
/// `DispatchResult` JSON plus the gateway's `claim_seconds` and `reaped`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassSummary {
    pub claimed: u64,
    pub spawned: u64,
    /// Claimed, but the worker could not be started (retried later).
    pub spawn_failed: u64,
    /// Exited workers collected.
    pub reaped: u64,
    pub promoted: u64,
    pub reclaimed: u64,
    pub stale: u64,
    pub crashed: u64,
    pub timed_out: u64,
    pub rate_limited: u64,
    pub auto_blocked: u64,
}

impl PassSummary {
    pub fn of(result: &Value) -> PassSummary {
        let count = |key| result_count(result, key);
        let (claimed, spawned) = (count("claim_seconds"), count("spawned"));
        PassSummary {
            claimed,
            spawned,
            spawn_failed: claimed.saturating_sub(spawned),
            reaped: count("reaped"),
            promoted: count("promoted"),
            reclaimed: count("reclaimed"),
            stale: count("stale"),
            crashed: count("crashed"),
            timed_out: count("timed_out"),
            rate_limited: count("rate_limited"),
            auto_blocked: count("auto_blocked"),
        }
    }

    pub fn is_idle(&self) -> bool {
        *self == PassSummary::default()
    }
}

/// Zero as no field at all: the rarer counts appear only when they happen.
fn nonzero(n: u64) -> Option<u64> {
    (n > 0).then_some(n)
}

/// Log one pass over `board` that took `took`: an info line when it did
/// something (the common counts always, the rarer ones when not zero),
/// a debug line when idle, and a debug line per worker it reaped.
pub fn log_pass(board: &str, result: &Value, took: Duration) {
    let s = PassSummary::of(result);
    let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    if s.is_idle() {
        let locked = result.get("skipped_locked").and_then(Value::as_bool);
        tracing::debug!(board = %board, locked, duration_ms, "kanban dispatcher: idle pass");
        return;
    }
    for w in result
        .get("reaped")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        tracing::debug!(
            board = %board,
            task = %w["task_id"].as_str().unwrap_or_default(),
            pid = w["pid"].as_i64(),
            exit_code = w["exit"]["exited"].as_i64(),
            signal = w["exit"]["signaled"].as_i64(),
            "kanban dispatcher: worker ended"
        );
    }
    tracing::info!(
        board = %board,
        claimed = s.claimed,
        spawned = s.spawned,
        reaped = s.reaped,
        promoted = s.promoted,
        spawn_failed = s.spawn_failed,
        reclaimed = nonzero(s.reclaimed),
        stale = nonzero(s.stale),
        crashed = nonzero(s.crashed),
        timed_out = nonzero(s.timed_out),
        rate_limited = nonzero(s.rate_limited),
        auto_blocked = nonzero(s.auto_blocked),
        duration_ms,
        "kanban dispatcher: pass"
    );
}

/// Log the boards the dispatcher found open since its last look (made by
/// another process meanwhile). The first look (`before` empty) logs
/// nothing: the start-up line lists the boards.
pub fn log_boards_opened(before: &HashSet<String>, now: &HashSet<String>) {
    if before.is_empty() {
        return;
    }
    let mut opened: Vec<&String> = now.difference(before).collect();
    opened.sort();
    for slug in opened {
        tracing::info!(board = %slug, "kanban dispatcher: board opened");
    }
}

/// Length of a list field of a `DispatchResult`, or the number itself.
pub fn result_count(result: &Value, key: &str) -> u64 {
    match result.get(key) {
        Some(Value::Array(a)) => a.len() as u64,
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;

    /// Every line written, for a subscriber under test.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn logged(settings: &LogSettings, f: impl FnOnce()) -> String {
        let lines = Lines::default();
        let sink = lines.clone();
        let sub = subscriber(settings, move || sink.clone());
        tracing::subscriber::with_default(sub, f);
        lines.text()
    }

    fn settings(format: LogFormat, rust_log: Option<&str>) -> LogSettings {
        LogSettings::resolve(Some(format), &GatewayLogConfig::default(), rust_log)
    }

    fn busy_pass() -> Value {
        json!({"spawned": [{"task_id": "t_1"}], "claim_seconds": [0.01], "promoted": 2,
               "reclaimed": 0, "crashed": ["t_9"],
               "reaped": [{"task_id": "t_0", "pid": 42, "exit": {"exited": 0}}]})
    }

    #[test]
    fn a_busy_pass_is_one_text_line_with_its_counts() {
        let out = logged(&settings(LogFormat::Text, None), || {
            log_pass("main", &busy_pass(), Duration::from_millis(7));
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let line = lines[0];
        for part in [
            " INFO ",
            "kanban dispatcher: pass",
            "board=main",
            "claimed=1",
            "spawned=1",
            "reaped=1",
            "promoted=2",
            "spawn_failed=0",
            "crashed=1",
            "duration_ms=7",
        ] {
            assert!(line.contains(part), "{part}: {line}");
        }
        assert!(
            !line.contains("reclaimed"),
            "zero rare counts are left out: {line}"
        );
        assert!(!line.contains("kanban_server"), "no target: {line}");
    }

    #[test]
    fn an_idle_pass_is_debug_only() {
        let idle = json!({"spawned": [], "promoted": 0, "skipped_locked": false});
        let quiet = logged(&settings(LogFormat::Text, None), || {
            log_pass("main", &idle, Duration::ZERO);
        });
        assert_eq!(quiet, "");
        let debug = logged(&settings(LogFormat::Text, Some("debug")), || {
            log_pass("main", &idle, Duration::ZERO);
            log_pass("main", &busy_pass(), Duration::ZERO);
        });
        assert!(
            debug.contains("DEBUG kanban dispatcher: idle pass board=main"),
            "{debug}"
        );
        assert!(
            debug.contains("worker ended board=main task=t_0 pid=42 exit_code=0"),
            "{debug}"
        );
        assert!(!debug.contains("signal="), "{debug}");
    }

    #[test]
    fn json_lines_carry_level_message_and_fields() {
        let out = logged(&settings(LogFormat::Json, None), || {
            log_pass("main", &busy_pass(), Duration::from_millis(3));
        });
        let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "kanban dispatcher: pass");
        assert_eq!(v["board"], "main");
        assert_eq!(v["claimed"], 1);
        assert_eq!(v["duration_ms"], 3);
        assert!(v["timestamp"].is_string(), "{v}");
    }

    #[test]
    fn rust_log_overrides_the_config_and_a_bad_one_falls_back() {
        let config = GatewayLogConfig {
            format: Some(LogFormat::Json),
            level: Some(LogLevel::Debug),
        };
        let warn = LogSettings::resolve(None, &config, Some("warn"));
        assert_eq!(warn.format, LogFormat::Json);
        assert_eq!(logged(&warn, || tracing::info!("hidden")), "");
        let bad = LogSettings::resolve(Some(LogFormat::Text), &config, Some("=[nope"));
        assert!(bad.rejected_env.is_some());
        assert_eq!(bad.format, LogFormat::Text, "the flag wins");
        assert!(logged(&bad, || tracing::debug!("shown")).contains("shown"));
        let default = LogSettings::resolve(None, &GatewayLogConfig::default(), Some(" "));
        assert_eq!(default.format, LogFormat::Text);
        assert_eq!(logged(&default, || tracing::debug!("hidden")), "");
    }
}
