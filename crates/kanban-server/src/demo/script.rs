//! `<root>/kanban/demo/worker.sh`: the shell script every demo profile
//! runs in place of an agent. It reports through the same CLI verbs an
//! agent uses and signals trouble the way real workers do: a crash is a
//! non-zero exit, a provider's rate limit is exit 75 (EX_TEMPFAIL), a
//! question for a human is `kanban block --kind needs_input`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kanban_hermes::layout::Root;

use super::{DemoError, demo_dir};

/// Owner-only: the script embeds the path of the binary it calls.
const SCRIPT_MODE: u32 = 0o700;

/// Single-quote `s` for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `<root>/kanban/demo/worker.sh`: what every demo profile runs.
pub fn worker_script_path(root: &Root) -> PathBuf {
    demo_dir(root).join("worker.sh")
}

/// The script's text. Each twist plays once per task: a marker file in
/// the task's workspace (kept across attempts, removed at completion)
/// says it was played, so the retry or the answered task completes.
fn script_text(root: &Root, kanban_exe: &Path) -> String {
    format!(
        r#"#!/bin/sh
# Demo worker of `kanban gateway run --demo` (rewritten at every demo start).
# A real worker is an agent; this one pretends to work for a few seconds and
# reports through the same CLI verbs an agent uses. The dispatcher gives it
# HERMES_KANBAN_TASK, HERMES_KANBAN_WORKSPACE, HERMES_KANBAN_RUN_ID, ...
# and the task's prompt, whose body names what to play:
#   [demo-plan secs=N twist=none|fail-once|rate-limit-once|needs-human|review-once]
set -e
KANBAN={exe}
# Every verb acts on the demo's root, whatever HERMES_HOME says.
HERMES_KANBAN_HOME={root}
export HERMES_KANBAN_HOME
role="${{1:-worker}}"
task="$HERMES_KANBAN_TASK"
ws="${{HERMES_KANBAN_WORKSPACE:-.}}"
plan=$(printf '%s\n' "${{DEMO_TASK_PROMPT:-}}" \
  | sed -n 's/.*\[demo-plan secs=\([0-9][0-9]*\) twist=\([a-z-]*\)\].*/\1 \2/p' | head -n 1)
if [ -n "$plan" ]; then
  secs="${{plan%% *}}"
  twist="${{plan#* }}"
else
  secs=$(( $$ % 3 + 1 ))
  twist=none
fi
"$KANBAN" heartbeat "$task" --note "$role: on it (about ${{secs}}s)" >/dev/null
case "$twist" in
  fail-once)
    if [ ! -e "$ws/.demo-crashed" ]; then
      : > "$ws/.demo-crashed"
      sleep $(( (secs + 1) / 2 ))
      echo "$role: simulated crash on the first attempt; the dispatcher retries it" >&2
      exit 1
    fi
    ;;
  rate-limit-once)
    if [ ! -e "$ws/.demo-rate-limited" ]; then
      : > "$ws/.demo-rate-limited"
      sleep 1
      echo "$role: HTTP 429 Too Many Requests from the partner API; exiting 75 (EX_TEMPFAIL)" >&2
      exit 75
    fi
    ;;
  needs-human)
    if [ ! -e "$ws/.demo-asked" ]; then
      : > "$ws/.demo-asked"
      sleep 1
      "$KANBAN" block "$task" --kind needs_input \
        "$role: which option should I take, A or B? (answer and unblock; the demo answers itself after a while)" >/dev/null
      exit 0
    fi
    ;;
  review-once)
    if [ ! -e "$ws/.demo-reviewed" ]; then
      : > "$ws/.demo-reviewed"
      sleep "$secs"
      "$KANBAN" request-review "$task" \
        --summary "$role: first version ready, please review (the demo reviews itself after a while)" >/dev/null
      exit 0
    fi
    ;;
esac
sleep "$secs"
"$KANBAN" comment "$task" "$role: done after ${{secs}}s, all green" >/dev/null
"$KANBAN" complete "$task" --summary "$role finished \"$DEMO_TASK_TITLE\" in ${{secs}}s" \
  --metadata "{{\"seconds\": $secs, \"role\": \"$role\"}}"
"#,
        exe = sh_quote(&kanban_exe.display().to_string()),
        root = sh_quote(&root.path().display().to_string()),
    )
}

/// Write `<root>/kanban/demo/worker.sh` (rewritten every time: the binary
/// may have moved since the last demo).
pub fn write_worker_script(root: &Root, kanban_exe: &Path) -> Result<PathBuf, DemoError> {
    let dir = demo_dir(root);
    let path = worker_script_path(root);
    let err = |source| DemoError::Script {
        path: path.clone(),
        source,
    };
    kanban_hermes::layout::create_private_dir(&dir)?;
    let tmp = path.with_extension("sh.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(SCRIPT_MODE)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(script_text(root, kanban_exe).as_bytes())
        .map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_what_it_embeds() {
        let root = Root::at("/tmp/demo it's");
        let text = script_text(&root, Path::new("/usr/bin/kanban it's"));
        assert!(text.contains(r"KANBAN='/usr/bin/kanban it'\''s'"), "{text}");
        assert!(text.contains(r"HERMES_KANBAN_HOME='/tmp/demo it'\''s'"));
        assert!(
            text.contains("exit 75"),
            "rate limits are signalled by exit 75"
        );
    }
}
