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
_SITE = "site-packages/"
_DATA = "mam_install/_data"


def _extraction_dir():
    """Where this build is unpacked (the name shiv's own bootstrap would give it)."""
    root = os.path.expanduser(os.environ.get("SHIV_ROOT") or os.path.join("~", ".shiv"))
    name = os.path.basename(os.path.realpath(sys.argv[0]))
    return os.path.join(root, "%s_%s" % (name, _BUILD_ID))


def _unpack(pyz, members, target):
    """Write ``members`` (zip name -> path below ``target``) beside ``target``, then rename it
    into place: a run killed half-way, or two first runs at once, never leave a partial copy
    that a later run would trust (the loser of a race drops its own)."""
    import shutil

    partial = "%s.partial-%d" % (target, os.getpid())
    shutil.rmtree(partial, ignore_errors=True)
    try:
        for name, rel in members:
            parts = rel.split("/")
            if ".." in parts or "" in parts:
                raise OSError("unsafe member name %r" % name)
            dest = os.path.join(partial, *parts)
            if not os.path.isdir(os.path.dirname(dest)):
                os.makedirs(os.path.dirname(dest))
            with open(dest, "wb") as out:
                out.write(pyz.read(name))
        try:
            os.rename(partial, target)
        except OSError:
            if not os.path.exists(target):
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _prepare(target, tag):
    """Unpack what this Python needs from the pyz; return the sys.path entry to import from.

    The build ships, per supported Python, one zip of the packages as unchecked-hash bytecode:
    the first run writes that one file and the payload data (a handful), and imports compile
    nothing. (shiv's --compile-pyc unpacked 300 files and compiled every module in a process
    pool: 4-10x a warm run.) On a Python without shipped bytecode the sources are unpacked and
    compiled lazily, as they are imported, into __pycache__ beside them.
    """
    import zipfile

    with zipfile.ZipFile(sys.argv[0]) as pyz:
        names = pyz.namelist()
        if "bytecode/%s.zip" % tag in names:
            prefix = _SITE + _DATA + "/"
            data = [(n, n[len(prefix):]) for n in names
                    if n.startswith(prefix) and not n.endswith("/")]
            _unpack(pyz, data, os.path.join(target, "_data"))
            lib = "bytecode/%s.zip" % tag
            _unpack(pyz, [(lib, "lib.zip")], os.path.join(target, tag))
        else:
            sources = [(n, n) for n in names if n.startswith(_SITE) and not n.endswith("/")]
            _unpack(pyz, sources, os.path.join(target, "sources"))


def _import_path():
    target = _extraction_dir()
    tag = sys.implementation.cache_tag or "none"
    if os.environ.get("SHIV_FORCE_EXTRACT") and os.path.isdir(target):
        import shutil

        shutil.rmtree(target)
    lib = os.path.join(target, tag, "lib.zip")
    sources = os.path.join(target, "sources", "site-packages")
    for _ in range(2):
        if os.path.isfile(lib) and os.path.isdir(os.path.join(target, "_data")):
            return lib
        if os.path.isdir(sources):
            return sources
        try:
            try:
                os.makedirs(target, 0o700)
            except OSError:
                if not os.path.isdir(target):  # else a first run beside this one made it
                    raise
            _prepare(target, tag)
        except OSError as exc:
            sys.stderr.write(
                "error: cannot unpack mam-install under %s (%s); set SHIV_ROOT to a writable "
                "directory and run again\n" % (os.path.dirname(target), exc)
            )
            sys.exit(3)
        except Exception as exc:  # zipfile.BadZipFile and the like: not the file we built
            sys.stderr.write("error: %s is damaged (%s); download it again\n" % (sys.argv[0], exc))
            sys.exit(5)
    sys.stderr.write("error: %s is damaged (nothing to run); download it again\n" % sys.argv[0])
    sys.exit(5)


# Put the packages where shiv's bootstrap would (before the first site-packages on sys.path)
# without running it: it imports zipfile, hashlib, subprocess and compileall on every start.
_PATH = _import_path()
_AT = next(
    (i for i, p in enumerate(sys.path) if p.endswith(("site-packages", "dist-packages"))),
    len(sys.path),
)
sys.path.insert(_AT, _PATH)
from mam_install._entry import main  # noqa: E402

sys.exit(main())
