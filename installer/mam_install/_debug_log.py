"""The debug log: every run's messages under a header, appended to a file rotated by size.

It lives in the user log dir; with no usable home (HOME unset and no passwd entry, as in a
container run with ``--user N``) it goes to a private temporary directory, never to ``./~``.
Paths are bytes on POSIX, so the file is written with ``errors="backslashreplace"``: a
workspace path with a non-UTF-8 byte is logged, not a crash.

Written here rather than through ``logging``'s ``RotatingFileHandler`` (importing ``logging``,
``logging.handlers`` and platformdirs was a tenth of a fresh install's wall time, for a file
appended once per run), with its sizes and names: ``MAX_BYTES`` a file, ``BACKUPS`` rotated
files ``mam-install.log.1..3``. It rotates between runs, never inside one, so every file starts
with a run's header (the handler checked each line, and could split a run over two files).
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

APP_NAME = "mam"
LOG_NAME = "mam-install.log"
MAX_BYTES = 1024 * 1024
BACKUPS = 3
_private_dir: Path | None = None


def platform_log_dir(system: str | None = None) -> str:
    """platformdirs' ``user_log_dir("mam", appauthor=False)`` on Linux, the BSDs and macOS,
    worked out here (tests/test_debug_log.py holds the two equal); elsewhere platformdirs
    itself decides."""
    system = system or sys.platform
    if system == "darwin":
        return os.path.join(os.path.expanduser("~/Library/Logs"), APP_NAME)
    if system == "win32" or os.environ.get("ANDROID_DATA") == "/data":
        import platformdirs  # its Windows and Android rules are not worth copying

        return platformdirs.user_log_dir(APP_NAME, appauthor=False)
    state = os.environ.get("XDG_STATE_HOME", "")
    if not state.strip():
        state = os.path.expanduser("~/.local/state")
    return os.path.join(state, APP_NAME, "log")


def _user_log_dir() -> Path | None:
    try:
        path = Path(platform_log_dir())
    except Exception:  # a broken environment must not stop the command: the log is best effort
        return None
    return path if path.is_absolute() else None  # "~/..." when there is no home to expand


def log_path() -> Path:
    """Where this run's log goes."""
    global _private_dir
    where = _user_log_dir()
    if where is None:
        if _private_dir is None:
            import tempfile

            _private_dir = Path(tempfile.mkdtemp(prefix="mam-install-log-"))
        where = _private_dir
    return where / LOG_NAME


def log_files() -> list[Path]:
    """mam-install's own log files in the user log dir (the units' logs there are the user's)."""
    where = _user_log_dir()
    if where is None or not where.is_dir():
        return []
    names = [LOG_NAME, *(f"{LOG_NAME}.{n}" for n in range(1, BACKUPS + 1))]
    return [where / n for n in names if (where / n).is_file() and not (where / n).is_symlink()]


def _header(argv: Sequence[str]) -> str:
    from . import __version__

    return (
        f"==== {time.strftime('%Y-%m-%dT%H:%M:%S')} mam-install {__version__}, Python "
        f"{sys.version.split()[0]} on {sys.platform}; argv: {list(argv)!r}"
    )


def write_run(lines: Sequence[str], argv: Sequence[str]) -> Path | None:
    """Append one run's lines under its header; the log's path, or None if it is unwritable.

    Best effort: nothing here raises or prints, whatever the disk does."""
    path = log_path()
    run = "".join(f"{line}\n" for line in (_header(argv), *lines))
    data = run.encode("utf-8", "backslashreplace")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = open(path, "ab")  # noqa: SIM115 - _append closes it, and whatever replaces it
    except OSError:
        return None
    try:
        _append(log, path, data)
    except (OSError, ValueError):
        pass  # a full disk or a vanished directory: the run's outcome is not the log's to decide
    return path


def _append(log: BinaryIO, path: Path, run: bytes) -> None:
    """Append ``run`` to the open ``log``, rotating first if it would bring a file that is not
    empty to ``MAX_BYTES``. A run is never split across files, so each file starts with a
    header; one run larger than the limit gets a file of its own."""
    try:
        size = log.seek(0, os.SEEK_END)
        regular = stat.S_ISREG(os.fstat(log.fileno()).st_mode)  # never rotate /dev/null
        if regular and size and size + len(run) >= MAX_BYTES:
            log.close()
            _rotate(path)
            log = open(path, "ab")  # noqa: SIM115 - closed in finally
        log.write(run)
    finally:
        log.close()


def _rotate(path: Path) -> None:
    """``log`` -> ``log.1`` -> ... -> ``log.BACKUPS``, the oldest dropped (RotatingFileHandler's
    names and order)."""
    for n in range(BACKUPS - 1, 0, -1):
        older = path.with_name(f"{LOG_NAME}.{n}")
        if older.exists():
            os.replace(older, path.with_name(f"{LOG_NAME}.{n + 1}"))
    os.replace(path, path.with_name(f"{LOG_NAME}.1"))
