"""`mam fleet init | start | stop | restart | status`: the whole fleet, or one agent of it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .context import Fleet, Report
from .envfiles import place_env_files
from .errors import ConflictError, UsageError

PROFILES = ("minimal", "team")


def init(fleet: Fleet, profile: str) -> Report:
    """Write an example roster where none is; never over an existing file (or symlink)."""
    if profile not in PROFILES:
        raise UsageError(f"no profile {profile!r}; use one of {', '.join(PROFILES)}")
    source = Path(__file__).resolve().parent / "examples" / f"{profile}.json"
    data = source.read_bytes()
    path = fleet.roster_path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o644)
    except FileExistsError:
        raise ConflictError(f"{path} exists and is yours; it was left as it is. Edit it, or "
                            "write the example elsewhere with --roster FILE") from None
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
    return Report({"roster": str(path), "profile": profile, "written": True},
                  [f"wrote the {profile} roster to {path}; edit it, then run `mam fleet start`"])


def _env_lines(outcomes: Any) -> list[str]:
    lines = []
    for outcome in outcomes:
        if outcome.action == "kept":
            lines.append(f"kept {outcome.path}: it was edited since mam wrote it; the roster's "
                         f"version is in {outcome.beside} (compare with `diff -u {outcome.path} "
                         f"{outcome.beside}`)")
        elif outcome.action == "written":
            lines.append(f"wrote {outcome.path}")
    return lines


def _targets(fleet: Fleet, agent: str | None) -> list[str]:
    if agent is None:
        return [a.name for a in fleet.roster.agents]
    return [fleet.roster.agent(agent).name]


def start(fleet: Fleet, agent: str | None) -> Report:
    names = _targets(fleet, agent)
    outcomes = place_env_files(fleet.roster, fleet.paths.fleet_env, fleet.paths.agent_env,
                               None if agent is None else names)
    manager = fleet.manager
    manager.start_holder()
    for name in names:
        manager.start_agent(name)
    data = {"manager": manager.kind, "started": names,
            "env_files": [{"path": str(o.path), "action": o.action} for o in outcomes]}
    return Report(data, [*_env_lines(outcomes),
                         f"started {', '.join(names)} on tmux -L {fleet.roster.socket_name} "
                         f"({manager.kind})"])


def stop(fleet: Fleet, agent: str | None) -> Report:
    """One agent, or every agent and then the holder (and with it the named server)."""
    manager = fleet.manager
    names = _targets(fleet, agent)
    for name in names:
        manager.stop_agent(name)
    if agent is None:
        manager.stop_holder()
    what = ", ".join(names) + ("" if agent else " and the holder")
    return Report({"manager": manager.kind, "stopped": names, "holder_stopped": agent is None},
                  [f"stopped {what}"])


def restart(fleet: Fleet, agent: str | None) -> Report:
    """One agent alone (the holder and the others keep running), or every agent in turn."""
    names = _targets(fleet, agent)
    outcomes = place_env_files(fleet.roster, fleet.paths.fleet_env, fleet.paths.agent_env,
                               names)
    manager = fleet.manager
    manager.start_holder()
    for name in names:
        manager.restart_agent(name)
    return Report({"manager": manager.kind, "restarted": names,
                   "env_files": [{"path": str(o.path), "action": o.action} for o in outcomes]},
                  [*_env_lines(outcomes), f"restarted {', '.join(names)}"])


def status_data(fleet: Fleet) -> dict[str, Any]:
    roster, server, manager = fleet.roster, fleet.server, fleet.manager
    server_pid = server.server_pid()
    sessions = set(server.sessions()) if server_pid is not None else set()
    agents = []
    for agent in roster.agents:
        running = agent.name in sessions
        agents.append({
            "name": agent.name, "class": agent.agent_class, "runtime": agent.runtime,
            "running": running, "pane_pid": server.pane_pid(agent.name) if running else None,
            "unit_state": manager.agent_state(agent.name),
        })
    return {
        "roster": str(roster.path), "transport": roster.transport, "manager": manager.kind,
        "socket": roster.socket_name,
        "holder": {"session": roster.holder_session, "server_pid": server_pid,
                   "running": server_pid is not None,
                   "session_present": roster.holder_session in sessions,
                   "unit_state": manager.holder_state()},
        "agents": agents,
    }


def status(fleet: Fleet) -> Report:
    data = status_data(fleet)
    holder = data["holder"]
    lines = [f"holder   tmux -L {data['socket']}: "
             + (f"server pid {holder['server_pid']}" if holder["running"] else "not running")
             + (f", unit {holder['unit_state']}" if holder["unit_state"] else "")]
    for agent in data["agents"]:
        state = f"running, pane pid {agent['pane_pid']}" if agent["running"] else "not running"
        unit = f", unit {agent['unit_state']}" if agent["unit_state"] else ""
        lines.append(f"agent    {agent['name']} ({agent['class']}, {agent['runtime']}): "
                     f"{state}{unit}")
    ok = holder["running"] and all(a["running"] for a in data["agents"])
    return Report(data, lines, ok)
