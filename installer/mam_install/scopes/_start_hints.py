"""How to start mam's units by hand where an install did not (exact commands for this host)."""

from __future__ import annotations

import os
import shlex

from ..actions._file_actions import KeepFile, ReplaceFile, WriteFile
from ..actions._host_actions import RunCommand
from ..engine._action import Action
from ..machine._detect import Host
from ..machine._host_layout import HostLayout
from ._host_planner import HOLDER_UNITS, tmux_socket

__all__ = ["start_hints"]


def start_hints(host: Host, layout: HostLayout, actions: list[Action]) -> list[str]:
    """How to start the units by hand, where this run did not (exact commands)."""
    kind, units_dir = layout.unit_kind, layout.units_dir
    holder_script = shlex.quote(str(layout.tools_dir / "mam-tmux-holder.sh"))
    by_hand = (
        f"MAM_TMUX_SOCKET={shlex.quote(tmux_socket(os.environ))} nohup {holder_script} "
        ">/dev/null 2>&1 &"
    )
    if kind is None or units_dir is None:
        return [f"there is no systemd or launchd here; start mam's tmux server with `{by_hand}`"]
    holder = HOLDER_UNITS[kind]
    installed = any(
        isinstance(a, (WriteFile, ReplaceFile, KeepFile))
        and a.owned() is not None
        and a.owned()[0].endswith("/" + holder)  # type: ignore[index]
        for a in actions
    )
    enabled = any(
        isinstance(a, RunCommand) and a.state == "completed" and "daemon-reload" not in a.argv
        for a in actions
    )
    if not installed or enabled:
        return []
    if kind == "launchd":
        domain = host.launchd_domain or f"gui/{host.uid}"
        plist = shlex.quote(str(units_dir / holder))
        return [f"to start mam's tmux server now: `launchctl bootstrap {domain} {plist}` "
                "(launchd also starts it at your next login)"]
    enable = f"systemctl --user enable --now {holder}"
    if host.systemd_user_usable:
        return [f"to start mam's tmux server now and at every login: `{enable}` "
                "(or install with --enable-units)"]
    if host.init == "systemd-user":
        hint = (
            f"the systemd user manager cannot be reached from here ({host.init_reason}); "
            f"from a login session run `systemctl --user daemon-reload && {enable}`"
        )
        if host.lingering is False and host.user:
            hint += f", and `loginctl enable-linger {host.user}` to keep it after you log out"
        return [hint]
    return [
        f"systemd is not running here ({host.init_reason}); the units in {units_dir} wait "
        f"for it. Start mam's tmux server by hand with `{by_hand}`"
    ]
