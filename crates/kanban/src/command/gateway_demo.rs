//! `gateway run|start --demo`: where the demo lives and how it is seeded.
//!
//! The demo never runs on the user's root (their config, profiles and
//! boards stay byte-for-byte as they were): `run` makes a throwaway root in
//! the temporary directory, removed when the gateway exits; `start` (whose
//! gateway outlives it) makes one that is kept; `--demo-root DIR` names the
//! root instead (created when missing, kept). Seeding happens only once the
//! gateway holds the root's lock and its port (see `gateway::serve`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use kanban_hermes::config::{KanbanConfig, ProfileSpec};
use kanban_hermes::layout::{ENV_KANBAN_HOME, ProcessEnv, Root, create_private_dir};
use kanban_server::demo;

/// Name prefix of a throwaway demo root in the temporary directory.
const DEMO_ROOT_PREFIX: &str = "kanban-demo-";

/// How long a demo root made here lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoLife {
    /// Removed when this process ends (`gateway run --demo`).
    Process,
    /// Kept (`gateway start --demo`: the gateway outlives this process).
    Kept,
}

/// The root a demo gateway runs on. Dropping it removes a throwaway root.
pub struct DemoRoot {
    root: Root,
    _throwaway: Option<tempfile::TempDir>,
}

impl DemoRoot {
    /// `--demo-root DIR` (created when missing), else a fresh root in the
    /// temporary directory; says where on stdout.
    pub fn create(dir: Option<&Path>, life: DemoLife) -> Result<DemoRoot> {
        if let Some(dir) = dir {
            let dir = std::path::absolute(dir)
                .with_context(|| format!("--demo-root {}", dir.display()))?;
            create_private_dir(&dir)?;
            println!("demo: root {} (--demo-root, kept)", dir.display());
            return Ok(DemoRoot {
                root: Root::at(dir),
                _throwaway: None,
            });
        }
        let temp = tempfile::Builder::new()
            .prefix(DEMO_ROOT_PREFIX)
            .tempdir()
            .context("cannot create a temporary root for the demo")?;
        let (path, throwaway) = match life {
            DemoLife::Process => (temp.path().to_path_buf(), Some(temp)),
            DemoLife::Kept => (temp.keep(), None),
        };
        let fate = match life {
            DemoLife::Process => "throwaway: removed when this gateway exits",
            DemoLife::Kept => "kept after the gateway stops: remove it when done",
        };
        println!(
            "demo: root {} ({fate}; `--demo-root DIR` picks the place; your own root is untouched)",
            path.display()
        );
        Ok(DemoRoot {
            root: Root::at(path),
            _throwaway: throwaway,
        })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }
}

/// The in-memory demo profiles, known before the script is written (the
/// dispatcher must know them from its first pass).
pub fn demo_overlay(root: &Root) -> BTreeMap<String, ProfileSpec> {
    demo::demo_profiles(&demo::worker_script_path(root))
}

/// `HERMES_KANBAN_HOME=<root> `: what a command needs to act on the demo.
fn env_prefix(root: &Root) -> String {
    format!("{ENV_KANBAN_HOME}={}", root.path().display())
}

/// Write the worker script and seed (or resume) a round on the demo board;
/// say what happened. `exe` is the binary the workers call.
pub fn seed_demo(root: &Root, exe: &Path) -> Result<()> {
    let setup = demo::prepare(root, exe).context("cannot prepare the demo board")?;
    let board = demo::DEMO_BOARD;
    if setup.created.is_empty() {
        println!(
            "demo: resuming round {} on board '{board}' ({} unfinished task(s))",
            setup.round, setup.resumed
        );
    } else {
        println!(
            "demo: round {} seeded on board '{board}': {} tasks, design → implement ×2 → test → release",
            setup.round,
            setup.created.len()
        );
    }
    println!(
        "demo: workers are {} (profiles {}; in memory only, config.yaml untouched)",
        setup.script.display(),
        demo::DEMO_PROFILES.map(|(p, _)| p).join(", ")
    );
    let env = env_prefix(root);
    if setup.made_current {
        println!("demo: watch it with `{env} kanban watch`, or on the dashboard");
    } else {
        println!(
            "demo: watch it with `{env} kanban --board {board} watch`, or pick the Demo board \
             on the dashboard"
        );
    }
    let config = KanbanConfig::load(root, &ProcessEnv)?;
    if !config.dispatch_in_gateway {
        crate::error::warning(
            "demo: dispatching is off (kanban.dispatch_in_gateway or \
             HERMES_KANBAN_DISPATCH_IN_GATEWAY), so the demo tasks will not run",
        );
    }
    Ok(())
}
