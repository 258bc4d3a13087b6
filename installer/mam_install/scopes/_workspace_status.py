"""The workspace's files compared with its receipt, one state per file (for `status`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..actions._file_actions import KeepFile
from ..engine import _fsops as fsops
from ..release._manifest import NEW_SUFFIX


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
