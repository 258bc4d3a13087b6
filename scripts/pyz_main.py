# -*- coding: utf-8 -*-
# mam-install.pyz entry: written in Python 2-compatible syntax on purpose, so that an old
# interpreter gets one clear line instead of a SyntaxError traceback from shiv's bootstrap.
import os
import sys

if sys.version_info < (3, 9):
    sys.stderr.write(
        "error: mam-install needs Python 3.9 or newer, but %s is Python %d.%d; "
        "run it with python3.9 or newer (for example `python3.12 mam-install.pyz`)\n"
        % (sys.executable or "this interpreter", sys.version_info[0], sys.version_info[1])
    )
    sys.exit(3)


def _usable(path):
    """Can shiv extract under ``path`` (existing and writable, or creatable)?"""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def _private_root():
    """A per-user 0700 directory in the temp dir, for when ~/.shiv cannot be written."""
    import stat
    import tempfile

    root = os.path.join(tempfile.gettempdir(), "mam-install-shiv-%d" % os.getuid())
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        sys.stderr.write(
            "error: ~/.shiv is not writable and %s is not a private directory of yours; "
            "set SHIV_ROOT to a writable directory and run again\n" % root
        )
        sys.exit(3)
    return root


if not os.environ.get("SHIV_ROOT"):
    home_root = os.path.join(os.path.expanduser("~"), ".shiv")
    if not os.path.isabs(home_root) or not _usable(home_root):
        os.environ["SHIV_ROOT"] = _private_root()

# Filled in by scripts/build.py: shiv's build id, which names the extraction directory.
_BUILD_ID = "@SHIV_BUILD_ID@"


def _extracted_site_packages():
    """The site-packages shiv extracted on an earlier run (where shiv's bootstrap would put it)."""
    root = os.path.expanduser(os.environ.get("SHIV_ROOT") or os.path.join("~", ".shiv"))
    name = os.path.basename(os.path.realpath(sys.argv[0]))
    path = os.path.join(root, "%s_%s" % (name, _BUILD_ID), "site-packages")
    return path if os.path.isdir(path) and not os.environ.get("SHIV_FORCE_EXTRACT") else None


_SITE = _extracted_site_packages()
if _SITE is not None:
    # Warm start: skip shiv's bootstrap (it imports zipfile, hashlib, subprocess, compileall...)
    # and put the extracted packages where it would: before the first site-packages on sys.path.
    _AT = next(
        (i for i, p in enumerate(sys.path) if p.endswith(("site-packages", "dist-packages"))),
        len(sys.path),
    )
    sys.path.insert(_AT, _SITE)
    from mam_install.cli import main

    sys.exit(main())

try:
    import _bootstrap
except ImportError as exc:  # pragma: no cover - only when the file is not a shiv zipapp
    sys.stderr.write("error: %s is damaged (%s); download it again\n" % (sys.argv[0], exc))
    sys.exit(5)

try:
    _bootstrap.bootstrap()
except OSError as exc:
    sys.stderr.write(
        "error: cannot unpack mam-install under %s (%s); set SHIV_ROOT to a writable "
        "directory and run again\n" % (os.environ.get("SHIV_ROOT", "~/.shiv"), exc)
    )
    sys.exit(3)
