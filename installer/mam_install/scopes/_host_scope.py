"""The host scope for the driver: per-user tools, systemd/launchd user units, the PATH blocks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import __version__
from .._errors import ConflictError, PlatformError, ReceiptError, UsageError
from .._feedback import ConsoleFeedback
from .._runner import CommandRunner, SubprocessRunner
from ..actions._file_actions import CreateDirectory, KeepFile, RemoveFile
from ..actions._host_actions import AddRcBlock, RemoveRcBlock, RunCommand
from ..engine._action import Action, Context
from ..engine._plan import InstallPlan, Receipt, read_receipt
from ..machine._detect import Host
from ..machine._host_layout import HostLayout, host_layout
from ..machine._layout import ScopeLayout, nearest_existing
from ..release._lazy_source import LazyStaged
from ._file_planner import plan_uninstall
from ._host_options import HostOptions
from ._summary import summarize

_UNIT_SUFFIXES = (".service", ".socket", ".timer")
_LEFT_ALONE = ("symlink", "symlinked-parent", "user-deleted", "not-a-file", "modified")
_VERBS = {
    "write_file": "written",
    "replace_file": "replaced",
    "remove_file": "removed",
    "add_rc_block": "block added",
    "remove_rc_block": "block removed",
    "create_directory": "directory created",
    "remove_directory": "directory removed if empty",
}


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


def file_of(action: Action) -> str | None:
    path, base = getattr(action, "path", None), getattr(action, "base", None)
    if path is None:
        return None
    if isinstance(action, AddRcBlock):
        return str(path)
    return f"{str(base).rstrip('/')}/{path}" if base else str(path)


def home_is_usable(home: Path) -> bool:
    """``~`` that expanded to a real directory: with HOME unset and no passwd entry (a
    container run with ``--user N``) it stays ``~``, and every path would land in ``./~``."""
    return home.is_absolute() and str(home) != "/"


class HostScope:
    kind = "host"

    def __init__(
        self,
        layout: HostLayout,
        *,
        host: Host | None = None,
        source: LazyStaged | None = None,
        options: HostOptions | None = None,
        runner: CommandRunner | None = None,
        render_dir: Path | None = None,
    ) -> None:
        self.host_layout = layout
        self.layout: ScopeLayout = layout.scope
        self.root = layout.data_dir
        self.host = host
        self.source = source
        self.options = options or HostOptions()
        self.runner = runner or SubprocessRunner()
        self.render_dir = render_dir

    @classmethod
    def for_install(
        cls, host: Host, feedback: ConsoleFeedback, **kw: object
    ) -> HostScope:
        """The layout, keeping the local state dir an earlier run chose for a network workspace.

        The host scope is shared by every workspace of the user: without this, installing from
        a local workspace after a network one would move the state back and rewrite every unit.
        """
        network_fs = host.workspace.network_fs if host.workspace is not None else False
        layout = host_layout(network_fs=network_fs, system=host.os, home=host.home)
        if home_is_usable(host.home):
            layout = _kept_layout(host, layout, feedback)
        return cls(layout, host=host, **kw)  # type: ignore[arg-type]

    def command_hint(self) -> str:
        return " --host"

    def check(self, *, mutating: bool) -> None:
        """HOME and the data dir, found unusable while planning: exit 3 before anything is
        touched, naming the ways forward."""
        home = self.host.home if self.host is not None else self.host_layout.home
        if not home_is_usable(home) or not self.root.is_absolute():
            raise PlatformError(
                f"HOME is not set and uid {os.getuid()} has no passwd entry, so there is no "
                "per-user directory to install mam's tools and units into; set HOME, or pass "
                "--no-host to install only the workspace. Nothing was changed"
            )
        data = self.root
        if data.is_symlink() or (data.exists() and not data.is_dir()):
            raise ConflictError(
                f"{data} is a symlink or not a directory; mam-install keeps its host receipt "
                "there. Move it away and run again"
            )
        existing = nearest_existing(data)
        if mutating and (not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK)):
            raise PlatformError(
                f"cannot create or write mam's per-user data dir {data} ({existing} is not a "
                "writable directory); point XDG_DATA_HOME at a writable directory, or pass "
                "--no-host to install only the workspace. Nothing was changed"
            )

    def make_state_dir(self) -> bool:
        if self.root.is_dir():
            return False
        self.root.mkdir(mode=0o755, parents=True)
        return True

    def context(self, feedback: ConsoleFeedback) -> Context:
        return Context(root=self.root, runner=self.runner, feedback=feedback)

    def nothing_here(self, previous: Receipt | None) -> str | None:
        if previous is not None or self.source is None:
            return None
        if self.source.get().payload.manifest.in_scope("host"):
            return None
        return "no host files in this payload"

    def new_version(self) -> str:
        assert self.source is not None
        return self.source.get().payload.manifest.version

    def quick_plan(self, verb: str, previous: Receipt | None) -> InstallPlan | None:
        return None

    def remember(self, verb: str) -> None:
        """The no-op witness (_noop) answers for a workspace only: nothing to leave here."""

    def plan_install(
        self, verb: str, previous: Receipt | None, feedback: ConsoleFeedback
    ) -> tuple[InstallPlan, dict[str, Path]]:
        from ._host_planner import host_settings, plan_host

        if self.options.enable_units and self.options.no_units:
            raise UsageError("--enable-units and --no-units contradict each other; pick one")
        assert self.source is not None and self.host is not None
        staged = self.source.get()
        # A programming error, not a user's: the source was made without the host scope.
        assert staged.payload.holds("host"), "the host files were not staged"
        render_dir = self.render_dir or staged_render_dir(self.source)
        actions, sources = plan_host(
            self.host, staged.payload, self.host_layout, previous, self.options, render_dir,
            feedback=feedback,
        )
        # The data dir (and what is missing above it) is the state dir: the driver makes it
        # before the lock and removes it with the receipt. Leaving it out of the plan keeps the
        # dry run (planned before it exists) equal to the real run (planned after).
        state = {str(p) for p in (self.root, *self.root.parents)}
        state |= {os.path.realpath(p) for p in state}
        actions = [a for a in actions
                   if not (isinstance(a, CreateDirectory) and file_of(a) in state)]
        plan = InstallPlan(
            scope="host",
            installer_version=__version__,
            payload_version=staged.payload.manifest.version,
            source={"origin": staged.origin, **staged.record},
            settings=host_settings(self.host, self.host_layout, self.options, previous=previous),
            host=self.host.to_json(),
            actions=actions,
        )
        return plan, sources

    def plan_removal(self, receipt: Receipt) -> InstallPlan:
        usable = (
            self.host.systemd_user_usable if self.host is not None
            else _systemd_usable(self.runner)
        )
        return InstallPlan(
            scope="host", installer_version=receipt.plan.installer_version,
            payload_version=receipt.plan.payload_version, source=receipt.plan.source,
            settings=receipt.plan.settings, host=receipt.plan.host,
            actions=_uninstall_actions(receipt, usable),
        )

    def describe(self, action: Action) -> str:
        return describe(action)

    def summarize(
        self, plan: InstallPlan, pending: list[Action]
    ) -> tuple[dict[str, list[str]], dict[str, str]]:
        changes = summarize(pending)
        changes["rc_files"] = [a.path for a in pending if isinstance(a, AddRcBlock)]
        changes["commands"] = [describe(a) for a in pending if isinstance(a, RunCommand)]
        files: dict[str, str] = {}
        for action in pending:
            path = file_of(action) if action.tag in _VERBS else None
            if path is not None:
                files[path] = _VERBS[action.tag]
        return changes, files

    def decisions(self, plan: InstallPlan) -> list[str]:
        return [
            describe(a) for a in plan.actions
            if a.needs_execute or (isinstance(a, KeepFile) and a.reason in _LEFT_ALONE)
        ]

    def question(self, verb: str) -> str:
        if verb == "uninstall":
            return "Remove mam's tools, units and PATH blocks from your user account?"
        return "Apply these changes to your user account?"

    def states(self, receipt: Receipt, ctx: Context) -> dict[str, str]:
        """Each file and rc block of the receipt, by its action's ``check()``: still as we
        left it (pristine), changed since (modified), or gone (missing)."""
        states: dict[str, str] = {}
        for action in receipt.plan.actions:
            if action.state != "completed":
                continue
            path = file_of(action)
            if path is None or action.tag == "create_directory":
                continue
            if isinstance(action, KeepFile) and action.owned() is None:
                continue
            if action.check(ctx):
                states[path] = "pristine"
            else:
                states[path] = "modified" if os.path.lexists(path) else "missing"
        return dict(sorted(states.items()))

    def after(
        self, verb: str, plan: InstallPlan, previous: Receipt | None, feedback: ConsoleFeedback
    ) -> None:
        if verb == "uninstall":
            for action in plan.actions:
                if action.state == "skipped":
                    feedback.warn(describe(action))
                if isinstance(action, RemoveRcBlock) and action.outcome == "removed":
                    feedback.info(f"changed {action.path}: removed the `# >>> mam >>>` PATH block")
            feedback.info(f"removed mam {plan.payload_version} for this user")
            return
        from ._start_hints import start_hints

        layout = self.host_layout
        if layout.unit_kind == "launchd":
            # launchd opens StandardOutPath but does not create its directory. The logs are the
            # user's once written, so the directory is not part of the plan; uninstall keeps it.
            layout.log_dir.mkdir(parents=True, exist_ok=True)
        _report(plan, feedback)
        assert self.host is not None
        for hint in start_hints(self.host, layout, plan.actions):
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
            f"installed mam {plan.payload_version} for this user in {layout.data_dir}: "
            f"{len(groups['write'])} written, {len(groups['replace']) + len(groups['adopt'])} "
            f"updated, {len(groups['beside'])} beside yours as .mam-new, {len(blocks)} rc "
            "file(s) changed"
        )


def staged_render_dir(source: LazyStaged) -> Path:
    return source.staging.path / "host-rendered"


def _kept_layout(host: Host, layout: HostLayout, feedback: ConsoleFeedback) -> HostLayout:
    try:
        previous = read_receipt(layout.scope)
    except ReceiptError:
        return layout  # reported properly once the lock is held
    earlier = previous.plan.settings.get("state_dir") if previous is not None else None
    if earlier is None or earlier == str(layout.state_dir):
        return layout
    network = host_layout(network_fs=True, system=host.os, home=host.home)
    if earlier != str(network.state_dir) or network.state_dir == layout.state_dir:
        return layout
    feedback.info(
        f"keeping mam's locks and sequence numbers in {earlier}, where an earlier install put "
        "them for a workspace on a network filesystem"
    )
    return network


def _report(plan: InstallPlan, feedback: ConsoleFeedback) -> None:
    for action in plan.actions:
        if isinstance(action, KeepFile) and action.new_path:
            path = file_of(action)
            feedback.warn(
                f"{path} is yours ({action.reason}); it was kept and ours written to "
                f"{path}.mam-new: compare them with `diff -u {path} {path}.mam-new`"
            )
        elif isinstance(action, KeepFile) and action.reason in _LEFT_ALONE:
            feedback.warn(f"{file_of(action)} was left alone: {describe(action)}")
    for action in plan.actions:
        path = file_of(action) if action.tag in _VERBS else None
        if path is not None and action.tag != "create_directory":
            feedback.detail(f"{_VERBS[action.tag]}: {path}")
    for action in plan.actions:
        if isinstance(action, AddRcBlock) and action.state == "completed" and not action.carried:
            feedback.info(f"changed {action.path}: added the `# >>> mam >>>` PATH block")


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
    from ..machine._detect import _normalize_system
    from ..machine._initsys import detect_init

    system = _normalize_system(sys.platform)
    info = detect_init(
        system, env=os.environ, runner=runner, root=Path("/"), uid=os.getuid(), user=None
    )
    return info.systemd_user_usable
