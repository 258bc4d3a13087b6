"""Actions on single files and directories inside one scope root (a workspace or a host dir)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .._errors import ConflictError
from ..engine import _fsops as fsops
from ..engine._action import Action, Context, register
from ..release._manifest import NEW_SUFFIX

KeepReason = Literal[
    "up-to-date",
    "identical",
    "user-edited",
    "pre-existing",
    "user-deleted",
    "symlink",
    "symlinked-parent",
    "not-a-file",
    "pending",
    "modified",
]

KEEP_SENTENCES: dict[str, str] = {
    "up-to-date": "already up to date",
    "identical": "already holds the same bytes (it was there before mam; it stays yours)",
    "user-edited": "you changed it since mam installed it; your copy stays",
    "pre-existing": "it was here before mam and differs from mam's; it stays yours",
    "user-deleted": "you deleted it after mam installed it; it stays deleted",
    "symlink": "it is a symlink; mam-install never writes through one",
    "symlinked-parent": "a parent directory is a symlink; mam-install never writes through one",
    "not-a-file": "something other than a regular file is there",
    "pending": f"our newer version is already waiting beside it as {NEW_SUFFIX}",
    "modified": "it changed since mam wrote it; it is yours now and stays",
    "kept-mine": "you chose to keep your copy over mam's",
    "adopted": "already holds the bytes of a released mam version; mam looks after it now",
}

# What the user decided about a file of mam's (receipt schema 2, recorded on KeepFile): "" is
# pristine; "edited" and "deleted" are remembered across upgrades until a release changes the
# file (then `.mam-new`) or `restore` brings it back; "conflict" waits beside as `.mam-new`
# until `resolve` or a settlement by hand turns it into "kept-mine" or "took-new".
Decision = Literal["", "edited", "deleted", "conflict", "kept-mine", "took-new"]


def owned_key(path: str, base: str | None) -> str:
    """How a receipt names a file in our care: relative in the workspace, absolute on the host."""
    return f"{base.rstrip('/')}/{path}" if base else path


def root_of(ctx: Context, base: str | None) -> Path:
    """Workspace actions work below the context's root; host actions carry their own ``base``
    (an existing directory, resolved when planned): nothing below it is ever followed."""
    return Path(base) if base else ctx.root


def _at(ctx: Context, path: str, base: str | None) -> Path:
    return root_of(ctx, base) / path


def _backup(ctx: Context, path: str, base: str | None) -> Path:
    if ctx.backup_dir is None:
        raise ConflictError(
            f"no backup directory for {root_of(ctx, base) / path}; refusing to replace it"
        )
    if base:
        return ctx.backup_dir / hashlib.sha256(base.encode()).hexdigest()[:16] / path
    return ctx.backup_dir / path


def _save_backup(ctx: Context, path: str, base: str | None) -> None:
    fsops.save_backup(root_of(ctx, base), path, _backup(ctx, path, base), anchor=ctx.state_anchor)


@register
@dataclass
class CreateDirectory(Action):
    """Create a directory that is not there (removed on revert only if it is empty)."""

    tag = "create_directory"
    path: str
    base: str | None = None

    def describe_execute(self) -> str:
        return f"Create directory `{self.path}`"

    def describe_revert(self) -> str:
        return f"Remove directory `{self.path}` if it is empty"

    def execute(self, ctx: Context) -> None:
        fsops.make_dir(root_of(ctx, self.base), self.path)

    def revert(self, ctx: Context) -> None:
        if not fsops.remove_dir_if_empty(root_of(ctx, self.base), self.path):
            ctx.feedback.detail(f"kept {_at(ctx, self.path, self.base)}: it is not empty")

    def check(self, ctx: Context) -> bool:
        return (_at(ctx, self.path, self.base)).is_dir() and not (
            _at(ctx, self.path, self.base)
        ).is_symlink()


@register
@dataclass
class RemoveDirectory(Action):
    """Remove a directory we created, if nothing else lives in it (uninstall)."""

    tag = "remove_directory"
    path: str
    base: str | None = None

    def describe_execute(self) -> str:
        return f"Remove directory `{self.path}` if it is empty"

    def describe_revert(self) -> str:
        return f"Recreate directory `{self.path}`"

    def execute(self, ctx: Context) -> None:
        if not fsops.remove_dir_if_empty(root_of(ctx, self.base), self.path):
            ctx.feedback.info(
                f"kept {_at(ctx, self.path, self.base)}: it holds files that are not mam's"
            )

    def revert(self, ctx: Context) -> None:
        (_at(ctx, self.path, self.base)).mkdir(parents=True, exist_ok=True)

    def check(self, ctx: Context) -> bool:
        return not (_at(ctx, self.path, self.base)).exists()


class _Placed:
    """What WriteFile and ReplaceFile share: once done, ``path`` holds ``sha256`` and is ours."""

    path: str
    sha256: str
    base: str | None

    def check(self, ctx: Context) -> bool:
        return fsops.inspect(root_of(ctx, self.base), self.path).sha256 == self.sha256

    def owned(self) -> tuple[str, str] | None:
        return (owned_key(self.path, self.base), self.sha256)


@register
@dataclass
class WriteFile(_Placed, Action):
    """Create a file where nothing is (``path`` may be ``<file>.mam-new`` beside the user's)."""

    tag = "write_file"
    path: str
    sha256: str
    mode: int
    source: str
    for_path: str
    reason: str = ""
    pre_existed: bool = False
    base: str | None = None
    version: str = ""  # the payload version whose file this is (schema 2)

    def describe_execute(self) -> str:
        text = f"Write `{self.path}` ({self.mode:04o}, sha256 {self.sha256[:12]})"
        return f"{text}: {self.reason}" if self.reason else text

    def describe_revert(self) -> str:
        return f"Remove `{self.path}` if it still holds what mam wrote"

    def execute(self, ctx: Context) -> None:
        now = fsops.inspect(root_of(ctx, self.base), self.path)
        if now.kind == "file" and now.sha256 == self.sha256:
            return  # written by a run that was killed before it could record it
        fsops.place_new(root_of(ctx, self.base), self.path, ctx.source(self.source), self.mode)

    def revert(self, ctx: Context) -> None:
        fsops.remove_temp(root_of(ctx, self.base), self.path)
        if not fsops.remove_if(root_of(ctx, self.base), self.path, self.sha256):
            ctx.feedback.warn(
                f"kept {_at(ctx, self.path, self.base)}: it changed after mam wrote it"
            )


@register
@dataclass
class ReplaceFile(_Placed, Action):
    """Replace a pristine file of ours (or an adopted legacy one) with the new version."""

    tag = "replace_file"
    path: str
    old_sha256: str
    sha256: str
    mode: int
    source: str
    for_path: str
    adopted: bool = False
    reason: str = ""
    pre_existed: bool = True
    base: str | None = None
    version: str = ""
    adopted_from: str | None = None  # the released version the replaced file matched

    def describe_execute(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return (
            f"Replace `{self.path}` (sha256 {self.old_sha256[:12]} -> {self.sha256[:12]}), "
            f"keeping a backup{why}"
        )

    def describe_revert(self) -> str:
        return f"Restore the previous `{self.path}` from the backup if it still holds ours"

    def execute(self, ctx: Context) -> None:
        now = fsops.inspect(root_of(ctx, self.base), self.path)
        if now.kind == "file" and now.sha256 == self.sha256:
            return
        if now.kind != "file" or now.sha256 != self.old_sha256:
            raise ConflictError(
                f"{_at(ctx, self.path, self.base)} changed since the plan was made; "
                "it was kept. Run again."
            )
        _save_backup(ctx, self.path, self.base)
        fsops.replace_if(
            root_of(ctx, self.base), self.path, ctx.source(self.source), self.mode, self.old_sha256
        )

    def revert(self, ctx: Context) -> None:
        fsops.remove_temp(root_of(ctx, self.base), self.path)
        now = fsops.inspect(root_of(ctx, self.base), self.path)
        if now.kind == "file" and now.sha256 == self.old_sha256:
            return
        backup = _backup(ctx, self.path, self.base)
        if (
            now.kind != "file"
            or now.sha256 != self.sha256
            or not fsops.has_backup(backup, anchor=ctx.state_anchor)
        ):
            ctx.feedback.warn(f"kept {_at(ctx, self.path, self.base)}: cannot restore it safely")
            return
        fsops.restore(
            root_of(ctx, self.base), self.path, backup, self.sha256, anchor=ctx.state_anchor
        )


@register
@dataclass
class RemoveFile(Action):
    """Remove a file of ours that is still pristine (dropped from the payload, or uninstall)."""

    tag = "remove_file"
    path: str
    sha256: str
    reason: str = ""
    base: str | None = None

    def describe_execute(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"Remove `{self.path}`{why} if it still holds what mam wrote"

    def describe_revert(self) -> str:
        return f"Restore `{self.path}` from the backup"

    def execute(self, ctx: Context) -> None:
        now = fsops.inspect(root_of(ctx, self.base), self.path)
        if now.kind == "absent":
            return
        if now.kind != "file" or now.sha256 != self.sha256:
            ctx.feedback.warn(
                f"kept {_at(ctx, self.path, self.base)}: it changed after mam wrote it"
            )
            return
        if ctx.backup_dir is not None:
            _save_backup(ctx, self.path, self.base)
        fsops.remove_if(root_of(ctx, self.base), self.path, self.sha256)

    def revert(self, ctx: Context) -> None:
        if ctx.backup_dir is None:
            return
        backup = _backup(ctx, self.path, self.base)
        if not fsops.has_backup(backup, anchor=ctx.state_anchor):
            return
        if fsops.inspect(root_of(ctx, self.base), self.path).kind == "absent":
            fsops.restore(root_of(ctx, self.base), self.path, backup, None, anchor=ctx.state_anchor)

    def check(self, ctx: Context) -> bool:
        return fsops.inspect(root_of(ctx, self.base), self.path).kind == "absent"

    def released(self) -> str | None:
        return owned_key(self.path, self.base)


@register
@dataclass
class KeepFile(Action):
    """A decision to leave a path alone, recorded so status, plan and reports can name it."""

    tag = "keep_file"
    path: str
    reason: str
    disk_sha256: str | None = None
    # Set when the file stays in our care (up to date and ours): uninstall may remove it.
    owned_sha256: str | None = None
    new_path: str | None = None
    pre_existed: bool = True
    base: str | None = None
    # Schema 2: the user's decision about a file of ours, the version of ``owned_sha256``, and
    # the released version a file found in place matched when it was adopted.
    decision: Decision = ""
    version: str = ""
    adopted_from: str | None = None

    def describe_execute(self) -> str:
        text = f"Keep `{self.path}`: {KEEP_SENTENCES.get(self.reason, self.reason)}"
        if self.new_path:
            text += f"; ours goes to `{self.new_path}`"
        return text

    def describe_revert(self) -> str:
        return f"Nothing to undo for `{self.path}`"

    def execute(self, ctx: Context) -> None:
        return None

    def revert(self, ctx: Context) -> None:
        return None

    def check(self, ctx: Context) -> bool:
        if self.owned_sha256 is None:
            return True
        return fsops.inspect(root_of(ctx, self.base), self.path).sha256 == self.owned_sha256

    def owned(self) -> tuple[str, str] | None:
        if self.owned_sha256 is None:
            return None
        return (owned_key(self.path, self.base), self.owned_sha256)
