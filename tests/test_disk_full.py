"""A full disk at every write of an upgrade and an uninstall (receipt writes included), in-process
with pyfakefs so it runs without root: exit 7 with the workspace as it was, or exit 8 with the
receipt saying what is left and the next run making it whole; never an OSError (exit 1)."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mam_install._errors import ActionFailed, InterruptedRun, MamError, RevertIncomplete
from mam_install._feedback import ConsoleFeedback
from mam_install.engine._driver import RunOptions, drive
from mam_install.release._lazy_source import LazyStaged
from mam_install.release._sources import SourceSpec
from mam_install.release._staging import Staging
from mam_install.scopes._workspace_scope import WorkspaceScope
from workspaces import expected_tree, make_release, pinned, tree

# About 20 s (a run per write budget), and pyfakefs loses track of a directory it made under
# CPython 3.9 (KeyError on the next rmtree): the main pass runs these; the 3.9 pass, which
# leaves slow tests out, does not.
pytestmark = pytest.mark.slow

# Files bigger than the budget's step, so that every write of the run is the one that fails
# at some budget.
BIG = b"#" * 3000 + b"\n"
V1 = {
    "workspace/AGENT.md": (BIG + b"v1\n", 0o644),
    "workspace/.agents/skills/lib.sh": (BIG + b"lib v1\n", 0o755),
    "workspace/.agents/skills/old-tool.sh": (BIG + b"dropped in v2\n", 0o755),
}
V2 = {
    "workspace/AGENT.md": (BIG + b"v2\n", 0o644),
    "workspace/.agents/skills/lib.sh": (BIG + b"lib v2\n", 0o755),
    "workspace/.agents/skills/mqtt/new.py": (BIG + b"new in v2\n", 0o644),
}
STEP = 512
WS = Path("/disk/ws")


@pytest.fixture(scope="module")
def big_releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("big-releases")
    return {"1.0.0": make_release(base, V1, "1.0.0"), "2.0.0": make_release(base, V2, "2.0.0")}


@pytest.fixture
def disk(fs, big_releases, monkeypatch) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The workspace on its own small filesystem; the releases and staging elsewhere.

    The filesystem probe reads /proc and runs `mount`, which know nothing of the fake disk:
    the lock is the one mam-install takes where it cannot identify the filesystem (the O_EXCL
    lock file, which works on any filesystem).
    """
    from mam_install.engine import _driver
    from mam_install.engine._lock import WorkspaceLock

    def unknown_filesystem(path: Path, *, timeout: float) -> WorkspaceLock:
        return WorkspaceLock(path, timeout=timeout, network_fs=True)

    monkeypatch.setattr(_driver, "lock_for", unknown_filesystem)
    for release in big_releases.values():
        fs.add_real_directory(str(release))
    fs.add_mount_point("/disk", total_size=10**9)
    yield fs


def run(verb: str, release: Path | None = None) -> None:
    feedback = ConsoleFeedback(verbosity=-99)
    with Staging() as staging:
        pin = pinned(release)[-1] if release else None  # as a user pins a made-up release
        source = LazyStaged(SourceSpec(str(release), pin), staging, feedback) if release else None
        scope = WorkspaceScope(WS, source, embedded_only=False)
        drive(scope, verb, RunOptions(assume_yes=True, lock_timeout=5), feedback)  # type: ignore[arg-type]


def fresh(fs: object, version: str, releases: dict[str, Path]) -> int:
    """The workspace with ``version`` installed, and the bytes in use on its disk."""
    fs.set_disk_usage(10**9, "/disk")  # type: ignore[attr-defined]
    if WS.exists():
        shutil.rmtree(WS)
    WS.mkdir(parents=True)
    (WS / "notes.txt").write_bytes(b"the user's own\n")
    run("install", releases[version])
    return int(fs.get_disk_usage("/disk").used)  # type: ignore[attr-defined]


def full_at_every_write(
    fs: object, start: str, verb: str, releases: dict[str, Path], release: Path | None,
    *, before: dict[str, bytes | str], after: dict[str, bytes | str],
) -> set[str]:
    """Run ``verb`` with the disk full after each budget in turn, until one run succeeds
    with room to spare; check each outcome; return the files whose write failed."""
    failed_writes: set[str] = set()
    budget, successes = 0, 0
    while successes < 3:
        used = fresh(fs, start, releases)
        fs.set_disk_usage(used + budget, "/disk")  # type: ignore[attr-defined]
        try:
            run(verb, release)
        except ActionFailed as exc:
            assert isinstance(exc.__cause__, OSError) or "No space" in str(exc), exc
            assert tree(WS) == before, f"budget {budget}: exit 7 left the workspace changed"
            failed_writes.add(_what(exc))
        except RevertIncomplete as exc:
            failed_writes.add(_what(exc))
            fs.set_disk_usage(10**9, "/disk")  # type: ignore[attr-defined]
            _made_whole(verb, release, after)
        else:
            successes += 1
            assert tree(WS) == after
        budget += STEP
        assert budget < 10**6, "the run never succeeded"
    return failed_writes


def _what(exc: MamError) -> str:
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__
    if isinstance(cause, OSError):
        assert cause.errno == errno.ENOSPC
        return Path(str(cause.filename or "")).name
    return str(exc)


def _made_whole(verb: str, release: Path | None, after: dict[str, bytes | str]) -> None:
    """With room again, the next mutating run finishes the job."""
    try:
        run("status")
    except InterruptedRun:
        pass
    run(verb, release)
    assert tree(WS) == after


def test_an_upgrade_on_a_full_disk_is_undone_at_every_write(disk, big_releases):
    v1 = {"notes.txt": b"the user's own\n", **expected_tree(V1)}
    v2 = {"notes.txt": b"the user's own\n", **expected_tree(V2)}
    failed = full_at_every_write(
        disk, "1.0.0", "upgrade", big_releases, big_releases["2.0.0"], before=v1, after=v2
    )
    # Each kind of write was the one that found the disk full: the lock, the archived receipt,
    # the receipt of intent, a new file and a replaced one. (pyfakefs frees a replaced file's
    # bytes although the backup's hard link keeps them, so a later replace never needs more
    # room than the first and cannot be the one that fails.)
    names = {n.removesuffix(".mam-tmp").lstrip(".") for n in failed}
    assert {"lock.excl", "1.0.0.json", "install-receipt.json", "new.py"} <= names, failed
    assert names & {"AGENT.md", "lib.sh"}, failed


def test_an_uninstall_on_a_full_disk_is_undone_or_finished_at_every_write(disk, big_releases):
    v1 = {"notes.txt": b"the user's own\n", **expected_tree(V1)}
    gone = {"notes.txt": b"the user's own\n"}
    failed = full_at_every_write(
        disk, "1.0.0", "uninstall", big_releases, None, before=v1, after=gone
    )
    names = {n.removesuffix(".mam-tmp").lstrip(".") for n in failed}
    assert {"lock.excl", "1.0.0.json", "install-receipt.json"} <= names, failed
