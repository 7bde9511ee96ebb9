#!/usr/bin/env bash
# A demo board in ./target/demo-home (never touches ~/.hermes): builds the
# release binary, creates a small dependency graph, and walks one task through
# claim and complete. Re-running starts from a fresh demo board.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --locked -p kanban --bin kanban
kanban() { ./target/release/kanban "$@"; }

export HERMES_HOME="$PWD/target/demo-home"
unset HERMES_KANBAN_HOME HERMES_KANBAN_DB HERMES_KANBAN_BOARD
rm -rf "$HERMES_HOME"
mkdir -p "$HERMES_HOME"
echo "# HERMES_HOME=$HERMES_HOME"

say() { printf '\n$ kanban %s\n' "$*"; }
json_id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

say init
kanban init

say 'create "Write the spec" --assignee alice --json'
spec=$(kanban create "Write the spec" --assignee alice --json | json_id)
say "create \"Build it\" --assignee bob --parent $spec"
build=$(kanban create "Build it" --assignee bob --parent "$spec" --json | json_id)
say "create \"Ship it\" --assignee carol --parent $build"
kanban create "Ship it" --assignee carol --parent "$build"

say list
kanban list

say "claim $spec"
kanban claim "$spec"
say "complete $spec --summary \"spec written\" --metadata '{\"pages\": 3}'"
kanban complete "$spec" --summary "spec written" --metadata '{"pages": 3}'

say "list   # Build it is now ready: its parent is done"
kanban list

say "show $spec"
kanban show "$spec"
