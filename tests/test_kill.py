"""SIGKILL a run at every crash point: each file is wholly old or wholly new, and the next run
finishes (install/upgrade) or undoes (status, rollback) it, with the user's edits intact."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from subproc import run
from workspaces import V1_FILES, V2_FILES, expected_tree, pinned, tree

V1 = expected_tree(V1_FILES)
V2 = expected_tree(V2_FILES)
USER_EDIT = b"the user's own AGENT.md\n"


def v1_workspace(ws: Path, release: Path) -> dict[str, bytes | str]:
    ws.mkdir()
    assert run("install", "-y", "--workspace", ws, *pinned(release)).returncode == 0
    (ws / "AGENT.md").write_bytes(USER_EDIT)
    return tree(ws)


def upgraded(before: dict[str, bytes | str]) -> dict[str, bytes | str]:
    after = dict(V2)
    after["AGENT.md"] = USER_EDIT
    after["AGENT.md.mam-new"] = V2["AGENT.md"]
    return after


def killed_upgrade(ws: Path, release: Path, point: int) -> bool:
    """Run an upgrade that SIGKILLs itself at crash point ``point``; False if it finished."""
    done = run(
        "upgrade", "-y", "--workspace", ws, *pinned(release),
        env={"MAM_INSTALL_TEST_KILL_AT": str(point)},
    )
    if done.returncode == 0:
        return False
    assert done.returncode == -signal.SIGKILL, done.stderr
    return True


def assert_each_file_wholly_old_or_new(ws: Path, before: dict[str, bytes | str]) -> None:
    after = upgraded(before)
    for path, content in tree(ws).items():
        assert content in (before.get(path), after.get(path)), f"{path} is neither old nor new"
    json.loads((ws / ".mam/install-receipt.json").read_text())  # the receipt parses


def test_killed_upgrade_is_finished_by_the_next_upgrade_at_every_point(tmp_path, releases):
    point = 1
    while True:
        ws = tmp_path / f"ws{point}"
        before = v1_workspace(ws, releases["1.0.0"])
        if not killed_upgrade(ws, releases["2.0.0"], point):
            assert tree(ws) == upgraded(before)
            break
        assert_each_file_wholly_old_or_new(ws, before)
        again = run("upgrade", "-y", "--workspace", ws, *pinned(releases["2.0.0"]))
        assert again.returncode == 0, again.stderr
        assert tree(ws) == upgraded(before), f"after a kill at point {point}"
        point += 1
    assert point > 10  # the plan really had many crash points


@pytest.mark.parametrize("point", [1, 4, 9, 14, 19])
def test_killed_upgrade_is_reported_by_status_and_undone_by_rollback(tmp_path, releases, point):
    ws = tmp_path / "ws"
    before = v1_workspace(ws, releases["1.0.0"])
    assert killed_upgrade(ws, releases["2.0.0"], point)
    receipt = (ws / ".mam/install-receipt.json").read_bytes()
    half_done = tree(ws)
    status = run("--json", "status", "--workspace", ws)
    assert status.returncode == 11 and "interrupted" in status.stderr
    assert "`mam-install rollback --workspace" in status.stderr
    assert json.loads(status.stdout)["exit_code"] == 11
    # A read command reads: not a byte of the half-done run is changed.
    assert tree(ws) == half_done and (ws / ".mam/install-receipt.json").read_bytes() == receipt
    assert run("rollback", "--workspace", ws).returncode == 0
    assert tree(ws) == before
    again = run("--json", "status", "--workspace", ws)
    assert json.loads(again.stdout)["scopes"]["workspace"]["payload_version"] == "1.0.0"


@pytest.mark.parametrize("point", [2, 6, 11])
def test_killed_first_install_leaves_each_file_whole_and_reinstall_completes(
    tmp_path, releases, point
):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "AGENT.md").write_bytes(USER_EDIT)
    done = run(
        "install", "-y", "--workspace", ws, *pinned(releases["1.0.0"]),
        env={"MAM_INSTALL_TEST_KILL_AT": str(point)},
    )
    assert done.returncode == -signal.SIGKILL
    for path, content in tree(ws).items():
        assert content in (V1.get(path), USER_EDIT), path
    assert run("install", "-y", "--workspace", ws, *pinned(releases["1.0.0"])).returncode == 0
    expected = dict(V1)
    expected["AGENT.md"] = USER_EDIT
    expected["AGENT.md.mam-new"] = V1["AGENT.md"]
    assert tree(ws) == expected


def killed(*args: str | Path, point: int) -> bool:
    """Run a command that SIGKILLs itself at crash point ``point``; False if it finished."""
    done = run(*args, env={"MAM_INSTALL_TEST_KILL_AT": str(point)})
    if done.returncode == 0:
        return False
    assert done.returncode == -signal.SIGKILL, done.stderr
    return True


def test_killed_uninstall_is_finished_by_the_next_uninstall_at_every_point(tmp_path, releases):
    reference = tmp_path / "reference"
    v1_workspace(reference, releases["1.0.0"])
    assert run("uninstall", "--workspace", reference).returncode == 0
    removed = tree(reference)
    assert removed == {"AGENT.md": USER_EDIT}
    point = 1
    while True:
        ws = tmp_path / f"ws{point}"
        before = v1_workspace(ws, releases["1.0.0"])
        if not killed("uninstall", "--workspace", ws, point=point):
            assert tree(ws) == removed
            break
        for path, content in tree(ws).items():
            assert content == before.get(path), f"{path} is not what was installed"
        again = run("uninstall", "--workspace", ws)
        assert again.returncode == 0, again.stderr
        assert tree(ws) == removed, f"after a kill at point {point}"
        assert not (ws / ".mam").exists()
        point += 1
    assert point > 10


def test_killed_rollback_is_finished_by_the_next_rollback_at_every_point(tmp_path, releases):
    point = 1
    while True:
        ws = tmp_path / f"ws{point}"
        before = v1_workspace(ws, releases["1.0.0"])
        up = run("upgrade", "-y", "--workspace", ws, *pinned(releases["2.0.0"]))
        assert up.returncode == 0, up.stderr
        upgraded_tree = tree(ws)
        if not killed("rollback", "--workspace", ws, point=point):
            assert tree(ws) == before
            break
        for path, content in tree(ws).items():
            assert content in (before.get(path), upgraded_tree.get(path)), path
        again = run("rollback", "--workspace", ws)
        assert again.returncode == 0, again.stderr
        assert tree(ws) == before, f"after a kill at point {point}"
        status = run("--json", "status", "--workspace", ws)
        assert json.loads(status.stdout)["scopes"]["workspace"]["payload_version"] == "1.0.0"
        point += 1
    assert point > 3
