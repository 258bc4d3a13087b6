"""Waiting for the condition a test needs, with a bound: the content, never mere existence.

A test that reads a file as soon as it exists races the process still writing it, and one that
sleeps a fixed time is slow when the machine is idle and wrong when it is loaded. These poll the
real condition and, at the bound, fail with what they saw last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Generous: under load a pane or a child Python can take seconds; an idle run never waits this.
BOUND = 30.0


def wait_until(
    observe: Callable[[], T], done: Callable[[T], bool], *, what: str, timeout: float = BOUND
) -> T:
    """Observe until ``done(value)``; return that value, or fail naming ``what`` and the last."""
    deadline = time.monotonic() + timeout
    while True:
        value = observe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g}s for {what}; last seen: {value!r}")
        time.sleep(0.05)


def wait_for(predicate: Callable[[], bool], *, what: str, timeout: float = BOUND) -> None:
    wait_until(predicate, bool, what=what, timeout=timeout)


def read_text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def wait_for_text(
    path: Path, done: Callable[[str], bool], *, what: str = "", timeout: float = BOUND
) -> str:
    """The text of ``path`` once ``done`` holds for it (a missing file reads as "")."""
    return wait_until(
        lambda: read_text(path), done, what=what or f"the text of {path}", timeout=timeout
    )


def wait_for_line(path: Path, *, timeout: float = BOUND) -> str:
    """The first line of ``path`` once it is complete (newline-terminated)."""
    text = wait_for_text(path, lambda t: "\n" in t, what=f"a whole line in {path}", timeout=timeout)
    return text.split("\n", 1)[0] + "\n"
