"""The installer as a file: the pyz this process runs from, its version, and where it is kept
(``mam-install`` in the per-user bin dir that the PATH block puts on PATH)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..machine._host_layout import HostLayout

__all__ = ["INSTALLER_NAME", "SELF_SOURCE", "installed_path", "pyz_version", "running_pyz"]

INSTALLER_NAME = "mam-install"
SELF_SOURCE = "installer/mam-install"  # its key in a host plan's sources
_INIT = "site-packages/mam_install/__init__.py"
_VERSION = re.compile(r'^__version__ = "([0-9A-Za-z.+_-]{1,64})"$', re.MULTILINE)


def pyz_version(path: Path) -> str | None:
    """The installer version inside a mam-install pyz, or None for any other file."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as pyz:
            info = pyz.getinfo(_INIT)
            if info.file_size > 1 << 16:
                return None
            text = pyz.read(info).decode("utf-8")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, UnicodeDecodeError):
        return None
    found = _VERSION.search(text)
    return found.group(1) if found else None


def running_pyz() -> Path | None:
    """The mam-install pyz this process was started from; None when run from a source tree."""
    if not sys.argv or not sys.argv[0]:
        return None
    path = Path(os.path.realpath(sys.argv[0]))
    return path if path.is_file() and pyz_version(path) is not None else None


def installed_path(layout: HostLayout) -> Path:
    return layout.tools_dir / INSTALLER_NAME
