"""`resolve` on a real terminal (a tmux pane) asks per file, like dpkg: keep, take, diff, skip."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import cli
from subproc import ROOT
from workspaces import V2_FILES, pinned

MINE = b"my own AGENT.md\n"
OURS = V2_FILES["workspace/AGENT.md"][0]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    socket = f"mam-resolve-{os.getpid()}-{tmp_path.name}"[:60]
    base = ["tmux", "-L", socket, "-f", "/dev/null"]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True)


def screen_of(tmux: list[str]) -> str:
    return subprocess.run(
        [*tmux, "capture-pane", "-p", "-J", "-S", "-200"], capture_output=True, text=True
    ).stdout


def wait_for(tmux: list[str], text: str, count: int = 1) -> str:
    """Wait (bounded) until ``text`` is on the screen ``count`` times."""
    screen = ""
    for _ in range(200):
        screen = screen_of(tmux)
        if screen.count(text) >= count:
            return screen
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared:\n{screen}")


def conflict(tmp_path: Path, releases: dict[str, Path]) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    for version in ("1.0.0", "2.0.0"):
        done = cli("install", "-y", "--no-host", "--workspace", ws, *pinned(releases[version]))
        assert done.exit_code == 0, done.stderr
        (ws / "AGENT.md").write_bytes(MINE)
    assert (ws / "AGENT.md.mam-new").read_bytes() == OURS
    return ws


def start(tmux: list[str], ws: Path) -> None:
    env = (
        f"PYTHONPATH={shlex.quote(str(ROOT / 'installer'))} HOME={shlex.quote(os.environ['HOME'])}"
    )
    line = (
        f"env -u CI {env} {shlex.quote(sys.executable)} -m mam_install resolve "
        f"--workspace {shlex.quote(str(ws))}; echo EXIT=$?"
    )
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "200", "-y", "50", "sh", "-c", f"{line}; sleep 30"],
        check=True,
    )


def answer(tmux: list[str], keys: str) -> None:
    subprocess.run([*tmux, "send-keys", keys, "Enter"], check=True)


def test_the_diff_is_shown_on_request_then_taking_ours_replaces_the_file(tmux, tmp_path, releases):
    ws = conflict(tmp_path, releases)
    start(tmux, ws)
    wait_for(tmux, "[k]eep yours")
    answer(tmux, "d")
    screen = wait_for(tmux, "[k]eep yours", 2)
    assert "-my own AGENT.md" in screen and "+# How agents use mam (v2)" in screen
    answer(tmux, "t")
    screen = wait_for(tmux, "EXIT=")
    assert "EXIT=0" in screen, screen
    assert (ws / "AGENT.md").read_bytes() == OURS
    assert not (ws / "AGENT.md.mam-new").exists()
    assert cli("--json", "status", "--workspace", ws).scope()["states"]["AGENT.md"] == "pristine"


@pytest.mark.parametrize(("key", "kept"), [("k", True), ("s", False)])
def test_keeping_mine_or_skipping_on_a_terminal(tmux, tmp_path, releases, key, kept):
    ws = conflict(tmp_path, releases)
    start(tmux, ws)
    wait_for(tmux, "[k]eep yours")
    answer(tmux, key)
    screen = wait_for(tmux, "EXIT=")
    assert "EXIT=0" in screen, screen
    assert (ws / "AGENT.md").read_bytes() == MINE
    assert (ws / "AGENT.md.mam-new").exists() is not kept
    state = cli("--json", "status", "--workspace", ws).scope()["states"]["AGENT.md"]
    assert state == ("kept" if kept else "pending")
