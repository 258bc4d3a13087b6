"""Which workspace a command means, from ``os.path`` alone: the no-op check (_entry) finds it
before pathlib is imported. machine._layout.find_workspace searches with this same function;
an explicit ``--workspace`` it turns into a Path itself (tests/test_noop_witness.py holds the
two texts equal).

The text is the one ``pathlib`` would print for it (``Path(p).expanduser().absolute()``): no
``.`` parts, no doubled or trailing slashes, ``..`` kept; the receipt and every message name
the workspace that way.
"""

from __future__ import annotations

import os

STATE_DIR_NAME = ".mam"


def path_text(path: str) -> str:
    """``path`` as ``str(PurePosixPath(path))`` writes it."""
    lead = ""
    if path.startswith("/"):
        lead = "//" if path.startswith("//") and not path.startswith("///") else "/"
    parts = [part for part in path.split("/") if part and part != "."]
    return lead + "/".join(parts) if lead or parts else "."


def find_workspace(start: str, explicit: str | None = None) -> str:
    """``--workspace DIR``, else the nearest ancestor of ``start`` (absolute, the current
    directory) holding ``.mam/`` or ``.git``, else ``start``."""
    if explicit is not None:
        path = os.path.expanduser(explicit) if explicit.startswith("~") else explicit
        return path_text(path if path.startswith("/") else os.path.join(start, path))
    candidate = path_text(start)
    while True:
        if os.path.isdir(os.path.join(candidate, STATE_DIR_NAME)) or os.path.exists(
            os.path.join(candidate, ".git")
        ):
            return candidate
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return path_text(start)
        candidate = parent
