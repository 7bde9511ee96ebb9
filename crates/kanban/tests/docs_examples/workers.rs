//! The worker examples of docs/workers.md, used as workers by a real
//! dispatch: the shell script through its profile, and the MCP config
//! through a stand-in for the agent CLI its profile names.
//!
//! Paths the examples put under `/opt` or `/etc` are files of the test's
//! root instead (the same path below the root), in the script's profile
//! command and in the `--mcp-config` argument alike; nothing else changes.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use kanban_testkit::Sandbox;
use serde_json::Value;

use crate::BIN;
use crate::markdown::Block;

const EXECUTABLE: u32 = 0o755;

/// Claude Code as far as the example needs it: reads `--mcp-config`
/// (expanding `${VAR}` in the server's `env`, as Claude Code does),
/// starts the `kanban` server with a reduced environment (what several
/// MCP hosts give their servers) plus that `env`, checks that
/// `--allowedTools` covers the server's tools, and works its task through
/// the tools only. Writes what it saw to `$OUT/claude.json`.
const CLAUDE_STANDIN: &str = r#"#!/usr/bin/env python3
import json, os, re, subprocess, sys
args = sys.argv[1:]
opt = lambda name: args[args.index(name) + 1]
config = json.load(open(opt("--mcp-config")))
(name, server), = config["mcpServers"].items()
expand = lambda s: re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), s)
env = {k: os.environ[k] for k in ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER") if k in os.environ}
env.update({k: expand(v) for k, v in server.get("env", {}).items()})
proc = subprocess.Popen([server["command"], *server.get("args", [])], env=env,
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
def request(method, params, rid=[0]):
    rid[0] += 1
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": rid[0], "method": method, "params": params}) + "\n")
    proc.stdin.flush()
    for line in proc.stdout:
        msg = json.loads(line)
        if msg.get("id") == rid[0]:
            if "error" in msg:
                sys.exit(f"{method}: {msg['error']}")
            return msg["result"]
    sys.exit(f"{method}: the server closed the connection")
def call(tool, **arguments):
    result = request("tools/call", {"name": tool, "arguments": arguments})
    body = json.loads(result["content"][0]["text"])
    if result.get("isError"):
        sys.exit(f"{tool}: {body}")
    return body
request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "claude-standin", "version": "1"}})
proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
tools = [f"mcp__{name}__{t['name']}" for t in request("tools/list", {})["tools"]]
allowed = re.compile(opt("--allowedTools").replace("*", ".*"))
denied = [t for t in tools if not allowed.fullmatch(t)]
if denied or "mcp__kanban__kanban_complete" not in tools:
    sys.exit(f"--allowedTools {opt('--allowedTools')} does not allow {denied or tools}")
shown = call("kanban_show")
call("kanban_heartbeat", note="reading the task")
call("kanban_complete", summary=f"claude stand-in finished {shown['task']['title']}")
proc.stdin.close()
proc.wait(timeout=20)
with open(os.path.join(os.environ["OUT"], "claude.json"), "w") as f:
    json.dump({"model": opt("--model"), "task": shown["task"]["id"], "prompt": opt("-p"),
               "server_env": sorted(server.get("env", {}))}, f)
"#;

