"""Every path mam-install uses, derived from a root that is passed in (never a global)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATE_DIR_NAME = ".mam"
RECEIPT_NAME = "install-receipt.json"


@dataclass(frozen=True)
class ScopeLayout:
    """Where one scope's files go (``root``) and where its bookkeeping lives (``state_dir``)."""

    root: Path
    state_dir: Path

    @property
    def receipt(self) -> Path:
        return self.state_dir / RECEIPT_NAME

    @property
    def lock(self) -> Path:
        return self.state_dir / "lock"

    @property
    def receipts_dir(self) -> Path:
        return self.state_dir / "receipts"

    @property
    def backup_root(self) -> Path:
        return self.state_dir / "backup"

    def backup_dir(self, run_id: str) -> Path:
        return self.backup_root / run_id

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.state_dir))


def workspace_layout(root: Path) -> ScopeLayout:
    return ScopeLayout(root=root, state_dir=root / STATE_DIR_NAME)


def find_workspace(start: Path, explicit: Path | None = None) -> Path:
    """``--workspace DIR``, else the nearest ancestor holding ``.mam/`` or ``.git``, else cwd."""
    if explicit is not None:
        return explicit.expanduser().absolute()
    start = start.absolute()
    for candidate in (start, *start.parents):
        if (candidate / STATE_DIR_NAME).is_dir() or (candidate / ".git").exists():
            return candidate
    return start
