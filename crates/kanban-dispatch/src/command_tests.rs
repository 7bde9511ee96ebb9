use std::collections::HashMap;

use super::*;
use crate::testutil::write_script;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn hermes_bin_path_is_made_absolute() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_of(&[("HERMES_BIN", " bin/hermes ")]);
    assert_eq!(
        resolve_hermes_argv(&env, dir.path()),
        vec![dir.path().join("bin/hermes").to_string_lossy().to_string()]
    );
    let env = env_of(&[("HERMES_BIN", "~/h/hermes"), ("HOME", "/home/u")]);
    assert_eq!(
        resolve_hermes_argv(&env, dir.path()),
        vec!["/home/u/h/hermes".to_string()]
    );
}

#[test]
fn bare_names_come_from_path_never_from_the_current_directory() {
    let cwd = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    write_script(cwd.path(), "hermes", "exit 0\n");
    write_script(cwd.path(), "my-hermes", "exit 0\n");
    // Empty and "." PATH entries would mean "current directory": skipped.
    let path = format!(":.:{}", bin.path().display());
    let env = env_of(&[("HERMES_BIN", "my-hermes"), ("PATH", &path)]);
    let argv = resolve_hermes_argv(&env, cwd.path());
    assert_eq!(
        argv[1..],
        strings(&["-m", "hermes_cli.main"])[..],
        "{argv:?}"
    );
    let shim = write_script(bin.path(), "my-hermes", "exit 0\n");
    assert_eq!(
        resolve_hermes_argv(&env, cwd.path()),
        vec![shim.to_string_lossy().to_string()]
    );
    // Without HERMES_BIN: `hermes` on PATH, else the module form.
    let env = env_of(&[("PATH", &path)]);
    assert_eq!(
        resolve_hermes_argv(&env, cwd.path())[1..],
        strings(&["-m", "hermes_cli.main"])[..]
    );
    let hermes = write_script(bin.path(), "hermes", "exit 0\n");
    assert_eq!(
        resolve_hermes_argv(&env, cwd.path()),
        vec![hermes.to_string_lossy().to_string()]
    );
}

#[test]
fn non_executable_files_are_not_commands() {
    let bin = tempfile::tempdir().unwrap();
    std::fs::write(bin.path().join("hermes"), "").unwrap();
    assert_eq!(
        which_no_cwd("hermes", Some(&bin.path().to_string_lossy()), None),
        None
    );
}

#[test]
fn hermes_argv_matches_the_reference_shape() {
    let skills = strings(&["github", "", "review"]);
    let toolsets = strings(&["file", "web"]);
    let argv = hermes_worker_argv(
        &strings(&["/usr/bin/hermes"]),
        &HermesWorkerArgs {
            profile: "alice",
            task_id: "t_0000abcd",
            skills: &skills,
            model: Some("gpt-x"),
            toolsets: &toolsets,
            goal_mode: true,
        },
    );
    assert_eq!(
        argv,
        strings(&[
            "/usr/bin/hermes",
            "-p",
            "alice",
            "--cli",
            "--accept-hooks",
            "--skills",
            "github",
            "--skills",
            "review",
            "-m",
            "gpt-x",
            "--toolsets",
            "file,web",
            "chat",
            "-q",
            "work kanban task t_0000abcd",
            "-Q",
        ])
    );
    let argv = hermes_worker_argv(
        &strings(&["python3", "-m", "hermes_cli.main"]),
        &HermesWorkerArgs {
            profile: "bob",
            task_id: "t_1",
            skills: &[],
            model: None,
            toolsets: &[],
            goal_mode: false,
        },
    );
    assert_eq!(
        argv,
        strings(&[
            "python3",
            "-m",
            "hermes_cli.main",
            "-p",
            "bob",
            "--cli",
            "--accept-hooks",
            "chat",
            "-q",
            "work kanban task t_1"
        ])
    );
}

