"""The one driver: runs one scope for one verb, from its state dir to its receipt.

    check the scope (before anything is touched) -> state dir -> lock -> undo an interrupted
    run -> read the receipt -> plan (the refusals live here) -> confirm -> no-op? -> run the
    plan -> report; a failed first run leaves no state dir behind.

Every command and both scopes come through here, so the copies cannot drift. Read verbs
(``plan``, ``status``, any ``--dry-run``) take the same road up to the plan and stop there,
without the lock: they change no byte, and an interrupted run is reported (exit 11) with the
commands that finish or undo it instead of being repaired.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

from .._confirm import confirm
from .._errors import (
    ActionFailed,
    BusyError,
    ConflictError,
    IntegrityError,
    InterruptedRun,
    MamError,
    ReceiptError,
    RevertIncomplete,
)
from .._feedback import ConsoleFeedback
from ..machine._layout import ScopeLayout
from ._action import Action, Context
from ._lock import lock_for
from ._plan import InstallPlan, Receipt, read_receipt
from ._result import ScopeResult
from ._state_dir import check_state_dir
from ._transaction import keep_what_is_left, recover, remove_state_dir, rollback_last, run_plan

Verb = Literal["install", "upgrade", "plan", "restore", "uninstall", "rollback", "status"]
INSTALLING: frozenset[str] = frozenset({"install", "upgrade", "plan", "restore"})
# Status: the states of a file that need nothing from the user.
HEALTHY = ("pristine", "pending", "deleted", "resolved", "kept")


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    assume_yes: bool = False
    allow_downgrade: bool = False
    lock_timeout: float = 30.0


class Scope(Protocol):
    """What the driver needs of a scope: where it lives, and how it plans and reports."""

    kind: str
    layout: ScopeLayout

    @property
    def root(self) -> Path: ...

    def command_hint(self) -> str:
        """The options that name this scope on the command line (`` --host``)."""

    def check(self, *, mutating: bool) -> None:
        """Refuse, before anything is touched, what would fail later (exit 2/3/4)."""

    def make_state_dir(self) -> bool:
        """Create the state dir if missing; True if this call created it."""

    def context(self, feedback: ConsoleFeedback) -> Context: ...

    def nothing_here(self, previous: Receipt | None) -> str | None:
        """Why an install has nothing to do in this scope at all (None: plan it)."""

    def new_version(self) -> str: ...

    def quick_plan(self, verb: str, previous: Receipt | None) -> InstallPlan | None:
        """The plan made without staging, when it is sure to change nothing."""

    def remember(self, verb: str) -> None:
        """After a run that succeeded: leave (or drop) what lets the next re-install answer
        before the engine is imported (_noop); never fails the run."""

    def plan_install(
        self, verb: str, previous: Receipt | None, feedback: ConsoleFeedback
    ) -> tuple[InstallPlan, dict[str, Path]]: ...

    def plan_removal(self, receipt: Receipt) -> InstallPlan: ...

    def describe(self, action: Action) -> str: ...

    def summarize(
        self, plan: InstallPlan, pending: list[Action]
    ) -> tuple[dict[str, list[str]], dict[str, str]]:
        """(summary groups, path -> what happens to it) of a plan's pending actions."""

    def decisions(self, plan: InstallPlan) -> list[str]: ...

    def question(self, verb: str) -> str: ...

    def states(self, receipt: Receipt, ctx: Context) -> dict[str, str]: ...

    def after(
        self, verb: str, plan: InstallPlan, previous: Receipt | None, feedback: ConsoleFeedback
    ) -> None:
        """Say what was done (and lay down what the plan cannot own, e.g. launchd's log dir)."""


def drive(scope: Scope, verb: Verb, opts: RunOptions, feedback: ConsoleFeedback) -> ScopeResult:
    """Run ``verb`` on ``scope``; an OSError anywhere becomes a documented exit code."""
    try:
        read_only = verb in ("plan", "status") or opts.dry_run
        scope.check(mutating=not read_only)
        check_state_dir(scope.layout)
        if read_only:
            return _read(scope, verb, opts, feedback)
        return _write(scope, verb, opts, feedback)
    except OSError as exc:
        raise ActionFailed(
            f"{_os_error(exc)}; nothing in {scope.root} was changed by this run"
        ) from exc


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def not_installed(scope: Scope) -> ReceiptError:
    return ReceiptError(
        f"no receipt at {scope.layout.receipt}: mam is not installed in {scope.root} (or it was "
        "removed already); nothing was changed"
    )


def interrupted(scope: Scope, receipt: Receipt) -> InterruptedRun:
    hint = scope.command_hint()
    return InterruptedRun(
        f"the run {receipt.run.id} in {scope.root} was interrupted ({receipt.run.status}): "
        f"finish it with `mam-install install{hint}` or undo it with "
        f"`mam-install rollback{hint}`; nothing was changed"
    )


