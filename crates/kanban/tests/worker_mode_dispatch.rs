//! A worker spawned by the dispatcher through a config-defined template
//! profile whose agent is a small script speaking MCP to `kanban mcp`
//! completes its task. Drives the dispatcher library directly (one pass,
//! real process spawner), so it does not depend on a `kanban dispatch` verb.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kanban_dispatch::{
    BoardContext, ContextSource, DispatchOptions, Dispatcher, DispatcherParts, ProcLiveness,
    ProcessSpawner, TitleBodyContext,
};
use kanban_hermes::config::KanbanConfig;
use kanban_hermes::layout::{ProcessEnv, Root};
use kanban_hermes::profiles::Profiles;
use kanban_testkit::Sandbox;
use kanban_testkit::mcp::WORKER_TOOLS;
use serde_json::json;

#[test]
fn dispatcher_spawned_mcp_agent_completes_its_task() {
    let b = Sandbox::new();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_agent.py");
    let config = format!(
        "kanban:\n  profiles:\n    mcpagent:\n      command: [\"python3\", {script:?}, \"{{task_id}}\", \"{{skills}}\"]\n      env: {{KANBAN_BIN: {bin:?}, HERMES_HOME: {home:?}}}\n      description: \"test agent speaking MCP to kanban mcp\"\n",
        script = script.to_str().unwrap(),
        bin = env!("CARGO_BIN_EXE_kanban"),
        home = b.root().to_str().unwrap(),
    );
    std::fs::write(b.path("config.yaml"), &config).unwrap();
    let t = b.create(
        "Dispatched agent task",
        &["--assignee", "mcpagent", "--skill", "review"],
    );

    let root = Root::at(b.root());
    let paths = root.board_paths("default");
    let cfg = KanbanConfig::load_file(&b.path("config.yaml")).expect("config");
    let parts = DispatcherParts {
        store: b.store(),
        spawner: Arc::new(ProcessSpawner::new()),
        liveness: Arc::new(ProcLiveness::new()),
        profiles: Arc::new(Profiles::new(&root, &cfg)),
        context: Arc::new(TitleBodyContext) as Arc<dyn ContextSource>,
        env: Arc::new(ProcessEnv),
        board: BoardContext::new(&root, &paths, None),
    };
    let dispatcher = Dispatcher::new(parts);
    let result = dispatcher
        .dispatch_once(&DispatchOptions::default())
        .expect("dispatch pass");
    assert_eq!(result.spawned.len(), 1, "{result:?}");

    let deadline = Instant::now() + Duration::from_secs(60);
    while b.status(&t) != "done" {
        let log =
            std::fs::read_to_string(paths.logs_dir.join(format!("{t}.log"))).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "worker never completed: {}\nlog:\n{log}",
            b.task(&t)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let v = b.task(&t);
    let run = v["runs"].as_array().unwrap().last().unwrap();
    assert_eq!(run["outcome"], "completed");
    assert_eq!(run["summary"], "Agent finished Dispatched agent task");
    assert_eq!(
        run["metadata"],
        json!({"agent": "mcp_agent.py", "tools_seen": WORKER_TOOLS.len()})
    );
    // The template placeholders reached the agent's argv, skills included.
    let log = std::fs::read_to_string(paths.logs_dir.join(format!("{t}.log"))).unwrap();
    assert!(log.contains(&format!("argv: ['{t}', 'review']")), "{log}");
    assert!(
        log.contains(&format!("tools: {}", WORKER_TOOLS.join(","))),
        "{log}"
    );
    // A later pass reaps the exited worker without counting a failure.
    let later = dispatcher
        .dispatch_once(&DispatchOptions::default())
        .expect("second pass");
    assert!(later.crashed.is_empty(), "{later:?}");
    assert_eq!(b.status(&t), "done");
}
