"""What is at a path below a root, seen without following a symlink: the one observation the
planners make of the disk, and the one the no-op check (_noop) repeats.

Every path is walked from the root one component at a time with ``O_NOFOLLOW``, so a symlink
in any parent (``.agents -> /elsewhere``) is seen, never followed. Standard library only, and
nothing heavy: the no-op check imports this before anything else of mam-install's.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import TYPE_CHECKING

from ._errors import ConflictError

if TYPE_CHECKING:
    from typing import Literal

    PathKind = Literal[
        "absent", "file", "symlink", "symlinked-parent", "blocked-parent", "other"
    ]

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIRECTORY = getattr(os, "O_DIRECTORY", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1 << 20


class UnsafePath(ConflictError):
    """A symlink or a non-directory sits where we need a real directory or file."""

    kind: PathKind = "blocked-parent"


class SymlinkInPath(UnsafePath):
    kind: PathKind = "symlinked-parent"


class PathState:
    """What is at ``root/rel`` right now, seen without following any symlink.

    A plain class, not a dataclass: it is made on the no-op path, which creates no classes it
    can do without (DESIGN §9)."""

    __slots__ = ("detail", "kind", "mode", "sha256")

    def __init__(
        self, kind: PathKind, sha256: str | None = None, mode: int | None = None, detail: str = ""
    ) -> None:
        self.kind, self.sha256, self.mode, self.detail = kind, sha256, mode, detail

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PathState) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return "PathState(kind={!r}, sha256={!r}, mode={!r}, detail={!r})".format(*self._fields())

    def _fields(self) -> tuple[str, str | None, int | None, str]:
        return self.kind, self.sha256, self.mode, self.detail


def split(rel: str) -> list[str]:
    return [part for part in rel.split("/") if part]


def _step(parent: int, part: str, where: str, *, create: bool = False,
          mode: int = 0o755) -> int:
    """An fd of the directory ``part`` in ``parent`` (``where`` names it in messages): never a
    symlink or a non-directory; ``create`` makes it if missing."""
    try:
        st = os.stat(part, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        if not create:
            raise
        os.mkdir(part, mode, dir_fd=parent)
        st = os.stat(part, dir_fd=parent, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        raise SymlinkInPath(f"{where} is a symlink; never written through")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"{where} is not a directory")
    return os.open(part, os.O_RDONLY | DIRECTORY | NOFOLLOW | CLOEXEC, dir_fd=parent)


def walk_dir(root: str | os.PathLike[str], rel_dir: str, *, create: bool = False,
             mode: int = 0o755) -> int:
    """An fd of ``root/rel_dir`` (the caller closes it), refusing a symlink or a non-directory
    in every component below ``root``; ``create`` makes missing components."""
    fd = os.open(root, os.O_RDONLY | DIRECTORY | CLOEXEC)
    try:
        walked = ""
        for part in split(rel_dir):
            walked = f"{walked}/{part}" if walked else part
            child = _step(fd, part, os.path.join(root, walked), create=create, mode=mode)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def hash_fd(fd: int) -> str:
    digest = hashlib.sha256()
    while True:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            return digest.hexdigest()
        digest.update(chunk)


class Walker:
    """Inspections below one root that share the directory fds they walk: each directory is
    opened once (``O_NOFOLLOW``, from its parent's fd), not once for every path below it. For a
    planner or a check that looks at many paths within moments; ``close()`` when done."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = root
        self._fds: dict[str, int] = {}

    def __enter__(self) -> Walker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)

    def _dir(self, rel_dir: str) -> int:
        """The fd of ``root/rel_dir``; FileNotFoundError or UnsafePath as walk_dir raises."""
        fd = self._fds.get(rel_dir)
        if fd is not None:
            return fd
        if not rel_dir:
            fd = os.open(self.root, os.O_RDONLY | DIRECTORY | CLOEXEC)
        else:
            head, _, part = rel_dir.rpartition("/")
            fd = _step(self._dir(head), part, os.path.join(self.root, rel_dir))
        self._fds[rel_dir] = fd
        return fd

    def inspect(self, rel: str) -> PathState:
        """Classify ``root/rel``: absent, a regular file (with its hash), a symlink, or
        blocked (a symlink or a non-directory among its parents)."""
        parts = split(rel)
        try:
            dfd = self._dir("/".join(parts[:-1]))
        except FileNotFoundError:
            return PathState("absent")
        except UnsafePath as exc:
            return PathState(exc.kind, detail=str(exc))
        name = parts[-1]
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return PathState("absent")
        if stat.S_ISLNK(st.st_mode):
            return PathState("symlink", detail=os.readlink(name, dir_fd=dfd))
        if not stat.S_ISREG(st.st_mode):
            return PathState("other", detail="not a regular file")
        try:
            fd = os.open(name, os.O_RDONLY | NOFOLLOW | CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            return PathState("absent")
        try:
            return PathState("file", sha256=hash_fd(fd), mode=stat.S_IMODE(st.st_mode))
        finally:
            os.close(fd)


def inspect(root: str | os.PathLike[str], rel: str) -> PathState:
    """Classify ``root/rel`` (one look: see Walker for many)."""
    with Walker(root) as walker:
        return walker.inspect(rel)
