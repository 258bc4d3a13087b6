"""What the user asked of the host scope (kept apart so the CLI can build it without importing
the host planner and everything it needs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostOptions:
    """The host scope's options, as given on the command line."""

    no_units: bool = False
    no_modify_path: bool = False
    enable_units: bool = False
    dry_run: bool = False
    assume_yes: bool = False
    lock_timeout: float = 30.0
    allow_downgrade: bool = False
