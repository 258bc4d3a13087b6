"""Every path mam-install uses, derived from a root that is passed in (never a global)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import _where
from .._state_entries import GITIGNORE_NAME as GITIGNORE_NAME
from .._state_entries import RECEIPT_NAME as RECEIPT_NAME

STATE_DIR_NAME = _where.STATE_DIR_NAME


@dataclass(frozen=True)
class ScopeLayout:
    """Where one scope's files go (``root``) and where its bookkeeping lives (``state_dir``).

    ``state_dir`` is ``root`` itself (host) or a directory directly below it (``.mam/``): every
    file in it is reached from ``root`` without following a symlink, because in a workspace it
    arrives with a ``git clone`` like anything else. ``host_dirs`` are, for the host scope, the
    absolute directories a receipt may name files in (see _receipt_check).
    """

    root: Path
    state_dir: Path
    scope: Literal["workspace", "host"] = "workspace"
    host_dirs: tuple[str, ...] = ()

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

    @property
    def anchor(self) -> Path:
        """The directory every state path is walked from, one component at a time."""
        return self.root if self.state_dir.parent == self.root else self.state_dir

    def from_anchor(self, state_rel: str = "") -> str:
        """``state_rel`` (relative to the state dir) as a path relative to ``anchor``."""
        head = "" if self.anchor == self.state_dir else self.state_dir.name
        return "/".join(part for part in (head, state_rel) if part)


def workspace_layout(root: Path) -> ScopeLayout:
    return ScopeLayout(root=root, state_dir=root / STATE_DIR_NAME)


def find_workspace(start: Path, explicit: Path | None = None) -> Path:
    """``--workspace DIR``, else the nearest ancestor holding ``.mam/`` or ``.git``, else cwd
    (the search is _where's, which the no-op check runs before pathlib is imported)."""
    if explicit is not None:
        return explicit.expanduser().absolute()
    return Path(_where.find_workspace(str(start.absolute())))


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (links not followed): where a check of
    whether a directory can be made has to look."""
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path
