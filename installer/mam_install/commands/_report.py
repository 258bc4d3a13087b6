"""The one renderer: a command's result as human text (stderr) or its JSON document (stdout).

Messages said while a command runs go through the feedback port; what is rendered here is the
result itself: the steps of a dry run or ``plan``, the file states of ``status``, and the
versioned JSON document (``_result.envelope``) that every command prints with ``--json``,
usage errors and ``--version`` included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from .._feedback import ConsoleFeedback, printable
from ..engine._result import CommandResult, ScopeResult, envelope


def json_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True)


def error_document(command: str, exit_code: int, message: str, log: str | None) -> dict[str, Any]:
    return envelope(command, exit_code, {"error": message, "log": log})


def render_text(result: CommandResult, feedback: ConsoleFeedback, stream: TextIO) -> None:
    """The human form of a result, beyond what the run already said."""
    for scope in (result.scopes or {}).values():
        if scope.states or scope.reason == "status":
            _status_text(scope, feedback)
        elif result.dry_run or result.command == "plan":
            _steps_text(result.command, scope, stream)
    stream.flush()


def _steps_text(command: str, scope: ScopeResult, stream: TextIO) -> None:
    lines = scope.steps if command == "uninstall" else scope.decisions
    if scope.reason not in (None, "dry run"):
        lines = [f"nothing to do: {scope.reason}"]
    stream.write(printable(f"{scope.scope}:\n", stream))
    for line in lines or ["nothing to do: up to date"]:
        stream.write(printable(f"  {line}\n", stream))


def _status_text(scope: ScopeResult, feedback: ConsoleFeedback) -> None:
    for path, state in scope.states.items():
        feedback.info(f"{state:9} {path}")
    counts: dict[str, int] = {}
    for state in scope.states.values():
        counts[state] = counts.get(state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no files"
    feedback.info(f"mam {scope.payload_version} in {scope.root}: {summary}")


def next_steps(result: CommandResult, *, no_modify_path: bool) -> list[str]:
    """What to do after an install, as rustup and Homebrew say it: get the PATH, configure,
    start (the start command itself was printed with the host install)."""
    scopes = result.scopes or {}
    host, ws = scopes.get("host"), scopes.get("workspace")
    steps: list[str] = []
    if host is not None and host.applied:
        env_sh, env_fish = Path(host.root) / "env.sh", Path(host.root) / "env.fish"
        if no_modify_path:
            steps.append(
                f"your shell rc files were not changed: add `. {env_sh}` to them (fish: "
                f"`source {env_fish}`) to put mam-install and mam's tools on PATH"
            )
        else:
            steps.append(
                f"open a new shell, or run `. {env_sh}` (fish: `source {env_fish}`), to put "
                "mam-install and mam's tools on PATH"
            )
    workspace = Path(ws.root) if ws is not None else None
    if ws is not None and workspace is not None and ws.applied and not (
        workspace / ".env"
    ).exists():
        steps.append(f"copy {workspace / '.env.example'} to {workspace / '.env'} and fill it in")
    if steps and host is not None and host.applied:
        steps.append(
            "start mam's tmux holder as said above; `mam-install doctor` names what is missing"
        )
    elif steps:
        steps.append(
            "mam's tools and units are not on this machine yet: run the install again without "
            "--no-host; `mam-install doctor` names what is missing"
        )
    return ["next steps:", *(f"  {n}. {s}" for n, s in enumerate(steps, start=1))] if steps else []
