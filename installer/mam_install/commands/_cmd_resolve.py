"""`resolve` and `restore`: record what the user decided about a conflict or a deleted file.

``resolve`` closes a ``.mam-new`` conflict either way: ``--keep-mine`` removes our pending copy
(while it is still ours) and remembers the user's file as theirs; ``--take-new`` puts our copy
over theirs (theirs stays in the run's backup, so ``rollback`` brings it back). On a terminal
without a flag it asks per file, with a diff on request, as dpkg does for a conffile. Both run
as one transaction with a receipt, like any other mutating command.

``restore PATH...`` is ``install`` of the installed version with those deleted files written
back: a deletion of a file of mam's is otherwise remembered across every upgrade.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._confirm import interactive
from .._errors import ConflictError, ReceiptError, UsageError
from .._feedback import ConsoleFeedback
from .._runner import SubprocessRunner
from ..actions._file_actions import KeepFile, RemoveFile, ReplaceFile
from ..engine import _fsops as fsops
from ..engine._action import Action, Context
from ..engine._driver import RunOptions, drive
from ..engine._lock import lock_for
from ..engine._plan import InstallPlan, Receipt, read_receipt
from ..engine._result import CommandResult
from ..engine._state_dir import check_state_dir
from ..engine._transaction import recover, run_plan
from ..machine._layout import ScopeLayout, find_workspace, workspace_layout
from ..release._lazy_source import LazyStaged
from ..release._manifest import NEW_SUFFIX
from ..release._sources import SourceSpec
from ..release._staging import Staging
from ..scopes._workspace_scope import WorkspaceScope

MAX_DIFF_BYTES = 1024 * 1024


def workspace_paths(root: Path, paths: tuple[Path, ...]) -> list[str]:
    """PATH arguments (relative to here, or absolute) as paths relative to the workspace."""
    out = []
    for path in paths:
        full = Path(os.path.abspath(path))
        try:
            rel = full.relative_to(root)
        except ValueError:
            raise UsageError(f"{path} is not inside the workspace {root}") from None
        text = rel.as_posix()
        out.append(text[: -len(NEW_SUFFIX)] if text.endswith(NEW_SUFFIX) else text)
    return out


@dataclass(frozen=True)
class Conflict:
    """A file of the user's with our version waiting beside it as ``.mam-new``."""

    keep: KeepFile
    pending: Action  # the WriteFile/KeepFile/ReplaceFile that owns the `.mam-new`
    pending_sha256: str
    their_sha256: str | None

    @property
    def path(self) -> str:
        return self.keep.path


def open_conflicts(root: Path, receipt: Receipt) -> dict[str, Conflict]:
    """Every conflict still pending: its `.mam-new` is there and still holds our bytes."""
    owners = {
        pair[0]: (action, pair[1])
        for action in receipt.plan.actions
        if action.state == "completed" and (pair := action.owned()) is not None
    }
    found: dict[str, Conflict] = {}
    for action in receipt.plan.actions:
        if not isinstance(action, KeepFile) or action.decision != "conflict":
            continue
        owner = owners.get(action.path + NEW_SUFFIX)
        if owner is None:
            continue
        beside = fsops.inspect(root, action.path + NEW_SUFFIX)
        if beside.kind != "file" or beside.sha256 != owner[1]:
            continue
        disk = fsops.inspect(root, action.path)
        found[action.path] = Conflict(action, owner[0], owner[1], disk.sha256)
    return found


def _diff(root: Path, conflict: Conflict) -> str:
    def lines(rel: str) -> list[str]:
        data = fsops.read_regular(root, rel, MAX_DIFF_BYTES) or b""
        return data.decode("utf-8", "replace").splitlines(keepends=True)

    path = conflict.path
    return "".join(
        difflib.unified_diff(lines(path), lines(path + NEW_SUFFIX), path, path + NEW_SUFFIX)
    )


def _ask(root: Path, conflict: Conflict, feedback: ConsoleFeedback) -> str | None:
    """dpkg's conffile question: keep mine, take new, show the diff, or decide later."""
    import click

    feedback.info(
        f"{root / conflict.path}: you changed it, and mam's version differs "
        f"({root / conflict.path}{NEW_SUFFIX})"
    )
    while True:
        answer = click.prompt(
            "  [k]eep yours, [t]ake mam's, show the [d]iff, or [s]kip for now",
            type=click.Choice(["k", "t", "d", "s"]),
            show_choices=False,
            err=True,
        )
        if answer == "d":
            click.echo(_diff(root, conflict) or "  (no textual difference)", err=True)
            continue
        return {"k": "keep-mine", "t": "take-new", "s": None}[answer]


def _decide(
    root: Path, conflicts: list[Conflict], choice: str | None, feedback: ConsoleFeedback
) -> dict[str, str]:
    if choice is not None:
        return {c.path: choice for c in conflicts}
    if not interactive():
        raise UsageError(
            "say which copy to keep: --keep-mine or --take-new (no terminal to ask on); "
            "nothing was changed"
        )
    decided = {}
    for conflict in conflicts:
        answer = _ask(root, conflict, feedback)
        if answer is not None:
            decided[conflict.path] = answer
    return decided


