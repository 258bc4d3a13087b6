"""File operations that never follow a symlink and never leave a partial file at a destination.

Every path is walked from a trusted root one component at a time with ``O_NOFOLLOW``, so a
symlink planted at a destination or in any parent (``.agents -> /elsewhere``) is seen, never
written through. A file reaches its destination by a rename from a temporary file in the same
directory: a reader (or a crash) sees the old bytes or the new ones, nothing in between.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import BinaryIO

from .._errors import ConflictError
from .._hashing import CHUNK_SIZE
from .._inspect import (
    CLOEXEC,
    DIRECTORY,
    NOFOLLOW,
    SymlinkInPath,
    hash_fd,
    split,
    walk_dir,
)
from .._inspect import (
    PathState as PathState,
)
from .._inspect import (
    UnsafePath as UnsafePath,
)
from .._inspect import (
    inspect as inspect,
)
from ..release._manifest import TMP_SUFFIX

_NOFOLLOW, _DIRECTORY, _CLOEXEC = NOFOLLOW, DIRECTORY, CLOEXEC
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_split = split


@contextmanager
def open_dir(
    root: Path, rel_dir: str, *, create: bool = False, mode: int = 0o755
) -> Iterator[int]:
    """Yield an fd of ``root/rel_dir``, refusing symlinks in every component below ``root``."""
    fd = walk_dir(root, rel_dir, create=create, mode=mode)
    try:
        yield fd
    finally:
        os.close(fd)


def _parent_and_name(rel: str) -> tuple[str, str]:
    parts = _split(rel)
    return "/".join(parts[:-1]), parts[-1]


_hash_fd = hash_fd


def _write_temp(dfd: int, tmp: str, source: Path | BinaryIO, mode: int) -> None:
    _unlink_quietly(dfd, tmp)  # a leftover from a killed run: ours, never a user's name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
    try:
        with open(source, "rb") if isinstance(source, Path) else nullcontext(source) as src:
            while True:
                chunk = src.read(CHUNK_SIZE)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(dfd, tmp)
        raise
    os.close(fd)


def _unlink_quietly(dfd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dfd)
    except FileNotFoundError:
        pass


def _fsync_dir(dfd: int) -> None:
    try:
        os.fsync(dfd)
    except OSError:  # some filesystems (and macOS for dirs) refuse; the rename is still atomic
        pass


# The directories whose fsync batched_dir_syncs() has put off, as (root, relative dir); None
# outside such a block. Paths, not fds: a payload may touch more directories than fds allowed.
_deferred_dir_syncs: dict[tuple[str, str], None] | None = None


def _sync_dir(dfd: int, root: Path, rel_dir: str) -> None:
    """Make the entries of ``root/rel_dir`` (open as ``dfd``) durable, now or at batch end."""
    if _deferred_dir_syncs is None:
        _fsync_dir(dfd)
    else:
        _deferred_dir_syncs[(str(root), rel_dir)] = None


@contextmanager
def batched_dir_syncs() -> Iterator[None]:
    """Put off directory fsyncs to the end of the block, one per directory touched.

    A run places thousands of files in a few directories: one fsync per directory before the
    run's final record replaces one per file. Until then a power cut may lose a rename, which
    leaves that file wholly old; the record still says the run is in progress, so the next run
    undoes it. Nested blocks join the outermost one.
    """
    global _deferred_dir_syncs
    if _deferred_dir_syncs is not None:
        yield
        return
    _deferred_dir_syncs = {}
    try:
        yield
    finally:
        pending, _deferred_dir_syncs = _deferred_dir_syncs, None
        for root, rel_dir in pending:
            with suppress(OSError), open_dir(Path(root), rel_dir) as dfd:
                _fsync_dir(dfd)


def temp_name(name: str) -> str:
    return f".{name}{TMP_SUFFIX}"


def place_new(root: Path, rel: str, source: Path, mode: int) -> None:
    """Create ``root/rel`` from ``source``; fails with ConflictError if anything is there now."""
    parent, name = _parent_and_name(rel)
    with open_dir(root, parent) as dfd:
        tmp = temp_name(name)
        _write_temp(dfd, tmp, source, mode)
        try:
            # link() refuses an existing destination atomically: no window in which a file the
            # user just created could be clobbered.
            os.link(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
        except FileExistsError:
            _unlink_quietly(dfd, tmp)
            raise ConflictError(
                f"{root / rel} appeared while installing; it was left as it is. Run again."
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                _unlink_quietly(dfd, tmp)
                raise
            # A filesystem without hard links: check, then rename (a tiny window, logged by caller).
            try:
                os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            else:
                _unlink_quietly(dfd, tmp)
                raise ConflictError(
                    f"{root / rel} appeared while installing; it was left as it is. Run again."
                ) from None
        else:
            _unlink_quietly(dfd, tmp)
        _sync_dir(dfd, root, parent)


def replace_if(root: Path, rel: str, source: Path, mode: int, expect_sha256: str) -> None:
    """Replace ``root/rel`` with ``source`` only while it still hashes to ``expect_sha256``."""
    parent, name = _parent_and_name(rel)
    with open_dir(root, parent) as dfd:
        current = _file_hash(dfd, name)
        if current != expect_sha256:
            raise ConflictError(
                f"{root / rel} changed while installing; your copy was kept. Run again."
            )
        tmp = temp_name(name)
        _write_temp(dfd, tmp, source, mode)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        _sync_dir(dfd, root, parent)


def _file_hash(dfd: int, name: str) -> str | None:
    """The hash of a regular file ``name``; None for anything else (never blocks on a FIFO)."""
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return _hash_fd(fd)
    finally:
        os.close(fd)


def _link_or_copy_into(dfd: int, tmp: str, sfd: int, source: str) -> None:
    """Put the bytes of ``source`` (in ``sfd``) at ``tmp`` (in ``dfd``): a hard link where
    possible, which needs no free space (a full disk must not stop a rollback), else a copy."""
    _unlink_quietly(dfd, tmp)
    try:
        os.link(source, tmp, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        src = os.open(source, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=sfd)
        with os.fdopen(src, "rb") as stream:
            _write_temp(dfd, tmp, stream, stat.S_IMODE(os.fstat(src).st_mode))


def restore(
    root: Path, rel: str, backup: Path, expect_sha256: str | None, *, anchor: Path | None = None
) -> None:
    """Put ``backup`` back at ``root/rel``: over the file while it still hashes to
    ``expect_sha256``, or where nothing is when ``expect_sha256`` is None. ``backup`` is reached
    from ``anchor`` without following a symlink when ``anchor`` is given."""
    parent, name = _parent_and_name(rel)
    with open_dir(root, parent) as dfd:
        current = _file_hash(dfd, name)
        if current != expect_sha256:
            raise ConflictError(f"{root / rel} changed; it was kept and not restored")
        tmp = temp_name(name)
        with _open_backup_dir(backup, anchor, create=False) as bfd:
            _link_or_copy_into(dfd, tmp, bfd, backup.name)
        if expect_sha256 is None:
            try:
                os.link(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
            finally:
                _unlink_quietly(dfd, tmp)
        else:
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        _sync_dir(dfd, root, parent)


def _open_backup_dir(
    backup: Path, anchor: Path | None, *, create: bool
) -> AbstractContextManager[int]:
    """The directory of ``backup``: walked from ``anchor`` without following a symlink when one
    is given (the state dir arrives with a clone), else opened as it is (tests, a private dir)."""
    if anchor is not None:
        return open_dir(anchor, str(backup.parent.relative_to(anchor)), create=create, mode=0o700)
    if create:
        backup.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return open_dir(backup.parent, "")


def save_backup(root: Path, rel: str, backup: Path, *, anchor: Path | None = None) -> None:
    """Keep the current ``root/rel`` at ``backup`` (a hard link where possible, else a copy)."""
    parent, name = _parent_and_name(rel)
    with _open_backup_dir(backup, anchor, create=True) as bfd, open_dir(root, parent) as dfd:
        try:
            os.stat(backup.name, dir_fd=bfd, follow_symlinks=False)
            return
        except FileNotFoundError:
            pass
        tmp = temp_name(backup.name)
        _link_or_copy_into(bfd, tmp, dfd, name)
        os.replace(tmp, backup.name, src_dir_fd=bfd, dst_dir_fd=bfd)
        _sync_dir(bfd, backup.parent, "")


def has_backup(backup: Path, *, anchor: Path | None = None) -> bool:
    """Is ``backup`` a regular file, reached without following a symlink below ``anchor``?"""
    try:
        with _open_backup_dir(backup, anchor, create=False) as bfd:
            st = os.stat(backup.name, dir_fd=bfd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError, UnsafePath):
        return False
    return stat.S_ISREG(st.st_mode)


def remove_if(root: Path, rel: str, expect_sha256: str) -> bool:
    """Remove ``root/rel`` only while it hashes to ``expect_sha256``; True if it is gone now."""
    parent, name = _parent_and_name(rel)
    try:
        with open_dir(root, parent) as dfd:
            current = _file_hash(dfd, name)
            if current is None:
                try:
                    os.stat(name, dir_fd=dfd, follow_symlinks=False)
                except FileNotFoundError:
                    return True
                return False
            if current != expect_sha256:
                return False
            os.unlink(name, dir_fd=dfd)
            _sync_dir(dfd, root, parent)
            return True
    except (FileNotFoundError, UnsafePath):
        return not os.path.lexists(root / rel)


def remove_temp(root: Path, rel: str) -> None:
    """Drop the temporary file a killed run may have left beside ``root/rel``."""
    parent, name = _parent_and_name(rel)
    try:
        with open_dir(root, parent) as dfd:
            _unlink_quietly(dfd, temp_name(name))
    except (FileNotFoundError, UnsafePath, NotADirectoryError):
        pass


def make_dir(root: Path, rel: str) -> bool:
    """Create ``root/rel`` (parents must exist); False if a directory was already there."""
    parent, name = _parent_and_name(rel)
    with open_dir(root, parent) as dfd:
        try:
            os.mkdir(name, 0o755, dir_fd=dfd)
        except FileExistsError:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                return False
            raise UnsafePath(f"{root / rel} exists and is not a directory") from None
        _sync_dir(dfd, root, parent)
        return True


def remove_dir_if_empty(root: Path, rel: str) -> bool:
    """Remove the directory ``root/rel`` if it is empty; True if it is gone now."""
    parent, name = _parent_and_name(rel)
    try:
        with open_dir(root, parent) as dfd:
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                return True
            if not stat.S_ISDIR(st.st_mode):
                return False
            try:
                os.rmdir(name, dir_fd=dfd)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    return False
                raise
            return True
    except (FileNotFoundError, UnsafePath):
        return not os.path.lexists(root / rel)


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Write a file we own entirely (a receipt) by temp file and rename; with ``durable``, fsync
    the file before and the directory after the rename, so it survives a power cut."""
    tmp = path.with_name(temp_name(path.name))
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    if not durable:
        return
    dfd = os.open(path.parent, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        _fsync_dir(dfd)
    finally:
        os.close(dfd)


def read_regular(root: Path, rel: str, limit: int) -> bytes | None:
    """The bytes of the regular file ``root/rel`` (None if absent), never through a symlink;
    UnsafePath for a symlink or anything but a regular file, ValueError past ``limit`` bytes."""
    parent, name = _parent_and_name(rel)
    try:
        with open_dir(root, parent) as dfd:
            try:
                fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK, dir_fd=dfd)
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise SymlinkInPath(f"{root / rel} is a symlink; never followed") from None
                raise
            with os.fdopen(fd, "rb") as stream:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise UnsafePath(f"{root / rel} is not a regular file")
                data = stream.read(limit + 1)
    except FileNotFoundError:
        return None
    if len(data) > limit:
        raise ValueError(f"{root / rel} is larger than {limit} bytes")
    return data


