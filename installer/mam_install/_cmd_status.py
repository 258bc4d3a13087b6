"""`status`: compare the workspace against its receipt, file by file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import _fsops as fsops
from ._action import Context
from ._errors import ReceiptError
from ._feedback import ConsoleFeedback
from ._file_actions import KeepFile
from ._layout import find_workspace, workspace_layout
from ._lock import lock_for
from ._manifest import NEW_SUFFIX
from ._plan import read_receipt
from ._runner import SubprocessRunner
from ._transaction import recover

HEALTHY = ("pristine", "pending", "deleted", "resolved", "kept")


def file_states(root: Path, receipt_actions: list[Any], owned: dict[str, str]) -> dict[str, str]:
    """path -> pristine | modified | missing | deleted | pending | resolved | kept | unknown.

    Each file of the payload appears once: its ``.mam-new`` is the "pending" state of the file
    it waits beside, never a line of its own. A conflict settled by hand (``.mam-new`` moved
    over the file, or deleted) is "resolved"; the next install or upgrade records it.
    """
    decisions = {
        a.path: a.decision for a in receipt_actions if isinstance(a, KeepFile) and a.decision
    }
    states: dict[str, str] = {}
    for path, sha256 in owned.items():
        if path.endswith(NEW_SUFFIX) and path[: -len(NEW_SUFFIX)] in decisions:
            continue
        disk = fsops.inspect(root, path)
        decision = decisions.get(path, "")
        if decision == "conflict":
            states[path] = _conflict_state(root, path, owned)
        elif disk.kind == "absent":
            states[path] = "deleted" if decision == "deleted" else "missing"
        elif disk.kind == "file" and disk.sha256 == sha256:
            states[path] = "pristine"
        else:
            states[path] = "kept" if decision == "kept-mine" else "modified"
    for action in receipt_actions:
        if not isinstance(action, KeepFile) or action.path in states:
            continue
        if action.path.endswith(NEW_SUFFIX) or action.reason in ("pending", "user-deleted"):
            continue
        if action.decision == "conflict":
            states[action.path] = _conflict_state(root, action.path, owned)
        else:
            states[action.path] = "unknown"
    return dict(sorted(states.items()))


def _conflict_state(root: Path, path: str, owned: dict[str, str]) -> str:
    pending = owned.get(path + NEW_SUFFIX)
    beside = fsops.inspect(root, path + NEW_SUFFIX)
    if pending is not None and beside.kind == "file" and beside.sha256 == pending:
        return "pending"
    return "resolved" if beside.kind == "absent" else "modified"


def _summary(states: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no files"


def run_status(
    workspace: Path | None, feedback: ConsoleFeedback, *, lock_timeout: float
) -> tuple[dict[str, Any], bool]:
    """Return (result document, healthy); healthy means nothing is modified or missing."""
    root = find_workspace(Path.cwd(), workspace)
    layout = workspace_layout(root)
    receipt = read_receipt(layout)
    if receipt is None:
        raise ReceiptError(f"no receipt at {layout.receipt}: mam is not installed in {root}")
    if receipt.run.status != "complete":
        ctx = Context(root=root, runner=SubprocessRunner(), feedback=feedback)
        with lock_for(layout.lock, timeout=lock_timeout):
            recover(layout, ctx)
        receipt = read_receipt(layout)
        if receipt is None:
            raise ReceiptError(
                f"the interrupted first install in {root} was undone; run `mam-install install`"
            )
    states = file_states(root, receipt.plan.actions, receipt.owned_files())
    for path, state in states.items():
        feedback.info(f"{state:9} {path}")
    healthy = all(s in HEALTHY for s in states.values())
    feedback.info(f"mam {receipt.plan.payload_version} in {root}: {_summary(states)}")
    document = {
        "command": "status",
        "workspace": str(root),
        "payload_version": receipt.plan.payload_version,
        "installer_version": receipt.plan.installer_version,
        "files": states,
        "healthy": healthy,
    }
    return document, healthy
