"""Actions on single files and directories inside one scope root (a workspace or a host dir)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import _fsops as fsops
from ._action import Action, Context, register
from ._errors import ConflictError
from ._manifest import NEW_SUFFIX

KeepReason = Literal[
    "up-to-date",
    "identical",
    "user-edited",
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
    "user-deleted": "you deleted it after mam installed it; it stays deleted",
    "symlink": "it is a symlink; mam-install never writes through one",
    "symlinked-parent": "a parent directory is a symlink; mam-install never writes through one",
    "not-a-file": "something other than a regular file is there",
    "pending": f"our newer version is already waiting beside it as {NEW_SUFFIX}",
    "modified": "it changed since mam wrote it; it is yours now and stays",
}


def _backup(ctx: Context, path: str) -> Path:
    if ctx.backup_dir is None:
        raise ConflictError(f"no backup directory for {ctx.root / path}; refusing to replace it")
    return ctx.backup_dir / path


def _save_backup(ctx: Context, path: str) -> None:
    """Copy the current bytes of ``path`` into the run's backup, once, atomically."""
    backup = _backup(ctx, path)
    if backup.exists():
        return
    backup.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = backup.with_name(fsops.temp_name(backup.name))
    shutil.copyfile(ctx.root / path, tmp, follow_symlinks=False)
    shutil.copymode(ctx.root / path, tmp, follow_symlinks=False)
    tmp.replace(backup)


@register
@dataclass
class CreateDirectory(Action):
    tag = "create_directory"
    path: str

    def describe_execute(self) -> str:
        return f"Create directory `{self.path}`"

    def describe_revert(self) -> str:
        return f"Remove directory `{self.path}` if it is empty"

    def execute(self, ctx: Context) -> None:
        fsops.make_dir(ctx.root, self.path)

    def revert(self, ctx: Context) -> None:
        if not fsops.remove_dir_if_empty(ctx.root, self.path):
            ctx.feedback.detail(f"kept {ctx.root / self.path}: it is not empty")

    def check(self, ctx: Context) -> bool:
        return (ctx.root / self.path).is_dir() and not (ctx.root / self.path).is_symlink()


@register
@dataclass
class RemoveDirectory(Action):
    """Remove a directory we created, if nothing else lives in it (uninstall)."""

    tag = "remove_directory"
    path: str

    def describe_execute(self) -> str:
        return f"Remove directory `{self.path}` if it is empty"

    def describe_revert(self) -> str:
        return f"Recreate directory `{self.path}`"

    def execute(self, ctx: Context) -> None:
        if not fsops.remove_dir_if_empty(ctx.root, self.path):
            ctx.feedback.info(f"kept {ctx.root / self.path}: it holds files that are not mam's")

    def revert(self, ctx: Context) -> None:
        (ctx.root / self.path).mkdir(parents=True, exist_ok=True)

    def check(self, ctx: Context) -> bool:
        return not (ctx.root / self.path).exists()


@register
@dataclass
class WriteFile(Action):
    """Create a file where nothing is (``path`` may be ``<file>.mam-new`` beside the user's)."""

    tag = "write_file"
    path: str
    sha256: str
    mode: int
    source: str
    for_path: str
    reason: str = ""
    pre_existed: bool = False

    def describe_execute(self) -> str:
        text = f"Write `{self.path}` ({self.mode:04o}, sha256 {self.sha256[:12]})"
        return f"{text}: {self.reason}" if self.reason else text

    def describe_revert(self) -> str:
        return f"Remove `{self.path}` if it still holds what mam wrote"

    def execute(self, ctx: Context) -> None:
        now = fsops.inspect(ctx.root, self.path)
        if now.kind == "file" and now.sha256 == self.sha256:
            return  # written by a run that was killed before it could record it
        fsops.place_new(ctx.root, self.path, ctx.source(self.source), self.mode)

    def revert(self, ctx: Context) -> None:
        fsops.remove_temp(ctx.root, self.path)
        if not fsops.remove_if(ctx.root, self.path, self.sha256):
            ctx.feedback.warn(f"kept {ctx.root / self.path}: it changed after mam wrote it")

    def check(self, ctx: Context) -> bool:
        return fsops.inspect(ctx.root, self.path).sha256 == self.sha256

    def owned(self) -> tuple[str, str] | None:
        return (self.path, self.sha256)


@register
@dataclass
class ReplaceFile(Action):
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

    def describe_execute(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return (
            f"Replace `{self.path}` (sha256 {self.old_sha256[:12]} -> {self.sha256[:12]}), "
            f"keeping a backup{why}"
        )

    def describe_revert(self) -> str:
        return f"Restore the previous `{self.path}` from the backup if it still holds ours"

    def execute(self, ctx: Context) -> None:
        now = fsops.inspect(ctx.root, self.path)
        if now.kind == "file" and now.sha256 == self.sha256:
            return
        if now.kind != "file" or now.sha256 != self.old_sha256:
            raise ConflictError(
                f"{ctx.root / self.path} changed since the plan was made; it was kept. Run again."
            )
        _save_backup(ctx, self.path)
        fsops.replace_if(ctx.root, self.path, ctx.source(self.source), self.mode, self.old_sha256)

    def revert(self, ctx: Context) -> None:
        fsops.remove_temp(ctx.root, self.path)
        now = fsops.inspect(ctx.root, self.path)
        if now.kind == "file" and now.sha256 == self.old_sha256:
            return
        backup = _backup(ctx, self.path)
        if now.kind != "file" or now.sha256 != self.sha256 or not backup.is_file():
            ctx.feedback.warn(f"kept {ctx.root / self.path}: cannot restore it safely")
            return
        mode = backup.stat().st_mode & 0o7777
        fsops.replace_if(ctx.root, self.path, backup, mode, self.sha256)

    def check(self, ctx: Context) -> bool:
        return fsops.inspect(ctx.root, self.path).sha256 == self.sha256

    def owned(self) -> tuple[str, str] | None:
        return (self.path, self.sha256)


@register
@dataclass
class RemoveFile(Action):
    """Remove a file of ours that is still pristine (dropped from the payload, or uninstall)."""

    tag = "remove_file"
    path: str
    sha256: str
    reason: str = ""

    def describe_execute(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"Remove `{self.path}`{why} if it still holds what mam wrote"

    def describe_revert(self) -> str:
        return f"Restore `{self.path}` from the backup"

    def execute(self, ctx: Context) -> None:
        now = fsops.inspect(ctx.root, self.path)
        if now.kind == "absent":
            return
        if now.kind != "file" or now.sha256 != self.sha256:
            ctx.feedback.warn(f"kept {ctx.root / self.path}: it changed after mam wrote it")
            return
        if ctx.backup_dir is not None:
            _save_backup(ctx, self.path)
        fsops.remove_if(ctx.root, self.path, self.sha256)

    def revert(self, ctx: Context) -> None:
        if ctx.backup_dir is None or not _backup(ctx, self.path).is_file():
            return
        if fsops.inspect(ctx.root, self.path).kind == "absent":
            backup = _backup(ctx, self.path)
            fsops.place_new(ctx.root, self.path, backup, backup.stat().st_mode & 0o7777)

    def check(self, ctx: Context) -> bool:
        return fsops.inspect(ctx.root, self.path).kind == "absent"


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
        return fsops.inspect(ctx.root, self.path).sha256 == self.owned_sha256

    def owned(self) -> tuple[str, str] | None:
        return (self.path, self.owned_sha256) if self.owned_sha256 else None
