"""What every command works with: the paths, the roster, the tmux servers and the manager."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PlatformError
from .managers import Manager, choose_manager
from .paths import FleetPaths
from .roster import Roster, load_roster
from .runner import Runner
from .tmux import TmuxServer


@dataclass
class Report:
    """A command's outcome: the JSON document, the lines for a person, and whether it is ok."""

    data: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    ok: bool = True


class Fleet:
    def __init__(self, paths: FleetPaths, runner: Runner, env: Mapping[str, str],
                 roster_path: Path | None, manager_choice: str = "auto") -> None:
        self.paths, self.runner, self.env = paths, runner, env
        self.roster_path = roster_path or paths.default_roster
        self.manager_choice = manager_choice
        self._roster: Roster | None = None
        self._manager: Manager | None = None

    @property
    def roster(self) -> Roster:
        if self._roster is None:
            self._roster = load_roster(self.roster_path, self.paths.home)
        return self._roster

    @property
    def tmux_binary(self) -> str:
        binary = self.env.get("MAM_TMUX") or shutil.which("tmux", path=self.env.get("PATH"))
        if not binary:
            raise PlatformError("tmux is not installed; install it (apt-get install tmux, "
                                "brew install tmux) or set MAM_TMUX")
        return binary

    @property
    def server(self) -> TmuxServer:
        """The fleet's own server: the roster's named socket."""
        return TmuxServer(self.runner, self.tmux_binary, self.roster.socket_name, self.env)

    @property
    def default_server(self) -> TmuxServer:
        """The user's default tmux server: only ever read."""
        return TmuxServer(self.runner, self.tmux_binary, None, self.env)

    @property
    def manager(self) -> Manager:
        if self._manager is None:
            self._manager = choose_manager(self.manager_choice, self.runner, self.paths,
                                           self.roster, self.env)
        return self._manager
