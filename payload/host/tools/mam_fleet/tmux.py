"""One tmux server, addressed by socket name, with exact ``=name`` targets only."""

from __future__ import annotations

from collections.abc import Mapping

from .runner import Result, Runner


class TmuxServer:
    """``socket`` None is the user's default server, which mam only ever reads."""

    def __init__(self, runner: Runner, binary: str, socket: str | None,
                 env: Mapping[str, str]) -> None:
        self.runner, self.binary, self.socket, self.env = runner, binary, socket, env

    @property
    def label(self) -> str:
        return f"tmux -L {self.socket}" if self.socket else "the default tmux server"

    def run(self, *args: str, timeout: float = 20.0) -> Result:
        argv = [self.binary, *(["-L", self.socket] if self.socket else []), *args]
        return self.runner.run(argv, env=self.env, timeout=timeout)

    def server_pid(self) -> int | None:
        # list-sessions first: display-message without a session fails on an empty server.
        done = self.run("display-message", "-p", "#{pid}")
        if not done.ok:
            done = self.run("list-sessions", "-F", "#{pid}")
        first = done.stdout.split()[:1] if done.ok else []
        return int(first[0]) if first and first[0].isdigit() else None

    def sessions(self) -> list[str]:
        done = self.run("list-sessions", "-F", "#{session_name}")
        return done.stdout.split("\n")[:-1] if done.ok else []

    def has(self, name: str) -> bool:
        return self.run("has-session", "-t", f"={name}").ok

    def pane_pid(self, name: str) -> int | None:
        done = self.run("display-message", "-p", "-t", f"={name}:", "#{pane_pid}")
        text = done.stdout.strip()
        return int(text) if done.ok and text.isdigit() else None

    def pane_info(self, name: str) -> Mapping[str, str] | None:
        """The pane's working directory and command, for adopting a session."""
        done = self.run("display-message", "-p", "-t", f"={name}:",
                        "#{pane_current_path}\t#{pane_current_command}\t#{pane_start_command}")
        if not done.ok:
            return None
        path, _, rest = done.stdout.rstrip("\n").partition("\t")
        current, _, start = rest.partition("\t")
        return {"path": path, "current_command": current, "start_command": start}

    def capture(self, name: str, lines: int) -> str | None:
        done = self.run("capture-pane", "-p", "-J", "-t", f"={name}:", "-S", f"-{lines}")
        if not done.ok:
            return None
        text = done.stdout.rstrip("\n").split("\n")
        return "\n".join(text[-lines:]) + "\n"
