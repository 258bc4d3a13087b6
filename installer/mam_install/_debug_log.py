"""The debug log: every run's messages under a header, in a rotated file (stdlib ``logging``).

It lives in the user log dir; with no usable home (HOME unset and no passwd entry, as in a
container run with ``--user N``) it goes to a private temporary directory, never to ``./~``.
Paths are bytes on POSIX, so the file is written with ``errors="backslashreplace"``: a
workspace path with a non-UTF-8 byte is logged, not a crash.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

LOG_NAME = "mam-install.log"
MAX_BYTES = 1024 * 1024
BACKUPS = 3
_private_dir: Path | None = None


def _user_log_dir() -> Path | None:
    try:
        import platformdirs

        path = Path(platformdirs.user_log_dir("mam", appauthor=False))
    except Exception:  # a broken environment must not stop the command: the log is best effort
        return None
    return path if path.is_absolute() else None


def log_path() -> Path:
    """Where this run's log goes."""
    global _private_dir
    where = _user_log_dir()
    if where is None:
        if _private_dir is None:
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


class _Handler(logging.handlers.RotatingFileHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        pass  # the log is best effort: a full disk must not print a traceback


def _header(argv: Sequence[str]) -> str:
    from . import __version__

    return (
        f"==== {time.strftime('%Y-%m-%dT%H:%M:%S')} mam-install {__version__}, Python "
        f"{sys.version.split()[0]} on {sys.platform}; argv: {list(argv)!r}"
    )


def write_run(lines: Sequence[str], argv: Sequence[str]) -> Path | None:
    """Append one run's lines under its header; the log's path, or None if it is unwritable."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = _Handler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8",
            errors="backslashreplace",
        )
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("mam_install.run")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.info(_header(argv))
        for line in lines:
            logger.info(line)
    finally:
        logger.removeHandler(handler)
        handler.close()
    return path
