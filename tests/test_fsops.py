"""Symlink-safe, no-clobber file operations: what is on disk afterwards, and what is not."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import mam_install
import pytest
from mam_install._errors import ConflictError, ExitCode
from mam_install.engine._fsops import (
    UnsafePath,
    inspect,
    make_dir,
    place_new,
    remove_dir_if_empty,
    remove_if,
    remove_temp,
    replace_if,
    restore,
    save_backup,
    temp_name,
    write_atomic,
)

INSTALLER = str(Path(mam_install.__file__).resolve().parents[1])
OLD = b"# the user's AGENT.md\n"
NEW = b"# ours, version 2\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` without following symlinks: path -> kind and content."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = "link -> " + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                found[rel] = f"file {stat.S_IMODE(st.st_mode):o} " + sha(path.read_bytes())
            else:
                found[rel] = f"{stat.S_IFMT(st.st_mode):o}"
    return found


class Layout:
    """A workspace ``ws/`` with ``.agents/``, a ``source`` file to place, and an ``outside/`` dir
    next to it that no operation may ever change."""

    def __init__(self, tmp_path: Path) -> None:
        self.ws = tmp_path / "ws"
        (self.ws / ".agents" / "skills").mkdir(parents=True)
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        (self.outside / "victim.txt").write_bytes(OLD)
        self.source = tmp_path / "source"
        self.source.write_bytes(NEW)
        self._before = tree(self.outside)

    def assert_outside_untouched(self) -> None:
        assert tree(self.outside) == self._before
        assert (self.outside / "victim.txt").read_bytes() == OLD

    def no_temp_files(self) -> None:
        leftovers = [p for p in tree(self.ws) if p.endswith(".mam-tmp")]
        assert leftovers == []


@pytest.fixture
def lay(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


def conflict(exc: ConflictError, path: Path) -> str:
    """``exc`` is a ConflictError (exit 4) whose message names ``path``; return the message."""
    assert exc.exit_code is ExitCode.CONFLICT
    assert int(exc.exit_code) == 4
    message = str(exc)
    assert str(path) in message
    return message


def run_with_file_size_limit(call: str, limit: int) -> str:
    """Run ``call`` (using ``_fsops``) in a child whose writes fail with EFBIG past ``limit``."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path.insert(0, {INSTALLER!r})
        from pathlib import Path
        from mam_install.engine import _fsops
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))
        try:
            {call}
        except OSError as exc:
            print("OSError", exc.errno)
        else:
            print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


# --- inspect ----------------------------------------------------------------------------------


def test_inspect_absent_file_and_absent_parent(lay: Layout) -> None:
    assert inspect(lay.ws, "AGENT.md").kind == "absent"
    assert inspect(lay.ws, ".agents/skills/none.sh").kind == "absent"
    assert inspect(lay.ws, ".agents/no/such/dir/x").kind == "absent"


def test_inspect_regular_file_reports_hash_and_mode(lay: Layout) -> None:
    path = lay.ws / ".agents" / "skills" / "lib.sh"
    path.write_bytes(NEW)
    path.chmod(0o755)
    state = inspect(lay.ws, ".agents/skills/lib.sh")
    assert (state.kind, state.sha256, state.mode) == ("file", sha(NEW), 0o755)


def test_inspect_symlink_at_the_destination_reports_its_target_unfollowed(lay: Layout) -> None:
    (lay.ws / "AGENT.md").symlink_to(lay.outside / "victim.txt")
    (lay.ws / ".env.example").symlink_to("does-not-exist")
    state = inspect(lay.ws, "AGENT.md")
    assert (state.kind, state.sha256, state.detail) == ("symlink", None,
                                                        str(lay.outside / "victim.txt"))
    assert inspect(lay.ws, ".env.example").kind == "symlink"
    assert inspect(lay.ws, ".env.example").detail == "does-not-exist"


def test_inspect_symlinked_parent_is_seen_not_followed(lay: Layout) -> None:
    (lay.outside / "lib.sh").write_bytes(NEW)
    (lay.ws / ".agents" / "skills").rmdir()
    (lay.ws / ".agents" / "skills").symlink_to(lay.outside)
    state = inspect(lay.ws, ".agents/skills/lib.sh")
    assert state.kind == "symlinked-parent"
    assert state.sha256 is None
    assert str(lay.ws / ".agents" / "skills") in state.detail


