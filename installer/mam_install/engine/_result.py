"""What the commands return: one dataclass per scope run and one per command, and their JSON.

A scope's result has the same keys for every verb and for a dry run and a real run, so a
consumer (CI, the Ansible collection) reads one shape; ``manifests/result.schema.json`` is
its contract and the tests check every document against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DOCUMENT_SCHEMA = "mam-install/2"


@dataclass
class ScopeResult:
    """One scope after one verb: what was (or, in a dry run, would be) done to it."""

    scope: str  # workspace | host
    root: str  # the workspace, or the host scope's data dir
    payload_version: str | None = None  # the version there afterwards (or removed, uninstall)
    previous_version: str | None = None  # the version there before
    applied: bool = False  # whether this run changed anything
    reason: str | None = None  # why nothing was applied, when it was not
    steps: list[str] = field(default_factory=list)  # the plan's pending steps, in order
    decisions: list[str] = field(default_factory=list)  # files left as they are, and why
    changes: dict[str, list[str]] = field(default_factory=dict)  # summary groups -> paths
    files: dict[str, str] = field(default_factory=dict)  # path -> what happens to it
    kept: list[str] = field(default_factory=list)  # what an uninstall left, and why
    states: dict[str, str] = field(default_factory=dict)  # status: path -> state
    healthy: bool | None = None  # status: nothing modified or missing
    plan: dict[str, Any] | None = None  # the InstallPlan as data

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CommandResult:
    """One command's outcome: its scopes (install, uninstall, ...) or its own report (verify)."""

    command: str
    exit_code: int = 0
    dry_run: bool = False
    scopes: dict[str, ScopeResult] | None = None
    body: dict[str, Any] = field(default_factory=dict)  # commands without scopes
    write_log: bool = True  # False after `uninstall --all` removed the logs

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {**self.body}
        if self.scopes is not None:
            doc["dry_run"] = self.dry_run
            doc["scopes"] = {name: r.to_json() for name, r in self.scopes.items()}
        return envelope(self.command, self.exit_code, doc)


def envelope(command: str, exit_code: int, body: dict[str, Any]) -> dict[str, Any]:
    """The keys every document has, whatever the command and however it ended."""
    return {
        **body,
        "schema": DOCUMENT_SCHEMA,
        "command": command,
        "exit_code": exit_code,
        "ok": exit_code == 0,
    }
