"""One run at a time per workspace: a lock in ``.mam/`` with a timeout and a clear message.

On a local filesystem the lock is ``flock`` on ``.mam/lock`` (released by the kernel when a run
dies). On a network filesystem flock is not reliable, so the lock is a file created with
``O_CREAT|O_EXCL`` holding ``host pid``; one left by a dead process on this host is broken.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from types import TracebackType

from .._errors import BusyError, ConflictError

POLL_SECONDS = 0.05


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _hostname() -> str:
    import socket  # only the network-filesystem lock needs it

    return socket.gethostname()


def _read_owner(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _is_stale(content: str) -> bool:
    """``host pid`` of a process on this host that no longer runs."""
    try:
        host, pid_text = content.split()
        pid = int(pid_text)
    except ValueError:
        return False
    return host == _hostname() and not _pid_alive(pid)


class WorkspaceLock:
    def __init__(self, path: Path, *, timeout: float = 30.0, network_fs: bool = False) -> None:
        self.path = path
        self.timeout = timeout
        self.network_fs = network_fs
        self._fd: int | None = None

    def __enter__(self) -> WorkspaceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _busy(self) -> BusyError:
        return BusyError(
            f"another mam-install run holds {self.path} (waited {self.timeout:g}s); "
            "let it finish, or pass --lock-timeout to wait longer"
        )

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        if self.network_fs:
            self._acquire_exclusive_file(deadline)
        else:
            self._acquire_flock(deadline)

    def _acquire_flock(self, deadline: float) -> None:
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            raise ConflictError(
                f"cannot open the lock file {self.path} ({exc.strerror}); if it is a symlink or "
                "not a regular file, remove it and run again"
            ) from exc
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise self._busy() from None
                time.sleep(POLL_SECONDS)
                continue
            self._fd = fd
            return

    def _exclusive_path(self) -> Path:
        return self.path.with_name(self.path.name + ".excl")

    def _acquire_exclusive_file(self, deadline: float) -> None:
        path = self._exclusive_path()
        me = f"{_hostname()} {os.getpid()}\n".encode()
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if self._break_stale(path):
                    continue
                if time.monotonic() >= deadline:
                    raise self._busy() from None
                time.sleep(POLL_SECONDS)
                continue
            os.write(fd, me)
            os.close(fd)
            self._fd = -1
            return

    @staticmethod
    def _break_stale(path: Path) -> bool:
        """Remove a lock file left by a dead process on this host; True if removed.

        The stale file is first renamed to a name only this process uses, then checked again:
        two runs breaking the same stale lock can then never delete each other's fresh one.
        """
        content = _read_owner(path)
        if content is None or not _is_stale(content):
            return False
        claimed = path.with_name(f"{path.name}.breaking.{os.getpid()}")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            return True  # someone else broke it; try to take it again
        if _read_owner(claimed) == content:
            claimed.unlink()
            return True
        # We took a fresh lock by mistake (it changed between the read and the rename): give it
        # back if its name is still free, else its owner will find it gone and fail safely.
        try:
            os.link(claimed, path)
        except FileExistsError:
            pass
        claimed.unlink()
        return False

    def is_current(self) -> bool:
        """Whether what is held is still the lock at ``path``: a run that waited while another
        removed the state dir (an uninstall) holds a lock on a file nobody else can see."""
        if self._fd is None:
            return False
        try:
            if self._fd == -1:
                return _read_owner(self._exclusive_path()) == f"{_hostname()} {os.getpid()}\n"
            return os.path.samestat(os.fstat(self._fd), os.lstat(self.path))
        except OSError:
            return False

    def release(self) -> None:
        if self._fd is None:
            return
        if self._fd == -1:
            try:
                self._exclusive_path().unlink()
            except FileNotFoundError:
                pass
        else:
            os.close(self._fd)
        self._fd = None


def lock_for(layout_lock: Path, *, timeout: float) -> WorkspaceLock:
    """The lock for a scope, with the strategy its filesystem needs (flock is not reliable on
    NFS and friends; an unknown filesystem gets the O_EXCL lock file, which works everywhere)."""
    from ..machine._netfs import probe_filesystem

    info = probe_filesystem(layout_lock.parent, timeout=2.0)
    return WorkspaceLock(layout_lock, timeout=timeout, network_fs=info.network is not False)
