//! `kanban doctor [--json]`: checks an installation and says what to do
//! about every problem it finds.
//!
//! The checks, in order: the root exists; what the product writes under it
//! is private (files 0600, directories 0700); `config.yaml` parses the way
//! every verb reads it; its `auxiliary:` models can answer; the database is reachable (PostgreSQL); each
//! worker profile's program can be found; a gateway runs and dispatches;
//! no pid file or claim outlived its process; every board opens; no
//! Hermes (Python) gateway holds the root. Doctor only reads: it creates
//! no root, board or file (opening a board a Hermes-only version left
//! unmigrated migrates it, as every verb does).
//!
//! Exit 0 when every check is `ok`, 1 when one is `warn` or `fail`.

mod auxiliary;
mod boards;
mod files;
mod gateway;
mod profiles;

use std::io::Write;

use anyhow::Result;
use clap::Args;
use kanban_hermes::config::{ConfigError, KanbanConfig};
use kanban_hermes::layout::{ENV_KANBAN_DATABASE_URL, Env, ProcessEnv, Root};
use serde::Serialize;

use crate::output::{Layout, term};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print `{"ok", "root", "checks": [{"name", "status", "detail", "fix"}]}`.
    #[arg(long)]
    pub json: bool,
}

/// How bad a finding is. `Warn`: things work but something is off or at
/// risk; `Fail`: something does not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        }
    }
}

