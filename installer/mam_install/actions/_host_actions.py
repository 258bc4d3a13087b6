"""Host-scope actions: the marked PATH block in an rc file, and running a service-manager command.

An rc file is the user's: we add one block, delimited by ``# >>> mam >>>`` and ``# <<< mam <<<``,
and on revert remove exactly the bytes we added, so a file nobody else touched is byte-for-byte
what it was. Every rewrite goes through a temporary file in the same directory and a rename, with
the file's mode (and, as root, its owner) kept; the final component is never followed.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._errors import ActionFailed, ConflictError
from ..engine import _fsops as fsops
from ..engine._action import Action, Context, register

__all__ = [
    "BLOCK_BEGIN",
    "BLOCK_END",
    "AddRcBlock",
    "RcKind",
    "RemoveRcBlock",
    "RunCommand",
    "rc_block",
    "separator_for",
]

BLOCK_BEGIN = "# >>> mam >>>"
BLOCK_END = "# <<< mam <<<"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
NEW_RC_MODE = 0o644

RcKind = Literal["absent", "file", "symlink", "other"]
RemoveOutcome = Literal["removed", "absent", "kept"]


def rc_block(env_script: str) -> str:
    """The block that sources ``env_script`` (POSIX sh: read by sh, dash, ksh, bash and zsh)."""
    quoted = shlex.quote(env_script)
    return (
        f"{BLOCK_BEGIN}\n"
        "# Added by mam-install: puts mam's tools on PATH. "
        "`mam-install uninstall --host` removes it.\n"
        f"if [ -f {quoted} ]; then . {quoted}; fi\n"
        f"{BLOCK_END}\n"
    )


def separator_for(data: bytes) -> str:
    """What goes between a file's content and our block: a blank line, after ending its last
    line if it had no newline; nothing in an empty file."""
    if not data:
        return ""
    return "\n" if data.endswith(b"\n") else "\n\n"


def _read_at(dfd: int, name: str) -> tuple[RcKind, bytes, os.stat_result | None]:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return "absent", b"", None
    if stat.S_ISLNK(st.st_mode):
        return "symlink", b"", st
    if not stat.S_ISREG(st.st_mode):
        return "other", b"", st
    fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=dfd)
    with os.fdopen(fd, "rb") as stream:
        return "file", stream.read(), os.fstat(stream.fileno())


def _init_fields(action: AddRcBlock) -> dict[str, Any]:
    return {f.name: getattr(action, f.name) for f in dataclasses.fields(action) if f.init}


def _unlink_quietly(dfd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dfd)
    except FileNotFoundError:
        pass


def _rewrite(
    dfd: int, name: str, data: bytes, before: os.stat_result | None, expect: bytes | None, at: Path
) -> None:
    """Put ``data`` at ``name`` by temp file and rename, keeping mode and owner of ``before``.

    ``expect`` is what the file held when we read it (None: absent); if that changed while we
    wrote the temp file, nothing is replaced (ConflictError).
    """
    tmp = fsops.temp_name(name)
    _unlink_quietly(dfd, tmp)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, stat.S_IMODE(before.st_mode) if before is not None else NEW_RC_MODE)
        if before is not None and os.geteuid() == 0 and before.st_uid != 0:
            os.fchown(fd, before.st_uid, before.st_gid)  # root editing a user's file: still theirs
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(dfd, tmp)
        raise
    os.close(fd)
    kind, now, _ = _read_at(dfd, name)
    unchanged = kind == "absent" if expect is None else (kind, now) == ("file", expect)
    if not unchanged:
        _unlink_quietly(dfd, tmp)
        raise ConflictError(f"{at} changed while mam-install was editing it; it was left as it is")
    if expect is not None:
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    else:
        try:
            # link() refuses an existing destination: a file created meanwhile is never replaced.
            os.link(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
        except FileExistsError:
            raise ConflictError(
                f"{at} appeared while mam-install was creating it; run again"
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        finally:
            _unlink_quietly(dfd, tmp)
    try:
        os.fsync(dfd)
    except OSError:
        pass


@register
@dataclass
class AddRcBlock(Action):
    """Append the marked block that sources the env script to one rc file.

    ``path`` is the rc file as the user knows it; ``base`` is its directory, resolved when
    planned (so ``/home -> /usr/home`` works), below which nothing is followed. ``separator`` is
    what was put before the block and ``created`` whether the file was made for it: together
    they let revert restore the original bytes. ``reason`` says why a skipped one was skipped.
    """

    tag = "add_rc_block"
    path: str
    base: str
    env_script: str
    block: str
    separator: str = ""
    created: bool = False
    family: str = ""
    reason: str = ""

    @property
    def name(self) -> str:
        return Path(self.path).name

    @classmethod
    def plan(
        cls,
        rc_file: Path,
        env_script: Path,
        *,
        family: str = "",
        previous: AddRcBlock | None = None,
    ) -> AddRcBlock:
        """Inspect ``rc_file`` and return the action in its initial state (nothing is touched).

        ``previous`` is this file's completed block from the last receipt: when its bytes are
        still there it is carried forward unchanged, so uninstall can still restore the file.
        """
        block = rc_block(str(env_script))
        action = cls(path=str(rc_file), base="", env_script=str(env_script), block=block,
                     family=family)
        parent = rc_file.parent
        if not parent.is_dir():
            return action._skip(f"its directory {parent} does not exist")
        action.base = os.path.realpath(parent)
        try:
            with fsops.open_dir(Path(action.base), "") as dfd:
                kind, data, _ = _read_at(dfd, rc_file.name)
        except OSError as exc:
            return action._skip(f"it cannot be read ({exc.strerror or exc})")
        if kind == "symlink":
            return action._skip("it is a symlink; mam-install never writes through one")
        if kind == "other":
            return action._skip("it is not a regular file")
        if previous is not None and data.count(previous.block.encode()) == 1:
            carried = cls(**{**_init_fields(previous), "base": action.base, "reason": ""})
            carried.state, carried.carried = "completed", True
            return carried
        count = data.count(block.encode())
        if count == 1:
            action.state, action.carried = "completed", True
            return action
        if count > 1 or BLOCK_BEGIN.encode() in data:
            return action._skip(f"it already holds a different `{BLOCK_BEGIN}` block; left as is")
        writable_dir = os.access(action.base, os.W_OK | os.X_OK)
        if kind == "file" and not (os.access(rc_file, os.W_OK) and writable_dir):
            return action._skip("it is not writable (mam-install rewrites it in place)")
        if kind == "absent" and not writable_dir:
            return action._skip(f"its directory {parent} is not writable")
        action.created = kind == "absent"
        action.separator = separator_for(data)
        return action

    def _skip(self, reason: str) -> AddRcBlock:
        self.reason, self.state = reason, "skipped"
        return self

    def describe_execute(self) -> str:
        if self.reason:
            return f"Leave `{self.path}` alone: {self.reason}"
        made = "Create" if self.created else "Append to"
        return (
            f"{made} `{self.path}` a `{BLOCK_BEGIN}` block that sources `{self.env_script}`"
        )

    def describe_revert(self) -> str:
        return f"Remove the `{BLOCK_BEGIN}` block from `{self.path}`, restoring its earlier bytes"

    def execute(self, ctx: Context) -> None:
        self._add(ctx, strict=True)

    def revert(self, ctx: Context) -> None:
        self._remove(ctx)

    def check(self, ctx: Context) -> bool:
        try:
            with fsops.open_dir(Path(self.base), "") as dfd:
                kind, data, _ = _read_at(dfd, self.name)
        except (OSError, fsops.UnsafePath):
            return False
        return kind == "file" and data.count(self.block.encode()) == 1

    def _add(self, ctx: Context, *, strict: bool) -> None:
        block = self.block.encode()
        with fsops.open_dir(Path(self.base), "") as dfd:
            kind, data, before = _read_at(dfd, self.name)
            if kind == "file" and data.count(block) == 1:
                return  # added by a run that was killed before it could record it
            planned = ("absent", "") if self.created else ("file", self.separator)
            now = (kind, separator_for(data) if kind == "file" else "")
            if now != planned:
                if strict or kind not in ("absent", "file") or BLOCK_BEGIN.encode() in data:
                    raise ConflictError(
                        f"{self.path} changed since the plan was made; it was left as it is. "
                        "Run again."
                    )
                self.created, self.separator = kind == "absent", now[1]
            added = self.separator.encode() + block
            expect = data if kind == "file" else None
            _rewrite(dfd, self.name, data + added, before, expect, Path(self.path))

    def _remove(self, ctx: Context) -> RemoveOutcome:
        block = self.block.encode()
        try:
            with fsops.open_dir(Path(self.base), "") as dfd:
                kind, data, before = _read_at(dfd, self.name)
                if kind == "absent":
                    return "absent"
                if kind != "file":
                    ctx.feedback.warn(f"kept {self.path}: it is no longer a regular file")
                    return "kept"
                count = data.count(block)
                if count == 0 and self.created and not data:
                    _unlink_quietly(dfd, self.name)  # a killed revert emptied it already
                    return "removed"
                if count != 1:
                    if BLOCK_BEGIN.encode() not in data:
                        return "absent"
                    ctx.feedback.warn(
                        f"kept {self.path}: its `{BLOCK_BEGIN}` block was edited or copied, "
                        "so it cannot be removed exactly; delete the lines from "
                        f"`{BLOCK_BEGIN}` to `{BLOCK_END}` by hand"
                    )
                    return "kept"
                restored = self._without_block(data)
                if self.created and not restored:
                    _unlink_quietly(dfd, self.name)
                    return "removed"
                _rewrite(dfd, self.name, restored, before, data, Path(self.path))
                return "removed"
        except (FileNotFoundError, fsops.UnsafePath):
            ctx.feedback.warn(f"kept {self.path}: its directory {self.base} is gone or unsafe")
            return "kept"

    def _without_block(self, data: bytes) -> bytes:
        """``data`` minus our block and, where it is still right before it, our separator.

        When the user added lines after the block and we had ended their last line for it,
        that newline stays: their last line and the new lines must not run together.
        """
        block, separator = self.block.encode(), self.separator.encode()
        start = data.find(block)
        head, tail = data[:start], data[start + len(block) :]
        if separator and head.endswith(separator):
            keep = b"\n" if (tail and separator == b"\n\n") else b""
            head = head[: len(head) - len(separator)] + keep
        return head + tail


@register
@dataclass
class RemoveRcBlock(AddRcBlock):
    """Uninstall: remove a block an earlier run added (the reverse of AddRcBlock)."""

    tag = "remove_rc_block"
    # What execute found: "removed", "absent" (nothing of ours was there) or "kept" (warned).
    outcome: str = ""

    @classmethod
    def undoing(cls, added: AddRcBlock) -> RemoveRcBlock:
        return cls(**{**_init_fields(added), "reason": ""})

    def describe_execute(self) -> str:
        return super().describe_revert()

    def describe_revert(self) -> str:
        return f"Put the `{BLOCK_BEGIN}` block back into `{self.path}`"

    def execute(self, ctx: Context) -> None:
        self.outcome = self._remove(ctx)

    def revert(self, ctx: Context) -> None:
        if self.outcome == "removed":  # never add a block that was not there to remove
            self._add(ctx, strict=False)

    def check(self, ctx: Context) -> bool:
        return not super().check(ctx)


FailurePolicy = Literal["fail", "warn"]


def _command_text(argv: list[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)


@register
@dataclass
class RunCommand(Action):
    """Run one command (``systemctl --user daemon-reload``, ``enable --now``, ``launchctl``).

    A failure fails the action (the run is rolled back) unless ``on_failure`` is ``warn``;
    ``on_revert_failure`` is the same for ``revert_argv`` (an empty one means nothing to undo).
    """

    tag = "run_command"
    argv: list[str]
    revert_argv: list[str] = field(default_factory=list)
    description: str = ""
    timeout: float = 60.0
    on_failure: FailurePolicy = "fail"
    on_revert_failure: FailurePolicy = "fail"

    def describe_execute(self) -> str:
        why = f" ({self.description})" if self.description else ""
        return f"Run `{_command_text(self.argv)}`{why}"

    def describe_revert(self) -> str:
        if not self.revert_argv:
            return f"Nothing to undo for `{_command_text(self.argv)}`"
        return f"Run `{_command_text(self.revert_argv)}`"

    def _run(self, ctx: Context, argv: list[str], policy: FailurePolicy) -> None:
        result = ctx.runner.run(argv, timeout=self.timeout)
        if result.ok:
            return
        if result.timed_out:
            how = f"timed out after {self.timeout:g}s"
        elif result.returncode in (126, 127):
            how = "could not be started"
        else:
            how = f"exited {result.returncode}"
        said = (result.stderr or result.stdout).strip().splitlines()
        message = f"`{_command_text(argv)}` {how}" + (f": {said[0]}" if said else "")
        if policy == "warn":
            ctx.feedback.warn(f"{message}; carrying on")
            return
        raise ActionFailed(message)

    def execute(self, ctx: Context) -> None:
        self._run(ctx, list(self.argv), self.on_failure)

    def revert(self, ctx: Context) -> None:
        if self.revert_argv:
            self._run(ctx, list(self.revert_argv), self.on_revert_failure)

    def check(self, ctx: Context) -> bool:
        return True
