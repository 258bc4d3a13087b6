"""Each file action on a real directory: plan, execute, check, revert, and JSON round trip."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mam_install._errors import ConflictError
from mam_install._runner import RecordingRunner
from mam_install.actions._file_actions import (
    CreateDirectory,
    KeepFile,
    RemoveDirectory,
    RemoveFile,
    ReplaceFile,
    WriteFile,
)
from mam_install.engine._action import Context, action_from_json
from mam_install.scopes._file_planner import PlannedFile, Previous, plan_files

NEW = b"new bytes\n"
OLD = b"old bytes\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    warn = detail = info


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    root = tmp_path / "root"
    root.mkdir()
    source = tmp_path / "staged"
    source.write_bytes(NEW)
    return Context(
        root=root,
        runner=RecordingRunner(),
        feedback=Notes(),
        sources={"s": source},
        backup_dir=tmp_path / "backup",
    )


def planned(ctx: Context, previous: Previous | None = None, path: str = "a/f.txt"):  # type: ignore[no-untyped-def]
    return plan_files(ctx.root, (PlannedFile(path, sha(NEW), 0o644, "s"),), previous or Previous())


def run_all(actions, ctx):  # type: ignore[no-untyped-def]
    for action in actions:
        if action.needs_execute:
            action.execute(ctx)
            action.state = "completed"


def revert_all(actions, ctx):  # type: ignore[no-untyped-def]
    for action in reversed(actions):
        if action.state == "completed" and not action.carried:
            action.revert(ctx)


def test_absent_file_round_trip(ctx):
    actions = planned(ctx)
    assert [type(a) for a in actions] == [CreateDirectory, WriteFile]
    run_all(actions, ctx)
    assert (ctx.root / "a/f.txt").read_bytes() == NEW
    assert all(a.check(ctx) for a in actions)
    revert_all(actions, ctx)
    assert list(ctx.root.iterdir()) == []


def test_pre_existing_identical_file_is_adopted_and_never_reverted(ctx):
    (ctx.root / "a").mkdir()
    (ctx.root / "a/f.txt").write_bytes(NEW)
    actions = planned(ctx)
    assert len(actions) == 1 and isinstance(actions[0], KeepFile)
    assert actions[0].reason == "adopted" and actions[0].owned_sha256 == sha(NEW)
    revert_all(actions, ctx)
    assert (ctx.root / "a/f.txt").read_bytes() == NEW


def test_pre_existing_different_file_gets_ours_beside_it(ctx):
    (ctx.root / "a").mkdir()
    (ctx.root / "a/f.txt").write_bytes(OLD)
    actions = planned(ctx)
    assert [a.tag for a in actions] == ["keep_file", "write_file"]
    run_all(actions, ctx)
    assert (ctx.root / "a/f.txt").read_bytes() == OLD
    assert (ctx.root / "a/f.txt.mam-new").read_bytes() == NEW
    revert_all(actions, ctx)
    assert sorted(p.name for p in (ctx.root / "a").iterdir()) == ["f.txt"]


def test_symlink_at_destination_is_kept(ctx, tmp_path):
    target = tmp_path / "target"
    target.write_bytes(OLD)
    (ctx.root / "a").mkdir()
    (ctx.root / "a/f.txt").symlink_to(target)
    actions = planned(ctx)
    assert [(a.tag, getattr(a, "reason", "")) for a in actions] == [("keep_file", "symlink")]
    run_all(actions, ctx)
    assert target.read_bytes() == OLD


def test_symlinked_parent_is_never_written_through(ctx, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (ctx.root / "a").symlink_to(elsewhere)
    actions = planned(ctx)
    assert [(a.tag, getattr(a, "reason", "")) for a in actions] == [
        ("keep_file", "symlinked-parent")
    ]
    with pytest.raises(ConflictError):
        WriteFile(
            path="a/f.txt", sha256=sha(NEW), mode=0o644, source="s", for_path="a/f.txt"
        ).execute(ctx)
    assert list(elsewhere.iterdir()) == []


def test_replace_keeps_a_backup_and_revert_restores_the_old_bytes(ctx):
    (ctx.root / "f.txt").write_bytes(OLD)
    action = ReplaceFile(
        path="f.txt", old_sha256=sha(OLD), sha256=sha(NEW), mode=0o644, source="s", for_path="f.txt"
    )
    action.execute(ctx)
    assert (ctx.root / "f.txt").read_bytes() == NEW
    assert ctx.backup_dir is not None and (ctx.backup_dir / "f.txt").read_bytes() == OLD
    action.execute(ctx)  # idempotent
    action.revert(ctx)
    assert (ctx.root / "f.txt").read_bytes() == OLD
    action.revert(ctx)  # idempotent
    assert (ctx.root / "f.txt").read_bytes() == OLD


def test_replace_refuses_a_file_that_changed_since_the_plan(ctx):
    (ctx.root / "f.txt").write_bytes(b"edited meanwhile\n")
    action = ReplaceFile(
        path="f.txt", old_sha256=sha(OLD), sha256=sha(NEW), mode=0o644, source="s", for_path="f.txt"
    )
    with pytest.raises(ConflictError):
        action.execute(ctx)
    assert (ctx.root / "f.txt").read_bytes() == b"edited meanwhile\n"


def test_remove_only_while_pristine_and_revert_from_backup(ctx):
    (ctx.root / "f.txt").write_bytes(OLD)
    action = RemoveFile(path="f.txt", sha256=sha(OLD))
    action.execute(ctx)
    assert not (ctx.root / "f.txt").exists()
    action.revert(ctx)
    assert (ctx.root / "f.txt").read_bytes() == OLD
    (ctx.root / "f.txt").write_bytes(b"edited\n")
    RemoveFile(path="f.txt", sha256=sha(OLD)).execute(ctx)
    assert (ctx.root / "f.txt").read_bytes() == b"edited\n"


def test_directories_are_removed_only_when_empty(ctx):
    CreateDirectory(path="d").execute(ctx)
    (ctx.root / "d/user.txt").write_bytes(b"mine\n")
    RemoveDirectory(path="d").execute(ctx)
    assert (ctx.root / "d/user.txt").exists()
    (ctx.root / "d/user.txt").unlink()
    RemoveDirectory(path="d").execute(ctx)
    assert not (ctx.root / "d").exists()


@pytest.mark.parametrize(
    "action",
    [
        CreateDirectory(path="d"),
        RemoveDirectory(path="d", base="/abs"),
        WriteFile(path="x", sha256="a" * 64, mode=0o755, source="s", for_path="x"),
        ReplaceFile(
            path="x",
            old_sha256="b" * 64,
            sha256="a" * 64,
            mode=0o644,
            source="s",
            for_path="x",
            adopted=True,
        ),
        RemoveFile(path="x", sha256="a" * 64, reason="uninstall"),
        KeepFile(path="x", reason="user-edited", disk_sha256="c" * 64, new_path="x.mam-new"),
    ],
    ids=lambda a: a.tag,
)
def test_every_action_round_trips_through_json(action):
    action.state = "completed"
    again = action_from_json(action.to_json(), "test")
    assert again == action and again.state == "completed"
    assert action.describe_execute() and action.describe_revert()
