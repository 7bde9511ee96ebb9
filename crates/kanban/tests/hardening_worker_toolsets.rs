//! Hermes profiles keep their toolsets pin (issue 9, item 11): `kanban
//! dispatch` spawns the Hermes form with `--toolsets` resolved from the
//! assignee profile's config, argv for argv what the reference builds.
//!
//! The worker is a recording stand-in for `hermes` (`HERMES_BIN`). Its argv
//! is checked against the reference's answer recorded from hermes-agent
//! 0.19.0 and, when the reference can read YAML here, against the live
//! reference asked for the same tasks on the same board.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use kanban_testkit::{Sandbox, expect_until};
use serde_json::Value;

/// `hermes -p <bare> ... --toolsets <these>`: what 0.19.0 resolves for a
/// profile without `platform_toolsets` (no MCP servers, a HASS token set).
const BARE_TOOLSETS: &str = "browser,clarify,code_execution,computer_use,cronjob,delegation,file,\
homeassistant,image_gen,kanban,memory,session_search,skills,terminal,todo,tts,vision,web";

/// Variables both sides see: a Home Assistant token opts into its toolset,
/// `${MYTS}` is expanded in a profile config.
const EXTRA_ENV: [(&str, &str); 2] = [("HASS_TOKEN", "token"), ("MYTS", "web")];

/// More shapes of `config.yaml`, with the toolsets 0.19.0 pins for them
/// (`None`: no `--toolsets` at all).
const MORE_PROFILES: [(&str, &str, Option<&str>); 6] = [
    ("empty", "platform_toolsets:\n  cli: []\n", Some("kanban")),
    (
        "ctx",
        "context: {engine: LCM}\nmcp_servers:\n  a: {command: x}\n  b: {command: y, enabled: \"off\"}\n\
         platform_toolsets:\n  cli: [file, no_mcp, a]\n",
        Some("context_engine,file,kanban"),
    ),
    (
        "composite",
        "platform_toolsets:\n  cli: [debugging, safe]\n",
        Some("debugging,file,image_gen,kanban,safe,terminal,vision,web"),
    ),
    ("weird", "platform_toolsets: [x]\n", None),
    (
        "disabled",
        "agent:\n  disabled_toolsets: [kanban, web]\nmcp_servers:\n  srv: {command: z}\n",
        Some(
            "browser,clarify,code_execution,computer_use,cronjob,delegation,file,homeassistant,\
             image_gen,memory,session_search,skills,srv,terminal,todo,tts,vision",
        ),
    ),
    (
        "envx",
        "platform_toolsets:\n  cli: [\"${MYTS}\", file]\n",
        Some("file,kanban,web"),
    ),
];

fn profile(home: &Sandbox, name: &str, config: Option<&str>) {
    let dir = home.path(&format!("profiles/{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(c) = config {
        std::fs::write(dir.join("config.yaml"), c).unwrap();
    }
}

fn recorded_argv(home: &Sandbox, task: &str) -> Vec<String> {
    let file = home.out(&format!("argv-{task}"));
    expect_until(&format!("worker of {task} records its argv"), || {
        std::fs::read_to_string(&file).is_ok_and(|s| s.ends_with("END\n"))
    });
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.pop().as_deref(), Some("END"));
    lines
}

fn expected(profile: &str, task: &str, middle: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["-p", profile, "--cli", "--accept-hooks"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(middle.iter().map(|s| s.to_string()));
    v.extend([
        "chat".into(),
        "-q".into(),
        format!("work kanban task {task}"),
    ]);
    v
}

/// The reference's argv for each task (program dropped), or `None` when it
/// cannot read YAML on this machine.
fn reference_argv(
    home: &Sandbox,
    hermes_bin: &Path,
    tasks: &[&str],
) -> Option<BTreeMap<String, Vec<String>>> {
    let pythonpath = kanban_testkit::reference::reference_pythonpath()?;
    let script =
        kanban_testkit::reference::repo_root().join("tests/interop/hardening_worker_ref_argv.py");
    let out = Command::new("python3")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.root())
        .env("HERMES_HOME", home.root())
        .env("HERMES_BIN", hermes_bin)
        .envs(EXTRA_ENV.iter().copied())
        .env("PYTHONPATH", pythonpath)
        .arg(script)
        .args(tasks)
        .output()
        .expect("run python3");
    if out.status.code() == Some(3) {
        // CI sets KANBAN_REQUIRE_REFERENCE=1: there the live half must run.
        assert!(
            std::env::var("KANBAN_REQUIRE_REFERENCE").as_deref() != Ok("1"),
            "live reference comparison cannot run: {} (install PyYAML: apt-get install python3-yaml)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        eprintln!(
            "NOTE: live reference comparison not run: {} (checked against the recorded \
             reference argv only)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    assert!(
        out.status.success(),
        "reference argv helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON from the helper");
    Some(
        doc.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let argv: Vec<String> = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .skip(1)
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect();
                (k.clone(), argv)
            })
            .collect(),
    )
}

