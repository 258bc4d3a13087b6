"""`mam fleet verify`: prove the holder pattern on the live fleet, one named check at a time.

The holder owns the named socket; every agent session has its exact name; restarting one agent
keeps the server's PID and its siblings' panes; the user's default tmux server is untouched.
"""

from __future__ import annotations

import time
from typing import Any

from .context import Fleet, Report

RESTART_WAIT_SECONDS = 30.0


def _check(checks: list[dict[str, Any]], name: str, ok: bool, detail: str) -> bool:
    checks.append({"name": name, "ok": ok, "detail": detail})
    return ok


def _default_snapshot(fleet: Fleet) -> tuple[int | None, list[str]]:
    server = fleet.default_server
    pid = server.server_pid()
    return pid, sorted(server.sessions()) if pid is not None else []


def _wait_for_new_pane(fleet: Fleet, name: str, old: int | None) -> int | None:
    deadline = time.monotonic() + RESTART_WAIT_SECONDS
    while True:
        pid = fleet.server.pane_pid(name)
        if pid is not None and pid != old:
            return pid
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def verify(fleet: Fleet, agent: str | None) -> Report:
    roster, server, manager = fleet.roster, fleet.server, fleet.manager
    checks: list[dict[str, Any]] = []
    default_before = _default_snapshot(fleet)
    pid = server.server_pid()
    owned = pid is not None and manager.holder_owns(pid)
    _check(checks, "holder_owns_socket", owned,
           f"tmux -L {roster.socket_name} server pid {pid}, held by the {manager.kind} holder"
           if owned else f"no server on tmux -L {roster.socket_name} held by the "
           f"{manager.kind} holder (server pid {pid}); run `mam fleet start`")
    sessions = server.sessions()
    _check(checks, "holder_session", roster.holder_session in sessions,
           f"holder session {roster.holder_session!r} present"
           if roster.holder_session in sessions
           else f"holder session {roster.holder_session!r} missing")
    missing = [a.name for a in roster.agents if not server.has(a.name)]
    exact = [a.name for a in roster.agents if a.name in sessions]
    _check(checks, "agent_sessions_exact",
           not missing and len(exact) == len(roster.agents),
           "every agent has a session of exactly its name" if not missing
           else f"no session named exactly {', '.join(missing)}")
    if pid is not None and not missing:
        _restart_check(fleet, checks, agent or roster.agents[0].name, pid)
    default_after = _default_snapshot(fleet)
    _check(checks, "default_server_untouched", default_after == default_before,
           f"default tmux server pid {default_after[0]}, sessions {default_after[1]}, "
           "as before" if default_after == default_before
           else f"the default tmux server changed: {default_before} -> {default_after}")
    ok = all(c["ok"] for c in checks)
    lines = [f"{'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}" for c in checks]
    return Report({"ok": ok, "socket": roster.socket_name, "manager": manager.kind,
                   "checks": checks}, lines, ok)


def _restart_check(fleet: Fleet, checks: list[dict[str, Any]], name: str, pid: int) -> None:
    server = fleet.server
    before = {a.name: server.pane_pid(a.name) for a in fleet.roster.agents}
    fleet.manager.restart_agent(name)
    new_pane = _wait_for_new_pane(fleet, name, before[name])
    after = {a.name: server.pane_pid(a.name) for a in fleet.roster.agents}
    siblings_kept = all(after[n] == before[n] for n in before if n != name)
    same_server = server.server_pid() == pid
    _check(checks, "restart_keeps_server_and_siblings",
           new_pane is not None and siblings_kept and same_server,
           f"restarted {name} (pane {before[name]} -> {new_pane}); server pid {pid} kept: "
           f"{same_server}; the other agents' panes kept: {siblings_kept}")
