#!/usr/bin/env python3
"""Print the worker argv the Python reference (hermes-agent 0.19.0) would spawn.

For each task id given, loads the task from the board at $HERMES_HOME and
calls the reference's own spawn function with `subprocess.Popen` replaced by
a recorder, so nothing is started. Prints one JSON object {task_id: argv}.

Run with PYTHONPATH=<unpacked wheel>, HERMES_HOME=<board root> and the same
HERMES_BIN as the `kanban` side. Needs PyYAML (a Hermes dependency): without
it the reference cannot read a profile's config, and this script says so and
exits 3 rather than print an argv Hermes would never build.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys


def main(argv: list[str]) -> int:
    try:
        import yaml  # noqa: F401
    except ImportError:
        print("PyYAML is not importable: the reference cannot read profile configs", file=sys.stderr)
        return 3
    logging.disable(logging.CRITICAL)
    from hermes_cli import kanban_db as kb

    captured: list[list[str]] = []

    class Recorder:
        def __init__(self, cmd, **_kwargs):
            captured.append([str(c) for c in cmd])
            self.pid = 999999

    subprocess.Popen = Recorder  # type: ignore[misc,assignment]
    out = {}
    with kb.connect_closing() as conn:
        for task_id in argv:
            task = kb.get_task(conn, task_id)
            if task is None:
                print(f"no task {task_id}", file=sys.stderr)
                return 1
            captured.clear()
            kb._default_spawn(task, task.workspace_path or "/nonexistent")
            out[task_id] = captured[0]
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
