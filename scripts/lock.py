#!/usr/bin/env python3
"""Regenerate the hash locks in checksums/ from their .in files with uv, exactly as committed.

Each lock lists every transitive dependency with its hashes, because scripts/locked_install.py
installs with `--no-deps` and lets `pip check` prove the lock complete. Pins already in a lock are
kept while they still fit (uv reads the old lock as its preferences), so a run with unchanged
inputs rewrites the same bytes; `--upgrade` or `--upgrade-package NAME` moves them.

usage: python3 scripts/lock.py [--check] [--upgrade | --upgrade-package NAME] [LOCK ...]
  LOCK     pyz, build, test, sign, ansible, ansible-sanity (default: all, in that order: later
           locks are constrained by earlier ones)
  --check  write nothing; exit 1 naming each lock that would change
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHECKSUMS = Path(__file__).resolve().parent.parent / "checksums"
COMMON = ("pip", "compile", "-q", "--generate-hashes", "--no-header")
OLDEST = ("--python-version", "3.9")  # the oldest Python supported

# name -> the uv arguments after COMMON, before `-o`.
LOCKS: dict[str, tuple[str, ...]] = {
    # Embedded in the pyz, which is built once and runs on 3.9-3.13: resolved for 3.9, where
    # the most backports are needed, and pure Python.
    "pyz": (*OLDEST, "pyz-requirements.in"),
    # shiv, for scripts/build.py's build venv.
    "build": (*OLDEST, "build-requirements.in"),
    # The test venv, on every Python 3.9-3.13 and platform: universal, with markers.
    "test": (
        *OLDEST,
        "--universal",
        "-c",
        "pyz-requirements.txt",
        "pyz-requirements.in",
        "test-requirements.in",
    ),
    # Signing in the release workflow: sigstore at the version the tests verify with.
    "sign": (*OLDEST, "--universal", "-c", "test-requirements.txt", "sign-requirements.in"),
    # The Ansible tests' controller (tests/ansible_env.py): ansible-core needs Python >= 3.11.
    "ansible": ("--python-version", "3.11", "--universal", "ansible-requirements.in"),
    # What ansible-test sanity installs, downloaded hash-checked by tests/test_ansible_lint.py.
    "ansible-sanity": ("--python-version", "3.11", "--universal", "ansible-sanity-requirements.in"),
}


def find_uv(given: str | None) -> str:
    for candidate in (given, os.environ.get("UV"), shutil.which("uv"), "/opt/uv/bin/uv"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("lock: uv not found; install it (pip install uv) or pass --uv PATH")


def compile_lock(uv: str, name: str, out: Path, extra: list[str]) -> None:
    """uv pip compile the lock `name` into `out` (which may hold the old lock as preferences)."""
    argv = [uv, *COMMON, *LOCKS[name], *extra, "-o", str(out)]
    print("$ " + " ".join(argv), file=sys.stderr, flush=True)
    subprocess.run(argv, cwd=CHECKSUMS, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="LOCK", help=", ".join(LOCKS))
    parser.add_argument("--uv", help="the uv binary (default: $UV, uv on PATH)")
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    parser.add_argument("--upgrade", action="store_true", help="move every pin to the newest")
    parser.add_argument("--upgrade-package", action="append", default=[], metavar="NAME")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(LOCKS))
    if unknown:
        parser.error(f"unknown lock {', '.join(unknown)}; the locks are {', '.join(LOCKS)}")
    uv = find_uv(args.uv)
    extra = ["--upgrade"] if args.upgrade else []
    extra += [f"--upgrade-package={name}" for name in args.upgrade_package]
    stale = []
    for name in args.names or list(LOCKS):
        lock = CHECKSUMS / f"{name}-requirements.txt"
        if not args.check:
            compile_lock(uv, name, lock, extra)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / lock.name
            shutil.copyfile(lock, out)
            compile_lock(uv, name, out, extra)
            if out.read_bytes() != lock.read_bytes():
                stale.append(lock.name)
    if stale:
        print(f"lock: out of date: {', '.join(stale)} (run scripts/lock.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
