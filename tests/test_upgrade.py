"""Upgrades in real workspaces: three-way decisions, legacy adoption, downgrade, rollback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clirun import cli
from workspaces import V1_FILES, V2_FILES, expected_tree, pinned, tree

V1 = expected_tree(V1_FILES)
V2 = expected_tree(V2_FILES)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def run(command: str, ws: Path, release: Path | None = None, *extra: str):  # type: ignore[no-untyped-def]
    args: list[str | Path] = [command, "-y", "--workspace", ws]
    if release is not None:
        args += [*pinned(release)]
    return cli(*args, *extra)


def test_upgrade_replaces_pristine_keeps_edits_leaves_deletions_and_drops_removed(ws, releases):
    assert run("install", ws, releases["1.0.0"]).exit_code == 0
    (ws / "AGENT.md").write_bytes(b"my edits\n")
    (ws / ".agents/skills/tmux/send-message.sh").unlink()
    result = run("upgrade", ws, releases["2.0.0"])
    assert result.exit_code == 0, result.stderr
    expected = dict(V2)
    expected["AGENT.md"] = b"my edits\n"
    expected["AGENT.md.mam-new"] = V2["AGENT.md"]
    del expected[".agents/skills/tmux/send-message.sh"]  # deleted by the user: stays deleted
    assert tree(ws) == expected
    assert "diff -u" in result.stderr
    assert "send-message.sh" in result.stderr
    assert json.loads((ws / ".mam/install-receipt.json").read_text())["payload_version"] == "2.0.0"
    assert (ws / ".mam/receipts/1.0.0.json").is_file()


def test_dropped_file_that_the_user_edited_is_kept(ws, releases):
    run("install", ws, releases["1.0.0"])
    (ws / ".agents/skills/old-tool.sh").write_bytes(b"my version\n")
    assert run("upgrade", ws, releases["2.0.0"]).exit_code == 0
    assert (ws / ".agents/skills/old-tool.sh").read_bytes() == b"my version\n"


def test_downgrade_is_refused_with_exit_5_naming_both_versions(ws, releases):
    run("install", ws, releases["2.0.0"])
    before = tree(ws)
    result = run("install", ws, releases["1.0.0"])
    assert result.exit_code == 5
    assert "2.0.0" in result.stderr and "1.0.0" in result.stderr
    assert tree(ws) == before
    assert run("install", ws, releases["1.0.0"], "--allow-downgrade").exit_code == 0
    assert tree(ws) == V1


def test_a_deleted_file_stays_deleted_on_reinstall_until_restore(ws, releases):
    run("install", ws, releases["1.0.0"])
    (ws / ".env.example").unlink()
    assert run("install", ws, releases["1.0.0"]).exit_code == 0
    assert not (ws / ".env.example").exists()
    status = cli("--json", "status", "--workspace", ws)
    assert status.exit_code == 0 and status.scope()["states"][".env.example"] == "deleted"
    done = cli("restore", "--workspace", ws, *pinned(releases["1.0.0"]), ws / ".env.example")
    assert done.exit_code == 0, done.stderr
    assert tree(ws) == V1


def test_rollback_returns_the_exact_v1_tree(ws, releases):
    run("install", ws, releases["1.0.0"])
    (ws / "AGENT.md").write_bytes(b"my edits\n")
    before = tree(ws)
    assert run("upgrade", ws, releases["2.0.0"]).exit_code == 0
    assert tree(ws) != before
    result = cli("rollback", "--workspace", ws)
    assert result.exit_code == 0, result.stderr
    assert tree(ws) == before
    status = cli("--json", "status", "--workspace", ws)
    assert status.scope()["payload_version"] == "1.0.0"


def test_rollback_after_a_first_install_says_to_uninstall(ws, releases):
    run("install", ws, releases["1.0.0"])
    result = cli("rollback", "--workspace", ws)
    assert result.exit_code == 6
    assert "uninstall" in result.stderr


def test_legacy_hand_made_install_is_adopted_and_edits_kept(ws, tmp_path, releases, monkeypatch):
    # The old shell installer copied the files in and left no receipt.
    for rel, (data, mode) in V1_FILES.items():
        path = ws / rel.split("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    (ws / ".agents/skills/lib.sh").write_bytes(b"hand edited\n")
    history = tmp_path / "history"
    history.mkdir()
    shutil.copy(next(releases["1.0.0"].glob("manifest-*.json")), history / "1.0.0.json")
    monkeypatch.setattr("mam_install.release._embedded.history_dir", lambda: history)
    result = run("upgrade", ws, releases["2.0.0"])
    assert result.exit_code == 0, result.stderr
    assert (ws / "AGENT.md").read_bytes() == V2["AGENT.md"]  # adopted, upgraded
    assert (ws / ".agents/skills/lib.sh").read_bytes() == b"hand edited\n"
    assert (ws / ".agents/skills/lib.sh.mam-new").read_bytes() == V2[".agents/skills/lib.sh"]
    receipt = json.loads((ws / ".mam/install-receipt.json").read_text())
    adopted = {a["path"] for a in receipt["actions"] if a.get("adopted")}
    assert adopted == {"AGENT.md", ".agents/skills/tmux/send-message.sh"}
    # old-tool.sh was a v1 file the new payload drops; never ours by receipt, so it stays.
    assert (ws / ".agents/skills/old-tool.sh").exists()


def test_without_history_a_legacy_file_is_treated_as_the_users(ws, releases, monkeypatch):
    (ws / "AGENT.md").write_bytes(V1["AGENT.md"])  # type: ignore[arg-type]
    monkeypatch.setattr("mam_install.release._embedded.history_dir", lambda: None)
    assert run("install", ws, releases["2.0.0"]).exit_code == 0
    assert (ws / "AGENT.md").read_bytes() == V1["AGENT.md"]
    assert (ws / "AGENT.md.mam-new").read_bytes() == V2["AGENT.md"]


def test_plan_json_shows_each_decision_before_anything_changes(ws, releases):
    run("install", ws, releases["1.0.0"])
    (ws / "AGENT.md").write_bytes(b"mine\n")
    before = tree(ws)
    result = cli("--json", "plan", "--workspace", ws, *pinned(releases["2.0.0"]))
    assert result.exit_code == 0
    actions = result.scope()["plan"]["actions"]
    decisions = {(a["tag"], a.get("path")) for a in actions}
    assert ("keep_file", "AGENT.md") in decisions
    assert ("write_file", "AGENT.md.mam-new") in decisions
    assert ("replace_file", ".agents/skills/lib.sh") in decisions
    assert ("write_file", ".agents/skills/mqtt/mam_mqtt.py") in decisions
    assert ("remove_file", ".agents/skills/old-tool.sh") in decisions
    assert tree(ws) == before


def test_pending_mam_new_is_reported_by_status_and_replaced_by_next_upgrade(ws, tmp_path, releases):
    from workspaces import make_release

    run("install", ws, releases["1.0.0"])
    (ws / "AGENT.md").write_bytes(b"mine\n")
    run("upgrade", ws, releases["2.0.0"])
    status = cli("--json", "status", "--workspace", ws)
    assert status.scope()["states"]["AGENT.md"] == "pending"
    v3_files = dict(V2_FILES)
    v3_files["workspace/AGENT.md"] = (b"# v3\n", 0o644)
    v3 = make_release(tmp_path, v3_files, "3.0.0")
    assert run("upgrade", ws, v3).exit_code == 0
    assert (ws / "AGENT.md").read_bytes() == b"mine\n"
    assert (ws / "AGENT.md.mam-new").read_bytes() == b"# v3\n"


def test_an_edit_to_a_file_that_did_not_change_between_versions_gets_no_mam_new(ws, releases):
    run("install", ws, releases["1.0.0"])
    (ws / ".env.example").write_bytes(b"MAM_TMUX_SOCKET=mine\n")  # identical in v1 and v2
    assert run("install", ws, releases["1.0.0"]).exit_code == 0  # same version: a no-op
    assert run("upgrade", ws, releases["2.0.0"]).exit_code == 0
    assert (ws / ".env.example").read_bytes() == b"MAM_TMUX_SOCKET=mine\n"
    assert not (ws / ".env.example.mam-new").exists()


def test_a_file_of_a_released_version_is_adopted_even_with_a_receipt(
    ws, tmp_path, releases, monkeypatch
):
    from workspaces import make_release

    run("install", ws, releases["1.0.0"])
    # mam_mqtt.py arrived in 1.5.0, which this workspace never installed through mam-install.
    v15 = dict(V1_FILES)
    v15["workspace/.agents/skills/mqtt/mam_mqtt.py"] = (b"print('1.5.0')\n", 0o644)
    release = make_release(tmp_path, v15, "1.5.0")
    history = tmp_path / "history"
    history.mkdir()
    shutil.copy(next(release.glob("manifest-*.json")), history / "1.5.0.json")
    monkeypatch.setattr("mam_install.release._embedded.history_dir", lambda: history)
    (ws / ".agents/skills/mqtt").mkdir()
    (ws / ".agents/skills/mqtt/mam_mqtt.py").write_bytes(b"print('1.5.0')\n")
    assert run("upgrade", ws, releases["2.0.0"]).exit_code == 0
    assert (ws / ".agents/skills/mqtt/mam_mqtt.py").read_bytes() == V2[
        ".agents/skills/mqtt/mam_mqtt.py"
    ]
    assert not (ws / ".agents/skills/mqtt/mam_mqtt.py.mam-new").exists()
