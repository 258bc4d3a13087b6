"""A content-addressed cache of downloaded artifacts, re-verified every time it is used."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

from .._errors import IntegrityError
from .._hashing import CHUNK_SIZE, is_sha256_hex, sha256_file

__all__ = ["default_cache_root", "lookup", "restore", "store"]


def default_cache_root() -> Path:
    """``<user cache dir>/mam/sha256``: platformdirs decides the user cache dir per platform."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("mam")) / "sha256"


def lookup(root: Path, sha256: str) -> Path | None:
    """The cached file whose content hashes to ``sha256``, or None.

    The entry is hashed again on every lookup; an entry that no longer matches (disk corruption,
    tampering) or is not a regular file is evicted and None returned. An unreadable cache is
    treated as empty: the caller downloads again. Prefer `restore`, which copies and verifies in
    one pass so the entry cannot change between the check and its use.
    """
    entry = _entry(root, sha256)
    try:
        if not stat.S_ISREG(entry.lstat().st_mode):
            _evict(entry)
            return None
        if sha256_file(entry) == sha256:
            return entry
    except OSError:
        return None
    _evict(entry)
    return None


def restore(root: Path, sha256: str, dest: Path) -> bool:
    """Copy the entry for ``sha256`` to ``dest`` (in staging) and verify the copy; True if done.

    The digest is computed over the bytes written to ``dest``, so what the caller then uses is
    what was verified. A corrupt entry is evicted, ``dest`` removed, and False returned.
    """
    entry = _entry(root, sha256)
    digest = hashlib.sha256()
    try:
        fd = os.open(entry, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        if entry.is_symlink():
            _evict(entry)
        return False
    try:
        with os.fdopen(fd, "rb") as source, open(dest, "wb") as out:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                raise _NotRegular
            while True:
                chunk = source.read(CHUNK_SIZE)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
    except _NotRegular:
        _discard(dest)
        _evict(entry)
        return False
    except OSError:
        _discard(dest)
        return False
    if digest.hexdigest() != sha256:
        _discard(dest)
        _evict(entry)
        return False
    return True


def store(root: Path, path: Path, sha256: str) -> Path:
    """Copy ``path`` into the cache under ``sha256`` atomically and return the entry's path.

    The copy is hashed as it is written and must equal ``sha256`` (`IntegrityError` otherwise),
    so nothing lands under a name it does not match. The cache directory is created mode 0700:
    it holds what this user is about to install and no one else may swap it. I/O failures
    (a full disk, a read-only cache) raise ``OSError``: the cache is an optimisation, so callers
    warn and carry on with the file already in staging.
    """
    entry = _entry(root, sha256)
    _make_private_dir(root)
    fd, temp_name = tempfile.mkstemp(dir=root, prefix=".incoming-")
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, open(path, "rb") as source:
            while True:
                chunk = source.read(CHUNK_SIZE)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise IntegrityError(
                f"{path} does not hash to {sha256} (got {digest.hexdigest()}), so it was not "
                "cached; discard it and download the release again"
            )
        os.replace(temp, entry)
    except BaseException:
        _discard(temp)
        raise
    return entry


class _NotRegular(Exception):
    pass


def _entry(root: Path, sha256: str) -> Path:
    if not is_sha256_hex(sha256):
        raise ValueError(f"cache keys are 64 lowercase hex digits, not {sha256!r}")
    return root / sha256


def _make_private_dir(root: Path) -> None:
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700, parents=True)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise IntegrityError(
            f"the download cache {root} is not a directory; remove it and run again"
        )
    if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.getuid():
        # mkdir's mode is filtered by the umask and says nothing about an existing directory.
        os.chmod(root, 0o700)


def _evict(entry: Path) -> None:
    with contextlib.suppress(OSError):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
