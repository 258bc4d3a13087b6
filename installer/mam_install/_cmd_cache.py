"""`cache clean`: remove stale shiv extractions of older builds and the download cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ._feedback import ConsoleFeedback

# shiv extracts the pyz to <SHIV_ROOT or ~/.shiv>/<pyz file name>_<build id>/
_PREFIX = "mam-install"


def shiv_root() -> Path:
    root = os.environ.get("SHIV_ROOT")
    return Path(root).expanduser() if root else Path("~/.shiv").expanduser()


def current_extraction() -> Path | None:
    """The extraction this process runs from, when it runs from a shiv pyz."""
    package = Path(__file__).resolve().parent
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


def run_cache_clean(feedback: ConsoleFeedback, *, dry_run: bool) -> dict[str, Any]:
    import platformdirs

    targets = stale_extractions(shiv_root(), current_extraction())
    downloads = Path(platformdirs.user_cache_dir("mam", appauthor=False))
    if downloads.is_dir() and not downloads.is_symlink():
        targets.append(downloads)
    for target in targets:
        feedback.info(f"{'would remove' if dry_run else 'removing'} {target}")
        if dry_run:
            continue
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
    if not targets:
        feedback.info("nothing to clean")
    return {"command": "cache clean", "removed": [str(t) for t in targets], "dry_run": dry_run}