def test_inspect_symlinked_top_directory_and_dangling_parent(lay: Layout) -> None:
    other = lay.ws.parent / "ws2"
    other.mkdir()
    (other / ".agents").symlink_to(lay.ws / ".agents")
    (other / "gone").symlink_to(lay.ws / "nowhere")
    assert inspect(other, ".agents/skills/lib.sh").kind == "symlinked-parent"
    assert inspect(other, "gone/x").kind == "symlinked-parent"


def test_inspect_blocked_parent_when_a_parent_is_a_regular_file(lay: Layout) -> None:
    (lay.ws / ".agents" / "skills").rmdir()
    (lay.ws / ".agents" / "skills").write_bytes(b"a file where a dir should be")
    state = inspect(lay.ws, ".agents/skills/lib.sh")
    assert state.kind == "blocked-parent"
    assert "is not a directory" in state.detail


def test_inspect_other_for_a_directory_and_a_fifo(lay: Layout) -> None:
    (lay.ws / "AGENT.md").mkdir()
    os.mkfifo(lay.ws / ".env.example")
    assert inspect(lay.ws, "AGENT.md").kind == "other"
    started = time.monotonic()
    assert inspect(lay.ws, ".env.example").kind == "other"  # never opened, so never blocks
    assert time.monotonic() - started < 2


def test_inspect_blocked_parent_is_not_misreported_when_the_root_path_says_symlink(
    tmp_path: Path,
) -> None:
    root = tmp_path / "symlink-lab" / "ws"
    root.mkdir(parents=True)
    (root / ".agents").write_bytes(b"a file where a dir should be")
    assert inspect(root, ".agents/skills/lib.sh").kind == "blocked-parent"


# --- place_new --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o755])
def test_place_new_writes_bytes_and_exact_mode_whatever_the_umask(lay: Layout, mode: int) -> None:
    old_umask = os.umask(0o077)
    try:
        place_new(lay.ws, ".agents/skills/lib.sh", lay.source, mode)
    finally:
        os.umask(old_umask)
    path = lay.ws / ".agents" / "skills" / "lib.sh"
    assert path.read_bytes() == NEW
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.stat().st_nlink == 1  # the temp hard link is gone
    assert names(path.parent) == ["lib.sh"]


def test_place_new_refuses_an_existing_file_and_keeps_its_bytes(lay: Layout) -> None:
    path = lay.ws / "AGENT.md"
    path.write_bytes(OLD)
    path.chmod(0o600)
    with pytest.raises(ConflictError) as caught:
        place_new(lay.ws, "AGENT.md", lay.source, 0o644)
    conflict(caught.value, path)
    assert path.read_bytes() == OLD
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_nlink == 1
    lay.no_temp_files()


def test_place_new_refuses_an_existing_directory(lay: Layout) -> None:
    with pytest.raises(ConflictError) as caught:
        place_new(lay.ws, ".agents/skills", lay.source, 0o644)
    conflict(caught.value, lay.ws / ".agents" / "skills")
    assert (lay.ws / ".agents" / "skills").is_dir()
    lay.no_temp_files()


def test_place_new_refuses_a_symlink_at_the_destination(lay: Layout) -> None:
    link = lay.ws / "AGENT.md"
    link.symlink_to(lay.outside / "victim.txt")
    with pytest.raises(ConflictError) as caught:
        place_new(lay.ws, "AGENT.md", lay.source, 0o644)
    conflict(caught.value, link)
    assert os.readlink(link) == str(lay.outside / "victim.txt")
    lay.assert_outside_untouched()
    lay.no_temp_files()


def test_place_new_refuses_a_dangling_symlink_and_never_creates_its_target(lay: Layout) -> None:
    link = lay.ws / "AGENT.md"
    link.symlink_to(lay.outside / "created-through-link")
    with pytest.raises(ConflictError):
        place_new(lay.ws, "AGENT.md", lay.source, 0o644)
    assert os.path.islink(link)
    assert not (lay.outside / "created-through-link").exists()
    lay.assert_outside_untouched()
    lay.no_temp_files()


@pytest.mark.parametrize("linked", [".agents", ".agents/skills"])
def test_place_new_refuses_to_write_through_a_symlinked_parent(lay: Layout, linked: str) -> None:
    victim_dir = lay.outside / "dir"
    victim_dir.mkdir()
    (victim_dir / "skills").mkdir()
    lay._before = tree(lay.outside)
    target = lay.ws / linked
    for child in sorted(target.rglob("*"), reverse=True):
        child.rmdir()
    target.rmdir()
    target.symlink_to(victim_dir if linked == ".agents" else victim_dir / "skills")

    with pytest.raises(UnsafePath) as caught:
        place_new(lay.ws, ".agents/skills/lib.sh", lay.source, 0o755)
    message = conflict(caught.value, target)
    assert "symlink" in message
    lay.assert_outside_untouched()
    assert names(victim_dir / "skills") == []


