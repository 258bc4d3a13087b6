"""Receipts are a file format: round trips, atomic rewrites, old fixtures, newer ones refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clirun import cli
from mam_install._errors import ReceiptError
from mam_install.actions._file_actions import KeepFile, WriteFile
from mam_install.engine._plan import InstallPlan, Receipt, RunInfo, read_receipt, write_receipt
from mam_install.machine._layout import ScopeLayout, workspace_layout
from workspaces import ROOT, V1_FILES, V2_FILES, expected_tree, pinned, tree

FIXTURES = ROOT / "tests/data/receipts"


def sample() -> Receipt:
    write = WriteFile(
        path="AGENT.md",
        sha256="a" * 64,
        mode=0o644,
        source="workspace/AGENT.md",
        for_path="AGENT.md",
    )
    write.state = "completed"
    keep = KeepFile(path=".env.example", reason="identical", disk_sha256="b" * 64)
    keep.state = "skipped"
    plan = InstallPlan("workspace", "0.1.0", "1.0.0", {"from": "embedded"}, {}, {}, [write, keep])
    return Receipt(plan, RunInfo(id="20260101T000000Z-1", status="complete"))


def state(tmp_path: Path) -> ScopeLayout:
    layout = workspace_layout(tmp_path)
    layout.state_dir.mkdir(exist_ok=True)
    return layout


def read_doc(tmp_path: Path, doc: object) -> Receipt | None:
    layout = state(tmp_path)
    layout.receipt.write_text(json.dumps(doc))
    return read_receipt(layout)


def test_receipt_round_trips_through_disk(tmp_path):
    layout = state(tmp_path)
    write_receipt(layout.receipt, sample())
    again = read_receipt(layout)
    assert again is not None
    assert again.to_json() == sample().to_json()
    assert again.owned_files() == {"AGENT.md": "a" * 64}
    assert [p.name for p in layout.state_dir.iterdir()] == ["install-receipt.json"]  # no temp


def test_rewrite_replaces_the_whole_file_atomically(tmp_path):
    path = tmp_path / "install-receipt.json"
    write_receipt(path, sample())
    inode = path.stat().st_ino
    receipt = sample()
    receipt.run.status = "in-progress"
    write_receipt(path, receipt, durable=False)
    assert path.stat().st_ino != inode  # a new file renamed into place, never rewritten in place
    assert json.loads(path.read_text())["run"]["status"] == "in-progress"


def test_newer_schema_is_refused_naming_the_installer_to_use(tmp_path):
    doc = sample().to_json()
    doc["schema_version"] = 99
    doc["installer_version"] = "7.1.0"
    with pytest.raises(ReceiptError, match=r"mam-install 7\.1\.0") as info:
        read_doc(tmp_path, doc)
    assert info.value.exit_code == 6


def test_unknown_action_and_damaged_json_are_receipt_errors(tmp_path):
    doc = sample().to_json()
    doc["actions"].append({"tag": "teleport_file", "state": "completed"})
    with pytest.raises(ReceiptError, match="teleport_file"):
        read_doc(tmp_path, doc)
    workspace_layout(tmp_path).receipt.write_text('{"kind": "mam-install-receipt", "schema_v')
    with pytest.raises(ReceiptError, match="not valid JSON"):
        read_receipt(workspace_layout(tmp_path))


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_receipts_of_every_released_version_still_parse(fixture, tmp_path):
    layout = state(tmp_path)
    shutil.copy(fixture, layout.receipt)
    receipt = read_receipt(layout)
    assert receipt is not None
    assert receipt.run.status == "complete"
    assert receipt.owned_files()


def test_a_released_receipt_still_upgrades(tmp_path, releases):
    ws = tmp_path / "ws"
    for rel, (data, mode) in V1_FILES.items():
        path = ws / rel.split("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    (ws / "AGENT.md").write_bytes(b"the user's own AGENT.md\n")
    (ws / "AGENT.md.mam-new").write_bytes(V1_FILES["workspace/AGENT.md"][0])
    (ws / ".mam").mkdir()
    shutil.copy(FIXTURES / "0.1.0-workspace.json", ws / ".mam/install-receipt.json")
    result = cli("upgrade", "-y", "--no-host", "--workspace", ws, *pinned(releases["2.0.0"]))
    assert result.exit_code == 0, result.stderr
    expected = expected_tree(V2_FILES)
    expected["AGENT.md"] = b"the user's own AGENT.md\n"
    expected["AGENT.md.mam-new"] = expected_tree(V2_FILES)["AGENT.md"]
    assert tree(ws) == expected
    assert not Path(ws / ".agents/skills/old-tool.sh").exists()


def test_the_schema_1_fixture_is_migrated_with_the_decisions_it_knew(tmp_path):
    layout = state(tmp_path)
    shutil.copy(FIXTURES / "0.1.0-workspace.json", layout.receipt)
    receipt = read_receipt(layout)
    assert receipt is not None and receipt.plan.schema_version == 2
    by_path = {getattr(a, "path", None): a for a in receipt.plan.actions}
    assert by_path["AGENT.md"].decision == "conflict"
    assert by_path[".env.example"].version == "1.0.0"


def test_a_schema_2_receipt_keeps_every_decision_through_an_upgrade(tmp_path, releases):
    from workspaces import make_release

    ws = tmp_path / "ws"
    for rel, (data, mode) in V2_FILES.items():
        path = ws / rel.split("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    (ws / ".env.example").write_bytes(b"MAM_TMUX_SOCKET=mine\n")
    (ws / ".agents/skills/tmux/send-message.sh").unlink()
    (ws / "AGENT.md").write_bytes(b"the user's own AGENT.md\n")
    (ws / "AGENT.md.mam-new").write_bytes(V2_FILES["workspace/AGENT.md"][0])
    (ws / ".mam").mkdir()
    shutil.copy(FIXTURES / "0.1.0-schema-2-workspace.json", ws / ".mam/install-receipt.json")
    status = cli("--json", "status", "--workspace", ws)
    assert status.exit_code == 4
    assert status.scope()["states"] == {
        ".agents/skills/lib.sh": "pristine",
        ".agents/skills/mqtt/mam_mqtt.py": "pristine",
        ".agents/skills/tmux/send-message.sh": "deleted",
        ".env.example": "modified",
        "AGENT.md": "pending",
    }
    v3 = dict(V2_FILES)
    v3["workspace/.env.example"] = (b"MAM_TMUX_SOCKET=mam\nMAM_NEW=1\n", 0o644)
    v3["workspace/AGENT.md"] = (b"# v3\n", 0o644)
    result = cli("upgrade", "-y", "--no-host", "--workspace", ws,
                 *pinned(make_release(tmp_path, v3, "3.0.0")))
    assert result.exit_code == 0, result.stderr
    assert (ws / ".env.example").read_bytes() == b"MAM_TMUX_SOCKET=mine\n"
    assert (ws / ".env.example.mam-new").read_bytes() == b"MAM_TMUX_SOCKET=mam\nMAM_NEW=1\n"
    assert not (ws / ".agents/skills/tmux/send-message.sh").exists()
    assert (ws / "AGENT.md.mam-new").read_bytes() == b"# v3\n"