def _read(scope: Scope, verb: Verb, opts: RunOptions, feedback: ConsoleFeedback) -> ScopeResult:
    previous = read_receipt(scope.layout)
    if previous is None and verb not in INSTALLING:
        raise not_installed(scope)
    if previous is not None and previous.run.status != "complete":
        raise interrupted(scope, previous)
    if verb == "status":
        assert previous is not None
        return _status(scope, previous, feedback)
    reason = scope.nothing_here(previous) if verb in INSTALLING else None
    if reason is not None:
        return _skipped(scope, previous, reason)
    plan, _ = _plan(scope, verb, previous, opts, feedback)
    return _result(scope, verb, plan, previous, list(plan.pending()), applied=False)


def _write(scope: Scope, verb: Verb, opts: RunOptions, feedback: ConsoleFeedback) -> ScopeResult:
    layout = scope.layout
    if verb not in INSTALLING and not layout.state_dir.is_dir():
        raise not_installed(scope)  # and no lock file is created to say so
    created = False
    try:
        with _locked(scope, verb, opts.lock_timeout) as made:
            created = made
            ctx = scope.context(feedback)
            recovered = recover(layout, ctx)
            previous = read_receipt(layout)
            if verb == "rollback":
                rolled = _rollback(scope, ctx, previous, recovered, feedback)
                _remember(scope, verb)
                return rolled
            if previous is None and verb == "uninstall":
                raise not_installed(scope)
            reason = scope.nothing_here(previous) if verb in INSTALLING else None
            if reason is not None:
                return _skipped(scope, previous, reason)
            plan, sources = _plan(scope, verb, previous, opts, feedback)
            pending = list(plan.pending())
            result = _result(scope, verb, plan, previous, pending, applied=True)
            if verb in INSTALLING and is_noop(plan, previous):
                feedback.info(
                    f"mam {plan.payload_version} is already installed in {scope.root}; "
                    "nothing to do"
                )
                result.applied, result.reason = False, "up to date"
                _remember(scope, verb)
                return result
            confirm(result.steps, scope.question(verb), assume_yes=opts.assume_yes,
                    feedback=feedback)
            _run(scope, verb, plan, previous, replace(ctx, sources=sources))
            if verb == "uninstall":
                remove_state_dir(layout)
            scope.after(verb, plan, previous, feedback)
            _remember(scope, verb)
            return result
    finally:
        if created and not layout.receipt.exists():
            remove_state_dir(layout)  # a first install that failed or did nothing leaves no trace


def _remember(scope: Scope, verb: Verb) -> None:
    """The no-op witness is a shortcut for the next run, never a reason for this one to fail."""
    try:
        scope.remember(verb)
    except (OSError, MamError):
        pass


@contextlib.contextmanager
def _locked(scope: Scope, verb: str, timeout: float) -> Iterator[bool]:
    """Hold the scope's lock; yield whether the state dir was created for this run.

    A run that waited while another removed the state dir (an uninstall) holds a lock on a
    file nobody else can see any more: it lets go and takes the lock again where it now is.
    """
    created = False
    for _ in range(5):
        if verb in INSTALLING:
            created = scope.make_state_dir() or created
        elif not scope.layout.state_dir.is_dir():
            raise not_installed(scope)
        lock = lock_for(scope.layout.lock, timeout=timeout)
        try:
            lock.acquire()
        except ConflictError as exc:
            if isinstance(exc.__cause__, FileNotFoundError):
                continue  # the state dir went away between its check and the open
            raise
        try:
            if lock.is_current():
                yield created
                return
        finally:
            lock.release()
    raise BusyError(
        f"{scope.layout.state_dir} kept being removed while this run waited for its lock; "
        "run the command again"
    )


def _plan(
    scope: Scope, verb: Verb, previous: Receipt | None, opts: RunOptions,
    feedback: ConsoleFeedback,
) -> tuple[InstallPlan, dict[str, Path]]:
    """The plan of ``verb`` for the scope, the same for a dry run and a real run."""
    if verb == "uninstall":
        assert previous is not None
        return scope.plan_removal(previous), {}
    quick = scope.quick_plan(verb, previous)
    if quick is not None:
        return quick, {}
    check_version(previous, scope.new_version(), opts.allow_downgrade, scope)
    if verb == "upgrade" and previous is None:
        feedback.info(f"no receipt in {scope.layout.state_dir}: adopting an existing install")
    return scope.plan_install(verb, previous, feedback)


def check_version(
    previous: Receipt | None, new_version: str, allow_downgrade: bool, scope: Scope
) -> None:
    """Refuse a downgrade (a rollback attack looks the same) in every scope, exit 5."""
    if previous is None:
        return
    from packaging.version import InvalidVersion, Version

    old = previous.plan.payload_version
    try:
        downgrade = Version(new_version) < Version(old)
    except InvalidVersion as exc:
        raise IntegrityError(
            f"cannot compare the installed mam {old!r} in {scope.root} with {new_version!r}: "
            f"{exc}; nothing was changed"
        ) from exc
    if downgrade and not allow_downgrade:
        raise IntegrityError(
            f"refusing to downgrade {scope.root} from mam {old} to {new_version} (a rollback "
            "attack looks the same); pass --allow-downgrade if you mean it, or use "
            f"`mam-install rollback{scope.command_hint()}`"
        )


