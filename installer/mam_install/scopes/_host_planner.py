"""The host planner: per-user tools, rendered units, env scripts and rc blocks, as ordered actions.

Every host file is planned in one ``plan_files`` call rooted at ``/``: each destination is
written as the real path of its nearest existing ancestor (so ``/home -> /usr/home`` or a
symlinked ``~/.config`` is followed the way the user's own programs follow it) plus the missing
tail, which ``plan_files`` creates with CreateDirectory actions it can undo. Nothing below that
ancestor is ever followed. One call, not one per directory, because ``plan_files`` treats every
file of the previous receipt below its base that it was not given as dropped.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..actions._file_actions import RemoveFile, ReplaceFile, WriteFile, owned_key
from ..actions._host_actions import AddRcBlock, RunCommand
from ..engine._action import Action
from ..engine._plan import Receipt
from ..machine._detect import Host
from ..machine._host_layout import HostLayout, UnitKind
from ..release._manifest import ManifestFile
from ..release._staging import StagedPayload
from ._env_scripts import env_fish, env_sh, fish_conf
from ._file_planner import PlannedFile, Previous, plan_files
from ._units import UnsafeValue, leftover_placeholders, render

__all__ = [
    "HOLDER_UNITS",
    "PER_INSTANCE_PLACEHOLDERS",
    "HostPlanOptions",
    "host_settings",
    "plan_host",
    "template_values",
]

# Filled later, once per agent: a template holding one is not a unit launchd may load.
PER_INSTANCE_PLACEHOLDERS = frozenset({"MAM_AGENT_NAME"})
HOLDER_UNITS: dict[UnitKind, str] = {
    "systemd": "mam-tmux-holder.service",
    "launchd": "org.mam.tmux-holder.plist",
}
HOLDER_LABEL = "org.mam.tmux-holder"
DEFAULT_TMUX_SOCKET = "mam"
DEFAULT_MQTT_PORT = "8883"
# The same rule as lib.sh's mam_valid_socket_name: no leading "-" (tmux would read an option).
_SOCKET_NAME = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$")
# The broker config is installed under the name its own comments (and `mosquitto -c`) use.
_BROKER_NAMES = {"mam-broker.conf": "mosquitto.conf"}


class HostPlanOptions(Protocol):
    """The parts of HostOptions (in _cmd_host) the planner reads."""

    @property
    def no_units(self) -> bool: ...

    @property
    def no_modify_path(self) -> bool: ...

    @property
    def enable_units(self) -> bool: ...


class Notes(Protocol):
    def info(self, message: str) -> None: ...

    def warn(self, message: str) -> None: ...


class _Quiet:
    def info(self, message: str) -> None:
        return None

    def warn(self, message: str) -> None:
        return None


@dataclass(frozen=True)
class _HostFile:
    dest: Path
    sha256: str
    mode: int
    source: str


def _real(dest: Path) -> Path:
    """The real path of ``dest``'s nearest existing ancestor, plus the part that is missing."""
    missing: list[str] = []
    current = dest
    while not os.path.exists(current) and current.parent != current:
        missing.insert(0, current.name)
        current = current.parent
    return Path(os.path.realpath(current)).joinpath(*missing)


def _rel(path: Path) -> str:
    return str(path)[1:]  # relative to "/": the one base every host file is planned from


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tmux_socket(env: Mapping[str, str]) -> str:
    name = env.get("MAM_TMUX_SOCKET") or DEFAULT_TMUX_SOCKET
    if not _SOCKET_NAME.match(name):
        from .._errors import UsageError

        raise UsageError(
            f"MAM_TMUX_SOCKET={name!r} is not a plain socket name (letters, digits, '.', '_', "
            "'-'); unset it or choose one like `mam`"
        )
    return name


def _mqtt_port(env: Mapping[str, str]) -> str:
    port = env.get("MAM_MQTT_PORT") or DEFAULT_MQTT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        from .._errors import UsageError

        raise UsageError(f"MAM_MQTT_PORT={port!r} is not a TCP port; unset it or use 8883")
    return str(int(port))


def _tmux_path(host: Host, previous: Receipt | None) -> str | None:
    if host.tmux.present and host.tmux.path:
        return host.tmux.path
    recorded = previous.plan.settings.get("tmux") if previous is not None else None
    return recorded if isinstance(recorded, str) and recorded else None