def _resolved_actions(
    receipt: Receipt, conflicts: dict[str, Conflict], decided: dict[str, str], staged: Path,
    root: Path,
) -> tuple[list[Action], dict[str, Path]]:
    """The receipt's actions carried forward, with each decided conflict turned into the
    actions that close it."""
    pending = {id(conflicts[p].pending) for p in decided}
    keeps = {id(conflicts[p].keep): conflicts[p] for p in decided}
    actions: list[Action] = []
    closing: list[Action] = []
    sources: dict[str, Path] = {}
    for action in receipt.plan.actions:
        if id(action) in pending:
            continue
        conflict = keeps.get(id(action))
        if conflict is None:
            carried = replace(action)
            carried.state, carried.carried = action.state, True
            actions.append(carried)
            continue
        path, new_path = conflict.path, conflict.path + NEW_SUFFIX
        version = getattr(conflict.pending, "version", "") or receipt.plan.payload_version
        if decided[path] == "keep-mine":
            kept = KeepFile(
                path=path, reason="kept-mine", disk_sha256=conflict.their_sha256,
                owned_sha256=conflict.pending_sha256, decision="kept-mine", version=version,
            )
            kept.state, kept.carried = "completed", True
            actions.append(kept)
        else:
            if conflict.their_sha256 is None:
                raise ConflictError(f"{root / path} is not a regular file; it was left alone")
            copy = staged / f"{len(sources)}"
            data = fsops.read_regular(root, new_path, 1 << 30)
            if data is None or hashlib.sha256(data).hexdigest() != conflict.pending_sha256:
                raise ConflictError(f"{root / new_path} changed; run resolve again")
            copy.write_bytes(data)
            sources[f"resolve/{path}"] = copy
            mode = getattr(conflict.pending, "mode", 0o644)
            actions.append(ReplaceFile(
                path=path, old_sha256=conflict.their_sha256, sha256=conflict.pending_sha256,
                mode=mode, source=f"resolve/{path}", for_path=path, version=version,
                reason="you took mam's version; yours is in this run's backup",
            ))
        closing.append(RemoveFile(
            path=new_path, sha256=conflict.pending_sha256, reason=f"{path} is resolved"
        ))
    return actions + closing, sources


def run_resolve(
    workspace: Path | None,
    paths: tuple[Path, ...],
    choice: str | None,
    feedback: ConsoleFeedback,
    *,
    lock_timeout: float,
) -> dict[str, Any]:
    root = find_workspace(Path.cwd(), workspace)
    layout = workspace_layout(root)
    wanted = workspace_paths(root, paths)
    ctx = Context(root=root, runner=SubprocessRunner(), feedback=feedback)
    check_state_dir(layout)  # before the lock file is opened in it
    with lock_for(layout.lock, timeout=lock_timeout):
        recover(layout, ctx)
        receipt = _receipt(layout)
        conflicts = open_conflicts(root, receipt)
        for path in wanted:
            if path not in conflicts:
                raise UsageError(f"{root / path} has no pending {NEW_SUFFIX}; nothing to resolve")
        chosen = [conflicts[p] for p in (wanted or sorted(conflicts))]
        decided = _decide(root, chosen, choice, feedback)
        if not decided:
            feedback.info(f"no conflict to resolve in {root}")
            return {"command": "resolve", "workspace": str(root), "resolved": {}}
        with Staging() as staging:
            actions, sources = _resolved_actions(
                receipt, conflicts, decided, staging.path, root
            )
            plan = InstallPlan(
                scope="workspace", installer_version=receipt.plan.installer_version,
                payload_version=receipt.plan.payload_version, source=receipt.plan.source,
                settings=receipt.plan.settings, host=receipt.plan.host, actions=actions,
            )
            run_plan(plan, layout, replace(ctx, sources=sources), receipt)
    for path, decision in sorted(decided.items()):
        what = "kept yours" if decision == "keep-mine" else "took mam's version"
        feedback.info(f"{root / path}: {what}")
    return {"command": "resolve", "workspace": str(root), "resolved": decided}


def _receipt(layout: ScopeLayout) -> Receipt:
    receipt = read_receipt(layout)
    if receipt is None:
        raise ReceiptError(f"no receipt at {layout.receipt}: mam is not installed in {layout.root}")
    return receipt


def run_restore(
    workspace: Path | None,
    paths: tuple[Path, ...],
    source: SourceSpec,
    feedback: ConsoleFeedback,
    *,
    assume_yes: bool,
    lock_timeout: float,
) -> CommandResult:
    """Bring back deleted files of mam's: a workspace install that restores only them."""
    root = find_workspace(Path.cwd(), workspace)
    run = RunOptions(assume_yes=assume_yes, lock_timeout=lock_timeout)
    with Staging() as staging:
        scope = WorkspaceScope(
            root, LazyStaged(source, staging, feedback, scopes=("workspace",)),
            restore=frozenset(workspace_paths(root, paths)), embedded_only=source.location is None,
        )
        result = drive(scope, "restore", run, feedback)
    return CommandResult(command="restore", scopes={"workspace": result})
