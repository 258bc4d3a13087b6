"""The fleet plan's canary rollout, end to end, with real tmux and no user manager (direct mode).

`mam fleet init --profile minimal`, `start`, `verify`, `mam agent send` read back with `tail`,
`reset`, `mam fleet restart AGENT` (holder PID unchanged, the other agent alive), `stop`; and a
session on the user's default tmux server alive and untouched throughout.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.payload._fleet_support import Machine, make_machine, submissions


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    machine = make_machine(tmp_path)
    machine.env["MAM_HOLDER_POLL_SECONDS"] = "0.2"
    try:
        yield machine
    finally:
        machine.tmux("kill-server", socket="mam")
        machine.tmux("kill-server")


def default_server(machine: Machine) -> tuple[str, str]:
    pid = machine.tmux("display-message", "-p", "-t", "=mine:", "#{pid}").stdout
    pane = machine.tmux("display-message", "-p", "-t", "=mine:", "#{pane_pid}").stdout
    return pid, pane


def test_the_canary_rollout_end_to_end(machine: Machine) -> None:
    machine.tmux("new-session", "-d", "-s", "mine", "sleep", "600")
    mine = default_server(machine)
    assert mine[0].strip().isdigit()

    init = machine.mam("fleet", "init", "--profile", "minimal")
    assert init.returncode == 0, init.stderr
    assert (machine.config / "fleet.json").is_file()

    start = machine.mam("fleet", "start")
    assert start.returncode == 0, start.stderr
    code, status = machine.mam_json("fleet", "status")
    assert code == 0, status
    assert status["manager"] == "direct"
    holder_pid = status["holder"]["server_pid"]
    assert isinstance(holder_pid, int) and status["holder"]["session_present"]
    assert [(a["name"], a["running"]) for a in status["agents"]] == [
        ("agent-1", True), ("agent-2", True)]
    sessions = set(machine.tmux("list-sessions", "-F", "#{session_name}",
                                socket="mam").stdout.split())
    assert sessions == {"mam-holder", "agent-1", "agent-2"}

    code, verified = machine.mam_json("fleet", "verify")
    assert code == 0, verified
    assert [c["name"] for c in verified["checks"] if c["ok"]] == [
        "holder_owns_socket", "holder_session", "agent_sessions_exact",
        "restart_keeps_server_and_siblings", "default_server_untouched"]

    sent = machine.mam("agent", "send", "agent-2", "-m", "please build the thing")
    assert sent.returncode == 0, sent.stderr
    log = machine.home / "claude-agent-2.log"
    assert wait_for(lambda: submissions(log) == ["please build the thing"])
    tail = machine.mam("agent", "tail", "agent-2", "-n", "5")
    assert tail.returncode == 0 and "please build the thing" in tail.stdout

    reset = machine.mam("agent", "reset", "agent-2")
    assert reset.returncode == 0, reset.stderr
    assert wait_for(lambda: submissions(log) == ["please build the thing", "/clear"])

    code, before = machine.mam_json("fleet", "status")
    panes = {a["name"]: a["pane_pid"] for a in before["agents"]}
    restart = machine.mam("fleet", "restart", "agent-1")
    assert restart.returncode == 0, restart.stderr
    code, after = machine.mam_json("fleet", "status")
    assert code == 0
    assert after["holder"]["server_pid"] == holder_pid
    now = {a["name"]: a["pane_pid"] for a in after["agents"]}
    assert now["agent-2"] == panes["agent-2"]
    assert now["agent-1"] not in (None, panes["agent-1"])

    stop = machine.mam("fleet", "stop")
    assert stop.returncode == 0, stop.stderr
    assert machine.tmux("list-sessions", socket="mam").returncode != 0
    code, stopped = machine.mam_json("fleet", "status")
    assert code == 1 and not stopped["holder"]["running"]
    assert default_server(machine) == mine  # same server, same pane: never touched


def test_a_user_edited_env_file_is_kept_and_reported(machine: Machine) -> None:
    assert machine.mam("fleet", "init").returncode == 0
    assert machine.mam("fleet", "start").returncode == 0
    edited = machine.config / "agents" / "agent-1.env"
    edited.write_text(edited.read_text() + "MAM_AGENT_PASS_ENV='API_TOKEN'\n")
    roster = machine.config / "fleet.json"
    roster.write_text(roster.read_text().replace('"class": "implementer"\n    },\n    {',
                                                 '"class": "lead"\n    },\n    {', 1))
    again = machine.mam("fleet", "restart")
    assert again.returncode == 0, again.stderr
    assert f"kept {edited}: it was edited since mam wrote it" in again.stdout
    assert "MAM_AGENT_PASS_ENV='API_TOKEN'" in edited.read_text()
    beside = edited.with_name("agent-1.env.mam-new")
    assert "MAM_AGENT_CLASS='lead'" in beside.read_text()
    # The unedited one was ours: rewritten in place, nothing beside it.
    assert not (machine.config / "agents" / "agent-2.env.mam-new").exists()


def test_init_never_writes_over_an_existing_roster(machine: Machine) -> None:
    roster = machine.config / "fleet.json"
    roster.parent.mkdir(parents=True)
    roster.write_text("my own\n")
    done = machine.mam("fleet", "init", "--profile", "team")
    assert done.returncode == 4
    assert f"{roster} exists and is yours" in done.stderr
    assert roster.read_text() == "my own\n"


def test_mam_is_python_3_9_source() -> None:
    import ast

    from tests.payload._support import HOST_TOOLS

    for source in [HOST_TOOLS / "mam", *sorted((HOST_TOOLS / "mam_fleet").glob("*.py"))]:
        ast.parse(source.read_text(), str(source), feature_version=(3, 9))


def test_mam_runs_on_the_oldest_supported_python(machine: Machine) -> None:
    python = Path("/root/.pyenv/versions/3.9.18/bin/python3")
    oldest = str(python) if python.exists() else shutil.which("python3.9")
    if oldest is None:
        pytest.skip("no Python 3.9 here; test_mam_is_python_3_9_source checks the syntax")
    assert machine.mam("fleet", "init", python=oldest).returncode == 0
    code, roster = machine.mam_json("agent", "roster", python=oldest)
    assert code == 0 and [a["name"] for a in roster["agents"]] == ["agent-1", "agent-2"]