def template_values(
    host: Host, layout: HostLayout, env: Mapping[str, str], previous: Receipt | None = None
) -> dict[str, str]:
    """The value of every placeholder the payload's templates may use (tmux may be "")."""
    return {
        "MAM_TOOLS_DIR": str(layout.tools_dir),
        "MAM_PYTHON": host.python.executable,
        "MAM_TMUX": _tmux_path(host, previous) or "",
        "MAM_TMUX_SOCKET": tmux_socket(env),
        "MAM_STATE_DIR": str(layout.state_dir),
        "MAM_CONFIG_DIR": str(layout.config_dir),
        "MAM_HOME": str(host.home),
        "MAM_LOG_DIR": str(layout.log_dir),
        "MAM_MQTT_PORT": _mqtt_port(env),
    }


def host_settings(
    host: Host,
    layout: HostLayout,
    options: HostPlanOptions,
    env: Mapping[str, str] | None = None,
    previous: Receipt | None = None,
) -> dict[str, Any]:
    """What the host receipt records about how this plan was made."""
    values = template_values(host, layout, os.environ if env is None else env, previous)
    return {
        "data_dir": str(layout.data_dir),
        "tools_dir": str(layout.tools_dir),
        "config_dir": str(layout.config_dir),
        "units_dir": str(layout.units_dir) if layout.units_dir else None,
        "unit_kind": layout.unit_kind,
        "state_dir": str(layout.state_dir),
        "state_dir_reason": layout.state_dir_reason,
        "workspace": host.workspace.path if host.workspace else None,
        "workspace_network_fs": host.workspace.network_fs if host.workspace else None,
        "tmux": values["MAM_TMUX"] or None,
        "tmux_socket": values["MAM_TMUX_SOCKET"],
        "python": values["MAM_PYTHON"],
        "no_units": options.no_units,
        "no_modify_path": options.no_modify_path,
        "enable_units": options.enable_units,
    }