/// One thing a check found, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub level: Level,
    pub detail: String,
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(detail: impl Into<String>) -> Finding {
        Finding {
            level: Level::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    pub fn warn(detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            level: Level::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn fail(detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            level: Level::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// One line of the report (one entry of `--json`'s `checks`).
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    pub name: &'static str,
    pub status: Level,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    /// The findings of one check as one entry: its worst level, the
    /// details one per line, the problems' fixes one per line.
    pub fn of(name: &'static str, findings: Vec<Finding>) -> Check {
        let status = findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok);
        let detail = findings
            .iter()
            .map(|f| f.detail.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let mut fixes: Vec<&str> = Vec::new();
        for f in findings.iter().filter(|f| f.level > Level::Ok) {
            if let Some(fix) = f.fix.as_deref()
                && !fixes.contains(&fix)
            {
                fixes.push(fix);
            }
        }
        Check {
            name,
            status,
            detail,
            fix: (!fixes.is_empty()).then(|| fixes.join("\n")),
        }
    }
}

/// Where the checks look: the root, its config and its database.
pub(crate) struct Site {
    pub root: Root,
    /// The parsed `kanban:` section (defaults without a config file).
    pub config: Result<KanbanConfig, ConfigError>,
    /// A configured database URL that is not usable, with where it came from.
    pub database_error: Option<String>,
    /// Where the database URL came from, when one is configured.
    pub database_origin: Option<String>,
}

impl Site {
    pub fn config(&self) -> Option<&KanbanConfig> {
        self.config.as_ref().ok()
    }
}

/// The process environment without the database variable: the root's
/// directory is resolved first, the database (and its errors) after.
struct WithoutDatabase;

impl Env for WithoutDatabase {
    fn var(&self, key: &str) -> Option<String> {
        (key != ENV_KANBAN_DATABASE_URL)
            .then(|| ProcessEnv.var(key))
            .flatten()
    }
    fn home_dir(&self) -> Option<std::path::PathBuf> {
        ProcessEnv.home_dir()
    }
}

/// Resolve the root and its database the way every verb does (`--db` ›
/// `HERMES_KANBAN_DATABASE_URL` › `kanban.database_url`), keeping what is
/// wrong as findings instead of stopping at the first error.
fn resolve_site(database_url: Option<&str>) -> Result<Site, String> {
    let mut root = Root::resolve(&WithoutDatabase).map_err(|e| e.to_string())?;
    let config = KanbanConfig::load(&root, &ProcessEnv);
    let configured = config.as_ref().ok().and_then(|c| c.database_url.clone());
    let url = database_url
        .map(|u| (u.to_string(), "--db".to_string()))
        .or_else(|| {
            ProcessEnv
                .non_blank(ENV_KANBAN_DATABASE_URL)
                .map(|u| (u, ENV_KANBAN_DATABASE_URL.to_string()))
        })
        .or_else(|| {
            configured.map(|u| {
                let origin = format!("kanban.database_url in {}", root.config_file().display());
                (u, origin)
            })
        });
    let mut database_error = None;
    let mut database_origin = None;
    if let Some((url, origin)) = url {
        if let Err(e) = root.use_database(&url, &origin) {
            database_error = Some(e.to_string());
        }
        database_origin = Some(origin);
    }
    Ok(Site {
        root,
        config,
        database_error,
        database_origin,
    })
}

pub fn run(args: DoctorArgs, database_url: Option<&str>) -> Result<i32> {
    let (root_label, checks) = match resolve_site(database_url) {
        Ok(site) => (
            Some(site.root.path().display().to_string()),
            run_checks(&site),
        ),
        Err(e) => (
            None,
            vec![Check::of(
                "root",
                vec![Finding::fail(
                    e,
                    "set HERMES_KANBAN_HOME (or HERMES_HOME) to the directory that holds the boards",
                )],
            )],
        ),
    };
    let ok = checks.iter().all(|c| c.status == Level::Ok);
    if args.json {
        let v = serde_json::json!({ "ok": ok, "root": root_label, "checks": checks });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_report(root_label.as_deref(), &checks)?;
    }
    Ok(if ok { 0 } else { 1 })
}

/// Every check, in the order of the module doc. A root that does not
/// exist stops there: there is nothing else to look at.
fn run_checks(site: &Site) -> Vec<Check> {
    let root = files::root_check(&site.root);
    if root.status == Level::Fail {
        return vec![root];
    }
    let gateway = gateway::GatewayState::read(&site.root);
    let boards = boards::open_all(site);
    vec![
        root,
        Check::of("permissions", files::permission_findings(&site.root)),
        Check::of("config", config_findings(site)),
        Check::of("auxiliary", auxiliary::findings(site)),
        Check::of("database", boards::database_findings(site, &boards)),
        Check::of("profiles", profiles::findings(site, &boards)),
        Check::of("gateway", gateway.findings(site.config())),
        Check::of("stale_locks", stale_findings(site, &gateway, &boards)),
        Check::of("boards", boards::integrity_findings(site, &boards)),
        Check::of("hermes_gateway", gateway.hermes_findings(&site.root)),
    ]
}

fn config_findings(site: &Site) -> Vec<Finding> {
    let path = site.root.config_file();
    match &site.config {
        Ok(c) if path.exists() => vec![Finding::ok(format!(
            "{} is valid ({} worker profile(s), dispatch in gateway {}, every {})",
            path.display(),
            c.profiles.len(),
            if c.dispatch_in_gateway { "on" } else { "off" },
            match c.dispatch_interval() {
                Some(d) => format!("{}s", d.as_secs()),
                None => "pass on demand only".into(),
            }
        ))],
        Ok(_) => vec![Finding::ok(format!(
            "no {} (the defaults apply)",
            path.display()
        ))],
        Err(e) => {
            let at = match e {
                ConfigError::Yaml {
                    line: Some(line), ..
                } => format!(" at line {line}"),
                _ => String::new(),
            };
            vec![Finding::fail(
                e.to_string(),
                format!(
                    "edit {}{at}; every verb ignores an unreadable config (no profiles, \
                     no limits), so fix it before starting the gateway",
                    path.display()
                ),
            )]
        }
    }
}

fn stale_findings(
    site: &Site,
    gateway: &gateway::GatewayState,
    boards: &[boards::BoardReport],
) -> Vec<Finding> {
    let mut out = files::stale_gateway_files(&site.root, gateway.ours_gone());
    out.extend(boards::orphaned_claims(boards, gateway.dispatching()));
    if out.is_empty() {
        out.push(Finding::ok(
            "no pid file or claim outlived its process (flock locks are released by the kernel)",
        ));
    }
    out
}

fn print_report(root: Option<&str>, checks: &[Check]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(root) = root {
        writeln!(out, "kanban doctor: {}", term(root, Layout::Line))?;
    }
    for c in checks {
        let mut lines = c.detail.lines();
        let first = lines.next().unwrap_or("");
        writeln!(
            out,
            "{:<5} {:<15} {}",
            c.status.label(),
            c.name,
            term(first, Layout::Line)
        )?;
        for l in lines {
            writeln!(out, "{:22}{}", "", term(l, Layout::Line))?;
        }
        if let Some(fix) = &c.fix {
            for (i, l) in fix.lines().enumerate() {
                let lead = if i == 0 { "fix: " } else { "     " };
                writeln!(out, "{:22}{lead}{}", "", term(l, Layout::Line))?;
            }
        }
    }
    let warn = checks.iter().filter(|c| c.status == Level::Warn).count();
    let fail = checks.iter().filter(|c| c.status == Level::Fail).count();
    if warn + fail == 0 {
        writeln!(out, "\nAll {} checks passed.", checks.len())?;
    } else {
        writeln!(
            out,
            "\n{} check(s) need attention: {fail} failed, {warn} warning(s).",
            warn + fail
        )?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_takes_its_worst_finding_and_each_fix_once() {
        let c = Check::of(
            "x",
            vec![
                Finding::ok("fine"),
                Finding::warn("meh", "do a"),
                Finding::fail("bad", "do b"),
                Finding::warn("meh again", "do a"),
            ],
        );
        assert_eq!(c.status, Level::Fail);
        assert_eq!(c.detail, "fine\nmeh\nbad\nmeh again");
        assert_eq!(c.fix.as_deref(), Some("do a\ndo b"));
        let ok = Check::of("y", vec![Finding::ok("fine")]);
        assert_eq!((ok.status, ok.fix), (Level::Ok, None));
    }
}
