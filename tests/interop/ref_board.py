#!/usr/bin/env python3
"""A small JSON command line over the Python reference board (hermes-agent 0.19.0).

Used by the Rust interop tests and by the benchmark to drive the reference on the
same board file as `kanban`. It only *calls* the reference module
(`hermes_cli.kanban_db`); it implements no board behaviour of its own.

Run with PYTHONPATH=<unpacked hermes-agent wheel> and HERMES_HOME=<board root>.
Every subcommand prints one JSON document on stdout. Exit status: 0 on success,
1 when the reference raised or refused (message on stderr), 2 on usage errors.

The `schema`, `integrity` and `sql` subcommands use only the standard library's
sqlite3, so they also work without the reference on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any


def _kb():
    # Imported lazily so the stdlib-only subcommands work without the wheel.
    from hermes_cli import kanban_db

    return kanban_db


def _default_db() -> str:
    pinned = os.environ.get("HERMES_KANBAN_DB", "").strip()
    if pinned:
        return pinned
    root = os.environ.get("HERMES_KANBAN_HOME", "").strip() or os.environ.get("HERMES_HOME", "").strip()
    if not root:
        root = str(Path.home() / ".hermes")
    return str(Path(root) / "kanban.db")


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    return obj


def _emit(doc: Any) -> None:
    json.dump(_plain(doc), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


def _connect():
    return _kb().connect()


# ---------------------------------------------------------------------------
# single operations


def cmd_init(args) -> int:
    _emit({"db": str(_kb().init_db())})
    return 0


def cmd_create(args) -> int:
    kb = _kb()
    with kb.connect_closing() as conn:
        task_id = kb.create_task(
            conn,
            title=args.title,
            body=args.body,
            assignee=args.assignee,
            created_by=args.created_by,
            tenant=args.tenant,
            priority=args.priority,
            parents=args.parent or (),
            triage=args.triage,
            idempotency_key=args.idempotency_key,
        )
        _emit({"id": task_id, "task": kb.get_task(conn, task_id)})
    return 0


def cmd_list(args) -> int:
    kb = _kb()
    with kb.connect_closing() as conn:
        if not args.no_recompute:
            kb.recompute_ready(conn)
        tasks = kb.list_tasks(
            conn,
            assignee=args.assignee,
            status=args.status,
            include_archived=args.archived,
        )
        _emit(tasks)
    return 0


def cmd_show(args) -> int:
    kb = _kb()
    with kb.connect_closing() as conn:
        task = kb.get_task(conn, args.id)
        if task is None:
            print(f"no such task: {args.id}", file=sys.stderr)
            return 1
        _emit(
            {
                "task": task,
                "parents": kb.parent_ids(conn, args.id),
                "children": kb.child_ids(conn, args.id),
                "comments": kb.list_comments(conn, args.id),
                "events": kb.list_events(conn, args.id),
                "runs": kb.list_runs(conn, args.id),
                "latest_summary": kb.latest_summary(conn, args.id),
            }
        )
    return 0


def _ok(ok: bool, **extra) -> int:
    _emit({"ok": bool(ok), **extra})
    return 0 if ok else 1


def cmd_claim(args) -> int:
    kb = _kb()
    with kb.connect_closing() as conn:
        task = kb.claim_task(conn, args.id, ttl_seconds=args.ttl, claimer=args.claimer)
        return _ok(task is not None, task=task)


def cmd_complete(args) -> int:
    kb = _kb()
    metadata = json.loads(args.metadata) if args.metadata else None
    with kb.connect_closing() as conn:
        return _ok(
            kb.complete_task(conn, args.id, result=args.result, summary=args.summary, metadata=metadata)
        )


def cmd_block(args) -> int:
    kb = _kb()
    with kb.connect_closing() as conn:
        return _ok(kb.block_task(conn, args.id, reason=args.reason, kind=args.kind))


def cmd_unblock(args) -> int:
    kb = _kb()
    with kb.connect_closing() as conn:
        return _ok(kb.unblock_task(conn, args.id))


def cmd_link(args) -> int:
    kb = _kb()
    with kb.connect_closing() as conn:
        kb.link_tasks(conn, args.parent, args.child)
    return _ok(True)


def cmd_comment(args) -> int:
    kb = _kb()
    with kb.connect_closing() as conn:
        comment_id = kb.add_comment(conn, args.id, args.author, args.body)
    _emit({"ok": True, "id": comment_id})
    return 0


def cmd_recompute(args) -> int:
    kb = _kb()
    with kb.connect_closing() as conn:
        _emit({"promoted": kb.recompute_ready(conn)})
    return 0


# ---------------------------------------------------------------------------
# loops (stress tests and benchmarks)


# The reference checks after every commit that the page count in the database
# header is not larger than the file (its "torn-extend" check). While another
# process checkpoints the WAL into the file, page 1 is written before the file has
# grown, so the check fails spuriously *after* the transaction committed. The
# loops below treat that one message as a known reference fault: they re-read the
# board to learn whether the operation took effect, count the fault, and go on.
# Every other exception is an error for the calling test.
KNOWN_REFERENCE_FAULT = "torn-extend detected"


class _Faults:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def run(self, op, took_effect, attempts: int = 5):
        """op(); on a known fault, took_effect() returns the result if it committed, else None (retry)."""
        for _ in range(attempts):
            try:
                return op()
            except sqlite3.DatabaseError as exc:
                if KNOWN_REFERENCE_FAULT not in str(exc):
                    raise
                self.seen.append(str(exc)[:200])
                done = took_effect()
                if done is not None:
                    return done
        raise RuntimeError(f"gave up after {attempts} known reference faults in a row")


def _connect_with(faults: "_Faults"):
    kb = _kb()
    return faults.run(kb.connect, lambda: None)


def _id_by_title(conn, title: str):
    row = conn.execute("SELECT id FROM tasks WHERE title = ?", (title,)).fetchone()
    return row[0] if row else None


def _claim(kb, conn, faults: "_Faults", task_id: str, claimer: str) -> bool:
    def owned():
        t = kb.get_task(conn, task_id)
        return True if t is not None and t.claim_lock == claimer else None

    return faults.run(lambda: kb.claim_task(conn, task_id, claimer=claimer) is not None, owned)


def _complete(kb, conn, faults: "_Faults", task_id: str, summary: str) -> bool:
    def done():
        t = kb.get_task(conn, task_id)
        return True if t is not None and t.status == "done" else None

    return faults.run(lambda: kb.complete_task(conn, task_id, summary=summary), done)


def cmd_stress(args) -> int:
    """Create, claim and complete N tasks, one at a time, recording every outcome."""
    kb = _kb()
    faults = _Faults()
    claimer = f"ref-{args.tag}-{os.getpid()}"
    created, completed, errors = [], [], []
    conn = _connect_with(faults)
    try:
        for i in range(args.n):
            title = f"{args.tag}-{i}"
            try:
                task_id = faults.run(
                    lambda: kb.create_task(conn, title=title, assignee=args.assignee, created_by=args.tag),
                    lambda: _id_by_title(conn, title),
                )
                created.append(task_id)
                if not _claim(kb, conn, faults, task_id, claimer):
                    errors.append(f"claim of own task {task_id} refused")
                    continue
                if not _complete(kb, conn, faults, task_id, f"done by {args.tag}"):
                    errors.append(f"complete of {task_id} refused")
                    continue
                completed.append(task_id)
            except Exception as exc:  # reported to the test, which fails on any
                errors.append(f"{title}: {type(exc).__name__}: {exc}")
    finally:
        conn.close()
    _emit({"created": created, "completed": completed, "errors": errors, "reference_faults": faults.seen})
    return 0 if not errors else 1


def cmd_race(args) -> int:
    """Try to claim (and then complete) each given task; report which ones this process won."""
    kb = _kb()
    faults = _Faults()
    claimer = f"ref-{args.tag}-{os.getpid()}"
    ids = args.ids
    if args.ids_file:
        ids = ids + json.loads(Path(args.ids_file).read_text())
    conn = _connect_with(faults)
    if args.start_at:
        # Line the racers up so they really start together.
        while time.time() < args.start_at:
            time.sleep(0.001)
    won, completed, errors = [], [], []
    try:
        for task_id in ids:
            try:
                if not _claim(kb, conn, faults, task_id, claimer):
                    continue
                won.append(task_id)
                if args.complete:
                    if _complete(kb, conn, faults, task_id, f"won by {args.tag}"):
                        completed.append(task_id)
                    else:
                        errors.append(f"complete of won task {task_id} refused")
            except Exception as exc:
                errors.append(f"{task_id}: {type(exc).__name__}: {exc}")
    finally:
        conn.close()
    _emit({"won": won, "completed": completed, "errors": errors, "reference_faults": faults.seen})
    return 0 if not errors else 1


def cmd_create_many(args) -> int:
    """Create N independent tasks in one process; report the elapsed time."""
    kb = _kb()
    with kb.connect_closing() as conn:
        started = time.perf_counter()
        for i in range(args.n):
            kb.create_task(conn, title=f"bench {i}", assignee=args.assignee)
        elapsed = time.perf_counter() - started
    _emit({"n": args.n, "seconds": elapsed})
    return 0


def cmd_claim_many(args) -> int:
    """Claim every ready task in one process, one claim_task call each; report the time."""
    kb = _kb()
    with kb.connect_closing() as conn:
        ids = [t.id for t in kb.list_tasks(conn, status="ready")]
        started = time.perf_counter()
        won = sum(1 for task_id in ids if kb.claim_task(conn, task_id) is not None)
        elapsed = time.perf_counter() - started
    _emit({"n": len(ids), "claimed": won, "seconds": elapsed})
    return 0


# ---------------------------------------------------------------------------
# standard-library only


def cmd_schema(args) -> int:
    conn = sqlite3.connect(args.db or _default_db())
    try:
        tables = {}
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ):
            cols = conn.execute(f"PRAGMA table_info('{name}')").fetchall()
            tables[name] = [
                {"name": c[1], "type": c[2], "notnull": c[3], "default": c[4], "pk": c[5]} for c in cols
            ]
        indexes = {}
        for name, table in conn.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite_%'"
        ):
            cols = [c[2] for c in conn.execute(f"PRAGMA index_info('{name}')")]
            indexes[name] = {"table": table, "columns": cols}
        _emit({"tables": tables, "indexes": indexes})
    finally:
        conn.close()
    return 0


def cmd_integrity(args) -> int:
    conn = sqlite3.connect(args.db or _default_db())
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()
    _emit({"integrity": rows[0] if len(rows) == 1 else rows})
    return 0 if rows == ["ok"] else 1


def cmd_sql(args) -> int:
    # Read-only: opened with mode=ro so a test query can never change the board.
    db = Path(args.db or _default_db()).resolve()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    try:
        rows = conn.execute(args.query, args.params).fetchall()
    finally:
        conn.close()
    _emit(rows)
    return 0


def cmd_hold(args) -> int:
    """Keep the board open (like a long-running gateway) until stdin is closed.

    An open WAL connection holds a SHARED lock on the database file, so no other
    process can take the EXCLUSIVE lock that lets it checkpoint and delete the WAL
    when it closes. The reference cancels its own POSIX locks after every commit
    (its post-commit header check opens and closes a second descriptor on the
    database file), and without a holder a closing process can then delete the WAL
    under live writers, losing their commits and corrupting the file.
    """
    conn = sqlite3.connect(args.db or _default_db(), timeout=60)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        print("holding", flush=True)
        sys.stdin.read()
    finally:
        conn.close()
    return 0


def cmd_cli(args) -> int:
    """Run the reference's own `hermes kanban ...` command line in this process."""
    from hermes_cli import kanban as kcli

    parser = argparse.ArgumentParser(prog="hermes")
    sub = parser.add_subparsers(dest="command")
    kcli.build_parser(sub)
    ns = parser.parse_args(["kanban", *args.rest])
    return int(kcli.kanban_command(ns) or 0)


# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ref_board.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    sub.add_parser("init").set_defaults(fn=cmd_init)

    c = sub.add_parser("create")
    c.add_argument("title")
    c.add_argument("--body")
    c.add_argument("--assignee")
    c.add_argument("--created-by", default="user")
    c.add_argument("--tenant")
    c.add_argument("--priority", type=int, default=0)
    c.add_argument("--parent", action="append")
    c.add_argument("--triage", action="store_true")
    c.add_argument("--idempotency-key")
    c.set_defaults(fn=cmd_create)

    ls = sub.add_parser("list")
    ls.add_argument("--status")
    ls.add_argument("--assignee")
    ls.add_argument("--archived", action="store_true")
    ls.add_argument("--no-recompute", action="store_true")
    ls.set_defaults(fn=cmd_list)

    s = sub.add_parser("show")
    s.add_argument("id")
    s.set_defaults(fn=cmd_show)

    cl = sub.add_parser("claim")
    cl.add_argument("id")
    cl.add_argument("--ttl", type=int)
    cl.add_argument("--claimer")
    cl.set_defaults(fn=cmd_claim)

    co = sub.add_parser("complete")
    co.add_argument("id")
    co.add_argument("--result")
    co.add_argument("--summary")
    co.add_argument("--metadata", help="JSON object")
    co.set_defaults(fn=cmd_complete)

    b = sub.add_parser("block")
    b.add_argument("id")
    b.add_argument("--reason")
    b.add_argument("--kind")
    b.set_defaults(fn=cmd_block)

    u = sub.add_parser("unblock")
    u.add_argument("id")
    u.set_defaults(fn=cmd_unblock)

    lk = sub.add_parser("link")
    lk.add_argument("parent")
    lk.add_argument("child")
    lk.set_defaults(fn=cmd_link)

    cm = sub.add_parser("comment")
    cm.add_argument("id")
    cm.add_argument("body")
    cm.add_argument("--author", default="user")
    cm.set_defaults(fn=cmd_comment)

    sub.add_parser("recompute").set_defaults(fn=cmd_recompute)

    st = sub.add_parser("stress")
    st.add_argument("--n", type=int, required=True)
    st.add_argument("--tag", required=True)
    st.add_argument("--assignee")
    st.set_defaults(fn=cmd_stress)

    r = sub.add_parser("race")
    r.add_argument("ids", nargs="*")
    r.add_argument("--ids-file")
    r.add_argument("--tag", default="ref")
    r.add_argument("--complete", action="store_true")
    r.add_argument("--start-at", type=float, help="unix time to wait for before racing")
    r.set_defaults(fn=cmd_race)

    cmn = sub.add_parser("create-many")
    cmn.add_argument("--n", type=int, required=True)
    cmn.add_argument("--assignee")
    cmn.set_defaults(fn=cmd_create_many)

    sub.add_parser("claim-many").set_defaults(fn=cmd_claim_many)

    for name, fn in (("schema", cmd_schema), ("integrity", cmd_integrity)):
        sp = sub.add_parser(name)
        sp.add_argument("--db")
        sp.set_defaults(fn=fn)

    h = sub.add_parser("hold")
    h.add_argument("--db")
    h.set_defaults(fn=cmd_hold)

    q = sub.add_parser("sql")
    q.add_argument("query")
    q.add_argument("params", nargs="*")
    q.add_argument("--db")
    q.set_defaults(fn=cmd_sql)

    k = sub.add_parser("cli", help="the reference `hermes kanban` CLI: ref_board.py cli -- list --json")
    k.add_argument("rest", nargs=argparse.REMAINDER)
    k.set_defaults(fn=cmd_cli)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "rest", None) and args.rest[:1] == ["--"]:
        args.rest = args.rest[1:]
    try:
        return args.fn(args)
    except (ValueError, RuntimeError) as exc:
        print(f"ref_board: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
