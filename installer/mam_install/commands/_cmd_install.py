"""`install`, `upgrade`, `plan` and `restore`: the workspace, then the host, through the driver.

Every scope is checked before either is touched (a HOME that cannot take mam's tools is found
before the workspace changes), then each is driven in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .._feedback import ConsoleFeedback
from ..engine._driver import RunOptions, Scope, drive
from ..engine._result import CommandResult, ScopeResult
from ..machine._layout import find_workspace
from ..release._lazy_source import LazyStaged
from ..release._sources import SourceSpec
from ..release._staging import Staging
from ..scopes._file_planner import OnConflict
from ..scopes._host_options import HostOptions
from ..scopes._workspace_scope import WorkspaceScope

Mode = Literal["install", "upgrade", "plan", "restore"]


@dataclass(frozen=True)
class InstallOptions:
    """What install, upgrade, plan and restore were asked to do."""

    mode: Mode = "install"
    workspace: Path | None = None
    source: SourceSpec = field(default_factory=SourceSpec)
    dry_run: bool = False
    assume_yes: bool = False
    allow_downgrade: bool = False
    lock_timeout: float = 30.0
    host: HostOptions | None = None  # None: --no-host
    on_conflict: OnConflict = "beside"
    restore: frozenset[str] = frozenset()  # `restore PATH...`: bring these back


def _detect_root(root: Path) -> Path:
    """What to probe for the workspace's filesystem before it exists: its nearest parent."""
    while not root.is_dir() and root.parent != root:
        root = root.parent
    return root


def run_install(opts: InstallOptions, feedback: ConsoleFeedback) -> CommandResult:
    """Run install/upgrade/plan/restore for the workspace and, unless --no-host, the host."""
    root = find_workspace(Path.cwd(), opts.workspace)
    read_only = opts.dry_run or opts.mode == "plan"
    run = RunOptions(
        dry_run=read_only, assume_yes=opts.assume_yes, allow_downgrade=opts.allow_downgrade,
        lock_timeout=opts.lock_timeout,
    )
    host_options = opts.host if opts.mode != "restore" else None
    with Staging() as staging:
        # Staging writes only what these scopes place: a --no-host install unpacks no host file.
        source = LazyStaged(
            opts.source, staging, feedback,
            scopes=("workspace",) if host_options is None else ("workspace", "host"),
        )
        scopes: list[Scope] = [WorkspaceScope(
            root, source, on_conflict=opts.on_conflict, restore=opts.restore,
            allow_downgrade=opts.allow_downgrade, embedded_only=opts.source.location is None,
        )]
        if host_options is not None:
            from ..machine._detect import detect
            from ..scopes._host_scope import HostScope

            host = detect(_detect_root(root))
            scopes.append(HostScope.for_install(
                host, feedback, source=source, options=host_options,
                render_dir=staging.path / "host-rendered",
            ))
        for scope in scopes:
            scope.check(mutating=not read_only)
        results: dict[str, ScopeResult] = {}
        for scope in scopes:
            results[scope.kind] = drive(scope, opts.mode, run, feedback)
    return CommandResult(command=opts.mode, dry_run=read_only, scopes=results)


def workspace_root(workspace: Path | None) -> Path:
    return find_workspace(Path.cwd(), workspace)


__all__ = ["InstallOptions", "Mode", "run_install", "workspace_root"]
