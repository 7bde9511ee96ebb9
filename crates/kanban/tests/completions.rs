//! `kanban completions <shell>` and `kanban man`: generated from the
//! command line itself, so every verb (the new ones included) is in them.

use kanban_testkit::{Sandbox, stderr};

#[test]
fn bash_completion_is_valid_bash_and_knows_every_verb() {
    let b = Sandbox::new();
    let script = b.ok(&["completions", "bash"]);
    assert!(script.contains("complete -F _kanban"), "{script}");
    for verb in ["doctor", "top", "completions", "man", "gateway", "list"] {
        assert!(script.contains(verb), "{verb} missing");
    }
    assert!(
        !script.contains("__worker-exec"),
        "hidden verbs stay hidden"
    );
    let file = b.path("kanban.bash");
    std::fs::write(&file, &script).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash");
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn zsh_and_fish_completions_name_the_program() {
    let b = Sandbox::new();
    let zsh = b.ok(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef kanban"), "{zsh}");
    assert!(zsh.contains("doctor"), "{zsh}");
    let fish = b.ok(&["completions", "fish"]);
    assert!(fish.contains("complete -c kanban"), "{fish}");
    assert!(fish.contains("doctor"), "{fish}");
    for script in [&zsh, &fish] {
        assert!(
            !script.contains("__worker-exec"),
            "hidden verbs stay hidden"
        );
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let b = Sandbox::new();
    let out = b.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("bash"), "{}", stderr(&out));
}

#[test]
fn man_prints_one_roff_page_with_every_verb() {
    let b = Sandbox::new();
    let page = b.ok(&["man"]);
    assert!(page.contains(".TH kanban 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for verb in ["doctor", "top", "completions"] {
        assert!(page.contains(&format!("kanban\\-{verb}")), "{verb} missing");
    }
    // Nothing was written to the root.
    assert!(!b.path("kanban").exists() && !b.path("kanban.db").exists());
}

#[test]
fn man_out_writes_a_page_per_verb() {
    let b = Sandbox::new();
    let dir = b.path("man/man1");
    let out = b.ok(&["man", "--out", dir.to_str().unwrap()]);
    assert!(out.contains("man pages written to"), "{out}");
    for page in [
        "kanban.1",
        "kanban-doctor.1",
        "kanban-top.1",
        "kanban-gateway-status.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text}"
        );
    }
    assert!(!dir.join("kanban-__worker-exec.1").exists());
    let doctor = std::fs::read_to_string(dir.join("kanban-doctor.1")).unwrap();
    assert!(doctor.contains("\\-\\-json"), "{doctor}");
}
