"""The fleet plan's canary rollout, end to end, with real tmux and no user manager (direct mode).

`mam fleet init --profile minimal`, `start`, `verify`, `mam agent send` read back with `tail`,
`reset`, `mam fleet restart AGENT` (holder PID unchanged, the other agent alive), `stop`; and a
session on the user's default tmux server alive and untouched throughout.
"""

from __future__ import annotations

import json
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


def test_reset_without_a_reset_command_restarts_and_sends_the_kickstart(
    machine: Machine,
) -> None:
    machine.config.mkdir(parents=True)
    (machine.config / "kickstart.md").write_text("You review. Read REVIEW.md first.")
    (machine.config / "fleet.json").write_text(json.dumps({
        "tmux": {"socket_name": "mam"},
        "runtimes": {"gemini": {"command": "gemini"}},
        "agents": [{"name": "final", "runtime": "gemini", "class": "final-reviewer",
                    "kickstart": {"file": "kickstart.md"}},
                   {"name": "other", "runtime": "gemini"}],
    }))
    assert machine.mam("fleet", "start").returncode == 0
    code, before = machine.mam_json("fleet", "status")
    panes = {a["name"]: a["pane_pid"] for a in before["agents"]}
    code, reset = machine.mam_json("agent", "reset", "final")
    assert code == 0, reset
    assert (reset["method"], reset["sent"]) == ("restart", ["kickstart"])
    log = machine.home / "gemini-final.log"
    assert wait_for(lambda: submissions(log) == ["You review. Read REVIEW.md first."])
    code, after = machine.mam_json("fleet", "status")
    assert after["agents"][0]["pane_pid"] != panes["final"]
    assert after["agents"][1]["pane_pid"] == panes["other"]
    assert after["holder"]["server_pid"] == before["holder"]["server_pid"]


def test_verify_fails_with_the_check_named_when_the_fleet_is_down(machine: Machine) -> None:
    assert machine.mam("fleet", "init").returncode == 0
    code, verified = machine.mam_json("fleet", "verify")
    assert code == 1 and verified["ok"] is False
    failed = [c["name"] for c in verified["checks"] if not c["ok"]]
    assert failed[:2] == ["holder_owns_socket", "holder_session"]
    assert "agent_sessions_exact" in failed


def test_a_session_of_another_name_on_the_socket_is_not_an_agent(machine: Machine) -> None:
    assert machine.mam("fleet", "init").returncode == 0
    assert machine.mam("fleet", "start").returncode == 0
    machine.tmux("kill-session", "-t", "=agent-1", socket="mam")
    machine.tmux("new-session", "-d", "-s", "agent-10", "sleep", "600", socket="mam")
    code, status = machine.mam_json("fleet", "status")
    assert code == 1
    assert [(a["name"], a["running"]) for a in status["agents"]] == [
        ("agent-1", False), ("agent-2", True)]
    sent = machine.mam("agent", "send", "agent-1", "-m", "for agent-1 only")
    assert sent.returncode == 1
    assert "no tmux pane =agent-1" in sent.stderr


def test_adopt_proposes_entries_for_the_default_servers_sessions_and_changes_nothing(
    machine: Machine,
) -> None:
    project = machine.root / "project"
    project.mkdir()
    machine.tmux("new-session", "-d", "-s", "my work!", "-c", str(project), "sleep", "600")
    machine.tmux("new-session", "-d", "-s", "claude", "-c", str(project), "claude")
    listing = machine.tmux("list-sessions", "-F", "#{session_name} #{pane_pid}").stdout
    code, proposal = machine.mam_json("fleet", "adopt")
    assert code == 0
    by_session = {s["session"]: s for s in proposal["sessions"]}
    assert by_session["my work!"]["proposed_name"] == "my-work"
    assert by_session["my work!"]["working_directory"] == str(project)
    assert proposal["written"] is None
    assert not (machine.config / "fleet.json").exists()
    target = machine.root / "adopted.json"
    written = machine.mam("fleet", "adopt", "--write", str(target))
    assert written.returncode == 0, written.stderr
    code, roster = machine.mam_json("agent", "roster", "--roster", str(target))
    assert code == 0 and {a["name"] for a in roster["agents"]} == {"my-work", "claude"}
    again = machine.mam("fleet", "adopt", "--write", str(target))
    assert again.returncode == 4
    # Never a kill, a rename or a keystroke on the default server.
    assert machine.tmux("list-sessions", "-F", "#{session_name} #{pane_pid}").stdout == listing
