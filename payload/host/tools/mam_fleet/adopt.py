"""`mam fleet adopt`: propose the roster that recreates the default server's sessions as agents.

It reads the user's default tmux server and changes nothing: with ``--write FILE`` it writes the
proposal to a new file (never over one). It never kills, renames or sends to a session there;
the cutover is: start the fleet on its own socket, check it, then close the old sessions by hand.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .context import Fleet, Report
from .errors import ConflictError
from .roster import _UNSAFE_VALUE, NAME, parse_roster

KNOWN_RUNTIMES = {
    "claude": {"command": "claude", "reset_command": "/clear"},
    "codex": {"command": "codex", "reset_command": "/new"},
    "gemini": {"command": "gemini"},
    "aider": {"command": "aider"},
    "opencode": {"command": "opencode"},
}


def _safe_name(session: str, taken: set) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", session).strip("-_")[:56] or "agent"
    if not NAME.match(base):
        base = f"agent-{base}"[:56]
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def propose(fleet: Fleet) -> dict[str, Any]:
    server = fleet.default_server
    taken = {"mam-holder"}
    runtimes: dict[str, dict[str, str]] = {}
    agents: list[dict[str, Any]] = []
    sessions = []
    for session in server.sessions():
        info = server.pane_info(session) or {}
        current = (info.get("current_command") or "").strip()
        runtime = current if current in KNOWN_RUNTIMES else "shell"
        runtimes[runtime] = dict(KNOWN_RUNTIMES.get(runtime, {"command": "sh -l"}))
        name = _safe_name(session, taken)
        entry: dict[str, Any] = {"name": name, "runtime": runtime, "class": "agent"}
        path = info.get("path") or ""
        if path.startswith("/") and not _UNSAFE_VALUE.search(path):
            entry["working_directory"] = path
        agents.append(entry)
        sessions.append({"session": session, "proposed_name": name, "runtime": runtime,
                         "working_directory": entry.get("working_directory"),
                         "current_command": current})
    roster = {"transport": "tmux",
              "tmux": {"socket_name": "mam", "holder_session": "mam-holder"},
              "defaults": {"working_directory": "~"}, "runtimes": runtimes, "agents": agents}
    return {"sessions": sessions, "roster": roster}


def adopt(fleet: Fleet, write: Path | None) -> Report:
    proposal = propose(fleet)
    lines = [f"{s['session']!r} -> agent {s['proposed_name']} ({s['runtime']}) in "
             f"{s['working_directory'] or '~'}" for s in proposal["sessions"]]
    if not proposal["sessions"]:
        lines.append("the default tmux server has no sessions to adopt")
    proposal["written"] = None
    if write is not None and proposal["sessions"]:
        parse_roster(proposal["roster"], write, fleet.paths.home)  # what we write must load
        data = (json.dumps(proposal["roster"], indent=2) + "\n").encode()
        write.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(write, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except FileExistsError:
            raise ConflictError(f"{write} exists; it was left as it is. Pass --write with a "
                                "new file name") from None
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        proposal["written"] = str(write)
        lines.append(f"wrote the proposed roster to {write}; nothing on the default server "
                     "was changed")
    else:
        lines.append("nothing was changed; pass --write FILE to save this as a roster")
    return Report(proposal, lines)
