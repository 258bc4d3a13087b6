"""Helpers for the `mam` tests: the tools laid down as the installer does, `mam` run for real."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.payload._support import HOST_TOOLS, copy_tools

FAKE_TUI = Path(__file__).with_name("fake_tui.py")


def load_fleet_module(name: str) -> ModuleType:
    """``mam_fleet.<name>`` from payload/, leaving no __pycache__ there."""
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    if str(HOST_TOOLS) not in sys.path:
        sys.path.insert(0, str(HOST_TOOLS))
    try:
        return importlib.import_module(f"mam_fleet.{name}")
    finally:
        sys.dont_write_bytecode = saved


@dataclass
class Machine:
    """A user's machine in miniature: HOME, the bin dir, a fake runtime, private tmux sockets."""

    root: Path
    tools: Path
    env: dict

    @property
    def home(self) -> Path:
        return Path(self.env["HOME"])

    @property
    def config(self) -> Path:
        return self.home / ".config" / "mam"

    def mam(self, *args: str, stdin: str | None = None, python: str = sys.executable,
            extra: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, **(extra or {}))
        return subprocess.run([python, str(self.tools / "mam"), *args], env=env, input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)

    def mam_json(self, *args: str, **kwargs: Any) -> Any:
        done = self.mam(*args, "--json", **kwargs)
        return done.returncode, json.loads(done.stdout)

    def tmux(self, *args: str, socket: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = ["tmux", *(["-L", socket] if socket else []), *args]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=20)


def make_machine(tmp_path: Path, runtimes: Sequence[str] = ("claude", "gemini")) -> Machine:
    root = tmp_path
    home = root / "home"
    home.mkdir()
    tools = copy_tools(root / "bin")
    fake_bin = root / "fake-bin"
    fake_bin.mkdir()
    for runtime in runtimes:
        # A runtime that shows what it receives, logging each submitted line to $HOME.
        script = fake_bin / runtime
        script.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_TUI} '
                          f'"$HOME/{runtime}-$MAM_AGENT_NAME.log" 0\n')
        script.chmod(0o755)
    tmux_dir = root / "tmux"
    tmux_dir.mkdir(mode=0o700)
    env = {
        "HOME": str(home),
        "PATH": f"{fake_bin}:{tools}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        # Both servers, the fleet's named one and the "default" one, live in the test's own
        # directory: never the developer's.
        "TMUX_TMPDIR": str(tmux_dir),
        "TMPDIR": str(root),
        "MAM_WORKSPACE": str(root / "no-workspace"),
        "MAM_AGENT_POLL_SECONDS": "0.2",
        "MAM_SEND_VERIFY_DELAY": "0.3",
    }
    return Machine(root, tools, env)


def submissions(log: Path) -> list[str]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
