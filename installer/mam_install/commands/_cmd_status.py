"""`status`: compare a scope (the workspace, or `--host`) with its receipt; change nothing."""

from __future__ import annotations

from pathlib import Path

from .._errors import ExitCode
from .._feedback import ConsoleFeedback
from ..engine._driver import RunOptions, drive
from ..engine._result import CommandResult
from ..scopes._scopes import scopes_for


def run_status(workspace: Path | None, feedback: ConsoleFeedback, *, host: bool) -> CommandResult:
    """Exit 4 when a file is modified or missing; 11 when a run was interrupted."""
    scope = scopes_for(workspace, "host" if host else "workspace")[0]
    result = drive(scope, "status", RunOptions(), feedback)
    code = 0 if result.healthy else int(ExitCode.CONFLICT)
    return CommandResult(command="status", exit_code=code, scopes={scope.kind: result})
