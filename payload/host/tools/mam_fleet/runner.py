"""Running commands: a port with a production adapter that never raises, so tests can record."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def said(self) -> str:
        """The first line the command printed about itself, for messages."""
        lines = (self.stderr or self.stdout).strip().splitlines()
        return lines[0] if lines else f"exit {self.returncode}"


class Runner(Protocol):
    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            stdin: str | None = None, timeout: float = 60.0) -> Result: ...

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str], log: Path) -> int: ...


class SubprocessRunner:
    """The real one: 127 for a command that cannot be started, 124 for one that timed out."""

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            stdin: str | None = None, timeout: float = 60.0) -> Result:
        try:
            done = subprocess.run(
                list(argv), env=None if env is None else dict(env), input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True, text=True, timeout=timeout, errors="replace",
            )
        except FileNotFoundError as exc:
            return Result(127, "", f"{argv[0]}: {exc.strerror}")
        except PermissionError as exc:
            return Result(126, "", f"{argv[0]}: {exc.strerror}")
        except subprocess.TimeoutExpired:
            return Result(124, "", f"{argv[0]} timed out after {timeout:g}s")
        return Result(done.returncode, done.stdout, done.stderr)

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str], log: Path) -> int:
        """Start a long-running process detached from us (its own session); return its pid."""
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            process = subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL,
                                       stdout=fd, stderr=fd, start_new_session=True)
        finally:
            os.close(fd)
        return process.pid
