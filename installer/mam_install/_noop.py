"""The no-op witness: what the engine saw when it last found a workspace up to date, so that a
re-install can tell, before click or the engine is imported, that it has nothing to do.

The engine decides; this module only remembers and re-checks. When a run leaves a workspace
that a re-install of this pyz's own payload would not touch (the engine plans it again to make
sure, and its plan has nothing to run, nothing new to remember and nothing to report), the
engine records every observation that plan was made from: each path its planner inspected,
with what was there (``_inspect.inspect``: kind and hash), and the hash of the receipt it read.
The engine's plan is a function of those observations, the receipt and the payload, so while
all of them are unchanged its answer is too. A later ``install --no-host`` repeats the same
observations with the same function and answers "nothing to do" only when every one matches;
anything else (an edit, a new file in the way, a changed receipt, a held lock, an unusable
state dir) goes to the engine, which decides again. The check writes nothing.

The witness lives beside this build's unpacked code (``<SHIV_ROOT>/<build>/noop/``): private
to the user, as trusted as the code being run, and gone with the build. Running from a source
tree there is none, and every run goes through the engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat

from ._inspect import CLOEXEC, NOFOLLOW, Walker
from ._state_entries import GITIGNORE_NAME, RECEIPT_NAME, state_dir_problem
from ._where import STATE_DIR_NAME

KIND = "mam-install-noop-witness"
SCHEMA = 1
MAX_WITNESS_BYTES = 64 * 1024 * 1024
# One observation: (path relative to the workspace, kind, sha256 of a regular file or None).
Seen = tuple[str, str, "str | None"]


def witness_dir() -> str | None:
    """``<extraction>/noop`` when running from the pyz's bytecode zip, else None."""
    package = os.path.dirname(os.path.abspath(__file__))  # .../<tag>/lib.zip/mam_install
    library = os.path.dirname(package)
    if not library.endswith(".zip"):
        return None
    return os.path.join(os.path.dirname(os.path.dirname(library)), "noop")


def _witness_file(root: str) -> str | None:
    where = witness_dir()
    if where is None:
        return None
    name = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return os.path.join(where, name + ".json")


def _private_dir(path: str) -> bool:
    """An existing directory of this user's that no one else can write (or one just made so)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    return (
        stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022
    )


def record(root: str, version: str, receipt: bytes, seen: list[Seen]) -> None:
    """Remember that a re-install of ``version`` into ``root`` changes nothing while the
    receipt's bytes and every observation in ``seen`` stay as they are. Best effort: a witness
    that cannot be written only means the next run asks the engine."""
    path = _witness_file(root)
    if path is None:
        return
    doc = {
        "kind": KIND,
        "schema": SCHEMA,
        "root": root,
        "version": version,
        "receipt_sha256": hashlib.sha256(receipt).hexdigest(),
        "seen": [list(entry) for entry in seen],
    }
    data = json.dumps(doc, separators=(",", ":")).encode("utf-8", "surrogateescape")
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        if not _private_dir(os.path.dirname(path)):
            return
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW | CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)  # a reader sees the old witness or the new one, never half
    except OSError:
        forget(root)
        try:
            os.unlink(tmp)
        except OSError:
            pass


def forget(root: str) -> None:
    """Drop the witness of ``root``: the next re-install asks the engine."""
    path = _witness_file(root)
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass


def _load(path: str) -> dict[str, object] | None:
    """The witness, if it is ours (this user's, not writable by others) and well formed."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (
            not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022
            or st.st_size > MAX_WITNESS_BYTES
        ):
            return None
        with os.fdopen(os.dup(fd), "rb") as stream:
            doc = json.loads(stream.read().decode("utf-8", "surrogateescape"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("schema") != SCHEMA:
        return None
    seen = doc.get("seen")
    if not (
        isinstance(doc.get("root"), str) and isinstance(doc.get("version"), str)
        and isinstance(doc.get("receipt_sha256"), str) and isinstance(seen, list)
        and all(_well_formed(entry) for entry in seen)
    ):
        return None
    return doc


def _well_formed(entry: object) -> bool:
    if not (isinstance(entry, list) and len(entry) == 3):
        return False
    rel, kind, sha256 = entry
    return (
        isinstance(rel, str) and isinstance(kind, str)
        and (sha256 is None or isinstance(sha256, str))
        and not rel.startswith("/") and ".." not in rel.split("/") and bool(rel.strip("/"))
    )


def _lock_is_free(state_dir: str) -> int | None:
    """A shared hold on the scope's lock (an fd to close), or None while a run holds it.

    Held for the whole check, so no run can change the workspace half-way through it; a run
    waiting for the lock waits for a few milliseconds at most.
    """
    import fcntl

    if os.path.lexists(os.path.join(state_dir, "lock.excl")):
        return None  # a run on a network filesystem holds the workspace
    try:
        fd = os.open(os.path.join(state_dir, "lock"), os.O_RDONLY | NOFOLLOW | CLOEXEC)
    except OSError:
        return None  # missing: the engine would create it, so the engine runs
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def holds(root: str) -> str | None:
    """The installed version if the witness of ``root`` still holds (a re-install of this
    pyz's payload would change nothing), else None: the engine must look."""
    path = _witness_file(root)
    doc = _load(path) if path is not None else None
    if doc is None or doc["root"] != root:
        return None
    # What the engine checks before it plans: a writable workspace, a state dir without a
    # link in it (the same check), the files it would otherwise create, and the lock.
    if not (os.path.isdir(root) and os.access(root, os.W_OK | os.X_OK)):
        return None
    state_dir = os.path.join(root, STATE_DIR_NAME)
    if state_dir_problem(state_dir, is_root=False) is not None:
        return None
    if not os.path.isfile(os.path.join(state_dir, GITIGNORE_NAME)):
        return None
    lock = _lock_is_free(state_dir)
    if lock is None:
        return None
    try:
        with Walker(root) as walker:
            receipt = walker.inspect(f"{STATE_DIR_NAME}/{RECEIPT_NAME}")
            if receipt.kind != "file" or receipt.sha256 != doc["receipt_sha256"]:
                return None
            for rel, kind, sha256 in doc["seen"]:  # type: ignore[attr-defined]
                now = walker.inspect(rel)
                if now.kind != kind or now.sha256 != sha256:
                    return None
    finally:
        os.close(lock)
    version = doc["version"]
    return version if isinstance(version, str) else None
