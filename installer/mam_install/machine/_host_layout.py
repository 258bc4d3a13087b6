"""Every per-user path of the host scope, derived from platformdirs and HOME (never global)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._layout import ScopeLayout

__all__ = ["APP_NAME", "HostLayout", "UnitKind", "host_layout", "unit_kind_for"]

APP_NAME = "mam"
UnitKind = Literal["systemd", "launchd"]


def unit_kind_for(system: str) -> UnitKind | None:
    """Which user service manager's unit files belong on this OS (None: neither)."""
    if system.startswith("linux"):
        return "systemd"
    if system == "darwin":
        return "launchd"
    return None


@dataclass(frozen=True)
class HostLayout:
    """Where the host scope's files go, and where its receipt and lock live (``data_dir``).

    ``state_dir`` is the runtime's state (locks, sequence numbers) that the units and tools get
    as ``MAM_STATE_DIR``; it is on local disk when the workspace is on a network filesystem.
    """

    home: Path
    data_dir: Path
    config_dir: Path
    state_dir: Path
    log_dir: Path
    units_dir: Path | None
    unit_kind: UnitKind | None
    state_dir_reason: str = "the user state directory"

    @property
    def tools_dir(self) -> Path:
        return self.data_dir / "bin"

    @property
    def env_sh(self) -> Path:
        return self.data_dir / "env.sh"

    @property
    def env_fish(self) -> Path:
        return self.data_dir / "env.fish"

    @property
    def templates_dir(self) -> Path:
        """Per-instance templates (one plist per agent) that must not sit where launchd loads."""
        return self.data_dir / "templates"

    @property
    def broker_dir(self) -> Path:
        return self.config_dir / "broker"

    @property
    def scope(self) -> ScopeLayout:
        """The engine's view: the receipt, lock, archived receipts and backups in ``data_dir``."""
        dirs = [self.data_dir, self.config_dir, self.log_dir, self.state_dir,
                self.config_dir.parent / "fish" / "conf.d", *filter(None, [self.units_dir])]
        real = {str(_real(d)) for d in dirs} | {str(d) for d in dirs}
        return ScopeLayout(root=self.data_dir, state_dir=self.data_dir, scope="host",
                           host_dirs=tuple(sorted(real)))


def _real(path: Path) -> Path:
    """The real path of ``path``'s nearest existing ancestor, plus the part that is missing (how
    the host planner names files in the receipt)."""
    missing: list[str] = []
    while not os.path.exists(path) and path.parent != path:
        missing.insert(0, path.name)
        path = path.parent
    return Path(os.path.realpath(path)).joinpath(*missing)


def _config_home(home: Path, env: Mapping[str, str]) -> Path:
    value = env.get("XDG_CONFIG_HOME", "")
    return Path(value) if value and os.path.isabs(value) else home / ".config"


def host_layout(
    *,
    network_fs: bool | None = False,
    env: Mapping[str, str] | None = None,
    system: str | None = None,
    home: Path | None = None,
) -> HostLayout:
    """The layout for this user; ``system`` (``sys.platform``) picks the platformdirs flavour.

    ``network_fs`` is whether the workspace is on a network filesystem (None: unknown). Then
    the runtime state goes to ``$XDG_RUNTIME_DIR/mam`` (local by definition, private, and where
    sockets work) when there is one; otherwise it stays in the user state dir.
    """
    from platformdirs.macos import MacOS
    from platformdirs.unix import Unix

    env = os.environ if env is None else env
    system = sys.platform if system is None else system
    home = Path(os.path.expanduser("~")) if home is None else home
    dirs = MacOS(APP_NAME, appauthor=False) if system == "darwin" else Unix(APP_NAME, False)
    kind = unit_kind_for(system)
    if kind == "systemd":
        units_dir: Path | None = _config_home(home, env) / "systemd" / "user"
    elif kind == "launchd":
        units_dir = home / "Library" / "LaunchAgents"
    else:
        units_dir = None
    state_dir, why = Path(dirs.user_state_dir), "the user state directory"
    runtime = env.get("XDG_RUNTIME_DIR", "")
    if network_fs is not False and runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        state_dir = Path(runtime) / APP_NAME
        why = (
            "XDG_RUNTIME_DIR, because the workspace is on a network filesystem"
            if network_fs
            else "XDG_RUNTIME_DIR, because the workspace's filesystem could not be identified"
        )
    return HostLayout(
        home=home,
        data_dir=Path(dirs.user_data_dir),
        config_dir=_config_home(home, env) / APP_NAME,
        state_dir=state_dir,
        log_dir=Path(dirs.user_log_dir),
        units_dir=units_dir,
        unit_kind=kind,
        state_dir_reason=why,
    )
