"""The scope's state directory (``.mam/`` in a workspace), seen without following a symlink.

``.mam/`` arrives with a ``git clone`` like any other directory, so nothing in it is followed:
a symlink anywhere among the entries mam-install uses (the directory itself, the receipt, the
lock, ``receipts/``, ``backup/`` and everything below those two) is a ReceiptError (exit 6)
before any command does anything, and every file in it is opened from the scope's root one
component at a time (``_fsops.open_dir``).
"""

from __future__ import annotations

from pathlib import Path

from .._errors import ReceiptError
from .._state_entries import GITIGNORE_NAME, state_dir_problem
from ..machine._layout import ScopeLayout
from . import _fsops as fsops

MAX_RECEIPT_BYTES = 16 * 1024 * 1024
# `.mam/.gitignore`: the state directory is machine state and must never be committed.
GITIGNORE = b"# mam-install's machine state: never commit it.\n*\n"


def _refuse(path: Path, what: str) -> ReceiptError:
    return ReceiptError(
        f"{path} {what}; mam-install never follows a link in its state directory (it can "
        "arrive with a clone). Nothing was changed: remove it and run again"
    )


def check_state_dir(layout: ScopeLayout) -> None:
    """Refuse a state directory with a symlink (or anything odd) where mam-install looks."""
    problem = state_dir_problem(
        str(layout.state_dir), is_root=layout.state_dir == layout.anchor
    )
    if problem is not None:
        raise _refuse(Path(problem[0]), problem[1])


def ensure_state_dir(layout: ScopeLayout) -> bool:
    """Create the state directory (with its ``.gitignore``) if missing; True if created."""
    check_state_dir(layout)
    # Runs racing for the lock all come here before any holds it: each step must let
    # another run have done it first.
    try:
        layout.state_dir.mkdir(mode=0o755)
        created = True
    except FileExistsError:
        created = False
    if layout.state_dir != layout.anchor:
        try:
            fsops.create_new_at(layout.anchor, layout.from_anchor(GITIGNORE_NAME), GITIGNORE)
        except FileExistsError:
            pass
    return created


def read_state_file(layout: ScopeLayout, rel: str) -> bytes | None:
    """The bytes of ``rel`` in the state dir (None if absent), never through a symlink."""
    check_state_dir(layout)
    try:
        return fsops.read_regular(layout.anchor, layout.from_anchor(rel), MAX_RECEIPT_BYTES)
    except fsops.UnsafePath as exc:
        raise _refuse(layout.state_dir / rel, f"cannot be read safely ({exc})") from None
    except ValueError as exc:
        raise ReceiptError(f"{exc}; it is not a receipt mam-install wrote") from None
    except OSError as exc:
        raise ReceiptError(f"{layout.state_dir / rel}: cannot read it ({exc.strerror})") from exc


def remove_state_tree(layout: ScopeLayout, rel: str) -> None:
    """Remove ``rel`` (a backup, the archive) from the state dir, following no symlink."""
    try:
        fsops.remove_tree(layout.anchor, layout.from_anchor(rel))
    except (OSError, fsops.UnsafePath):
        pass  # bookkeeping only: a leftover costs disk space, never a user's file


def is_state_file(layout: ScopeLayout, rel: str) -> bool:
    return fsops.inspect(layout.anchor, layout.from_anchor(rel)).kind == "file"
