"""The exception tree and the stable exit codes, in one place.

    MamError                 exit 1  unexpected
    +-- UsageError           exit 2  bad arguments or a bad combination of them
    +-- PlatformError        exit 3  this machine lacks something we need
    +-- ConflictError        exit 4  the workspace or host holds something in the way
    +-- IntegrityError       exit 5  a checksum, signature, archive member or version did not verify
    +-- ReceiptError         exit 6  a receipt is missing, unreadable, or from a newer installer
    +-- ActionFailed         exit 7  an action failed; what had been done was rolled back
    +-- RevertIncomplete     exit 8  undoing failed part-way; the receipt says what is left
    +-- BusyError            exit 9  another run holds the workspace lock
    +-- NetworkError         exit 10 a download failed: DNS, refused, timed out, proxy, HTTP 4xx/5xx
    +-- InterruptedRun       exit 11 a run was interrupted: finish it with install, undo it with
                                     rollback (what read commands report instead of repairing it)

Foreign exceptions (OSError, tarfile.TarError, httpx.HTTPError, ...) are translated at the
boundary with ``raise IntegrityError(...) from exc`` so that every error the user sees is one line
that names what happened, to which path, and what to do.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes; documented in README.md and never renumbered."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    PLATFORM = 3
    CONFLICT = 4
    INTEGRITY = 5
    RECEIPT = 6
    ACTION_FAILED = 7
    REVERT_INCOMPLETE = 8
    BUSY = 9
    NETWORK = 10
    INTERRUPTED = 11


class MamError(Exception):
    """Base of every error mam-install reports to the user; ``str(exc)`` is the one-line message."""

    exit_code: ExitCode = ExitCode.UNEXPECTED


class UsageError(MamError):
    exit_code = ExitCode.USAGE


class PlatformError(MamError):
    exit_code = ExitCode.PLATFORM


class ConflictError(MamError):
    exit_code = ExitCode.CONFLICT


class IntegrityError(MamError):
    exit_code = ExitCode.INTEGRITY


class ReceiptError(MamError):
    exit_code = ExitCode.RECEIPT


class ActionFailed(MamError):
    exit_code = ExitCode.ACTION_FAILED


class RevertIncomplete(MamError):
    exit_code = ExitCode.REVERT_INCOMPLETE


class BusyError(MamError):
    exit_code = ExitCode.BUSY


class NetworkError(MamError):
    """The bytes never arrived: never exit 5, because a 404 or a dead proxy is not tampering.

    ``status`` is the HTTP status when the server answered one (a 404 lets an optional artifact,
    such as a signature, be absent), else None.
    """

    exit_code = ExitCode.NETWORK

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InterruptedRun(MamError):
    exit_code = ExitCode.INTERRUPTED