def test_place_new_refuses_when_a_parent_is_a_file(lay: Layout) -> None:
    blocker = lay.ws / ".agents" / "skills"
    blocker.rmdir()
    blocker.write_bytes(OLD)
    with pytest.raises(UnsafePath) as caught:
        place_new(lay.ws, ".agents/skills/lib.sh", lay.source, 0o755)
    assert "is not a directory" in conflict(caught.value, blocker)
    assert blocker.read_bytes() == OLD


def test_place_new_removes_a_leftover_temp_from_a_killed_run(lay: Layout) -> None:
    leftover = lay.ws / temp_name("AGENT.md")
    assert leftover.name == ".AGENT.md.mam-tmp"
    leftover.write_bytes(b"half a file")
    place_new(lay.ws, "AGENT.md", lay.source, 0o644)
    assert (lay.ws / "AGENT.md").read_bytes() == NEW
    assert not leftover.exists()


def test_place_new_does_not_write_through_a_symlink_planted_at_the_temp_name(
    lay: Layout,
) -> None:
    (lay.ws / temp_name("AGENT.md")).symlink_to(lay.outside / "victim.txt")
    place_new(lay.ws, "AGENT.md", lay.source, 0o644)
    assert (lay.ws / "AGENT.md").read_bytes() == NEW
    assert not os.path.islink(lay.ws / "AGENT.md")
    lay.assert_outside_untouched()
    lay.no_temp_files()


def test_place_new_that_fails_mid_write_leaves_no_file_and_no_temp(lay: Layout) -> None:
    lay.source.write_bytes(b"x" * 100_000)
    out = run_with_file_size_limit(
        f"_fsops.place_new(Path({str(lay.ws)!r}), 'AGENT.md', Path({str(lay.source)!r}), 0o644)",
        limit=4096,
    )
    assert out == "OSError 27"  # EFBIG
    assert names(lay.ws) == [".agents"]


