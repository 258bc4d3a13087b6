"""`install`/`upgrade` and `uninstall --host` for the host scope: per-user tools, units, PATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from . import __version__
from ._action import Action, Context
from ._cmd_install import summarize
from ._confirm import confirm
from ._detect import Host
from ._errors import ConflictError, ReceiptError, RevertIncomplete, UsageError
from ._feedback import ConsoleFeedback
from ._file_actions import KeepFile, RemoveFile
from ._file_planner import plan_uninstall
from ._host_actions import AddRcBlock, RemoveRcBlock, RunCommand
from ._host_layout import HostLayout, host_layout
from ._host_options import HostOptions
from ._host_planner import host_settings, plan_host
from ._lock import lock_for
from ._plan import InstallPlan, Receipt, read_receipt
from ._runner import CommandRunner, SubprocessRunner
from ._sources import Staged
from ._staging import Staging
from ._start_hints import start_hints
from ._transaction import keep_what_is_left, recover, remove_state_dir, run_plan

__all__ = ["HostOptions", "describe", "run_host_install", "run_host_uninstall"]

_UNIT_SUFFIXES = (".service", ".socket", ".timer")


def _layout_for(host: Host) -> HostLayout:
    network_fs = host.workspace.network_fs if host.workspace is not None else False
    return host_layout(network_fs=network_fs, system=host.os, home=host.home)


def _ensure_data_dir(layout: HostLayout) -> bool:
    """Create the data dir (for the receipt and lock); True if this run created it."""
    data = layout.data_dir
    if data.is_symlink() or (data.exists() and not data.is_dir()):
        raise ConflictError(
            f"{data} is a symlink or not a directory; mam-install keeps its host receipt there. "
            "Move it away and run again"
        )
    if data.is_dir():
        return False
    data.mkdir(mode=0o755, parents=True)
    return True


def _is_downgrade(previous: Receipt | None, version: str) -> bool:
    if previous is None:
        return False
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) < Version(previous.plan.payload_version)
    except InvalidVersion:
        return False


def describe(action: Action) -> str:
    """``describe_execute()`` with host paths absolute: file actions name their path relative
    to their base, and every host file is planned from the base ``/``."""
    text = action.describe_execute()
    if getattr(action, "base", None) == "/":
        for name in ("path", "new_path"):
            rel = getattr(action, name, None)
            if rel:
                text = text.replace(f"`{rel}`", f"`/{rel}`")
    return text


def _file_of(action: Action) -> str | None:
    path, base = getattr(action, "path", None), getattr(action, "base", None)
    if path is None:
        return None
    if isinstance(action, AddRcBlock):
        return str(path)
    return f"{str(base).rstrip('/')}/{path}" if base else str(path)


def _changes(actions: list[Action]) -> dict[str, str]:
    """Every file path these (pending) actions change -> what happens to it."""
    verbs = {
        "write_file": "written",
        "replace_file": "replaced",
        "remove_file": "removed",
        "add_rc_block": "block added",
        "remove_rc_block": "block removed",
        "create_directory": "directory created",
        "remove_directory": "directory removed if empty",
    }
    changed: dict[str, str] = {}
    for action in actions:
        if action.tag in verbs:
            path = _file_of(action)
            if path is not None:
                changed[path] = verbs[action.tag]
    return changed


def _result(
    command: str, plan: InstallPlan, layout: HostLayout, pending: list[Action], *,
    applied: bool, dry_run: bool,
) -> dict[str, Any]:
    """The result document; ``pending`` is what the run had to do, taken before it ran."""
    changes = summarize(pending)
    changes["rc_files"] = [a.path for a in pending if isinstance(a, AddRcBlock)]
    changes["commands"] = [describe(a) for a in pending if isinstance(a, RunCommand)]
    return {
        "command": command,
        "scope": "host",
        "data_dir": str(layout.data_dir),
        "payload_version": plan.payload_version,
        "applied": applied,
        "dry_run": dry_run,
        "changes": changes,
        "files": _changes(pending),
        "plan": plan.to_json(),
        "steps": [describe(a) for a in pending],
    }


def _build_plan(
    host: Host, staged: Staged, layout: HostLayout, previous: Receipt | None,
    options: HostOptions, render_dir: Path, feedback: ConsoleFeedback,
) -> tuple[InstallPlan, dict[str, Path]]:
    actions, sources = plan_host(
        host, staged.payload, layout, previous, options, render_dir, feedback=feedback
    )
    plan = InstallPlan(
        scope="host",
        installer_version=__version__,
        payload_version=staged.payload.manifest.version,
        source={"origin": staged.origin, **staged.record},
        settings=host_settings(host, layout, options, previous=previous),
        host=host.to_json(),
        actions=actions,
    )
    return plan, sources


def _report(plan: InstallPlan, feedback: ConsoleFeedback) -> None:
    for action in plan.actions:
        if isinstance(action, KeepFile) and action.new_path:
            path = _file_of(action)
            feedback.warn(
                f"{path} is yours ({action.reason}); it was kept and ours written to "
                f"{path}.mam-new: compare them with `diff -u {path} {path}.mam-new`"
            )
        elif isinstance(action, KeepFile) and action.reason in (
            "symlink", "symlinked-parent", "user-deleted", "not-a-file", "modified"
        ):
            feedback.warn(f"{_file_of(action)} was left alone: {describe(action)}")
    for path, what in _changes(plan.actions).items():
        if what != "directory created":
            feedback.detail(f"{what}: {path}")
    for action in plan.actions:
        if isinstance(action, AddRcBlock) and action.state == "completed" and not action.carried:
            feedback.info(f"changed {action.path}: added the `# >>> mam >>>` PATH block")


def _layout_for_install(host: Host, feedback: ConsoleFeedback) -> tuple[HostLayout, bool]:
    """The layout, keeping the local state dir an earlier run chose for a network workspace.

    The host scope is shared by every workspace of the user: without this, installing from a
    local workspace after a network one would move the state back and rewrite every unit.
    Returns (layout, whether it was kept from the earlier run).
    """
    layout = _layout_for(host)
    try:
        previous = read_receipt(layout.scope)
    except ReceiptError:
        return layout, False  # reported properly once the lock is held
    earlier = previous.plan.settings.get("state_dir") if previous is not None else None
    if earlier is None or earlier == str(layout.state_dir):
        return layout, False
    network = host_layout(network_fs=True, system=host.os, home=host.home)
    if earlier != str(network.state_dir) or network.state_dir == layout.state_dir:
        return layout, False
    feedback.info(
        f"keeping mam's locks and sequence numbers in {earlier}, where an earlier install put "
        "them for a workspace on a network filesystem"
    )
    return network, True


def _not_applied(
    command: str, layout: HostLayout, version: str, reason: str
) -> dict[str, Any]:
    return {
        "command": command, "scope": "host", "data_dir": str(layout.data_dir),
        "payload_version": version, "applied": False, "dry_run": False, "reason": reason,
        "changes": {}, "files": {}, "steps": [],
    }


def run_host_install(
    staged: Staged,
    staging: Staging,
    options: HostOptions,
    feedback: ConsoleFeedback,
    host: Host | None = None,
    *,
    runner: CommandRunner | None = None,
) -> dict[str, Any]:
    """Plan and apply the host scope for this user; return the JSON result document.

    ``host`` defaults to ``detect()`` of the workspace found from the current directory.
    """
    if options.enable_units and options.no_units:
        raise UsageError("--enable-units and --no-units contradict each other; pick one")
    if host is None:
        from ._detect import detect
        from ._layout import find_workspace

        host = detect(find_workspace(Path.cwd()))
    runner = SubprocessRunner() if runner is None else runner
    layout, _ = _layout_for_install(host, feedback)
    scope = layout.scope
    render_dir = staging.path / "host-rendered"
    version = staged.payload.manifest.version
    if not staged.payload.manifest.in_scope("host") and not scope.receipt.exists():
        feedback.detail(f"mam {version} has no per-user files; the host was left as it is")
        return _not_applied("install", layout, version, "no host files in this payload")
    if options.dry_run:
        previous = read_receipt(scope)
        plan, _ = _build_plan(host, staged, layout, previous, options, render_dir, feedback)
        return _result("install", plan, layout, list(plan.pending()), applied=False, dry_run=True)
    created = _ensure_data_dir(layout)
    try:
        with lock_for(scope.lock, timeout=options.lock_timeout):
            ctx = Context(root=layout.data_dir, runner=runner, feedback=feedback)
            recover(scope, ctx)
            previous = read_receipt(scope)
            if _is_downgrade(previous, version) and not options.allow_downgrade:
                assert previous is not None
                feedback.warn(
                    f"the host has mam {previous.plan.payload_version}, newer than {version}; "
                    "it was left as it is (pass --allow-downgrade to replace it)"
                )
                return _not_applied("install", layout, version, "newer version installed")
            plan, sources = _build_plan(
                host, staged, layout, previous, options, render_dir, feedback
            )
            confirm(
            [describe(a) for a in plan.pending()],
            "Apply these changes to your user account?",
            assume_yes=options.assume_yes,
            feedback=feedback,
        )
            if plan.is_noop and previous is not None and previous.run.status == "complete":
                feedback.info(f"mam {version} is already installed for this user; nothing to do")
                return _result("install", plan, layout, [], applied=False, dry_run=False)
            pending = list(plan.pending())
            run_plan(plan, scope, Context(layout.data_dir, runner, feedback, sources), previous)
    except BaseException:
        if created and not scope.receipt.exists():
            remove_state_dir(scope)  # a failed first install leaves no trace
        raise
    if layout.unit_kind == "launchd":
        # launchd opens StandardOutPath but does not create its directory. The logs are the
        # user's once written, so the directory is not part of the plan and uninstall keeps it.
        layout.log_dir.mkdir(parents=True, exist_ok=True)
    _report(plan, feedback)
    for hint in start_hints(host, layout, plan.actions):
        feedback.info(hint)
    settings = layout.config_dir / "mqtt.env"
    if layout.unit_kind is not None and not settings.exists():
        # The monitor unit reads its secrets from there; they are the user's to write.
        feedback.info(
            f"the MQTT monitor reads MAM_HMAC_KEY and the broker settings from {settings}: "
            f"create it with `install -m 600 /dev/null {settings}` and fill it in "
            "(every variable is described in the workspace's .env.example)"
        )
    groups = summarize(plan.actions)
    blocks = [a for a in plan.actions if isinstance(a, AddRcBlock) and not a.carried
              and a.state == "completed"]
    feedback.info(
        f"installed mam {version} for this user in {layout.data_dir}: "
        f"{len(groups['write'])} written, {len(groups['replace']) + len(groups['adopt'])} "
        f"updated, {len(groups['beside'])} beside yours as .mam-new, {len(blocks)} rc file(s) "
        "changed"
    )
    return _result("install", plan, layout, pending, applied=True, dry_run=False)


def _uninstall_actions(receipt: Receipt, systemd_usable: bool) -> list[Action]:
    """Undo the receipt: stop what was enabled, remove blocks, pristine files, our dirs, reload."""
    actions: list[Action] = []
    for action in reversed(receipt.plan.actions):
        if (
            isinstance(action, RunCommand)
            and action.state == "completed"
            and action.revert_argv
            and "daemon-reload" not in action.argv
        ):
            actions.append(RunCommand(
                argv=list(action.revert_argv), revert_argv=list(action.argv),
                description="stop and disable what the install enabled",
                on_failure="warn", on_revert_failure="warn",
            ))
    for action in reversed(receipt.plan.actions):
        if action.tag == "add_rc_block" and action.state == "completed":
            assert isinstance(action, AddRcBlock)
            actions.append(RemoveRcBlock.undoing(action))
    files = plan_uninstall(Path("/"), receipt)
    actions += files
    units_removed = any(
        isinstance(a, RemoveFile) and a.path.endswith(_UNIT_SUFFIXES) for a in files
    )
    if units_removed and systemd_usable:
        reload = ["systemctl", "--user", "daemon-reload"]
        actions.append(RunCommand(
            argv=reload, revert_argv=reload, description="forget mam's removed units",
            on_failure="warn", on_revert_failure="warn",
        ))
    return actions


def _systemd_usable(runner: CommandRunner) -> bool:
    from ._detect import _normalize_system
    from ._initsys import detect_init

    system = _normalize_system(sys.platform)
    info = detect_init(
        system, env=os.environ, runner=runner, root=Path("/"), uid=os.getuid(), user=None
    )
    return info.systemd_user_usable


def run_host_uninstall(
    feedback: ConsoleFeedback,
    *,
    dry_run: bool,
    lock_timeout: float,
    runner: CommandRunner | None = None,
    host: Host | None = None,
    assume_yes: bool = False,
) -> dict[str, Any]:
    """Revert the host receipt: units, tools and env scripts only while pristine, every rc
    block so each rc file is byte for byte as before, then the receipt itself."""
    runner = SubprocessRunner() if runner is None else runner
    layout = _layout_for(host) if host is not None else host_layout()
    scope = layout.scope
    receipt = read_receipt(scope)
    if receipt is None:
        raise ReceiptError(
            f"no host receipt at {scope.receipt}: mam-install did not install anything for this "
            "user (or it was removed already); nothing was changed"
        )
    usable = host.systemd_user_usable if host is not None else _systemd_usable(runner)
    if dry_run:
        actions = _uninstall_actions(receipt, usable)
        plan = InstallPlan(
            scope="host", installer_version=receipt.plan.installer_version,
            payload_version=receipt.plan.payload_version, source=receipt.plan.source,
            settings=receipt.plan.settings, host=receipt.plan.host, actions=actions,
        )
        pending = list(plan.pending())
        document = _result("uninstall", plan, layout, pending, applied=False, dry_run=True)
        document.pop("plan")
        return document
    ctx = Context(root=layout.data_dir, runner=runner, feedback=feedback)
    with lock_for(scope.lock, timeout=lock_timeout):
        recover(scope, ctx)
        receipt = read_receipt(scope)
        if receipt is None:
            raise ReceiptError(f"no receipt at {scope.receipt} after undoing an interrupted run")
        plan = InstallPlan(
            scope="host", installer_version=receipt.plan.installer_version,
            payload_version=receipt.plan.payload_version, source=receipt.plan.source,
            settings=receipt.plan.settings, host=receipt.plan.host,
            actions=_uninstall_actions(receipt, usable),
        )
        pending = list(plan.pending())
        confirm(
            [describe(a) for a in pending],
            "Remove mam's tools, units and PATH blocks from your user account?",
            assume_yes=assume_yes,
            feedback=feedback,
        )
        try:
            # DESIGN §8: uninstall continues past errors and says what is left (exit 8).
            run_plan(plan, scope, ctx, receipt, keep_going=True)
        except RevertIncomplete:
            keep_what_is_left(receipt, plan, scope)
            raise
    kept = [describe(a) for a in plan.actions if a.state == "skipped"]
    for line in kept:
        feedback.warn(line)
    for action in plan.actions:
        if isinstance(action, RemoveRcBlock) and action.outcome == "removed":
            feedback.info(f"changed {action.path}: removed the `# >>> mam >>>` PATH block")
    remove_state_dir(scope)
    feedback.info(f"removed mam {receipt.plan.payload_version} for this user")
    document = _result("uninstall", plan, layout, pending, applied=True, dry_run=False)
    document.pop("plan")
    document["kept"] = kept
    return document
