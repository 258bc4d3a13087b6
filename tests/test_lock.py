"""One run at a time per workspace: flock locally, an O_EXCL lock file on a network filesystem."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mam_install
import pytest
from mam_install._errors import BusyError, ExitCode, MamError
from mam_install.engine import _lock
from mam_install.engine._lock import WorkspaceLock

INSTALLER = str(Path(mam_install.__file__).resolve().parents[1])
HOST = socket.gethostname()

HOLDER = textwrap.dedent(
    f"""
    import sys
    sys.path.insert(0, {INSTALLER!r})
    from pathlib import Path
    from mam_install.engine._lock import WorkspaceLock
    lock = WorkspaceLock(Path(sys.argv[1]), timeout=5, network_fs=sys.argv[2] == "net")
    lock.acquire()
    print("held", flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
    lock.release()
    """
)


@contextmanager
def held_by_another_process(
    path: Path, *, network_fs: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """A second mam-install run, in its own process, holding the lock at ``path``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "net" if network_fs else "local"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"held\n"
        yield proc
    finally:
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)


def busy(lock: WorkspaceLock) -> tuple[BusyError, float]:
    """Acquire ``lock``, demand BusyError exit 9; return it and how long acquiring took."""
    started = time.monotonic()
    with pytest.raises(BusyError) as caught:
        lock.acquire()
    elapsed = time.monotonic() - started
    assert caught.value.exit_code is ExitCode.BUSY
    assert int(caught.value.exit_code) == 9
    assert str(lock.path) in str(caught.value)
    return caught.value, elapsed


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    return proc.pid


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process on this host that holds no lock."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait(10)


# --- flock (local filesystems) ----------------------------------------------------------------


def test_second_run_is_busy_after_its_timeout_while_another_process_holds_the_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".mam" / "lock"
    path.parent.mkdir()
    with held_by_another_process(path):
        error, elapsed = busy(WorkspaceLock(path, timeout=0.3))
    assert 0.3 <= elapsed < 3
    assert "waited 0.3s" in str(error)
    assert "--lock-timeout" in str(error)
    assert "\n" not in str(error)