@dataclass
class _Planner:
    host: Host
    payload: StagedPayload
    layout: HostLayout
    previous: Receipt | None
    options: HostPlanOptions
    render_dir: Path
    env: Mapping[str, str]
    notes: Notes

    def __post_init__(self) -> None:
        self.files: list[_HostFile] = []
        self.sources: dict[str, Path] = {}
        self.owned = Previous.from_receipt(self.previous).files

    def _previously_owned_below(self, directory: Path | None) -> bool:
        if directory is None:
            return False
        prefix = str(_real(directory)).rstrip("/") + "/"
        return any(key.startswith(prefix) for key in self.owned)

    def _add(self, dest: Path, data: bytes, mode: int, key: str, source: Path) -> None:
        """Plan ``dest`` from bytes made here, kept in ``source`` inside the render dir."""
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(data)
        self.sources[key] = source
        self.files.append(_HostFile(dest, _sha(data), mode, key))

    def _generated(self, dest: Path, data: bytes, name: str) -> None:
        self._add(dest, data, 0o644, f"generated/{name}", self.render_dir / "generated" / name)

    def plan_tools(self) -> None:
        """Tools are copied as staged: their hash is the verified one from the manifest."""
        for entry in self.payload.manifest.in_scope("host"):
            if entry.path.startswith("tools/"):
                dest = self.layout.tools_dir / entry.path[len("tools/") :]
                self.sources[entry.member] = self.payload.path_of(entry)
                self.files.append(_HostFile(dest, entry.sha256, entry.mode, entry.member))
        # The running pyz itself, as `mam-install` beside them on PATH (not from a source tree).
        from .._hashing import sha256_file
        from ._self_pyz import SELF_SOURCE, installed_path, running_pyz

        pyz = running_pyz()
        if pyz is not None:
            self.sources[SELF_SOURCE] = pyz
            dest = installed_path(self.layout)
            self.files.append(_HostFile(dest, sha256_file(pyz), 0o755, SELF_SOURCE))

    def _render(self, entry: ManifestFile, values: Mapping[str, str]) -> bytes:
        template = self.payload.path_of(entry).read_bytes()
        return render(template, values, origin=entry.member, keep=PER_INSTANCE_PLACEHOLDERS)

    def plan_templates(self) -> None:
        """Units for this OS's service manager, and the broker config."""
        values = template_values(self.host, self.layout, self.env, self.previous)
        host_files = self.payload.manifest.in_scope("host")
        for entry in host_files:
            if entry.path.startswith("mosquitto/"):
                name = entry.path[len("mosquitto/") :]
                dest = self.layout.broker_dir / _BROKER_NAMES.get(name, name)
                key = f"rendered/{entry.path}"
                self._add(dest, self._render(entry, values), 0o644, key, self.render_dir / key)
        kind, units_dir = self.layout.unit_kind, self.layout.units_dir
        if kind is None or units_dir is None:
            return
        if self.options.no_units and not self._previously_owned_below(units_dir):
            return
        if self.options.no_units:
            self.notes.info(
                f"--no-units: the units an earlier install put in {units_dir} are kept up to "
                "date; `mam-install uninstall --host` removes them"
            )
        if not values["MAM_TMUX"]:
            self.notes.warn(
                "tmux is not installed, and the units run it; they were not installed. "
                "Install tmux (`mam-install doctor` names the command) and run the install again"
            )
            return
        prefix = f"units/{kind}/"
        planned: list[tuple[ManifestFile, bytes]] = []
        try:
            for entry in host_files:
                if entry.path.startswith(prefix):
                    planned.append((entry, self._render(entry, values)))
        except UnsafeValue as exc:
            self.notes.warn(f"the units were not installed: {exc}")
            return
        for entry, data in planned:
            name = entry.path[len(prefix) :]
            per_instance = set(leftover_placeholders(data)) & PER_INSTANCE_PLACEHOLDERS
            dest = (self.layout.templates_dir / kind if per_instance else units_dir) / name
            key = f"rendered/{entry.path}"
            self._add(dest, data, 0o644, key, self.render_dir / key)
        if self.host.mqtt_client is False:
            from ..machine._doctor import paho_install_command

            self.notes.warn(
                f"the MQTT monitor unit runs MAM_PYTHON from {self.layout.config_dir}/mqtt.env, "
                f"else python3 on PATH; {values['MAM_PYTHON']} cannot import paho.mqtt: "
                f"install it with `{paho_install_command(self.host)}`"
            )

    def _on_path(self) -> bool:
        tools = {str(self.layout.tools_dir), os.path.realpath(self.layout.tools_dir)}
        entries = self.env.get("PATH", "").split(os.pathsep)
        return any(entry and os.path.normpath(entry) in tools for entry in entries)

    def plan_path(self) -> list[Action]:
        """Env scripts, the fish conf.d file, and one block per rc file (carried or new)."""
        want = not self.options.no_modify_path
        on_path = want and self._on_path()
        if not want:
            self.notes.info("--no-modify-path: no shell rc file was touched")
        earlier: dict[str, AddRcBlock] = {}
        if self.previous is not None:
            for action in self.previous.plan.actions:
                if action.tag == "add_rc_block" and action.state == "completed":
                    assert isinstance(action, AddRcBlock)
                    earlier[action.path] = action
        candidates: list[tuple[Path, str]] = [
            (rc.path, rc.family) for rc in self.host.rc_files if rc.family != "fish"
        ]
        known = {str(path) for path, _ in candidates}
        candidates += [(Path(p), a.family) for p, a in earlier.items() if p not in known]
        blocks: list[Action] = []
        for path, family in candidates:
            action = AddRcBlock.plan(
                path, self.layout.env_sh, family=family, previous=earlier.get(str(path))
            )
            if action.state == "completed":
                blocks.append(action)
            elif want and not on_path:
                if action.state == "skipped":
                    self.notes.warn(f"{path} was left alone: {action.reason}")
                blocks.append(action)
        if on_path and not any(a.state == "completed" for a in blocks):
            # Said only when it is not our own block that put it there.
            self.notes.info(
                f"{self.layout.tools_dir} is already on PATH; no rc file was changed for it"
            )
        fish = next((rc.path for rc in self.host.rc_files if rc.family == "fish"), None)
        fish = fish or self.layout.config_dir.parent / "fish" / "conf.d" / "mam.fish"
        fish_owned = str(_real(fish)) in self.owned
        fish_wanted = want and not on_path and any(rc.family == "fish" for rc in self.host.rc_files)
        # Written even with --no-modify-path: the user is told the line that sources them.
        self._generated(self.layout.env_sh, env_sh(self.layout.tools_dir), "env.sh")
        self._generated(self.layout.env_fish, env_fish(self.layout.tools_dir), "env.fish")
        if fish_wanted or fish_owned:
            self._generated(fish, fish_conf(self.layout.env_fish), "mam.fish")
        return blocks

    def plan_files(self) -> list[Action]:
        same = self.previous is not None and (
            self.previous.plan.payload_version == self.payload.manifest.version
        )
        planned = tuple(
            PlannedFile(path=_rel(_real(f.dest)), sha256=f.sha256, mode=f.mode, source=f.source)
            for f in self.files
        )
        return plan_files(Path("/"), planned, Previous.from_receipt(self.previous), base="/",
                          same_version=same)

    def plan_commands(self, file_actions: list[Action]) -> list[Action]:
        kind, units_dir = self.layout.unit_kind, self.layout.units_dir
        if kind is None or units_dir is None:
            return []
        real_units = str(_real(units_dir)).rstrip("/") + "/"
        holder = _real(units_dir / HOLDER_UNITS[kind])
        changed = any(
            isinstance(a, (WriteFile, ReplaceFile, RemoveFile))
            and a.needs_execute
            and owned_key(a.path, a.base).startswith(real_units)
            for a in file_actions
        )
        holder_ours = any(
            a.owned() is not None and a.owned()[0] == str(holder)  # type: ignore[index]
            for a in file_actions
        )
        commands: list[Action] = []
        if kind == "systemd" and changed and self.host.systemd_user_usable:
            reload = ["systemctl", "--user", "daemon-reload"]
            commands.append(RunCommand(
                argv=reload, revert_argv=reload, on_revert_failure="warn",
                description="make the user manager read mam's units",
            ))
        enabled = self._earlier_enable(holder_ours)
        if enabled is not None:
            commands.append(enabled)
        elif self.options.enable_units:
            command = self._enable(kind, units_dir, holder, holder_ours)
            if command is not None:
                commands.append(command)
        return commands

    def _earlier_enable(self, holder_ours: bool) -> RunCommand | None:
        """An enable of an earlier run, carried so uninstall still disables it."""
        if self.previous is None or not holder_ours:
            return None
        for action in self.previous.plan.actions:
            if isinstance(action, RunCommand) and action.state == "completed" and (
                action.argv[:3] == ["systemctl", "--user", "enable"]
                or action.argv[:2] == ["launchctl", "bootstrap"]
            ):
                carried = RunCommand(
                    argv=list(action.argv), revert_argv=list(action.revert_argv),
                    description=action.description, timeout=action.timeout,
                    on_failure=action.on_failure, on_revert_failure=action.on_revert_failure,
                )
                carried.state, carried.carried = "completed", True
                return carried
        return None

    def _enable(
        self, kind: UnitKind, units_dir: Path, holder: Path, holder_ours: bool
    ) -> RunCommand | None:
        if not holder_ours:
            self.notes.warn(
                f"{holder} is not mam's as installed (see above); it was not enabled"
            )
            return None
        if kind == "systemd":
            if not self.host.systemd_user_usable:
                self.notes.warn(
                    "--enable-units: the systemd user manager cannot be reached from here "
                    f"({self.host.init_reason or 'unknown reason'}); the units were installed "
                    "but not enabled"
                )
                return None
            unit = HOLDER_UNITS["systemd"]
            return RunCommand(
                argv=["systemctl", "--user", "enable", "--now", unit],
                revert_argv=["systemctl", "--user", "disable", "--now", unit],
                description="start mam's tmux server now and at every login",
            )
        domain = self.host.launchd_domain or f"gui/{self.host.uid}"
        # Unlike `systemctl enable --now`, bootstrap fails for a job launchd already loaded
        # (at login, from an earlier install): that must not undo the whole install.
        return RunCommand(
            argv=["launchctl", "bootstrap", domain, str(units_dir / holder.name)],
            revert_argv=["launchctl", "bootout", f"{domain}/{HOLDER_LABEL}"],
            description="start mam's tmux server now (launchd starts it at every login)",
            on_failure="warn",
        )


def plan_host(
    host: Host,
    staged: StagedPayload,
    layout: HostLayout,
    previous: Receipt | None,
    options: HostPlanOptions,
    render_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    feedback: Notes | None = None,
) -> tuple[list[Action], dict[str, Path]]:
    """Inspect the host and return (ordered actions, source map for Context.sources).

    Rendered units and generated env scripts are written into ``render_dir`` (inside the
    staging directory); nothing outside it is touched. ``env`` defaults to ``os.environ``
    (PATH, MAM_TMUX_SOCKET, MAM_MQTT_PORT); ``feedback`` hears what the user should know.
    """
    planner = _Planner(
        host, staged, layout, previous, options, render_dir,
        os.environ if env is None else env, feedback or _Quiet(),
    )
    planner.plan_tools()
    planner.plan_templates()
    blocks = planner.plan_path()
    file_actions = planner.plan_files()
    actions = [*file_actions, *blocks, *planner.plan_commands(file_actions)]
    if host.workspace is not None and host.workspace.network_fs is not False:
        planner.notes.info(
            f"mam's locks and sequence numbers go to {layout.state_dir} "
            f"({layout.state_dir_reason})"
        )
    return actions, planner.sources