def write_atomic_at(
    root: Path, rel: str, data: bytes, mode: int = 0o644, *, durable: bool = True
) -> None:
    """``write_atomic`` for ``root/rel``, its directories reached without following a symlink."""
    parent, name = _parent_and_name(rel)
    with open_dir(root, parent) as dfd:
        tmp = temp_name(name)
        _unlink_quietly(dfd, tmp)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
        fd = os.open(tmp, flags, mode, dir_fd=dfd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink_quietly(dfd, tmp)
            raise
        os.close(fd)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        if durable:
            _fsync_dir(dfd)


def create_new_at(root: Path, rel: str, data: bytes, mode: int = 0o644) -> None:
    """Create ``root/rel`` with ``data``; FileExistsError if anything is there already.

    For small files that any of several racing runs may create (no temp name to collide on),
    reached without following a symlink.
    """
    parent, name = _parent_and_name(rel)
    with open_dir(root, parent) as dfd:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
        fd = os.open(name, flags, mode, dir_fd=dfd)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _remove_tree_at(dfd: int, name: str) -> None:
    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dfd)  # a symlink is removed itself, never followed
        return
    child = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=dfd)
    try:
        for entry in os.listdir(child):
            _remove_tree_at(child, entry)
    finally:
        os.close(child)
    os.rmdir(name, dir_fd=dfd)


def remove_tree(root: Path, rel: str) -> None:
    """Remove ``root/rel`` and everything in it, following no symlink on the way or inside."""
    parent, name = _parent_and_name(rel)
    try:
        with open_dir(root, parent) as dfd:
            _remove_tree_at(dfd, name)
    except FileNotFoundError:
        pass
