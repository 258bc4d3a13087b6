"""`cache clean`: remove stale shiv extractions of older builds and the download cache."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .._feedback import ConsoleFeedback
from ..machine._extractions import current_extraction, shiv_root, stale_extractions


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