fn spec(cmd: &[&str]) -> ProfileSpec {
    ProfileSpec {
        command: strings(cmd),
        ..Default::default()
    }
}

fn vars(skills: &[&str], model: Option<&str>) -> TemplateVars {
    TemplateVars {
        task_id: "t_0000abcd".into(),
        prompt: "do it; rm -rf / $(x)".into(),
        workspace: "/w/t_0000abcd".into(),
        skills: strings(skills),
        model: model.map(str::to_string),
        board: "ops".into(),
        title: "Fix \"it\"".into(),
    }
}

#[test]
fn templates_expand_per_element_without_a_shell() {
    let s = spec(&[
        "claude",
        "-p",
        "{prompt}",
        "--cwd={workspace}",
        "--model",
        "{model}",
        "--skills",
        "{skills}",
        "{board}/{task_id}: {title}",
    ]);
    assert_eq!(
        template_argv(&s, &vars(&["a", "b"], Some("opus"))).unwrap(),
        strings(&[
            "claude",
            "-p",
            "do it; rm -rf / $(x)",
            "--cwd=/w/t_0000abcd",
            "--model",
            "opus",
            "--skills",
            "a,b",
            "ops/t_0000abcd: Fix \"it\"",
        ])
    );
    // The profile's model is the default when the task has none.
    let s = ProfileSpec {
        model: Some("sonnet".into()),
        ..spec(&["x", "-m", "{model}"])
    };
    assert_eq!(
        template_argv(&s, &vars(&[], None)).unwrap(),
        strings(&["x", "-m", "sonnet"])
    );
}

#[test]
fn empty_optional_placeholders_drop_their_flag() {
    let s = spec(&[
        "aider", "--model", "{model}", "--skills", "{skills}", "{model}", "--yes",
    ]);
    assert_eq!(
        template_argv(&s, &vars(&[], None)).unwrap(),
        strings(&["aider", "--yes"])
    );
    // A value before the placeholder is kept.
    assert_eq!(
        template_argv(&spec(&["x", "value", "{model}"]), &vars(&[], None)).unwrap(),
        strings(&["x", "value"])
    );
    // Other braces pass through.
    let s = spec(&["x", "{\"k\": 1}", "${HOME}"]);
    assert_eq!(template_argv(&s, &vars(&[], None)).unwrap(), s.command);
    assert!(template_argv(&spec(&["{model}"]), &vars(&[], None)).is_err());
    assert!(template_argv(&spec(&[]), &vars(&[], None)).is_err());
}

#[test]
fn the_prompt_is_self_contained() {
    let p = worker_prompt(&PromptInput {
        task_id: "t_0000abcd",
        title: "Fix the build",
        context: "# Kanban task t_0000abcd: Fix the build\n\nbody\n",
        kanban: "/opt/my tools/kanban",
    });
    for needle in [
        "t_0000abcd (Fix the build)",
        "'/opt/my tools/kanban' heartbeat t_0000abcd --note",
        "'/opt/my tools/kanban' complete t_0000abcd --summary",
        "'/opt/my tools/kanban' block t_0000abcd \"<reason>\"",
        "Exiting without either",
        "## Task\n# Kanban task t_0000abcd: Fix the build\n\nbody\n",
    ] {
        assert!(p.contains(needle), "missing {needle:?} in:\n{p}");
    }
    assert_eq!(shell_quote("kanban"), "kanban");
    assert_eq!(shell_quote("it's"), "'it'\\''s'");
}

#[test]
fn an_expanded_template_runs_as_a_real_process() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "agent",
        "for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n",
    );
    let s = ProfileSpec {
        command: vec![
            script.to_string_lossy().to_string(),
            "-p".into(),
            "{prompt}".into(),
            "{title}".into(),
        ],
        ..Default::default()
    };
    let argv = template_argv(&s, &vars(&[], None)).unwrap();
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "[-p]\n[do it; rm -rf / $(x)]\n[Fix \"it\"]\n"
    );
}
