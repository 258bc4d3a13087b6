"""`install`, `upgrade` and `plan` for the workspace scope: stage, verify, plan, then apply."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import __version__
from ._action import Action, Context
from ._confirm import confirm
from ._errors import ConflictError, IntegrityError, UsageError
from ._feedback import ConsoleFeedback
from ._file_actions import KeepFile, ReplaceFile, WriteFile
from ._file_planner import OnConflict, Previous, plan_workspace
from ._layout import ScopeLayout, find_workspace, workspace_layout
from ._lock import lock_for
from ._manifest import NEW_SUFFIX, Manifest, parse_manifest
from ._plan import InstallPlan, Receipt, read_receipt
from ._runner import SubprocessRunner
from ._sources import SourceSpec, Staged, stage_source
from ._staging import Staging
from ._state_dir import ensure_state_dir
from ._transaction import recover, remove_state_dir, run_plan

if TYPE_CHECKING:
    from ._host_options import HostOptions

Mode = Literal["install", "upgrade", "plan", "restore"]


class LazyStaged:
    """Stage and verify the source once, when something first needs its files."""

    def __init__(self, source: SourceSpec, staging: Staging, feedback: ConsoleFeedback) -> None:
        self.source, self.staging, self.feedback = source, staging, feedback
        self._staged: Staged | None = None

    def get(self) -> Staged:
        if self._staged is None:
            self._staged = stage_source(self.source, self.staging)
            manifest = self._staged.payload.manifest
            self.feedback.detail(f"verified {len(manifest.files)} files of mam {manifest.version}")
            if self._staged.record.get("pinned") is False:
                self.feedback.warn(
                    f"{self.source.location} is not pinned to a commit: it resolved to "
                    f"{self._staged.record.get('commit')}, which the receipt records; pin that "
                    "commit to install the same thing again"
                )
        return self._staged


@dataclass(frozen=True)
class InstallOptions:
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


def _check_version(previous: Receipt | None, new_version: str, allow_downgrade: bool) -> None:
    if previous is None:
        return
    from packaging.version import InvalidVersion, Version

    old = previous.plan.payload_version
    try:
        downgrade = Version(new_version) < Version(old)
    except InvalidVersion as exc:
        raise IntegrityError(f"cannot compare versions {old!r} and {new_version!r}: {exc}") from exc
    if downgrade and not allow_downgrade:
        raise IntegrityError(
            f"refusing to downgrade the workspace from mam {old} to {new_version} (a rollback "
            "attack looks the same); pass --allow-downgrade if you mean it, or use "
            "`mam-install rollback`"
        )


def _legacy_hashes() -> dict[str, Mapping[str, str]]:
    """What every released version put at each path: a file "present, not in receipt" that
    matches one was installed by an older installer (DESIGN §5), with or without a receipt."""
    from ._embedded import history_dir
    from ._history import read_history, released_hashes

    return dict(released_hashes(read_history(history_dir())))


def _sources_of(staged: Staged) -> dict[str, Path]:
    payload = staged.payload
    return {f.member: payload.path_of(f) for f in payload.manifest.files}


def build_plan(
    layout: ScopeLayout,
    manifest: Manifest,
    source: dict[str, Any],
    previous: Receipt | None,
    opts: InstallOptions,
) -> InstallPlan:
    actions = plan_workspace(
        layout.root, manifest, Previous.from_receipt(previous), _legacy_hashes(),
        on_conflict=opts.on_conflict, restore=opts.restore,
    )
    return InstallPlan(
        scope="workspace",
        installer_version=__version__,
        payload_version=manifest.version,
        source=source,
        settings={"workspace": str(layout.root), "allow_downgrade": opts.allow_downgrade},
        host={"python": sys.version.split()[0], "platform": sys.platform},
        actions=actions,
    )


def _source_record(opts: InstallOptions, staged: Staged) -> dict[str, Any]:
    return {**opts.source.describe(), "origin": staged.origin, **staged.record}


def _ensure_workspace(root: Path, feedback: ConsoleFeedback, create: bool) -> None:
    if root.is_dir():
        return
    if root.exists() or root.is_symlink():
        raise ConflictError(f"{root} is not a directory; pass --workspace DIR of a directory")
    if not create:
        raise UsageError(f"{root} does not exist; nothing would be installed there")
    root.mkdir(parents=True)
    feedback.info(f"created workspace directory {root}")


SUMMARY_GROUPS = ("write", "replace", "adopt", "beside", "remove", "keep", "unchanged")


def summarize(actions: list[Action]) -> dict[str, list[str]]:
    """Each file decision of a plan in exactly one group, so the counts add up to the plan:
    written, replaced, adopted, kept beside as `.mam-new`, removed, left alone, unchanged."""
    groups: dict[str, list[str]] = {name: [] for name in SUMMARY_GROUPS}
    for action in actions:
        if isinstance(action, WriteFile):
            key = "beside" if action.path.endswith(NEW_SUFFIX) else "write"
            groups[key].append(action.path)
        elif isinstance(action, ReplaceFile):
            if action.path.endswith(NEW_SUFFIX):
                groups["beside"].append(action.path)
            else:
                groups["adopt" if action.adopted else "replace"].append(action.path)
        elif action.tag == "remove_file":
            groups["remove"].append(getattr(action, "path", ""))
        elif isinstance(action, KeepFile) and action.reason not in ("up-to-date", "pending"):
            if action.new_path is None and action.reason != "adopted":
                groups["keep"].append(action.path)
            elif action.reason == "adopted":
                groups["adopt"].append(action.path)
        elif isinstance(action, KeepFile) and action.reason == "up-to-date":
            groups["unchanged"].append(action.path)
    return groups


def summary_line(groups: dict[str, list[str]]) -> str:
    return (
        f"{len(groups['write'])} written, {len(groups['replace'])} replaced, "
        f"{len(groups['adopt'])} adopted, {len(groups['remove'])} removed, "
        f"{len(groups['beside'])} kept beside yours as {NEW_SUFFIX}, "
        f"{len(groups['keep'])} left alone, {len(groups['unchanged'])} unchanged"
    )


def _report(plan: InstallPlan, layout: ScopeLayout, feedback: ConsoleFeedback) -> None:
    for action in plan.actions:
        if isinstance(action, KeepFile) and action.new_path:
            path, new = layout.root / action.path, layout.root / action.new_path
            feedback.warn(
                f"{path} is yours ({action.reason}); it was kept and ours written to {new}: "
                f"compare them with `diff -u {path} {new}`"
            )
        elif isinstance(action, KeepFile) and action.reason in (
            "symlink",
            "symlinked-parent",
            "user-deleted",
            "not-a-file",
            "modified",
        ):
            feedback.warn(
                f"{layout.root / action.path} was left alone: {action.describe_execute()}"
            )


def run_install(opts: InstallOptions, feedback: ConsoleFeedback) -> dict[str, Any]:
    """Run install/upgrade/plan for the workspace, then the host scope unless --no-host;
    return the JSON result document (the CLI prints it)."""
    root = find_workspace(Path.cwd(), opts.workspace)
    read_only = opts.dry_run or opts.mode == "plan"
    _ensure_workspace(root, feedback, create=not read_only)
    layout = workspace_layout(root)
    with Staging() as staging:
        stager = LazyStaged(opts.source, staging, feedback)
        if read_only:
            plan, applied = _plan_only(opts, layout, stager, feedback), False
        else:
            plan, applied, before = _locked_apply(opts, layout, stager, feedback)
            if applied:
                _report(plan, layout, feedback)
                line = summary_line(summarize(plan.actions))
                if before is not None and before != plan.payload_version:
                    what = f"upgraded mam {before} \u2192 {plan.payload_version} in {root}"
                    feedback.info(f"{what}: {line}")
                else:
                    feedback.info(f"installed mam {plan.payload_version} into {root}: {line}")
        document = _result(opts, layout, plan, applied=applied)
        if opts.host is not None:
            document["host"] = _run_host(opts, root, stager, staging, feedback)
    return document


def _run_host(
    opts: InstallOptions,
    root: Path,
    stager: LazyStaged,
    staging: Staging,
    feedback: ConsoleFeedback,
) -> dict[str, Any]:
    from ._cmd_host import run_host_install
    from ._detect import detect

    assert opts.host is not None
    host_opts = replace(opts.host, dry_run=opts.dry_run or opts.mode == "plan")
    return run_host_install(stager.get(), staging, host_opts, feedback, detect(root))


def _plan_only(
    opts: InstallOptions, layout: ScopeLayout, stager: LazyStaged, feedback: ConsoleFeedback
) -> InstallPlan:
    staged = stager.get()
    manifest = staged.payload.manifest
    previous = read_receipt(layout)
    if previous is not None and previous.run.status != "complete":
        feedback.warn(f"{layout.receipt}: an interrupted run will be undone first")
    _check_version(previous, manifest.version, opts.allow_downgrade)
    return build_plan(layout, manifest, _source_record(opts, staged), previous, opts)


def _locked_apply(
    opts: InstallOptions, layout: ScopeLayout, stager: LazyStaged, feedback: ConsoleFeedback
) -> tuple[InstallPlan, bool, str | None]:
    created_state_dir = ensure_state_dir(layout)
    try:
        with lock_for(layout.lock, timeout=opts.lock_timeout):
            return _apply(opts, layout, stager, feedback)
    except BaseException:
        if created_state_dir and not layout.receipt.exists():
            remove_state_dir(layout)  # a failed first install leaves no trace
        raise


def _noop_plan(
    opts: InstallOptions, layout: ScopeLayout, previous: Receipt | None
) -> InstallPlan | None:
    """The plan, made without staging, when it is sure to change nothing (a re-install).

    Only for the payload inside the running pyz, whose manifest is as trusted as the installer
    itself; any other source is staged and verified first, whatever the outcome.
    """
    if opts.source.location is not None or previous is None or opts.restore:
        return None
    if previous.run.status != "complete":
        return None
    from ._embedded import embedded_manifest_path

    path = embedded_manifest_path()
    manifest = parse_manifest(path.read_bytes(), str(path))
    if manifest.version != previous.plan.payload_version:
        return None
    plan = build_plan(layout, manifest, previous.plan.source, previous, opts)
    return plan if plan.is_noop else None


def _apply(
    opts: InstallOptions, layout: ScopeLayout, stager: LazyStaged, feedback: ConsoleFeedback
) -> tuple[InstallPlan, bool, str | None]:
    """Under the lock: undo an interrupted run, plan, confirm, run; (plan, whether it ran, the
    version installed before)."""
    ctx = Context(root=layout.root, runner=SubprocessRunner(), feedback=feedback)
    recover(layout, ctx)
    previous = read_receipt(layout)
    before = previous.plan.payload_version if previous is not None else None
    plan = _noop_plan(opts, layout, previous)
    if plan is None:
        staged = stager.get()
        manifest = staged.payload.manifest
        if opts.mode == "restore":
            _check_restore(previous, manifest.version, opts.restore, layout)
        if opts.mode == "upgrade" and previous is None:
            feedback.info(f"no receipt in {layout.state_dir}: adopting an existing install")
        _check_version(previous, manifest.version, opts.allow_downgrade)
        plan = build_plan(layout, manifest, _source_record(opts, staged), previous, opts)
        confirm(
            [a.describe_execute() for a in plan.pending()],
            f"Apply these changes to {layout.root}?",
            assume_yes=opts.assume_yes,
            feedback=feedback,
        )
        ctx = replace(ctx, sources=_sources_of(staged))
    if (
        plan.is_noop
        and previous is not None
        and previous.run.status == "complete"
        and _decisions(plan.actions) == _decisions(previous.plan.actions)
    ):
        feedback.info(
            f"mam {plan.payload_version} is already installed in {layout.root}; nothing to do"
        )
        return plan, False, before
    run_plan(plan, layout, ctx, previous)
    return plan, True, before


def _decisions(actions: list[Action]) -> set[tuple[str, str, str]]:
    """What a receipt remembers per file: a run that changes no file but notices a decision
    (a deletion, an edit, a conflict settled by hand) still records it."""
    return {
        (pair[0], pair[1], getattr(a, "decision", ""))
        for a in actions
        if a.state == "completed" and (pair := a.owned()) is not None
    }


def _check_restore(
    previous: Receipt | None, version: str, paths: frozenset[str], layout: ScopeLayout
) -> None:
    """`restore` brings back files of the installed version, and only files of mam's."""
    if previous is None:
        raise UsageError(f"no receipt in {layout.state_dir}: nothing to restore; run install")
    if previous.plan.payload_version != version:
        raise UsageError(
            f"mam {previous.plan.payload_version} is installed in {layout.root} but the source "
            f"holds {version}; restore from the installed version (--from), or upgrade"
        )
    owned = previous.owned_files()
    for path in sorted(paths):
        if path not in owned:
            raise UsageError(f"{layout.root / path} is not a file of mam's; nothing to restore")


def _result(
    opts: InstallOptions, layout: ScopeLayout, plan: InstallPlan, *, applied: bool
) -> dict[str, Any]:
    return {
        "command": opts.mode,
        "workspace": str(layout.root),
        "payload_version": plan.payload_version,
        "applied": applied,
        "dry_run": opts.dry_run or opts.mode == "plan",
        "changes": summarize(plan.actions),
        "plan": plan.to_json(),
        "steps": [a.describe_execute() for a in plan.pending()],
        "decisions": decisions(plan),
    }


def decisions(plan: InstallPlan) -> list[str]:
    """Every per-file decision and why: the steps to run, and each file left as it is, but not
    the files and directories that are simply up to date."""
    return [
        a.describe_execute()
        for a in plan.actions
        if a.needs_execute
        or (isinstance(a, KeepFile) and a.reason not in ("up-to-date", "pending"))
    ]