def _no_hard_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make link() fail as it does on filesystems without hard links (some FUSE and SMB mounts)."""

    def link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", link)


def test_place_new_without_hard_links_still_places_the_file(
    lay: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_hard_links(monkeypatch)
    place_new(lay.ws, ".agents/skills/lib.sh", lay.source, 0o755)
    path = lay.ws / ".agents" / "skills" / "lib.sh"
    assert path.read_bytes() == NEW
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert names(path.parent) == ["lib.sh"]


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_place_new_without_hard_links_still_refuses_what_is_there(
    lay: Layout, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    path = lay.ws / "AGENT.md"
    if kind == "file":
        path.write_bytes(OLD)
    else:
        path.symlink_to(lay.outside / "victim.txt")
    _no_hard_links(monkeypatch)
    with pytest.raises(ConflictError) as caught:
        place_new(lay.ws, "AGENT.md", lay.source, 0o644)
    conflict(caught.value, path)
    assert path.read_bytes() == OLD
    assert os.path.islink(path) == (kind == "symlink")
    lay.assert_outside_untouched()
    lay.no_temp_files()


# --- replace_if -------------------------------------------------------------------------------


def test_replace_if_replaces_while_the_hash_matches(lay: Layout) -> None:
    path = lay.ws / "AGENT.md"
    path.write_bytes(OLD)
    path.chmod(0o600)
    replace_if(lay.ws, "AGENT.md", lay.source, 0o755, sha(OLD))
    assert path.read_bytes() == NEW
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert names(lay.ws) == [".agents", "AGENT.md"]


def test_replace_if_refuses_when_the_file_changed(lay: Layout) -> None:
    path = lay.ws / "AGENT.md"
    path.write_bytes(OLD + b"the user's edit\n")
    with pytest.raises(ConflictError) as caught:
        replace_if(lay.ws, "AGENT.md", lay.source, 0o644, sha(OLD))
    assert "your copy was kept" in conflict(caught.value, path)
    assert path.read_bytes() == OLD + b"the user's edit\n"
    assert names(lay.ws) == [".agents", "AGENT.md"]


def test_replace_if_refuses_when_the_file_is_gone(lay: Layout) -> None:
    with pytest.raises(ConflictError):
        replace_if(lay.ws, "AGENT.md", lay.source, 0o644, sha(OLD))
    assert names(lay.ws) == [".agents"]


def test_replace_if_refuses_a_symlink_even_to_a_file_with_the_expected_hash(lay: Layout) -> None:
    link = lay.ws / "AGENT.md"
    link.symlink_to(lay.outside / "victim.txt")  # victim.txt hashes to sha(OLD)
    with pytest.raises(ConflictError):
        replace_if(lay.ws, "AGENT.md", lay.source, 0o644, sha(OLD))
    assert os.readlink(link) == str(lay.outside / "victim.txt")
    lay.assert_outside_untouched()
    lay.no_temp_files()


def test_replace_if_refuses_a_symlinked_parent(lay: Layout) -> None:
    (lay.outside / "AGENT.md").write_bytes(OLD)
    lay._before = tree(lay.outside)
    link = lay.ws / ".agents" / "skills"
    link.rmdir()
    link.symlink_to(lay.outside)
    with pytest.raises(UnsafePath):
        replace_if(lay.ws, ".agents/skills/AGENT.md", lay.source, 0o644, sha(OLD))
    lay.assert_outside_untouched()


def test_replace_if_that_fails_mid_write_keeps_the_old_file_and_no_temp(lay: Layout) -> None:
    path = lay.ws / "AGENT.md"
    path.write_bytes(OLD)
    lay.source.write_bytes(b"x" * 100_000)
    out = run_with_file_size_limit(
        f"_fsops.replace_if(Path({str(lay.ws)!r}), 'AGENT.md', Path({str(lay.source)!r}), "
        f"0o644, {sha(OLD)!r})",
        limit=4096,
    )
    assert out == "OSError 27"
    assert path.read_bytes() == OLD
    assert names(lay.ws) == [".agents", "AGENT.md"]


# --- remove_if --------------------------------------------------------------------------------


def test_remove_if_removes_while_the_hash_matches(lay: Layout) -> None:
    (lay.ws / "AGENT.md").write_bytes(OLD)
    assert remove_if(lay.ws, "AGENT.md", sha(OLD)) is True
    assert names(lay.ws) == [".agents"]


def test_remove_if_leaves_a_changed_file(lay: Layout) -> None:
    path = lay.ws / "AGENT.md"
    path.write_bytes(OLD + b"edited\n")
    assert remove_if(lay.ws, "AGENT.md", sha(OLD)) is False
    assert path.read_bytes() == OLD + b"edited\n"


def test_remove_if_on_an_absent_file_says_it_is_gone(lay: Layout) -> None:
    assert remove_if(lay.ws, "AGENT.md", sha(OLD)) is True
    assert remove_if(lay.ws, ".agents/none/x", sha(OLD)) is True


def test_remove_if_leaves_a_symlink_to_a_file_with_the_expected_hash(lay: Layout) -> None:
    link = lay.ws / "AGENT.md"
    link.symlink_to(lay.outside / "victim.txt")
    assert remove_if(lay.ws, "AGENT.md", sha(OLD)) is False
    assert os.readlink(link) == str(lay.outside / "victim.txt")
    lay.assert_outside_untouched()


def test_remove_if_never_removes_through_a_symlinked_parent(lay: Layout) -> None:
    link = lay.ws / ".agents" / "skills"
    link.rmdir()
    link.symlink_to(lay.outside)
    assert remove_if(lay.ws, ".agents/skills/victim.txt", sha(OLD)) is False
    lay.assert_outside_untouched()


def test_remove_if_leaves_a_directory(lay: Layout) -> None:
    assert remove_if(lay.ws, ".agents/skills", sha(b"")) is False
    assert (lay.ws / ".agents" / "skills").is_dir()


def _returns_within(
    seconds: float, fifo: Path, call: Callable[[], object]
) -> tuple[bool, list[object]]:
    """Run ``call`` in a thread; if it blocks on ``fifo`` past ``seconds``, unblock it."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    hung = thread.is_alive()
    if hung:  # open the FIFO's other end so the stuck open() returns and the thread ends
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(5)
    return not hung, result


