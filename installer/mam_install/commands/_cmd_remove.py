"""`uninstall` (a workspace, `--host`, or `--all`) and `rollback`, through the driver."""

from __future__ import annotations

import shutil
from pathlib import Path

from .._errors import ReceiptError
from .._feedback import ConsoleFeedback
from ..engine._driver import RunOptions, drive
from ..engine._result import CommandResult, ScopeResult
from ..scopes._scopes import Which, scopes_for


def run_uninstall(
    workspace: Path | None,
    feedback: ConsoleFeedback,
    *,
    which: Which = "workspace",
    dry_run: bool,
    lock_timeout: float,
    assume_yes: bool = False,
) -> CommandResult:
    """Remove what each scope's receipt says we wrote and the user did not change; ``all``
    also removes the installer's own extractions and logs, never a file of the user's."""
    run = RunOptions(dry_run=dry_run, assume_yes=assume_yes, lock_timeout=lock_timeout)
    results: dict[str, ScopeResult] = {}
    scopes = scopes_for(workspace, which)
    for scope in scopes:
        scope.check(mutating=False)
    for scope in scopes:
        try:
            results[scope.kind] = drive(scope, "uninstall", run, feedback)
        except ReceiptError:
            if which != "all" or scope.layout.state_dir.is_dir():
                raise
            results[scope.kind] = ScopeResult(
                scope=scope.kind, root=str(scope.root), reason="not installed"
            )
    body: dict[str, object] = {}
    if which == "all":
        body["removed"] = [str(p) for p in _installer_leftovers(feedback, dry_run=dry_run)]
    return CommandResult(
        command="uninstall", dry_run=dry_run, scopes=results, body=body,
        write_log=which != "all" or dry_run,
    )


def _installer_leftovers(feedback: ConsoleFeedback, *, dry_run: bool) -> list[Path]:
    """The pyz's extractions under ~/.shiv, the download cache and mam-install's own logs."""
    import platformdirs

    from .._debug_log import log_files
    from ..machine._extractions import shiv_root, stale_extractions

    targets = stale_extractions(shiv_root(), None)
    installer = _installed_installer()
    if installer is not None:
        targets.append(installer)
    cache = Path(platformdirs.user_cache_dir("mam", appauthor=False))
    if cache.is_dir() and not cache.is_symlink():
        targets.append(cache)
    targets += log_files()
    for target in targets:
        feedback.info(f"{'would remove' if dry_run else 'removing'} {target}")
        if dry_run:
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
    return targets


def _installed_installer() -> Path | None:
    """The pyz the bootstrap or the host install left on PATH, if it is still there: the host
    scope removes it only while it is the copy it installed, and `self update` replaces it."""
    from ..machine._host_layout import host_layout
    from ..scopes._self_pyz import installed_path, pyz_version

    try:
        path = installed_path(host_layout())
    except (OSError, ValueError):
        return None
    if path.is_symlink() or not path.is_file() or pyz_version(path) is None:
        return None  # not a mam-install pyz: not ours to remove
    return path


def run_rollback(
    workspace: Path | None, feedback: ConsoleFeedback, *, host: bool, lock_timeout: float
) -> CommandResult:
    scope = scopes_for(workspace, "host" if host else "workspace")[0]
    result = drive(scope, "rollback", RunOptions(lock_timeout=lock_timeout), feedback)
    return CommandResult(command="rollback", scopes={scope.kind: result})
