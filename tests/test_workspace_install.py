"""Install, re-install and uninstall of the workspace scope: DESIGN §5's table, on real files."""

from __future__ import annotations

import os
from pathlib import Path

from clirun import cli
from workspaces import V1_FILES, expected_tree, pinned, sha, tree

V1 = expected_tree(V1_FILES)


def install(ws: Path, release: Path, *extra: str) -> tuple[int, str]:
    run = cli("install", "-y", "--workspace", ws, *pinned(release), *extra)
    return run.exit_code, run.stderr


def test_fresh_install_writes_exactly_the_payload_and_a_receipt(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    code, _ = install(ws, releases["1.0.0"])
    assert code == 0
    assert tree(ws) == V1
    assert os.stat(ws / ".agents/skills/lib.sh").st_mode & 0o777 == 0o755
    assert os.stat(ws / "AGENT.md").st_mode & 0o777 == 0o644
    assert (ws / ".mam/install-receipt.json").is_file()


def test_second_install_is_a_noop_that_exits_0_and_changes_nothing(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    install(ws, releases["1.0.0"])
    receipt = (ws / ".mam/install-receipt.json").read_bytes()
    code, err = install(ws, releases["1.0.0"])
    assert code == 0
    assert "nothing to do" in err
    assert (ws / ".mam/install-receipt.json").read_bytes() == receipt
    assert tree(ws) == V1


def test_users_existing_agent_md_is_kept_and_ours_written_beside_it(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "AGENT.md").write_bytes(b"my own notes\n")
    code, err = install(ws, releases["1.0.0"])
    assert code == 0
    assert (ws / "AGENT.md").read_bytes() == b"my own notes\n"
    assert (ws / "AGENT.md.mam-new").read_bytes() == V1["AGENT.md"]
    assert f"diff -u {ws / 'AGENT.md'} {ws / 'AGENT.md.mam-new'}" in err


def test_pre_existing_identical_file_is_adopted_as_mams_and_uninstalled_like_one(
    tmp_path, releases
):
    # The bytes of a released version (the current one included) are mam's, whoever copied
    # them in: adopted, then upgraded, reported and uninstalled like any file of mam's.
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "AGENT.md").write_bytes(V1["AGENT.md"])  # type: ignore[arg-type]
    assert install(ws, releases["1.0.0"])[0] == 0
    assert not (ws / "AGENT.md.mam-new").exists()
    status = cli("--json", "status", "--workspace", ws)
    assert status.exit_code == 0 and status.scope()["states"]["AGENT.md"] == "pristine"
    assert cli("uninstall", "--workspace", ws).exit_code == 0
    assert tree(ws) == {}


def test_symlinked_agents_dir_is_never_written_through(tmp_path, releases):
    ws, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    ws.mkdir()
    elsewhere.mkdir()
    (ws / ".agents").symlink_to(elsewhere)
    code, err = install(ws, releases["1.0.0"])
    assert code == 0
    assert list(elsewhere.iterdir()) == []
    assert (ws / ".agents").is_symlink()
    assert "symlink" in err
    assert (ws / "AGENT.md").read_bytes() == V1["AGENT.md"]


def test_symlink_at_a_destination_is_kept_and_its_target_untouched(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    target = tmp_path / "target.md"
    target.write_bytes(b"target bytes\n")
    (ws / "AGENT.md").symlink_to(target)
    assert install(ws, releases["1.0.0"])[0] == 0
    assert (ws / "AGENT.md").is_symlink()
    assert target.read_bytes() == b"target bytes\n"
    assert not (ws / "AGENT.md.mam-new").exists()


def test_nothing_outside_the_allowlist_is_created(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    install(ws, releases["1.0.0"])
    top = sorted(p.name for p in ws.iterdir())
    assert top == [".agents", ".env.example", ".mam", "AGENT.md"]


def test_uninstall_restores_the_workspace_exactly(tmp_path, releases):
    ws = tmp_path / "ws"
    (ws / ".agents").mkdir(parents=True)
    (ws / ".agents/mine.txt").write_bytes(b"mine\n")
    (ws / "AGENT.md").write_bytes(b"user agent md\n")
    before = tree(ws)
    assert install(ws, releases["1.0.0"])[0] == 0
    assert (ws / "AGENT.md.mam-new").exists()
    assert cli("uninstall", "--workspace", ws).exit_code == 0
    assert tree(ws) == before
    assert not (ws / ".mam").exists()


def test_uninstall_keeps_a_file_the_user_edited(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    install(ws, releases["1.0.0"])
    (ws / ".agents/skills/lib.sh").write_bytes(b"edited by me\n")
    run = cli("uninstall", "--workspace", ws)
    assert run.exit_code == 0
    assert tree(ws) == {
        ".agents": "dir",
        ".agents/skills": "dir",
        ".agents/skills/lib.sh": b"edited by me\n",
    }
    assert "lib.sh" in run.stderr


def test_dry_run_and_plan_change_nothing(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    run = cli("install", "--dry-run", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert run.exit_code == 0
    assert "Write `AGENT.md`" in run.stderr
    assert list(ws.iterdir()) == []
    plan = cli("--json", "plan", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert plan.exit_code == 0
    doc = plan.scope()["plan"]
    assert doc["payload_version"] == "1.0.0"
    assert {a["tag"] for a in doc["actions"]} >= {"write_file", "create_directory"}
    assert list(ws.iterdir()) == []


def test_json_is_accepted_after_the_command_name_too(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    run = cli("install", "-y", "--json", "--workspace", ws, *pinned(releases["1.0.0"]))
    assert run.exit_code == 0
    doc = run.json()
    assert doc["ok"] is True and doc["exit_code"] == 0
    written = doc["scopes"]["workspace"]["changes"]["write"]
    assert sorted(written) == sorted(p.split("/", 1)[1] for p in V1_FILES)


def test_status_reports_pristine_modified_missing_and_exits_nonzero(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    install(ws, releases["1.0.0"])
    assert cli("status", "--workspace", ws).exit_code == 0
    (ws / "AGENT.md").write_bytes(b"changed\n")
    (ws / ".env.example").unlink()
    run = cli("--json", "status", "--workspace", ws)
    assert run.exit_code == 4
    files = run.scope()["states"]
    assert files["AGENT.md"] == "modified"
    assert files[".env.example"] == "missing"
    assert files[".agents/skills/lib.sh"] == "pristine"


def test_status_without_a_receipt_is_a_receipt_error(tmp_path):
    run = cli("status", "--workspace", tmp_path)
    assert run.exit_code == 6
    assert str(tmp_path / ".mam/install-receipt.json") in run.stderr


def test_receipt_records_path_hash_mode_preexistence_and_action(tmp_path, releases):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "AGENT.md").write_bytes(b"mine\n")
    install(ws, releases["1.0.0"])
    import json

    doc = json.loads((ws / ".mam/install-receipt.json").read_text())
    assert doc["schema_version"] == 2 and doc["payload_version"] == "1.0.0"
    by_path = {a.get("path"): a for a in doc["actions"]}
    lib = by_path[".agents/skills/lib.sh"]
    assert lib["tag"] == "write_file" and lib["state"] == "completed"
    assert lib["sha256"] == sha(V1_FILES["workspace/.agents/skills/lib.sh"][0])
    assert lib["mode"] == 0o755 and lib["pre_existed"] is False and lib["version"] == "1.0.0"
    kept = by_path["AGENT.md"]
    assert kept["tag"] == "keep_file" and kept["state"] == "skipped" and kept["pre_existed"]
    assert kept["decision"] == "conflict" and kept["new_path"] == "AGENT.md.mam-new"


def test_tampered_release_exits_5_and_leaves_the_workspace_untouched(tmp_path, releases):
    import shutil

    release = tmp_path / "release"
    shutil.copytree(releases["1.0.0"], release)
    archive = next(release.glob("*.tar.gz"))
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "AGENT.md").write_bytes(b"mine\n")
    run = cli("install", "-y", "--workspace", ws, *pinned(release))
    assert run.exit_code == 5
    assert "SHA-256" in run.stderr or "sha256" in run.stderr.lower()
    assert tree(ws) == {"AGENT.md": b"mine\n"}


def test_install_never_lists_the_workspace_so_unrelated_files_cost_nothing(
    tmp_path, releases, monkeypatch
):
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src/unrelated.py").write_bytes(b"x = 1\n")
    listed: list[str] = []
    real_listdir, real_scandir = os.listdir, os.scandir

    def watch(real):  # type: ignore[no-untyped-def]
        def listing(path=".", *args, **kwargs):  # type: ignore[no-untyped-def]
            text = os.fsdecode(path) if not isinstance(path, int) else ""
            if text.startswith(str(ws)) and not text.startswith(str(ws / ".mam")):
                listed.append(text)
            return real(path, *args, **kwargs)

        return listing

    monkeypatch.setattr(os, "listdir", watch(real_listdir))
    monkeypatch.setattr(os, "scandir", watch(real_scandir))
    assert install(ws, releases["1.0.0"])[0] == 0
    assert install(ws, releases["2.0.0"])[0] == 0
    assert cli("status", "--workspace", ws).exit_code == 0
    assert listed == []


def test_the_receipt_lists_directories_in_one_order_whatever_the_hash_seed(tmp_path, releases):
    """Directories of one depth were ordered by set iteration, which follows PYTHONHASHSEED:
    two runs from the same state wrote receipts that differ (found by tests/test_noop_witness)."""
    import json
    import subprocess
    import sys

    from workspaces import ROOT

    receipts = set()
    for seed in map(str, range(12)):
        ws = tmp_path / f"ws-{seed}" / "ws"
        ws.mkdir(parents=True)
        done = subprocess.run(
            [sys.executable, "-m", "mam_install", "install", "-y", "--no-host", "--workspace",
             str(ws), *map(str, pinned(releases["2.0.0"]))],
            env={**os.environ, "PYTHONHASHSEED": seed,
                 "PYTHONPATH": str(ROOT / "installer")}, capture_output=True, text=True,
        )
        assert done.returncode == 0, done.stderr
        doc = json.loads((ws / ".mam/install-receipt.json").read_bytes())
        receipts.add(json.dumps([a["path"] for a in doc["actions"]]))
    assert len(receipts) == 1
