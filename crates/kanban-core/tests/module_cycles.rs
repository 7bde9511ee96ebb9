//! Guard: no module of a crate depends, directly or through others, on a
//! module that depends back on it.
//!
//! The check is `scripts/module_cycles.py` (Python 3, standard library
//! only), run over every crate of the workspace. It lives here because
//! this crate builds first and fastest; it reads the other crates' sources
//! and builds none of them. Two fixture crates prove the detector itself
//! still fires on a cycle and stays quiet on the patterns that are not one
//! (re-export facades, test modules, comments).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Cycles present when this guard was written, each to be broken by moving
/// the shared piece into a module of its own (see the note beside each).
/// The list may only shrink: a cycle not listed fails the test, and so
/// does a listed cycle that is gone (delete its line).
const KNOWN_CYCLES: &[&str] = &[];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run_detector(args: &[&Path]) -> (Output, String) {
    let script = workspace_root().join("scripts/module_cycles.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to run {}: {e}", script.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// The `crate (root): a <-> b` part of each `cycle in ...` line.
fn cycles(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|l| l.strip_prefix("cycle in "))
        .map(str::to_string)
        .collect()
}

/// A throw-away crate under the test target's temp dir.
fn fixture(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("module_cycles-{}", std::process::id()))
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    for (path, body) in files {
        let file = dir.join(path);
        fs::create_dir_all(file.parent().expect("fixture file has a parent")).expect("mkdir");
        fs::write(&file, body).expect("write fixture");
    }
    dir
}

#[test]
fn the_detector_reports_modules_that_depend_on_each_other() {
    let dir = fixture(
        "cyclic",
        &[
            ("src/lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
            ("src/a.rs", "use crate::b::B;\npub struct A(pub B);\n"),
            // Reached through a code path, not a `use`.
            ("src/b.rs", "pub struct B;\npub fn f(_: crate::c::C) {}\n"),
            (
                "src/c.rs",
                "use super::a::A;\npub struct C(pub Option<Box<A>>);\n",
            ),
        ],
    );
    let (out, report) = run_detector(&[&dir]);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(cycles(&report), ["cyclic (lib): a <-> b <-> c"], "{report}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn facades_tests_comments_and_method_calls_are_no_cycle() {
    let dir = fixture(
        "acyclic",
        &[
            // The root re-exports what the modules define, and they use
            // each other through it: a facade, not a dependency.
            (
                "src/lib.rs",
                "pub mod low;\npub mod high;\npub use low::{Inner, Low};\npub use high::High;\n",
            ),
            // A directory module re-exporting its child, which uses an
            // item of its parent.
            (
                "src/low/mod.rs",
                "//! Mentions crate::high::High in a comment only.\n\
                 mod inner;\n\
                 pub use inner::Inner;\n\
                 pub struct Low;\n\
                 pub const NOTE: &str = \"crate::high::High\";\n\
                 #[cfg(test)]\nfn helper(_: crate::high::High) {}\n\
                 #[cfg(test)]\n#[path = \"low_tests.rs\"]\nmod tests;\n",
            ),
            (
                "src/low/inner.rs",
                "use super::Low;\npub struct Inner(pub Low);\n",
            ),
            ("src/low/low_tests.rs", "use crate::high::High;\n"),
            // Method calls are invisible, and test modules are left out.
            (
                "src/high.rs",
                "use crate::{Inner, Low};\npub struct High(pub Low, pub Inner);\n\
                 #[cfg(test)]\nmod tests {\n    use crate::high::*;\n    use crate::low::*;\n}\n",
            ),
        ],
    );
    let (out, report) = run_detector(&[&dir]);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(cycles(&report).is_empty(), "{report}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn no_crate_of_the_workspace_has_a_new_module_cycle() {
    let (out, report) = run_detector(&[]);
    let crates = fs::read_dir(workspace_root().join("crates"))
        .expect("crates/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("src").is_dir())
        .count();
    assert!(crates > 0, "no crate found under crates/");
    assert!(
        report.contains(&format!("in {crates} crate(s)")),
        "the detector did not check all {crates} crates:\n{report}"
    );
    let found = cycles(&report);
    let new: Vec<&String> = found
        .iter()
        .filter(|c| !KNOWN_CYCLES.contains(&c.as_str()))
        .collect();
    let gone: Vec<&&str> = KNOWN_CYCLES
        .iter()
        .filter(|k| !found.iter().any(|c| c == *k))
        .collect();
    assert!(
        new.is_empty(),
        "new module cycles: {new:?}\nbreak each by moving what both sides use into a module \
         of its own (python3 scripts/module_cycles.py shows the lines):\n{report}"
    );
    assert!(
        gone.is_empty(),
        "these cycles are gone: delete them from KNOWN_CYCLES: {gone:?}\n{report}"
    );
    let expect_code = if found.is_empty() { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(expect_code), "{report}");
}
