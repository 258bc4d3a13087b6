"""A run's bookkeeping is linear in the payload: the receipt is written a fixed number of times
per run, whatever the number of files (it was rewritten twice per action: quadratic)."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import cli
from mam_install.engine import _plan
from workspaces import make_release, pinned


def payload(count: int, flavour: str) -> dict[str, tuple[bytes, int]]:
    files = {
        f"workspace/.agents/skills/gen/d{i // 50:03d}/f{i:05d}.sh": (
            f"#!/bin/sh\n# {flavour} {i}\n".encode(),
            0o755,
        )
        for i in range(count)
    }
    files["workspace/AGENT.md"] = (f"# {flavour}\n".encode(), 0o644)
    return files


class Recorded:
    """Every bookkeeping write of a run (receipts and archived receipts), through _plan's seams
    (``write_atomic``, and ``write_atomic_at`` for writes anchored at the scope's root)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes: list[int] = []
        real, real_at = _plan.write_atomic, _plan.write_atomic_at

        def counting(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
            self.writes.append(len(data))
            real(path, data, mode, durable=durable)

        def counting_at(
            root: Path, rel: str, data: bytes, mode: int = 0o644, *, durable: bool = True
        ) -> None:
            self.writes.append(len(data))
            real_at(root, rel, data, mode, durable=durable)

        monkeypatch.setattr(_plan, "write_atomic", counting)
        monkeypatch.setattr(_plan, "write_atomic_at", counting_at)

    def take(self) -> tuple[int, int]:
        calls, size = len(self.writes), sum(self.writes)
        self.writes.clear()
        return calls, size


def costs(tmp_path: Path, count: int, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(writes, bytes) of an install, an upgrade replacing every file, a rollback, an uninstall."""
    base = tmp_path / str(count)
    v1 = make_release(base, payload(count, "v1"), "1.0.0")
    v2 = make_release(base, payload(count, "v2"), "2.0.0")
    ws = base / "ws"
    ws.mkdir()
    recorded = Recorded(monkeypatch)
    out = []
    for argv in (
        ("install", "-y", "--no-host", "--workspace", ws, *pinned(v1)),
        ("upgrade", "-y", "--no-host", "--workspace", ws, *pinned(v2)),
        ("rollback", "--workspace", ws),
        ("uninstall", "--workspace", ws),
    ):
        done = cli(*argv)
        assert done.exit_code == 0, (argv, done.stderr)
        out.append(recorded.take())
    assert list(ws.iterdir()) == []
    return out


def test_receipt_writes_are_constant_and_receipt_bytes_linear_in_the_payload(
    tmp_path, monkeypatch
):
    small, large = 20, 320
    few = costs(tmp_path, small, monkeypatch)
    many = costs(tmp_path, large, monkeypatch)
    for verb, (calls_few, bytes_few), (calls_many, bytes_many) in zip(
        ("install", "upgrade", "rollback", "uninstall"), few, many
    ):
        assert calls_many == calls_few <= 4, verb
        # 16x the files: linear costs ~16x the bytes; the old per-action rewrites cost ~250x.
        assert bytes_many <= bytes_few * (large / small) * 1.5, (verb, bytes_few, bytes_many)


def test_an_install_fsyncs_each_touched_directory_once_not_each_file(
    tmp_path, monkeypatch
):
    from mam_install.engine import _fsops

    count = 200  # in 4 directories of .agents/skills/gen/, plus the workspace root
    release = make_release(tmp_path, payload(count, "v1"), "1.0.0")
    synced: list[int] = []
    real = _fsops._fsync_dir
    monkeypatch.setattr(_fsops, "_fsync_dir", lambda dfd: synced.append(dfd) or real(dfd))
    ws = tmp_path / "ws"
    ws.mkdir()
    done = cli("install", "-y", "--no-host", "--workspace", ws, *pinned(release))
    assert done.exit_code == 0, done.stderr
    assert (ws / ".agents/skills/gen/d003/f00199.sh").is_file()
    directories = 4 + 4  # the gen/dNNN ones, and ws, .agents, skills, gen
    bookkeeping = 4  # .mam/: its .gitignore, the intent, the final record (one each, at most)
    assert len(synced) <= directories + bookkeeping, len(synced)  # was one per file: 200+
