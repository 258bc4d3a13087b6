"""The command-runner port: every subprocess mam-install starts goes through one of these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Completed:
    """What a finished command left behind; a command that could not start has returncode 127."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


class CommandRunner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 10.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> Completed: ...


class SubprocessRunner:
    """The production runner: captures output, never raises for a missing binary or a hang."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 10.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> Completed:
        import subprocess  # here: most runs never start a command

        args = tuple(argv)
        try:
            proc = subprocess.run(
                args,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError as exc:
            return Completed(args, 127, "", str(exc))
        except PermissionError as exc:
            return Completed(args, 126, "", str(exc))
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
            return Completed(args, 124, out, f"timed out after {timeout:g}s", timed_out=True)
        return Completed(args, proc.returncode, proc.stdout, proc.stderr)


@dataclass
class RecordingRunner:
    """A fake for unit tests: answers from a table keyed by argv, records every call.

    An argv with no answer fails (returncode 127), so a unit test never reaches a real program
    by accident.
    """

    answers: dict[tuple[str, ...], Completed] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def answer(self, argv: Sequence[str], returncode: int = 0, stdout: str = "") -> None:
        self.answers[tuple(argv)] = Completed(tuple(argv), returncode, stdout)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 10.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> Completed:
        args = tuple(argv)
        self.calls.append(args)
        return self.answers.get(args, Completed(args, 127, "", "not answered by RecordingRunner"))
