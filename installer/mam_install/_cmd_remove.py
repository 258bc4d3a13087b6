"""`uninstall` and `rollback` for the workspace scope: undo what the receipt says we did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._action import Context
from ._confirm import confirm
from ._errors import ReceiptError, RevertIncomplete
from ._feedback import ConsoleFeedback
from ._file_planner import plan_uninstall
from ._layout import find_workspace, workspace_layout
from ._lock import lock_for
from ._plan import InstallPlan, read_receipt
from ._runner import SubprocessRunner
from ._state_dir import check_state_dir
from ._transaction import keep_what_is_left, recover, remove_state_dir, rollback_last, run_plan


def run_uninstall(
    workspace: Path | None,
    feedback: ConsoleFeedback,
    *,
    dry_run: bool,
    lock_timeout: float,
    assume_yes: bool = False,
) -> dict[str, Any]:
    root = find_workspace(Path.cwd(), workspace)
    layout = workspace_layout(root)
    ctx = Context(root=root, runner=SubprocessRunner(), feedback=feedback)
    receipt = read_receipt(layout)
    if receipt is None:
        raise ReceiptError(
            f"no receipt at {layout.receipt}: mam-install did not install anything in {root} "
            "(or it was removed already); nothing was changed"
        )
    if dry_run:
        steps = [a.describe_execute() for a in plan_uninstall(root, receipt) if a.needs_execute]
        return {"command": "uninstall", "workspace": str(root), "applied": False, "steps": steps}
    with lock_for(layout.lock, timeout=lock_timeout):
        recover(layout, ctx)
        receipt = read_receipt(layout)
        if receipt is None:
            raise ReceiptError(f"no receipt at {layout.receipt} after undoing an interrupted run")
        actions = plan_uninstall(root, receipt)
        confirm(
            [a.describe_execute() for a in actions if a.needs_execute],
            f"Remove mam {receipt.plan.payload_version} from {root}?",
            assume_yes=assume_yes,
            feedback=feedback,
        )
        plan = InstallPlan(
            scope="workspace",
            installer_version=receipt.plan.installer_version,
            payload_version=receipt.plan.payload_version,
            source=receipt.plan.source,
            settings=receipt.plan.settings,
            host=receipt.plan.host,
            actions=actions,
        )
        try:
            run_plan(plan, layout, ctx, receipt, keep_going=True)
        except RevertIncomplete:
            keep_what_is_left(receipt, plan, layout)
            raise
        kept = [a.describe_execute() for a in plan.actions if a.state == "skipped"]
        for line in kept:
            feedback.warn(line)
    remove_state_dir(layout)
    feedback.info(f"removed mam {receipt.plan.payload_version} from {root}")
    return {
        "command": "uninstall",
        "workspace": str(root),
        "applied": True,
        "removed": [getattr(a, "path", "") for a in plan.actions if a.tag == "remove_file"],
        "kept": kept,
    }


def run_rollback(
    workspace: Path | None, feedback: ConsoleFeedback, *, lock_timeout: float
) -> dict[str, Any]:
    root = find_workspace(Path.cwd(), workspace)
    layout = workspace_layout(root)
    ctx = Context(root=root, runner=SubprocessRunner(), feedback=feedback)
    check_state_dir(layout)  # before the lock file is opened in it
    with lock_for(layout.lock, timeout=lock_timeout):
        if recover(layout, ctx):
            feedback.info(f"undid the interrupted run in {root}; that was the rollback")
            restored = read_receipt(layout)
        else:
            current = read_receipt(layout)
            restored = rollback_last(layout, ctx)
            version = current.plan.payload_version if current else "?"
            feedback.info(
                f"rolled {root} back from mam {version} to "
                f"{restored.plan.payload_version if restored else 'nothing'}"
            )
    return {
        "command": "rollback",
        "workspace": str(root),
        "payload_version": restored.plan.payload_version if restored else None,
    }
