"""The roster (~/.config/mam/fleet.json): which agents this machine runs, parsed strictly.

A roster is input, not truth: it may come from a dotfiles repository or a teammate. Every key
is known, every value typed, every name safe as a tmux target, a unit instance and a file name,
and every error names the file and the field (``agents[1].name``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RosterError

__all__ = ["Agent", "Roster", "Runtime", "load_roster", "parse_roster"]

# The same rules as lib.sh's mam_valid_name / mam_valid_socket_name.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SOCKET = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$")
RESET_COMMANDS = ("/clear", "/new")
MAX_ROSTER_BYTES = 1024 * 1024
MAX_KICKSTART_BYTES = 64 * 1024
# Values go into env files read by both lib.sh and systemd, single-quoted: no quote, backslash
# or control character can be carried there without changing meaning.
_UNSAFE_VALUE = re.compile(r"['\\\x00-\x1f\x7f]")

TOP_KEYS = {"transport", "tmux", "defaults", "runtimes", "agents"}
AGENT_KEYS = {"name", "runtime", "class", "working_directory", "model_hint", "persistent_persona",
              "reset_between_tasks", "kickstart"}


@dataclass(frozen=True)
class Runtime:
    name: str
    command: str
    reset_command: str | None


@dataclass(frozen=True)
class Agent:
    name: str
    runtime: str
    agent_class: str
    working_directory: Path
    model_hint: str | None
    persistent_persona: bool
    reset_between_tasks: bool
    kickstart_text: str | None
    kickstart_file: Path | None

    def kickstart(self) -> str | None:
        """The kickstart text, read from its file when it has one."""
        if self.kickstart_file is None:
            return self.kickstart_text
        try:
            data = self.kickstart_file.read_bytes()
        except OSError as exc:
            raise RosterError(f"{self.kickstart_file}: cannot read the kickstart of agent "
                              f"{self.name} ({exc.strerror}); fix kickstart.file") from None
        if len(data) > MAX_KICKSTART_BYTES:
            raise RosterError(f"{self.kickstart_file}: the kickstart of agent {self.name} is "
                              f"over {MAX_KICKSTART_BYTES} bytes")
        return data.decode("utf-8", "replace")


@dataclass(frozen=True)
class Roster:
    path: Path
    transport: str
    socket_name: str
    holder_session: str
    default_working_directory: Path
    runtimes: dict[str, Runtime]
    agents: tuple[Agent, ...]

    def agent(self, name: str) -> Agent:
        for agent in self.agents:
            if agent.name == name:
                return agent
        known = ", ".join(a.name for a in self.agents) or "none"
        from .errors import UsageError

        raise UsageError(f"{self.path} has no agent {name!r} (agents: {known}); "
                         "`mam agent roster` lists them")


class _Checker:
    def __init__(self, path: Path, home: Path) -> None:
        self.path, self.home = path, home

    def fail(self, field: str, problem: str) -> RosterError:
        return RosterError(f"{self.path}: {field}: {problem}" if field
                           else f"{self.path}: the roster {problem}")

    def mapping(self, value: Any, field: str, allowed: set | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"must be an object, not {type(value).__name__}")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise self.fail(f"{field}.{unknown[0]}" if field else unknown[0],
                                f"unknown key (known: {', '.join(sorted(allowed))})")
        return value

    def text(self, value: Any, field: str, *, limit: int = 4096, env_safe: bool = True) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(field, "must be a non-empty string")
        if len(value) > limit:
            raise self.fail(field, f"is longer than {limit} characters")
        if env_safe and _UNSAFE_VALUE.search(value):
            raise self.fail(field, "may not hold a quote ('), a backslash or a control "
                            "character; put such a command in a script and name the script")
        return value

    def name(self, value: Any, field: str, pattern: re.Pattern[str] = NAME) -> str:
        if not isinstance(value, str) or not pattern.match(value):
            raise self.fail(field, f"{value!r} is not a safe name: 1-64 letters, digits, "
                            "'_' or '-', starting with a letter or digit")
        return value

    def flag(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, "must be true or false")
        return value

    def directory(self, value: Any, field: str, base: Path | None = None) -> Path:
        text = self.text(value, field)
        if text == "~" or text.startswith("~/"):
            return self.home / text[2:] if text != "~" else self.home
        path = Path(text)
        if path.is_absolute():
            return path
        if base is not None:
            return base / path
        raise self.fail(field, f"{text!r} must be absolute or start with ~/")


def parse_roster(data: Any, path: Path, home: Path) -> Roster:
    """Check a decoded roster document and return it typed; RosterError names what is wrong."""
    check = _Checker(path, home)
    top = check.mapping(data, "", TOP_KEYS)
    transport = top.get("transport", "tmux")
    if transport != "tmux":
        raise check.fail("transport", f"{transport!r} is not supported; use \"tmux\"")
    tmux = check.mapping(top.get("tmux", {}), "tmux", {"socket_name", "holder_session"})
    socket = check.name(tmux.get("socket_name", "mam"), "tmux.socket_name", SOCKET)
    holder = check.name(tmux.get("holder_session", "mam-holder"), "tmux.holder_session")
    defaults = check.mapping(top.get("defaults", {}), "defaults", {"working_directory"})
    default_dir = check.directory(defaults.get("working_directory", "~"),
                                  "defaults.working_directory")
    runtimes: dict[str, Runtime] = {}
    for key, spec in check.mapping(top.get("runtimes", {}), "runtimes").items():
        field = f"runtimes.{key}"
        check.name(key, field)
        spec = check.mapping(spec, field, {"command", "reset_command"})
        if "command" not in spec:
            raise check.fail(f"{field}.command", "is required")
        reset = spec.get("reset_command")
        if reset is not None and reset not in RESET_COMMANDS:
            raise check.fail(f"{field}.reset_command",
                             f"{reset!r} is not one of {', '.join(RESET_COMMANDS)} (or absent)")
        runtimes[key] = Runtime(key, check.text(spec["command"], f"{field}.command"), reset)
    agents_raw = top.get("agents")
    if not isinstance(agents_raw, list) or not agents_raw:
        raise check.fail("agents", "must be a non-empty list of agents")
    agents: list[Agent] = []
    seen = {holder: "tmux.holder_session"}
    for index, raw in enumerate(agents_raw):
        agents.append(_agent(check, raw, f"agents[{index}]", runtimes, default_dir, seen))
    return Roster(path, transport, socket, holder, default_dir, runtimes, tuple(agents))


def _agent(check: _Checker, raw: Any, field: str, runtimes: dict[str, Runtime],
           default_dir: Path, seen: dict[str, str]) -> Agent:
    spec = check.mapping(raw, field, AGENT_KEYS)
    for required in ("name", "runtime"):
        if required not in spec:
            raise check.fail(f"{field}.{required}", "is required")
    name = check.name(spec["name"], f"{field}.name")
    if name in seen:
        raise check.fail(f"{field}.name", f"{name!r} is already used by {seen[name]}")
    seen[name] = f"{field}.name"
    runtime = check.name(spec["runtime"], f"{field}.runtime")
    if runtime not in runtimes:
        known = ", ".join(sorted(runtimes)) or "none defined"
        raise check.fail(f"{field}.runtime", f"{runtime!r} is not in runtimes ({known})")
    workdir = check.directory(spec.get("working_directory", str(default_dir)),
                              f"{field}.working_directory", default_dir)
    hint = spec.get("model_hint")
    text, file = _kickstart(check, spec.get("kickstart"), f"{field}.kickstart")
    return Agent(
        name=name, runtime=runtime,
        agent_class=check.name(spec.get("class", "agent"), f"{field}.class"),
        working_directory=workdir,
        model_hint=None if hint is None else check.text(hint, f"{field}.model_hint", limit=200),
        persistent_persona=check.flag(spec.get("persistent_persona", False),
                                      f"{field}.persistent_persona"),
        reset_between_tasks=check.flag(spec.get("reset_between_tasks", False),
                                       f"{field}.reset_between_tasks"),
        kickstart_text=text, kickstart_file=file,
    )


def _kickstart(check: _Checker, value: Any, field: str) -> tuple[str | None, Path | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        return check.text(value, field, limit=MAX_KICKSTART_BYTES, env_safe=False), None
    spec = check.mapping(value, field, {"text", "file"})
    if len(spec) != 1:
        raise check.fail(field, "give exactly one of text or file")
    if "text" in spec:
        return check.text(spec["text"], f"{field}.text", limit=MAX_KICKSTART_BYTES,
                          env_safe=False), None
    return None, check.directory(spec["file"], f"{field}.file", check.path.parent)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result


def read_document(path: Path) -> Any:
    """Decode a roster file (JSON; YAML where PyYAML is importable), never through a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise RosterError(f"{path}: no roster here; write one with `mam fleet init --profile "
                          "minimal` or pass --roster FILE") from None
    except OSError as exc:
        raise RosterError(f"{path}: cannot open the roster ({exc.strerror}); if it is a "
                          "symlink, pass --roster with the file it points to") from None
    with os.fdopen(fd, "rb") as stream:
        raw = stream.read(MAX_ROSTER_BYTES + 1)
    if len(raw) > MAX_ROSTER_BYTES:
        raise RosterError(f"{path}: the roster is larger than {MAX_ROSTER_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RosterError(f"{path}: the roster is not UTF-8 text") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise RosterError(f"{path}: YAML rosters need PyYAML, which this Python cannot "
                              "import; write the roster as JSON (fleet.json)") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RosterError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise RosterError(f"{path}: not valid JSON ({exc})") from None


def load_roster(path: Path, home: Path) -> Roster:
    return parse_roster(read_document(path), path, home)