@pytest.mark.parametrize("operation", ["remove_if", "replace_if"])
def test_a_fifo_at_the_path_is_left_alone_without_blocking(lay: Layout, operation: str) -> None:
    fifo = lay.ws / "AGENT.md"
    os.mkfifo(fifo)

    def call() -> object:
        if operation == "remove_if":
            return remove_if(lay.ws, "AGENT.md", sha(OLD))
        try:
            replace_if(lay.ws, "AGENT.md", lay.source, 0o644, sha(OLD))
        except ConflictError as exc:
            return exc.exit_code
        return "replaced"

    prompt, result = _returns_within(1.0, fifo, call)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert prompt, f"{operation} blocked on a FIFO"
    assert result == [False if operation == "remove_if" else ExitCode.CONFLICT]


# --- save_backup / restore --------------------------------------------------------------------


def test_backup_keeps_the_old_bytes_across_a_replace_and_restore_puts_them_back(
    lay: Layout, tmp_path: Path
) -> None:
    path = lay.ws / "AGENT.md"
    path.write_bytes(OLD)
    path.chmod(0o640)
    backup = tmp_path / "state" / "backup" / "run-1" / "AGENT.md"
    save_backup(lay.ws, "AGENT.md", backup)
    assert stat.S_IMODE(backup.parent.stat().st_mode) == 0o700
    replace_if(lay.ws, "AGENT.md", lay.source, 0o644, sha(OLD))
    assert backup.read_bytes() == OLD  # the backup is not the file that was replaced in place
    assert path.read_bytes() == NEW

    restore(lay.ws, "AGENT.md", backup, sha(NEW))
    assert path.read_bytes() == OLD
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert names(lay.ws) == [".agents", "AGENT.md"]
    assert names(backup.parent) == ["AGENT.md"]


def test_an_existing_backup_is_never_overwritten(lay: Layout, tmp_path: Path) -> None:
    (lay.ws / "AGENT.md").write_bytes(NEW)
    backup = tmp_path / "backup" / "AGENT.md"
    backup.parent.mkdir()
    backup.write_bytes(OLD)
    save_backup(lay.ws, "AGENT.md", backup)
    assert backup.read_bytes() == OLD


def test_restore_refuses_a_file_that_changed_since(lay: Layout, tmp_path: Path) -> None:
    path = lay.ws / "AGENT.md"
    path.write_bytes(NEW + b"edited by the user during the run\n")
    backup = tmp_path / "AGENT.md.bak"
    backup.write_bytes(OLD)
    with pytest.raises(ConflictError) as caught:
        restore(lay.ws, "AGENT.md", backup, sha(NEW))
    conflict(caught.value, path)
    assert path.read_bytes() == NEW + b"edited by the user during the run\n"
    lay.no_temp_files()


def test_restore_of_a_removed_file_refuses_one_that_reappeared(
    lay: Layout, tmp_path: Path
) -> None:
    backup = tmp_path / "AGENT.md.bak"
    backup.write_bytes(OLD)
    restore(lay.ws, ".agents/skills/AGENT.md", backup, None)
    assert (lay.ws / ".agents/skills/AGENT.md").read_bytes() == OLD
    (lay.ws / "AGENT.md").write_bytes(NEW)
    with pytest.raises(ConflictError):
        restore(lay.ws, "AGENT.md", backup, None)
    assert (lay.ws / "AGENT.md").read_bytes() == NEW
    lay.no_temp_files()


def test_restore_never_writes_through_a_symlinked_parent(lay: Layout, tmp_path: Path) -> None:
    backup = tmp_path / "AGENT.md.bak"
    backup.write_bytes(NEW)
    link = lay.ws / ".agents" / "skills"
    link.rmdir()
    link.symlink_to(lay.outside)
    with pytest.raises(UnsafePath):
        restore(lay.ws, ".agents/skills/victim.txt", backup, sha(OLD))
    lay.assert_outside_untouched()


# --- directories and temp files ---------------------------------------------------------------


def test_make_dir_creates_once_and_refuses_a_file_or_symlinked_parent(lay: Layout) -> None:
    assert make_dir(lay.ws, ".agents/skills/tmux") is True
    assert stat.S_ISDIR(os.lstat(lay.ws / ".agents/skills/tmux").st_mode)
    assert make_dir(lay.ws, ".agents/skills/tmux") is False
    (lay.ws / "AGENT.md").write_bytes(OLD)
    with pytest.raises(UnsafePath):
        make_dir(lay.ws, "AGENT.md")
    (lay.ws / "linked").symlink_to(lay.outside)
    with pytest.raises(UnsafePath):
        make_dir(lay.ws, "linked/new")
    with pytest.raises(UnsafePath):
        make_dir(lay.ws, "linked")  # a symlink to a directory is not our directory
    lay.assert_outside_untouched()
    assert (lay.ws / "AGENT.md").read_bytes() == OLD


