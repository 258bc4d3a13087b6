"""The front door of the command line: a re-install with nothing to do is answered here,
before click or the engine is imported; every other command line goes to cli.main.

DESIGN §9 budgets a no-op re-install at ``python -c pass`` + 30 ms, and importing click and the
engine alone costs more than that. So the commonest repeat, ``install --no-host`` (or
``upgrade``) into a workspace this pyz has already brought up to date, asks the no-op witness
(_noop), which repeats the engine's own observations and answers only when all of them still
hold. The text and exit code are the engine's for the same run; only the debug log is not
written (nothing ran). Any other option, ``--json``, ``-v``, a host install, or a witness that
does not hold: the engine decides, as if this module did not exist.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

_QUIET = ("-q", "--quiet")
_ACCEPTED = ("-y", "--yes", "--no-host", *_QUIET)


def _parse(argv: Sequence[str]) -> tuple[str | None, bool] | None:
    """(--workspace, quiet) of ``[-q] install|upgrade --no-host [-y] [-q] [--workspace DIR]``
    in any order after the command, else None."""
    head = 0
    while head < len(argv) and argv[head] in _QUIET:
        head += 1
    if head >= len(argv) or argv[head] not in ("install", "upgrade"):
        return None
    options = list(argv[head + 1 :])
    quiet = head > 0
    workspace: str | None = None
    while options:
        arg = options.pop(0)
        if arg == "--workspace" and options:
            workspace = options.pop(0)
        elif arg.startswith("--workspace="):
            workspace = arg[len("--workspace=") :]
        elif arg in _ACCEPTED:
            quiet = quiet or arg in _QUIET
        else:
            return None
    if "--no-host" not in argv:
        return None
    if workspace is not None and (not workspace or workspace.startswith(("-", "~"))):
        return None
    return workspace, quiet


def noop_answer(argv: Sequence[str]) -> int | None:
    """The exit code when this command line is a re-install with nothing to do, else None."""
    parsed = _parse(argv)
    if parsed is None:
        return None  # and nothing of the check was imported: --version stays as light
    from ._noop import holds
    from ._where import find_workspace

    workspace, quiet = parsed
    try:
        root = find_workspace(os.getcwd(), workspace)
    except OSError:
        return None
    version = holds(root)
    if version is None:
        return None
    if not quiet:
        message = f"mam {version} is already installed in {root}; nothing to do\n"
        try:
            message.encode(sys.stderr.encoding or "utf-8")
        except (UnicodeEncodeError, LookupError):
            return None  # the engine prints such a path escaped
        sys.stderr.write(message)
        sys.stderr.flush()
    return 0


def main() -> None:
    answer = noop_answer(sys.argv[1:])
    if answer is not None:
        sys.exit(answer)
    from .cli import main as cli_main

    cli_main()
