"""Where the pyz unpacks itself (shiv's ``~/.shiv``), and which of those extractions are stale."""

from __future__ import annotations

import os
from pathlib import Path

# shiv extracts the pyz to <SHIV_ROOT or ~/.shiv>/<pyz file name>_<build id>/
_PREFIX = "mam-install"


def shiv_root() -> Path:
    root = os.environ.get("SHIV_ROOT")
    return Path(root).expanduser() if root else Path("~/.shiv").expanduser()


def current_extraction() -> Path | None:
    """The extraction this process runs from, when it runs from a shiv pyz."""
    package = Path(__file__).resolve().parents[1]  # mam_install/, above machine/
    if package.parent.suffix == ".zip":  # <extraction>/<tag>/lib.zip/mam_install (pyz_main.py)
        return package.parents[2]
    site = package.parent
    return site.parent if site.name == "site-packages" else None


def stale_extractions(root: Path, current: Path | None) -> list[Path]:
    if not root.is_dir():
        return []
    stale = []
    for entry in sorted(root.iterdir()):
        name = entry.name.lstrip(".")
        if not name.startswith(_PREFIX) or entry.is_symlink():
            continue
        if current is not None and (entry == current or name.startswith(f"{current.name}_lock")):
            continue
        stale.append(entry)
    return stale