def test_lock_is_free_again_once_the_other_process_releases_it(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with held_by_another_process(path):
        pass
    with WorkspaceLock(path, timeout=0.5):
        assert path.exists()


def test_lock_of_a_killed_process_is_released_by_the_kernel(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with held_by_another_process(path) as proc:
        proc.kill()
        proc.wait(10)
        with WorkspaceLock(path, timeout=1.0):
            pass


def test_a_waiting_run_gets_the_lock_when_the_holder_finishes_within_the_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lock"
    with held_by_another_process(path) as proc:
        assert proc.stdin is not None
        timer = threading.Timer(0.3, proc.stdin.close)
        timer.start()
        started = time.monotonic()
        with WorkspaceLock(path, timeout=10):
            waited = time.monotonic() - started
        timer.join()
    assert 0.2 <= waited < 5


def test_lock_is_exclusive_within_one_process_and_released_on_exception(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with pytest.raises(RuntimeError), WorkspaceLock(path, timeout=0):
        busy(WorkspaceLock(path, timeout=0))
        raise RuntimeError("the run failed")
    with WorkspaceLock(path, timeout=0):
        pass


def test_zero_timeout_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with held_by_another_process(path):
        _, elapsed = busy(WorkspaceLock(path, timeout=0))
    assert elapsed < 1


def test_release_is_idempotent_and_release_without_acquire_is_harmless(tmp_path: Path) -> None:
    lock = WorkspaceLock(tmp_path / "lock", timeout=0)
    lock.release()
    lock.acquire()
    lock.release()
    lock.release()
    with WorkspaceLock(tmp_path / "lock", timeout=0):
        pass


def test_a_symlink_at_the_lock_path_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "created-through-link"
    target.parent.mkdir()
    (tmp_path / "lock").symlink_to(target)
    with pytest.raises((OSError, MamError)):
        WorkspaceLock(tmp_path / "lock", timeout=0).acquire()
    assert not target.exists()


def test_a_symlink_at_the_lock_path_is_a_mam_error(tmp_path: Path) -> None:
    (tmp_path / "lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(MamError) as caught:
        WorkspaceLock(tmp_path / "lock", timeout=0).acquire()
    assert str(tmp_path / "lock") in str(caught.value)


# --- O_EXCL lock file (network filesystems) ---------------------------------------------------


def excl(path: Path) -> Path:
    return path.with_name(path.name + ".excl")


def test_network_lock_is_busy_while_another_process_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with held_by_another_process(path, network_fs=True) as proc:
        assert excl(path).read_text() == f"{HOST} {proc.pid}\n"
        _, elapsed = busy(WorkspaceLock(path, timeout=0.3, network_fs=True))
        assert 0.3 <= elapsed < 3
        assert excl(path).read_text() == f"{HOST} {proc.pid}\n"
    assert not excl(path).exists()  # released by the holder
    with WorkspaceLock(path, timeout=0, network_fs=True):
        assert excl(path).read_text() == f"{HOST} {os.getpid()}\n"
    assert not excl(path).exists()


def test_network_lock_is_exclusive_within_one_process(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with WorkspaceLock(path, timeout=0, network_fs=True):
        busy(WorkspaceLock(path, timeout=0.1, network_fs=True))
        assert excl(path).exists()
    assert not excl(path).exists()


def test_stale_network_lock_of_a_dead_process_on_this_host_is_broken(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    excl(path).write_text(f"{HOST} {dead_pid()}\n")
    started = time.monotonic()
    with WorkspaceLock(path, timeout=5, network_fs=True):
        assert time.monotonic() - started < 1  # broken at once, not waited out
        assert excl(path).read_text() == f"{HOST} {os.getpid()}\n"
    assert not excl(path).exists()


def test_network_lock_of_a_live_process_on_this_host_is_not_broken(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    path = tmp_path / "lock"
    excl(path).write_text(f"{HOST} {sleeper.pid}\n")
    busy(WorkspaceLock(path, timeout=0.2, network_fs=True))
    assert excl(path).read_text() == f"{HOST} {sleeper.pid}\n"


def test_network_lock_of_another_host_is_never_broken(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    content = f"{HOST}-elsewhere {dead_pid()}\n"
    excl(path).write_text(content)
    busy(WorkspaceLock(path, timeout=0.2, network_fs=True))
    assert excl(path).read_text() == content


@pytest.mark.parametrize(
    "content", ["", f"{HOST}", f"{HOST} not-a-pid\n", "garbage with three words\n"],
    ids=["empty", "no-pid", "bad-pid", "three-words"],
)
def test_network_lock_file_that_cannot_be_read_as_host_and_pid_is_not_broken(
    tmp_path: Path, content: str
) -> None:
    # An empty file is what a run that has just created the lock, but not yet written it, leaves.
    path = tmp_path / "lock"
    excl(path).write_text(content)
    busy(WorkspaceLock(path, timeout=0.1, network_fs=True))
    assert excl(path).read_text() == content


def test_two_runs_breaking_the_same_stale_lock_do_not_both_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeper: subprocess.Popen[bytes]
) -> None:
    path = tmp_path / "lock"
    stale = dead_pid()
    excl(path).write_text(f"{HOST} {stale}\n")
    fresh = f"{HOST} {sleeper.pid}\n"
    real_pid_alive = _lock._pid_alive
    raced: list[bool] = []

    def the_other_run_wins_the_race(pid: int) -> bool:
        # Exactly between our read of the stale file and our unlink, the other run (alive:
        # ``sleeper``) breaks the same stale lock and creates its own.
        if pid == stale and not raced:
            excl(path).unlink()
            excl(path).write_text(fresh)
            raced.append(True)
        return real_pid_alive(pid)

    monkeypatch.setattr(_lock, "_pid_alive", the_other_run_wins_the_race)
    lock = WorkspaceLock(path, timeout=0.3, network_fs=True)
    try:
        busy(lock)
        assert excl(path).read_text() == fresh
    finally:
        lock.release()
