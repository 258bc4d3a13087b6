"""The workspace scope for the driver: the allowlisted runtime files in one project."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from .._errors import ConflictError, PlatformError, UsageError
from .._feedback import ConsoleFeedback
from .._noop import Seen
from .._runner import CommandRunner, SubprocessRunner
from ..actions._file_actions import KeepFile
from ..engine._action import Action, Context
from ..engine._plan import InstallPlan, Receipt
from ..engine._state_dir import ensure_state_dir
from ..machine._layout import ScopeLayout, nearest_existing, workspace_layout
from ..release._lazy_source import LazyStaged
from ..release._manifest import Manifest, parse_manifest
from ..release._sources import Staged
from ._file_planner import OnConflict, Previous, plan_uninstall, plan_workspace
from ._summary import summarize, summary_line
from ._workspace_status import file_states

_LEFT_ALONE = ("symlink", "symlinked-parent", "user-deleted", "not-a-file", "modified")


def _legacy_hashes() -> dict[str, Mapping[str, str]]:
    """What every released version put at each path: a file "present, not in receipt" that
    matches one was installed by an older installer (DESIGN §5), with or without a receipt."""
    from ..release._embedded import history_dir
    from ..release._history import read_history, released_hashes

    return dict(released_hashes(read_history(history_dir())))


class WorkspaceScope:
    kind = "workspace"

    def __init__(
        self,
        root: Path,
        source: LazyStaged | None = None,
        *,
        on_conflict: OnConflict = "beside",
        restore: frozenset[str] = frozenset(),
        allow_downgrade: bool = False,
        embedded_only: bool = True,
        runner: CommandRunner | None = None,
    ) -> None:
        self.root = root
        self.layout: ScopeLayout = workspace_layout(root)
        self.source = source
        self.on_conflict: OnConflict = on_conflict
        self.restore = restore
        self.allow_downgrade = allow_downgrade
        self.embedded_only = embedded_only  # the source is the payload inside this pyz
        self.runner = runner

    def command_hint(self) -> str:
        return f" --workspace {self.root}"

    def check(self, *, mutating: bool) -> None:
        """The workspace is a directory (or can be made one) that this user can write."""
        existing = nearest_existing(self.root)
        if (os.path.lexists(self.root) and not self.root.is_dir()) or not existing.is_dir():
            raise ConflictError(
                f"{existing} is not a directory, so {self.root} cannot be a workspace; pass "
                "--workspace DIR of a directory. Nothing was changed"
            )
        if mutating and not os.access(existing, os.W_OK | os.X_OK):
            raise PlatformError(
                f"{existing} is not writable by this user (uid {os.getuid()}); run as its owner "
                "or pick another --workspace. Nothing was changed"
            )

    def make_state_dir(self) -> bool:
        if not self.root.is_dir():
            self.root.mkdir(parents=True)
        return ensure_state_dir(self.layout)

    def context(self, feedback: ConsoleFeedback) -> Context:
        runner = self.runner or SubprocessRunner()
        return Context(root=self.root, runner=runner, feedback=feedback)

    def nothing_here(self, previous: Receipt | None) -> str | None:
        return None

    def _staged(self) -> Staged:
        if self.source is None:
            raise UsageError("no release to install from")  # a programming error, not a user's
        return self.source.get()

    def new_version(self) -> str:
        return self._staged().payload.manifest.version

    def quick_plan(
        self, verb: str, previous: Receipt | None, seen: list[Seen] | None = None
    ) -> InstallPlan | None:
        """The plan, made without staging, when it is sure to change nothing (a re-install).

        Only for the payload inside the running pyz, whose manifest is as trusted as the
        installer itself; any other source is staged and verified first, whatever the outcome.
        """
        if not self.embedded_only or previous is None or self.restore or verb == "restore":
            return None
        if previous.run.status != "complete":
            return None
        from ..release._embedded import embedded_manifest_path

        path = embedded_manifest_path()
        manifest = parse_manifest(path.read_bytes(), str(path))
        if manifest.version != previous.plan.payload_version:
            return None
        plan = self._build(manifest, previous.plan.source, previous, seen)
        return plan if plan.is_noop else None

    def remember(self, verb: str) -> None:
        """Leave the no-op witness (_noop) when a re-install of this pyz's payload would now
        change nothing and say nothing but that; drop it otherwise. The plan is made again from
        what is on disk now, with every observation recorded: the witness is exactly what the
        engine's answer rests on."""
        from .._noop import forget, record
        from ..engine._driver import is_noop
        from ..engine._plan import read_receipt_bytes

        root = str(self.root)
        if verb in ("uninstall", "rollback") or not self.embedded_only:
            forget(root)
            return
        seen: list[Seen] = []
        previous, raw = read_receipt_bytes(self.layout)
        plan = self.quick_plan("install", previous, seen)
        if plan is None or previous is None or not is_noop(plan, previous) or self.decisions(plan):
            forget(root)
            return
        record(root, plan.payload_version, raw, seen)

    def plan_install(
        self, verb: str, previous: Receipt | None, feedback: ConsoleFeedback
    ) -> tuple[InstallPlan, dict[str, Path]]:
        staged = self._staged()
        manifest = staged.payload.manifest
        if verb == "restore":
            self._check_restore(previous, manifest.version)
        assert self.source is not None
        record = {**self.source.source.describe(), "origin": staged.origin, **staged.record}
        sources = {f.member: staged.payload.path_of(f) for f in manifest.files}
        return self._build(manifest, record, previous), sources

    def _build(
        self, manifest: Manifest, source: dict[str, Any], previous: Receipt | None,
        seen: list[Seen] | None = None,
    ) -> InstallPlan:
        actions = plan_workspace(
            self.root, manifest, Previous.from_receipt(previous), _legacy_hashes(),
            on_conflict=self.on_conflict, restore=self.restore, seen=seen,
        )
        return InstallPlan(
            scope="workspace",
            installer_version=__version__,
            payload_version=manifest.version,
            source=source,
            settings={"workspace": str(self.root), "allow_downgrade": self.allow_downgrade},
            host={"python": sys.version.split()[0], "platform": sys.platform},
            actions=actions,
        )

    def _check_restore(self, previous: Receipt | None, version: str) -> None:
        """`restore` brings back files of the installed version, and only files of mam's."""
        if previous is None:
            raise UsageError(
                f"no receipt in {self.layout.state_dir}: nothing to restore; run install"
            )
        if previous.plan.payload_version != version:
            raise UsageError(
                f"mam {previous.plan.payload_version} is installed in {self.root} but the "
                f"source holds {version}; restore from the installed version (--from), or upgrade"
            )
        owned = previous.owned_files()
        for path in sorted(self.restore):
            if path not in owned:
                raise UsageError(f"{self.root / path} is not a file of mam's; nothing to restore")

    def plan_removal(self, receipt: Receipt) -> InstallPlan:
        return InstallPlan(
            scope="workspace",
            installer_version=receipt.plan.installer_version,
            payload_version=receipt.plan.payload_version,
            source=receipt.plan.source,
            settings=receipt.plan.settings,
            host=receipt.plan.host,
            actions=plan_uninstall(self.root, receipt),
        )

    def describe(self, action: Action) -> str:
        return action.describe_execute()

    def summarize(
        self, plan: InstallPlan, pending: list[Action]
    ) -> tuple[dict[str, list[str]], dict[str, str]]:
        groups = summarize(plan.actions)
        files = {p: name for name, paths in groups.items() for p in paths if name != "unchanged"}
        return groups, files

    def decisions(self, plan: InstallPlan) -> list[str]:
        """Every per-file decision and why: the steps to run, and each file left as it is,
        but not the files and directories that are simply up to date."""
        return [
            a.describe_execute()
            for a in plan.actions
            if a.needs_execute
            or (isinstance(a, KeepFile) and a.reason not in ("up-to-date", "pending"))
        ]

    def question(self, verb: str) -> str:
        if verb == "uninstall":
            return f"Remove mam from {self.root}?"
        return f"Apply these changes to {self.root}?"

    def states(self, receipt: Receipt, ctx: Context) -> dict[str, str]:
        return file_states(self.root, receipt.plan.actions, receipt.owned_files())

    def after(
        self, verb: str, plan: InstallPlan, previous: Receipt | None, feedback: ConsoleFeedback
    ) -> None:
        if verb == "uninstall":
            for action in plan.actions:
                if action.state == "skipped":
                    feedback.warn(action.describe_execute())
            feedback.info(f"removed mam {plan.payload_version} from {self.root}")
            return
        for action in plan.actions:
            if isinstance(action, KeepFile) and action.new_path:
                path, new = self.root / action.path, self.root / action.new_path
                feedback.warn(
                    f"{path} is yours ({action.reason}); it was kept and ours written to {new}: "
                    f"compare them with `diff -u {path} {new}`"
                )
            elif isinstance(action, KeepFile) and action.reason in _LEFT_ALONE:
                feedback.warn(f"{self.root / action.path} was left alone: "
                              f"{action.describe_execute()}")
        line = summary_line(summarize(plan.actions))
        before = previous.plan.payload_version if previous is not None else None
        if before is not None and before != plan.payload_version:
            feedback.info(
                f"upgraded mam {before} \u2192 {plan.payload_version} in {self.root}: {line}"
            )
        else:
            feedback.info(f"installed mam {plan.payload_version} into {self.root}: {line}")