def is_noop(plan: InstallPlan, previous: Receipt | None) -> bool:
    """Nothing to run, and nothing new to remember: a run that changes no file but notices a
    decision (a deletion, an edit, a conflict settled by hand) still records it."""
    if not plan.is_noop or previous is None or previous.run.status != "complete":
        return False
    if plan.payload_version != previous.plan.payload_version:
        return False  # the receipt must say which version is there now
    return _decisions(plan.actions) == _decisions(previous.plan.actions)


def _decisions(actions: list[Action]) -> set[tuple[str, str, str]]:
    return {
        (pair[0], pair[1], getattr(a, "decision", ""))
        for a in actions
        if a.state == "completed" and (pair := a.owned()) is not None
    }


def _run(
    scope: Scope, verb: str, plan: InstallPlan, previous: Receipt | None, ctx: Context
) -> None:
    layout = scope.layout
    keep_going = verb == "uninstall"  # DESIGN §8: uninstall continues past errors
    try:
        run_plan(plan, layout, ctx, previous, keep_going=keep_going)
    except RevertIncomplete as incomplete:
        if keep_going and previous is not None:
            try:
                keep_what_is_left(previous, plan, layout)
            except OSError as exc:
                raise RevertIncomplete(
                    f"{incomplete}; recording what is left failed too ({_os_error(exc)}): "
                    f"{layout.receipt} may name files that are gone. Free the space and run "
                    f"`mam-install uninstall{scope.command_hint()}` again"
                ) from exc
        raise
    except OSError as exc:
        # A write of the receipt itself failed (a full disk): undo what the run did.
        raise _undo_after(scope, ctx, exc) from exc


def _undo_after(scope: Scope, ctx: Context, exc: OSError) -> MamError:
    try:
        recover(scope.layout, ctx)
    except (OSError, MamError) as again:
        return RevertIncomplete(
            f"{_os_error(exc)}; undoing the run failed too ({again}): {scope.layout.receipt} "
            "records what is left. Free the space (or fix the cause) and run "
            f"`mam-install rollback{scope.command_hint()}`"
        )
    return ActionFailed(
        f"{_os_error(exc)}; every change of this run was undone and {scope.root} is as it was "
        "before"
    )


def _rollback(
    scope: Scope, ctx: Context, previous: Receipt | None, recovered: bool,
    feedback: ConsoleFeedback,
) -> ScopeResult:
    root = scope.root
    if recovered:
        feedback.info(f"undid the interrupted run in {root}; that was the rollback")
        restored, steps, before = read_receipt(scope.layout), [], None
    else:
        if previous is None:
            raise not_installed(scope)
        steps = [
            a.describe_revert() for a in reversed(previous.plan.actions)
            if not a.carried and a.state != "skipped"
        ]
        restored = rollback_last(scope.layout, ctx)
        before = previous.plan.payload_version
        feedback.info(
            f"rolled {root} back from mam {before} to "
            f"{restored.plan.payload_version if restored else 'nothing'}"
        )
    return ScopeResult(
        scope=scope.kind, root=str(root),
        payload_version=restored.plan.payload_version if restored else None,
        previous_version=before, applied=True, steps=steps,
        plan=restored.plan.to_json() if restored else None,
    )


def _status(scope: Scope, receipt: Receipt, feedback: ConsoleFeedback) -> ScopeResult:
    states = scope.states(receipt, scope.context(feedback))
    return ScopeResult(
        scope=scope.kind, root=str(scope.root), payload_version=receipt.plan.payload_version,
        previous_version=receipt.plan.payload_version, reason="status", states=states,
        healthy=all(s in HEALTHY for s in states.values()),
    )


def _skipped(scope: Scope, previous: Receipt | None, reason: str) -> ScopeResult:
    version = previous.plan.payload_version if previous is not None else None
    return ScopeResult(
        scope=scope.kind, root=str(scope.root), payload_version=version,
        previous_version=version, reason=reason,
    )


def _result(
    scope: Scope, verb: str, plan: InstallPlan, previous: Receipt | None,
    pending: list[Action], *, applied: bool,
) -> ScopeResult:
    """The same keys and values for a dry run and a real run: taken from the plan before it
    runs (``pending`` is what the run will do)."""
    changes, files = scope.summarize(plan, pending)
    return ScopeResult(
        scope=scope.kind,
        root=str(scope.root),
        payload_version=plan.payload_version,
        previous_version=previous.plan.payload_version if previous is not None else None,
        applied=applied,
        reason=None if applied else "dry run",
        steps=[scope.describe(a) for a in pending],
        decisions=scope.decisions(plan),
        changes=changes,
        files=files,
        kept=[scope.describe(a) for a in plan.actions if a.state == "skipped"]
        if verb == "uninstall" else [],
        plan=plan.to_json(),
    )
