"""Where the fleet's files live for this user (the same places mam-install puts them)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def _absolute(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "")
    return Path(value) if value and os.path.isabs(value) else None


@dataclass(frozen=True)
class FleetPaths:
    """``config_dir`` holds the roster and the env files; ``tools_dir`` the scripts mam runs."""

    home: Path
    config_dir: Path
    state_dir: Path
    tools_dir: Path
    system: str

    @property
    def default_roster(self) -> Path:
        return self.config_dir / "fleet.json"

    @property
    def fleet_env(self) -> Path:
        return self.config_dir / "fleet.env"

    @property
    def agents_dir(self) -> Path:
        return self.config_dir / "agents"

    def agent_env(self, name: str) -> Path:
        return self.agents_dir / f"{name}.env"

    @property
    def broker_dir(self) -> Path:
        return self.config_dir / "broker"

    @property
    def mqtt_env(self) -> Path:
        return self.config_dir / "mqtt.env"

    @property
    def launch_agents_dir(self) -> Path:
        return self.home / "Library" / "LaunchAgents"

    @property
    def templates_dir(self) -> Path:
        """Per-instance templates mam-install keeps beside the bin dir (data_dir/templates)."""
        return self.tools_dir.parent / "templates"

    @property
    def systemd_units_dir(self) -> Path:
        return self.config_dir.parent / "systemd" / "user"

    def tool(self, name: str) -> Path:
        return self.tools_dir / name


def fleet_paths(env: Mapping[str, str] | None = None, tools_dir: Path | None = None,
                system: str | None = None) -> FleetPaths:
    env = os.environ if env is None else env
    system = sys.platform if system is None else system
    home = _absolute(env, "HOME") or Path(os.path.expanduser("~"))
    config_home = _absolute(env, "XDG_CONFIG_HOME") or home / ".config"
    if _absolute(env, "MAM_STATE_DIR") is not None:
        state_dir = Path(env["MAM_STATE_DIR"])
    elif system == "darwin":
        state_dir = home / "Library" / "Application Support" / "mam"
    else:
        state_dir = (_absolute(env, "XDG_STATE_HOME") or home / ".local" / "state") / "mam"
    if tools_dir is None:
        tools_dir = Path(__file__).resolve().parent.parent
    return FleetPaths(home=home, config_dir=config_home / "mam", state_dir=state_dir,
                      tools_dir=tools_dir, system=system)
