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
from ._plan import read_receipt
from ._runner import SubprocessRunner
from ._transaction import recover


def file_states(root: Path, receipt_actions: list[Any], owned: dict[str, str]) -> dict[str, str]:
    """path -> pristine | modified | missing | pending | unknown."""
    states: dict[str, str] = {}
    for path, sha256 in owned.items():
        disk = fsops.inspect(root, path)
        if disk.kind == "absent":
            states[path] = "missing"
        elif disk.kind == "file" and disk.sha256 == sha256:
            states[path] = "pristine"
        else:
            states[path] = "modified"
    for action in receipt_actions:
        if not isinstance(action, KeepFile) or action.path in owned:
            continue
        if action.new_path and action.new_path in owned and states[action.new_path] == "pristine":
            states[action.path] = "pending"
            states[action.new_path] = "pending"
        elif action.reason != "user-deleted":
            states.setdefault(action.path, "unknown")
    return dict(sorted(states.items()))


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
    healthy = not any(s in ("modified", "missing") for s in states.values())
    feedback.info(
        f"mam {receipt.plan.payload_version} in {root}: "
        + ("all files as installed" if healthy else "some files were modified or removed")
    )
    document = {
        "command": "status",
        "workspace": str(root),
        "payload_version": receipt.plan.payload_version,
        "installer_version": receipt.plan.installer_version,
        "files": states,
        "healthy": healthy,
    }
    return document, healthy
