"""Running a plan as a transaction: a durable intent, the changes, a durable final record.

Before the first action the old receipt is archived under ``.mam/receipts/<version>.json`` and
the new receipt (the whole plan, ``run.status = in-progress``) is written and fsynced: the
intent. Every file an action replaces or removes is first copied to ``.mam/backup/<run-id>/``.
The actions then run with nothing written to ``.mam/`` between them; after the last, every
directory they touched is fsynced once and the receipt is rewritten (``complete``) and fsynced:
the final record. Bookkeeping is two receipt writes a run, so a run costs O(N) in the payload.

Why nothing between, rather than a journal of per-action states: recovery cannot trust such a
record to say what did *not* happen. Unless each line were fsynced before its action (an fsync
per action, the cost this design removes), a power cut may keep an action's rename and lose its
line. So recovery never relied on per-action states: it reverts every action of the interrupted
plan that is not skipped or carried, newest first, and every ``revert`` is idempotent and finds
nothing to undo for an action that never ran. A journal would add a file in ``.mam/`` to parse
as hostile input and a write per state change, and make no run safer.

If an action fails (or the user presses Ctrl-C) the actions run so far are reverted in reverse
order and the old receipt is put back. If the process is killed instead, the next mutating run
finds ``in-progress`` (or ``rolling-back``) and does the same (``recover``). The backup of the
last successful run is kept for ``mam-install rollback``; older ones go.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from .._errors import ActionFailed, MamError, ReceiptError, RevertIncomplete
from ..machine._layout import GITIGNORE_NAME, ScopeLayout
from ._action import Action, Context
from ._fsops import UnsafePath, batched_dir_syncs, open_dir
from ._plan import InstallPlan, Receipt, RunInfo, read_receipt, write_receipt
from ._state_dir import is_state_file, remove_state_tree

_INTERRUPTED = ("in-progress", "rolling-back")
# Test seam for the kill tests: SIGKILL this process at its Nth crash point (in a run: after the
# intent, before, after the effect of and after the state change of each action, then before the
# final record; in a revert: after each action's revert). Unset in real use.
_KILL_AT_ENV = "MAM_INSTALL_TEST_KILL_AT"


class _CrashPoints:
    def __init__(self) -> None:
        value = os.environ.get(_KILL_AT_ENV, "")
        self.kill_at = int(value) if value.isdigit() else 0
        self.count = 0

    def reached(self) -> None:
        if not self.kill_at:
            return
        self.count += 1
        if self.count == self.kill_at:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


_crash_points: _CrashPoints | None = None


def _crash() -> _CrashPoints:
    """One count per process, so a kill point is the Nth of the whole command."""
    global _crash_points
    if _crash_points is None:
        _crash_points = _CrashPoints()
    return _crash_points


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"


def _revertible(receipt: Receipt) -> list[Action]:
    return [a for a in receipt.plan.actions if not a.carried and a.state != "skipped"]


def _revert_all(receipt: Receipt, layout: ScopeLayout, ctx: Context) -> None:
    """Revert this run's actions newest first; RevertIncomplete if any fails, after recording
    what is left in the receipt (once: a revert that is repeated later is harmless)."""
    failures: list[str] = []
    with batched_dir_syncs():
        for action in reversed(_revertible(receipt)):
            try:
                action.revert(ctx)
            except (OSError, MamError) as exc:
                failures.append(f"{action.describe_revert()}: {exc}")
                continue
            action.state = "uncompleted"
            _crash().reached()
    if failures:
        write_receipt(layout.receipt, receipt)
        raise RevertIncomplete(
            f"could not undo {len(failures)} change(s), first: {failures[0]}; "
            f"{layout.receipt} records what is left — fix that and run `mam-install rollback`"
        )


def _restore_previous(receipt: Receipt, layout: ScopeLayout) -> Receipt | None:
    """Put the receipt that was current before this run back in place (or none)."""
    previous: Receipt | None = None
    if receipt.run.previous_receipt:
        previous = read_receipt(layout, archived=receipt.run.previous_receipt)
    if previous is None:
        try:
            layout.receipt.unlink()
        except FileNotFoundError:
            pass
    else:
        write_receipt(layout.receipt, previous, anchor=layout.anchor)
    if receipt.run.backup:  # `backup/<run-id>`, a generated name (_receipt_check)
        remove_state_tree(layout, receipt.run.backup)
    return previous


def _context_for(receipt: Receipt, layout: ScopeLayout, ctx: Context) -> Context:
    backup = layout.state_dir / receipt.run.backup if receipt.run.backup else None
    return replace(ctx, backup_dir=backup, state_anchor=layout.anchor)


def recover(layout: ScopeLayout, ctx: Context) -> bool:
    """Roll back a run that was killed part-way; True if there was one."""
    receipt = read_receipt(layout)
    if receipt is None or receipt.run.status not in _INTERRUPTED:
        return False
    ctx.feedback.warn(
        f"the run {receipt.run.id} in {layout.root} was interrupted; undoing its changes first"
    )
    _revert_all(receipt, layout, _context_for(receipt, layout, ctx))
    _restore_previous(receipt, layout)
    return True


def rollback_last(layout: ScopeLayout, ctx: Context) -> Receipt | None:
    """Undo the last completed run, returning to the receipt it replaced."""
    receipt = read_receipt(layout)
    if receipt is None:
        raise ReceiptError(f"no receipt at {layout.receipt}: nothing was installed here")
    if not receipt.run.previous_receipt:
        raise ReceiptError(
            f"{layout.receipt}: the last run was the first install; there is no earlier version "
            "to return to (use `mam-install uninstall` to remove it)"
        )
    if not is_state_file(layout, receipt.run.previous_receipt):
        raise ReceiptError(f"{layout.state_dir / receipt.run.previous_receipt} is gone")
    receipt.run.status = "rolling-back"
    write_receipt(layout.receipt, receipt)
    _revert_all(receipt, layout, _context_for(receipt, layout, ctx))
    return _restore_previous(receipt, layout)


def _drop_old_backups(layout: ScopeLayout, keep: str | None) -> None:
    try:
        with open_dir(layout.anchor, layout.from_anchor("backup")) as dfd:
            names = os.listdir(dfd)
    except (OSError, UnsafePath):
        return
    for name in names:
        if name != keep:
            remove_state_tree(layout, f"backup/{name}")


def _archive(previous: Receipt, layout: ScopeLayout) -> str:
    with open_dir(layout.anchor, layout.from_anchor("receipts"), create=True):
        pass
    # The name is a version checked by _receipt_check, never a path.
    archived = layout.receipts_dir / f"{previous.plan.payload_version}.json"
    write_receipt(archived, previous, anchor=layout.anchor)
    return layout.relative(archived)


def run_plan(
    plan: InstallPlan,
    layout: ScopeLayout,
    ctx: Context,
    previous: Receipt | None,
    run_id: str | None = None,
    *,
    keep_going: bool = False,
) -> Receipt:
    """Execute ``plan``; on any failure undo it and raise ActionFailed (exit 7).

    With ``keep_going`` (uninstall: "continue past errors") a failed action is recorded and
    skipped instead, the others still run, and RevertIncomplete (exit 8) names what failed.
    """
    failures: list[str] = []
    run_id = run_id or new_run_id()
    backup = layout.backup_dir(run_id)
    run = RunInfo(
        id=run_id,
        started=_now(),
        previous_receipt=_archive(previous, layout) if previous is not None else None,
        backup=layout.relative(backup),
    )
    receipt = Receipt(plan=plan, run=run)
    ctx = replace(ctx, backup_dir=backup, state_anchor=layout.anchor)
    crash = _crash()
    write_receipt(layout.receipt, receipt)  # the intent: durable before the first change
    crash.reached()
    current: Action | None = None
    try:
        # The states below live in memory only until the final record (see the docstring).
        with batched_dir_syncs():
            for current in plan.actions:
                if not current.needs_execute:
                    continue
                current.state = "progress"
                crash.reached()
                try:
                    current.execute(ctx)
                except (OSError, MamError) as exc:
                    if not keep_going:
                        raise
                    failures.append(f"{current.describe_execute()}: {exc}")
                    current.state = "uncompleted"
                    continue
                crash.reached()
                current.state = "completed"
                crash.reached()
        crash.reached()  # every touched directory is durable; the final record is not written
    except BaseException as exc:
        what = current.describe_execute() if current is not None else "starting"
        ctx.feedback.warn(f"{what} failed: {exc}; undoing this run's changes")
        _revert_all(receipt, layout, ctx)
        _restore_previous(receipt, layout)
        if not isinstance(exc, Exception):
            raise
        raise ActionFailed(
            f"{what} failed ({exc}); every change of this run was undone and "
            f"{layout.root} is as it was before"
        ) from exc
    run.status, run.finished = "complete", _now()
    if not backup.exists():
        run.backup = None
    write_receipt(layout.receipt, receipt)
    _drop_old_backups(layout, keep=backup.name if backup.exists() else None)
    if failures:
        raise RevertIncomplete(
            f"{len(failures)} step(s) failed, first: {failures[0]}; the rest was done. Fix that "
            "and run the command again"
        )
    return receipt


def keep_what_is_left(installed: Receipt, removal: InstallPlan, layout: ScopeLayout) -> None:
    """After a partial uninstall, the receipt keeps exactly the files that are still ours."""
    removed = {
        key for a in removal.actions if a.state == "completed" and (key := a.released())
    }
    for action in installed.plan.actions:
        pair = action.owned()
        if action.state == "completed" and pair is not None and pair[0] in removed:
            action.state = "uncompleted"
    write_receipt(layout.receipt, installed)


def remove_state_dir(layout: ScopeLayout) -> None:
    """After an uninstall: remove our bookkeeping, then ``.mam/`` itself if it is empty."""
    for name in ("receipts", "backup"):
        remove_state_tree(layout, name)
    names = [layout.receipt, layout.lock, Path(str(layout.lock) + ".excl")]
    if layout.state_dir != layout.anchor:
        names.append(layout.state_dir / GITIGNORE_NAME)
    for path in names:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    try:
        layout.state_dir.rmdir()
    except OSError:
        pass
