"""What may be in a scope's state directory, and the check that nothing there is a link.

Standard library only: the engine checks the state directory with it before every command
(engine._state_dir), and the no-op check (_noop) with it before answering, so both refuse the
same ``.mam/``. ``.mam/`` arrives with a ``git clone`` like any other directory: a symlink, a
device or a FIFO anywhere mam-install looks is a problem, never followed.
"""

from __future__ import annotations

import os
import stat

RECEIPT_NAME = "install-receipt.json"
GITIGNORE_NAME = ".gitignore"
FILES = (RECEIPT_NAME, "lock", "lock.excl", GITIGNORE_NAME)
TREES = ("receipts", "backup")


def _tree_problem(path: str) -> tuple[str, str] | None:
    """Every entry below ``path`` is a real directory or regular file, never a symlink."""
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in dirnames + filenames:
            entry = os.path.join(dirpath, name)
            mode = os.lstat(entry).st_mode
            if stat.S_ISLNK(mode):
                return entry, "is a symlink"
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                return entry, "is not a regular file or directory"
    return None


def _kind(path: str) -> int | None:
    try:
        return os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None


def state_dir_problem(state_dir: str, *, is_root: bool) -> tuple[str, str] | None:
    """(path, what is wrong with it) for the first entry that is not what mam-install wrote,
    or None. ``is_root``: the state dir is the scope's root itself (the host), not ``.mam/``."""
    if not is_root:
        mode = _kind(state_dir)
        if mode is None:
            return None
        if stat.S_ISLNK(mode):
            return state_dir, "is a symlink"
        if not stat.S_ISDIR(mode):
            return state_dir, "is not a directory"
    for name in FILES:
        mode = _kind(os.path.join(state_dir, name))
        if mode is not None and not stat.S_ISREG(mode):
            return os.path.join(state_dir, name), "is a symlink or not a regular file"
    for name in TREES:
        path = os.path.join(state_dir, name)
        mode = _kind(path)
        if mode is None:
            continue
        if not stat.S_ISDIR(mode):
            return path, "is a symlink or not a directory"
        problem = _tree_problem(path)
        if problem is not None:
            return problem
    return None