def test_remove_dir_if_empty_keeps_non_empty_and_symlinked(lay: Layout) -> None:
    (lay.ws / ".agents" / "skills" / "user.sh").write_bytes(OLD)
    assert remove_dir_if_empty(lay.ws, ".agents/skills") is False
    assert (lay.ws / ".agents" / "skills" / "user.sh").read_bytes() == OLD
    (lay.ws / "linked").symlink_to(lay.outside)
    assert remove_dir_if_empty(lay.ws, "linked") is False
    assert os.path.islink(lay.ws / "linked")
    (lay.ws / "empty").mkdir()
    assert remove_dir_if_empty(lay.ws, "empty") is True
    assert remove_dir_if_empty(lay.ws, "empty") is True
    assert not (lay.ws / "empty").exists()
    lay.assert_outside_untouched()


def test_remove_temp_drops_only_our_temp_name(lay: Layout) -> None:
    (lay.ws / "AGENT.md").write_bytes(OLD)
    (lay.ws / ".AGENT.md.mam-tmp").write_bytes(b"half")
    remove_temp(lay.ws, "AGENT.md")
    remove_temp(lay.ws, "no/such/dir/x")
    assert names(lay.ws) == [".agents", "AGENT.md"]


# --- write_atomic -----------------------------------------------------------------------------


def test_write_atomic_creates_and_replaces_with_no_temp_left(lay: Layout) -> None:
    receipt = lay.ws / "receipt.json"
    write_atomic(receipt, b"{}\n")
    assert receipt.read_bytes() == b"{}\n"
    assert stat.S_IMODE(receipt.stat().st_mode) == 0o644
    write_atomic(receipt, b'{"v": 2}\n', 0o600)
    assert receipt.read_bytes() == b'{"v": 2}\n'
    assert names(lay.ws) == [".agents", "receipt.json"]


def test_write_atomic_replaces_a_symlink_instead_of_writing_through_it(lay: Layout) -> None:
    receipt = lay.ws / "receipt.json"
    receipt.symlink_to(lay.outside / "victim.txt")
    (lay.ws / ".receipt.json.mam-tmp").symlink_to(lay.outside / "victim.txt")
    write_atomic(receipt, b"{}\n")
    assert not os.path.islink(receipt)
    assert receipt.read_bytes() == b"{}\n"
    lay.assert_outside_untouched()
    assert names(lay.ws) == [".agents", "receipt.json"]


def test_write_atomic_readers_and_a_killed_writer_see_old_or_new_never_a_mix(
    lay: Layout,
) -> None:
    receipt = lay.ws / "receipt.json"
    versions = [bytes([65 + i]) * 300_000 for i in range(2)]
    write_atomic(receipt, versions[0])
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {INSTALLER!r})
            from pathlib import Path
            from mam_install.engine._fsops import write_atomic
            versions = [bytes([65 + i]) * 300_000 for i in range(2)]
            print("go", flush=True)
            i = 0
            while True:
                i += 1
                write_atomic(Path({str(receipt)!r}), versions[i % 2])
            """)],
        stdout=subprocess.PIPE,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == b"go\n"
        seen = set()
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            data = receipt.read_bytes()
            assert data in versions, f"a reader saw {len(data)} bytes of a mix"
            seen.add(data[:1])
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    assert receipt.read_bytes() in versions
    assert seen  # the reader ran; with a live writer it usually sees both versions


def test_write_atomic_that_fails_mid_write_keeps_the_old_content(lay: Layout) -> None:
    receipt = lay.ws / "receipt.json"
    receipt.write_bytes(b'{"old": true}\n')
    out = run_with_file_size_limit(
        f"_fsops.write_atomic(Path({str(receipt)!r}), b'x' * 100_000)", limit=4096
    )
    assert out == "OSError 27"
    assert receipt.read_bytes() == b'{"old": true}\n'


def test_write_atomic_that_fails_mid_write_leaves_no_temp(lay: Layout) -> None:
    receipt = lay.ws / "receipt.json"
    receipt.write_bytes(b'{"old": true}\n')
    run_with_file_size_limit(
        f"_fsops.write_atomic(Path({str(receipt)!r}), b'x' * 100_000)", limit=4096
    )
    assert names(lay.ws) == [".agents", "receipt.json"]
