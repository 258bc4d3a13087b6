"""Prompts on a real terminal (a tmux pane): "no" changes nothing, "yes" goes ahead; -y and no
TTY never ask (every other test runs without a TTY and would hang if they did)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import cli
from subproc import ROOT
from waiting import wait_until
from workspaces import V1_FILES, expected_tree, pinned, tree

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[list[str]]:
    socket = f"mam-prompt-{os.getpid()}-{tmp_path.name}"[:60]
    base = ["tmux", "-L", socket, "-f", "/dev/null"]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True)


def run_in_terminal(tmux: list[str], command: str, answer: str, tmp_path: Path) -> str:
    env = (
        f"PYTHONPATH={shlex.quote(str(ROOT / 'installer'))} HOME={shlex.quote(os.environ['HOME'])}"
    )
    line = f"env -u CI {env} {shlex.quote(sys.executable)} -m mam_install {command}; echo EXIT=$?"
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "200", "-y", "50", "sh", "-c", f"{line}; sleep 30"],
        check=True,
    )

    def screen() -> str:
        return subprocess.run(
            [*tmux, "capture-pane", "-p", "-J"], capture_output=True, text=True
        ).stdout

    wait_until(screen, lambda text: "[Y/n]" in text, what="the question")
    subprocess.run([*tmux, "send-keys", answer, "Enter"], check=True)
    return wait_until(screen, lambda text: "EXIT=" in text, what="the command to finish")


def installed(tmp_path: Path, releases: dict[str, Path]) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    assert (
        cli("install", "-y", "--no-host", "--workspace", ws, *pinned(releases["1.0.0"])).exit_code
        == 0
    )
    return ws


def test_answering_no_on_a_terminal_changes_nothing(tmux, tmp_path, releases):
    ws = installed(tmp_path, releases)
    screen = run_in_terminal(tmux, f"uninstall --workspace {shlex.quote(str(ws))}", "n", tmp_path)
    assert "EXIT=2" in screen and "cancelled" in screen
    assert "Remove `AGENT.md`" in screen  # the steps were shown before the question
    assert tree(ws) == expected_tree(V1_FILES)


def test_answering_yes_on_a_terminal_goes_ahead(tmux, tmp_path, releases):
    ws = installed(tmp_path, releases)
    screen = run_in_terminal(tmux, f"uninstall --workspace {shlex.quote(str(ws))}", "y", tmp_path)
    assert "EXIT=0" in screen
    assert list(ws.iterdir()) == []
