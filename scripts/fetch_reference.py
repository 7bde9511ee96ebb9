#!/usr/bin/env python3
"""Make the Python reference (hermes-agent 0.19.0) available to tests and benchmarks.

Downloads the wheel once with pip (the only network access: the PyPI registry),
checks its sha256, and unpacks it into a directory that can be put on PYTHONPATH.
Safe to run from several processes at once: the first one does the work under an
exclusive file lock, the others wait for it and reuse the result.

Prints the unpacked directory on stdout (and nothing else), exit 0.
On failure prints a message on stderr and exits 1.

Directory: $KANBAN_REFERENCE_DIR if set, else <repo>/target/hermes-ref.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "0.19.0"
WHEEL_NAME = f"hermes_agent-{VERSION}-py3-none-any.whl"
# Pinned so a tampered or re-published artifact is refused rather than tested against.
WHEEL_SHA256 = "bd0bac012aee38a60894781f4597dc29ee7bedb3448540249921f10d3bef327f"
# Written last, so its presence means the unpacked tree is complete.
READY_MARKER = ".unpacked-ok"
PROBE_MODULE = "hermes_cli/kanban_db.py"


def reference_dir() -> Path:
    env = os.environ.get("KANBAN_REFERENCE_DIR", "").strip()
    if env:
        return Path(env).resolve()
    repo = Path(__file__).resolve().parent.parent
    target = os.environ.get("CARGO_TARGET_DIR", "").strip()
    base = Path(target).resolve() if target else repo / "target"
    return base / "hermes-ref"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_wheel(dest: Path) -> Path:
    wheel = dest / WHEEL_NAME
    if wheel.exists() and sha256_of(wheel) == WHEEL_SHA256:
        return wheel
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        f"hermes-agent=={VERSION}", "-d", str(dest),
    ]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0 or not wheel.exists():
        raise RuntimeError(
            "could not download the reference wheel with\n  " + " ".join(cmd)
            + f"\n(exit {proc.returncode})\n" + proc.stdout[-2000:] + proc.stderr[-2000:]
        )
    got = sha256_of(wheel)
    if got != WHEEL_SHA256:
        wheel.unlink()
        raise RuntimeError(f"{WHEEL_NAME}: sha256 {got} does not match the pinned {WHEEL_SHA256}")
    return wheel


def unpack(wheel: Path, into: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix="unpack-", dir=into.parent))
    try:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(staging)
        if not (staging / PROBE_MODULE).exists():
            raise RuntimeError(f"{wheel} has no {PROBE_MODULE}")
        if into.exists():
            shutil.rmtree(into)
        staging.rename(into)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def ensure() -> Path:
    root = reference_dir()
    root.mkdir(parents=True, exist_ok=True)
    tree = root / "wheel"
    marker = root / READY_MARKER
    if marker.exists() and (tree / PROBE_MODULE).exists():
        return tree
    with (root / ".lock").open("w") as lock:
        # Blocks until the process doing the download/unpack has finished.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and (tree / PROBE_MODULE).exists():
            return tree
        wheel = download_wheel(root)
        unpack(wheel, tree)
        marker.write_text(f"{VERSION} {WHEEL_SHA256}\n")
    return tree


def main() -> int:
    try:
        print(ensure())
    except Exception as exc:  # one clear line for the calling test / CI log
        print(f"fetch_reference: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
