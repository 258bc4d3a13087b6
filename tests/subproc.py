"""Run mam-install from the source tree in a real child process (for kill and race tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "mam_install", *map(str, args)]


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "installer")
    env.update(extra or {})
    return env


def run(
    *args: str | Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), env=environment(env), capture_output=True, text=True, timeout=120
    )