/// The profiles of a config block: name → command.
fn profiles(config: &Block) -> Vec<(String, Vec<String>)> {
    let doc: serde_norway::Value = serde_norway::from_str(&config.text()).unwrap();
    let Some(map) = doc["kanban"]["profiles"].as_mapping() else {
        return Vec::new();
    };
    map.iter()
        .map(|(name, p)| {
            let command = p["command"]
                .as_sequence()
                .map(|s| {
                    s.iter()
                        .filter_map(|a| a.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            (name.as_str().unwrap().to_string(), command)
        })
        .collect()
}

/// `path` (absolute) as a file below the sandbox's root.
fn below_root(b: &Sandbox, path: &str) -> PathBuf {
    let local = b.path(path.trim_start_matches('/'));
    std::fs::create_dir_all(local.parent().unwrap()).unwrap();
    local
}

fn executable(path: &PathBuf, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(EXECUTABLE)).unwrap();
}

/// A task dispatched to `profile` on `b` (config written): the task once
/// it is done or blocked.
fn dispatch_one(b: &Sandbox, profile: &str, place: &str) -> Value {
    b.ok(&["init"]);
    let t = b.create(&format!("docs example {place}"), &["--assignee", profile]);
    b.settle(&[&t], &["done", "blocked"]);
    let task = b.task(&t);
    let log = b.run(&["log", &t]);
    println!(
        "{place}: {t} {}: {}\nworker log:\n{}",
        task["task"]["status"],
        task["latest_summary"],
        kanban_testkit::stdout(&log)
    );
    task
}

/// The script block `script` (at `path`) is the command of a profile of
/// `configs`; dispatched, its task ends as the script says: complete with
/// the report (kept as an attachment), here in an empty workspace.
pub fn script_worker(script: &Block, path: &str, configs: &[&Block]) {
    let (config, profile) = configs
        .iter()
        .find_map(|c| {
            profiles(c)
                .into_iter()
                .find(|(_, cmd)| cmd.first().map(String::as_str) == Some(path))
                .map(|(name, _)| (*c, name))
        })
        .unwrap_or_else(|| panic!("{}: no profile of the document runs {path}", script.place));
    let b = Sandbox::with_bin(BIN);
    let local = below_root(&b, path);
    executable(&local, &script.text());
    let text = config.text().replace(path, &local.display().to_string());
    std::fs::write(b.path("config.yaml"), text).unwrap();
    println!(
        "{}: the worker of profile {profile} ({}), at {} for the test",
        script.place,
        config.place,
        local.display()
    );
    let task = dispatch_one(&b, &profile, &script.place);
    let t = task["task"]["id"].as_str().unwrap();
    assert_eq!(
        task["task"]["status"], "done",
        "{}: the script did not complete its task: {task}",
        script.place
    );
    let summary = task["latest_summary"].as_str().unwrap_or_default();
    assert!(
        !summary.is_empty(),
        "{}: completed without a summary",
        script.place
    );
    // A workspace path named in the summary is kept as an attachment.
    let named: Vec<&str> = summary
        .split_whitespace()
        .filter(|w| w.contains("/workspaces/"))
        .collect();
    for word in named {
        let name = word.rsplit('/').next().unwrap();
        let kept = b.path(&format!("kanban/attachments/{t}/{name}"));
        let text = std::fs::read_to_string(&kept).unwrap_or_else(|e| {
            panic!(
                "{}: {word} (in the summary) was not kept at {}: {e}",
                script.place,
                kept.display()
            )
        });
        println!("{}: {name} kept as an attachment:\n{text}", script.place);
        assert!(!text.trim().is_empty(), "{}: {name} is empty", script.place);
    }
}

/// The MCP config `json` is the `--mcp-config` of a profile of `configs`:
/// a task dispatched to that profile is completed through the MCP tools
/// by a stand-in for its agent CLI.
pub fn mcp_worker(json: &Block, configs: &[&Block]) {
    let (config, profile, command) = configs
        .iter()
        .find_map(|c| {
            profiles(c)
                .into_iter()
                .find(|(_, cmd)| cmd.iter().any(|a| a == "--mcp-config"))
                .map(|(name, cmd)| (*c, name, cmd))
        })
        .unwrap_or_else(|| {
            panic!(
                "{}: no profile of the document uses an MCP config",
                json.place
            )
        });
    let at = command.iter().position(|a| a == "--mcp-config").unwrap() + 1;
    let mcp_path = &command[at];
    assert_eq!(
        command[0], "claude",
        "{}: the test has a stand-in for `claude` only",
        config.place
    );
    let b = Sandbox::with_bin(BIN);
    let local = below_root(&b, mcp_path);
    std::fs::write(&local, json.text()).unwrap();
    let text = config
        .text()
        .replace(mcp_path, &local.display().to_string());
    std::fs::write(b.path("config.yaml"), text).unwrap();
    std::fs::create_dir_all(b.path("out")).unwrap();
    executable(&below_root(&b, "bin/claude"), CLAUDE_STANDIN);
    let out = b.path("out").display().to_string();
    let mut b = b;
    b.env.insert("OUT".into(), out);
    println!(
        "{}: the MCP config of profile {profile} ({}), at {} for the test",
        json.place,
        config.place,
        local.display()
    );
    let task = dispatch_one(&b, &profile, &json.place);
    assert_eq!(
        task["task"]["status"], "done",
        "{}: the MCP worker did not complete its task: {task}",
        json.place
    );
    let seen: Value =
        serde_json::from_str(&std::fs::read_to_string(b.path("out/claude.json")).unwrap()).unwrap();
    println!("{}: the stand-in saw {seen}", json.place);
    assert_eq!(seen["task"], task["task"]["id"]);
    assert!(
        seen["prompt"]
            .as_str()
            .unwrap()
            .contains(task["task"]["id"].as_str().unwrap())
    );
}