#[test]
fn hermes_workers_are_pinned_to_their_profiles_toolsets_like_the_reference() {
    let mut home = Sandbox::new();
    let hermes = home.script(
        "hermes-recorder",
        "f=\"$OUT/argv-$HERMES_KANBAN_TASK\"\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$f.tmp\"\necho END >> \"$f.tmp\"\nmv \"$f.tmp\" \"$f\"",
    );
    home.env
        .insert("HERMES_BIN".into(), hermes.display().to_string());
    for (k, v) in EXTRA_ENV {
        home.env.insert(k.into(), v.into());
    }
    let mut more = Vec::new();
    for (name, config, _) in MORE_PROFILES {
        profile(&home, name, Some(config));
        more.push(home.create(name, &["--assignee", name]));
    }
    profile(
        &home,
        "pinned",
        Some("platform_toolsets:\n  cli: [file, kanban, terminal]\n"),
    );
    profile(&home, "bare", None);
    profile(
        &home,
        "mixed",
        Some(
            "platform_toolsets:\n  cli: [hermes-cli, spotify, my_tools]\n\
             agent:\n  disabled_toolsets: [memory]\n\
             mcp_servers:\n  github: {command: gh-mcp}\n  old: {command: x, enabled: false}\n",
        ),
    );
    let pinned = home.create("pinned", &["--assignee", "pinned", "--skill", "notes"]);
    let bare = home.create("bare", &["--assignee", "bare"]);
    let mixed = home.create("mixed", &["--assignee", "mixed"]);
    home.dispatch();

    let got_pinned = recorded_argv(&home, &pinned);
    let got_bare = recorded_argv(&home, &bare);
    let got_mixed = recorded_argv(&home, &mixed);
    assert_eq!(
        got_pinned,
        expected(
            "pinned",
            &pinned,
            &["--skills", "notes", "--toolsets", "file,kanban,terminal"]
        )
    );
    assert_eq!(
        got_bare,
        expected("bare", &bare, &["--toolsets", BARE_TOOLSETS])
    );
    let mixed_toolsets = "browser,clarify,code_execution,computer_use,cronjob,delegation,file,\
github,homeassistant,image_gen,kanban,my_tools,session_search,skills,spotify,terminal,todo,tts,vision,web";
    assert_eq!(
        got_mixed,
        expected("mixed", &mixed, &["--toolsets", mixed_toolsets])
    );

    let mut got_more = Vec::new();
    for ((name, _, toolsets), task) in MORE_PROFILES.iter().zip(&more) {
        let got = recorded_argv(&home, task);
        let middle: Vec<&str> = toolsets.map_or(Vec::new(), |t| vec!["--toolsets", t]);
        assert_eq!(got, expected(name, task, &middle), "profile {name}");
        got_more.push(got);
    }

    let mut ids = vec![pinned.as_str(), bare.as_str(), mixed.as_str()];
    ids.extend(more.iter().map(String::as_str));
    if let Some(reference) = reference_argv(&home, &hermes, &ids) {
        assert_eq!(reference[&pinned], got_pinned, "pinned profile");
        assert_eq!(reference[&bare], got_bare, "bare profile");
        assert_eq!(reference[&mixed], got_mixed, "mixed profile");
        for (task, got) in more.iter().zip(&got_more) {
            assert_eq!(&reference[task], got, "task {task}");
        }
    }
}
