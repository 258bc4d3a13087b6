"""`--timeout` bounds every command that downloads: a mirror that goes silent is a network
failure (exit 10, never 5) after about that long, and nothing in the workspace changes."""

from __future__ import annotations

import time

from clirun import cli
from workspaces import tree

from tests.release_server import running_server

SILENT_FOR = 30.0  # far longer than any --timeout below


def test_restore_from_a_silent_mirror_gives_up_after_its_timeout(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    assert cli("install", "-y", "--no-host", "--workspace", ws).exit_code == 0
    (ws / "AGENT.md").unlink()
    before = tree(ws)
    with running_server() as server:
        for name in ("SHA256SUMS", "manifest.json"):
            server.routes[f"/r/{name}"] = server.stall(SILENT_FOR)
        started = time.monotonic()
        run = cli("restore", "-y", "--workspace", ws, "--from", server.url("/r/"),
                  "--timeout", "1", ws / "AGENT.md")  # fmt: skip
        took = time.monotonic() - started
    assert run.exit_code == 10, run.stderr
    assert "timed out" in run.stderr
    assert took < SILENT_FOR / 3
    assert tree(ws) == before


def test_install_from_a_silent_mirror_gives_up_after_its_timeout(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    with running_server() as server:
        for name in ("SHA256SUMS", "manifest.json"):
            server.routes[f"/r/{name}"] = server.stall(SILENT_FOR)
        started = time.monotonic()
        run = cli("install", "-y", "--no-host", "--workspace", ws, "--from", server.url("/r/"),
                  "--timeout", "1")  # fmt: skip
        took = time.monotonic() - started
    assert run.exit_code == 10, run.stderr
    assert took < SILENT_FOR / 3
    assert tree(ws) == {}
