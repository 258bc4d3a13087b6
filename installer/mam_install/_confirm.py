"""Asking before changing anything: only on a terminal, never with -y, CI=1 or no TTY."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ._errors import UsageError
from ._feedback import ConsoleFeedback


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty() and not os.environ.get("CI")


def confirm(
    steps: Sequence[str], question: str, *, assume_yes: bool, feedback: ConsoleFeedback
) -> None:
    """Show ``steps`` and ask ``question``; UsageError (exit 2, nothing changed) on "no"."""
    if assume_yes or not steps or not interactive():
        return
    import click

    for step in steps:
        feedback.info(f"  {step}")
    if not click.confirm(question, default=True):
        raise UsageError("cancelled; nothing was changed")
