"""`mam agent roster | status | send | reset | tail`: one agent of the fleet, by exact name."""

from __future__ import annotations

import time
from typing import Any

from .context import Fleet, Report
from .errors import MamError
from .fleet import status_data

READY_WAIT_SECONDS = 30.0


def roster(fleet: Fleet) -> Report:
    agents = []
    for agent in fleet.roster.agents:
        runtime = fleet.roster.runtimes[agent.runtime]
        agents.append({
            "name": agent.name, "class": agent.agent_class, "runtime": agent.runtime,
            "command": runtime.command, "reset_command": runtime.reset_command,
            "working_directory": str(agent.working_directory), "model_hint": agent.model_hint,
            "persistent_persona": agent.persistent_persona,
            "reset_between_tasks": agent.reset_between_tasks,
            "kickstart": ("file" if agent.kickstart_file else
                          "text" if agent.kickstart_text else None),
        })
    lines = [f"{a['name']:<20} {a['class']:<16} {a['runtime']:<10} {a['working_directory']}"
             for a in agents]
    return Report({"roster": str(fleet.roster.path), "agents": agents}, lines)


def status(fleet: Fleet, name: str | None) -> Report:
    data = status_data(fleet)
    agents = data["agents"]
    if name is not None:
        fleet.roster.agent(name)
        agents = [a for a in agents if a["name"] == name]
    lines = [f"{a['name']}: " + (f"running, pane pid {a['pane_pid']}" if a["running"]
                                 else "not running")
             + (f", unit {a['unit_state']}" if a["unit_state"] else "") for a in agents]
    return Report({"agents": agents}, lines, all(a["running"] for a in agents))


def _send(fleet: Fleet, name: str, text: str) -> dict[str, Any]:
    """Through send-message.sh: bracketed paste, Enter, read back; its exit code is ours."""
    argv = [str(fleet.paths.tool("send-message.sh")), "-L", fleet.roster.socket_name,
            "-t", f"={name}"]
    done = fleet.runner.run(argv, env=fleet.env, stdin=text, timeout=120)
    if not done.ok:
        error = MamError(f"send-message.sh could not deliver to {name}: {done.said()}")
        error.code = done.returncode if 0 < done.returncode < 126 else 1
        raise error
    return {"agent": name, "delivered": True, "bytes": len(text.encode())}


def send(fleet: Fleet, name: str, text: str) -> Report:
    agent = fleet.roster.agent(name)
    result = _send(fleet, agent.name, text)
    return Report(result, [f"delivered {result['bytes']} bytes to {agent.name}"])


def _wait_ready(fleet: Fleet, name: str) -> None:
    """Until the fresh pane has drawn something: a runtime that has not read its terminal yet
    would lose what is pasted into it."""
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while True:
        shown = fleet.server.capture(name, 50)
        if shown is not None and shown.strip():
            return
        if time.monotonic() > deadline:
            raise MamError(f"agent {name} shows nothing {READY_WAIT_SECONDS:g}s after its "
                           f"restart; look at it with `mam agent tail {name}`")
        time.sleep(0.1)


def reset(fleet: Fleet, name: str) -> Report:
    """The runtime's reset command where it has one (then the kickstart again if the persona
    must persist); otherwise a restart of the agent and its kickstart."""
    agent = fleet.roster.agent(name)
    runtime = fleet.roster.runtimes[agent.runtime]
    sent = []
    if runtime.reset_command is not None:
        _send(fleet, agent.name, runtime.reset_command)
        sent.append(runtime.reset_command)
        how = f"sent {runtime.reset_command}"
        kickstart = agent.kickstart() if agent.persistent_persona else None
    else:
        fleet.manager.restart_agent(agent.name)
        how = "restarted it (its runtime has no reset command)"
        kickstart = agent.kickstart()
    if kickstart:
        _wait_ready(fleet, agent.name)
        _send(fleet, agent.name, kickstart)
        sent.append("kickstart")
        how += ", then its kickstart"
    return Report({"agent": agent.name, "method": "command" if runtime.reset_command
                   else "restart", "sent": sent}, [f"reset {agent.name}: {how}"])


def tail(fleet: Fleet, name: str, lines: int) -> Report:
    agent = fleet.roster.agent(name)
    shown = fleet.server.capture(agent.name, lines)
    if shown is None:
        raise MamError(f"agent {agent.name} has no session on tmux -L "
                       f"{fleet.roster.socket_name}; start it with `mam fleet start {agent.name}`")
    return Report({"agent": agent.name, "lines": lines, "text": shown}, [shown.rstrip("\n")])
