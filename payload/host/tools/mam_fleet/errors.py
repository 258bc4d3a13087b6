"""Every way `mam` stops, with the exit code each one has (never renumbered).

    MamError                  1  something failed (a check, a command it ran)
    +-- UsageError            2  bad arguments
    +-- PlatformError         3  a tool is missing (tmux, systemctl, openssl, ...)
    +-- ConflictError         4  a file exists that mam will not overwrite (roster, keys)
    +-- RosterError           6  the roster or a file mam reads is invalid (path and field named)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PLATFORM = 3
EXIT_CONFLICT = 4
EXIT_INVALID = 6


class MamError(Exception):
    """A one-line, user-facing reason to stop, and what to do about it."""

    code = EXIT_FAILED


class UsageError(MamError):
    code = EXIT_USAGE


class PlatformError(MamError):
    code = EXIT_PLATFORM


class ConflictError(MamError):
    code = EXIT_CONFLICT


class RosterError(MamError):
    code = EXIT_INVALID
