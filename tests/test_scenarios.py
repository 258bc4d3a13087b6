"""What users live through, over three released versions, on the built pyz.

0.1.0 is the payload inside the pyz; 0.2.0 and 0.3.0 are made from it with the project's own
release script (scripts/payload_archive.py), once per module. Each step asserts the bytes on
disk, `status --json` and the exit code.

    file             0.1.0   0.2.0      0.3.0
    AGENT.md         a       changed    changed again
    .env.example     a       same       changed
    lib.sh           a       changed    same as 0.2.0
    send-message.sh  a       same       changed
    new-tool.sh      -       new        same
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_pyz import pyz, run_pyz, shiv_root  # noqa: F401 - session fixtures
from workspaces import ROOT, pinned

pytestmark = pytest.mark.pyz

PYTHON = Path(sys.executable)
AGENT, ENV = "AGENT.md", ".env.example"
LIB, SEND = ".agents/skills/lib.sh", ".agents/skills/tmux/send-message.sh"
NEW_TOOL = ".agents/skills/new-tool.sh"
MINE = b"# my own words\n"


def _release(base: Path, version: str, changes: dict[str, bytes]) -> Path:
    from payload_archive import build_payload

    payload = base / f"payload-{version}"
    shutil.copytree(ROOT / "payload", payload, symlinks=True)
    (payload / "VERSION").write_text(version + "\n")
    for rel, suffix in changes.items():
        path = payload / "workspace" / rel
        path.write_bytes((path.read_bytes() if path.exists() else b"#!/bin/sh\n") + suffix)
    out = base / f"release-{version}"
    build_payload(payload, out, mtime=1_700_000_000)
    return out


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("versions")
    v2 = {AGENT: b"# 0.2.0\n", LIB: b"# 0.2.0\n", NEW_TOOL: b"echo new\n"}
    v3 = {**v2, AGENT: b"# 0.2.0\n# 0.3.0\n", ENV: b"# 0.3.0\n", SEND: b"# 0.3.0\n"}
    return {"0.2.0": _release(base, "0.2.0", v2), "0.3.0": _release(base, "0.3.0", v3)}


def released(versions: dict[str, Path], version: str, rel: str) -> bytes:
    if version == "0.1.0":
        return (ROOT / "payload/workspace" / rel).read_bytes()
    archive = next(versions[version].glob("*.tar.gz"))
    import tarfile

    with tarfile.open(archive) as tar:
        member = tar.extractfile(f"workspace/{rel}")
        assert member is not None
        return member.read()


class Workspace:
    def __init__(self, path: Path, pyz_path: Path, shiv: Path, versions: dict[str, Path]):
        self.path, self.pyz, self.shiv_root, self.versions = path, pyz_path, shiv, versions
        path.mkdir(exist_ok=True)

    def mam(self, command: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run_pyz(PYTHON, self.pyz, command, *args, "--workspace", self.path,
                       shiv_root=self.shiv_root)

    def install(self, command: str, version: str, *extra: str) -> str:
        source = pinned(self.versions[version]) if version != "0.1.0" else []
        done = self.mam(command, "-y", "--no-host", *source, *extra)
        assert done.returncode == 0, done.stderr
        return done.stderr

    def status(self, code: int) -> dict[str, str]:
        done = self.mam("status", "--json")
        assert done.returncode == code, done.stderr
        files: dict[str, str] = json.loads(done.stdout)["scopes"]["workspace"]["states"]
        human = self.mam("status")
        assert human.returncode == code, human.stderr
        counts = ", ".join(f"{n} {s}" for s, n in sorted(_count(files).items()))
        assert f"{self.path}: {counts}\n" in human.stderr  # the summary counts what is listed
        for path, state in files.items():
            assert f"{state:9} {path}\n" in human.stderr
        return files

    def read(self, rel: str) -> bytes:
        return (self.path / rel).read_bytes()

    def released(self, version: str, rel: str) -> bytes:
        return released(self.versions, version, rel)


def _count(files: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in files.values():
        counts[state] = counts.get(state, 0) + 1
    return counts


@pytest.fixture
def ws(tmp_path: Path, pyz: Path, shiv_root: Path, versions: dict[str, Path]) -> Workspace:  # noqa: F811
    return Workspace(tmp_path / "ws", pyz, shiv_root, versions)


def test_an_edit_stays_the_users_across_upgrades_until_a_release_changes_the_file(ws):
    ws.install("install", "0.1.0")
    (ws.path / ENV).write_bytes(MINE)
    assert ws.status(4)[ENV] == "modified"
    said = ws.install("upgrade", "0.2.0")
    assert "upgraded mam 0.1.0 \u2192 0.2.0" in said
    assert ws.read(ENV) == MINE and not (ws.path / f"{ENV}.mam-new").exists()
    assert ws.status(4)[ENV] == "modified"
    ws.install("upgrade", "0.2.0")
    assert ws.read(ENV) == MINE and not (ws.path / f"{ENV}.mam-new").exists()
    assert ws.status(4)[ENV] == "modified"
    ws.install("upgrade", "0.3.0")
    assert ws.read(ENV) == MINE
    assert ws.read(f"{ENV}.mam-new") == ws.released("0.3.0", ENV)
    assert ws.status(0)[ENV] == "pending"


def test_a_deleted_file_stays_deleted_until_restore(ws):
    ws.install("install", "0.1.0")
    (ws.path / SEND).unlink()
    assert ws.status(4)[SEND] == "missing"
    ws.install("upgrade", "0.2.0")
    assert not (ws.path / SEND).exists()
    assert ws.status(0)[SEND] == "deleted"
    ws.install("install", "0.2.0")
    assert not (ws.path / SEND).exists()
    assert ws.status(0)[SEND] == "deleted"
    ws.install("upgrade", "0.3.0")  # 0.3.0 changes it: still deleted, no .mam-new
    assert not (ws.path / SEND).exists() and not (ws.path / f"{SEND}.mam-new").exists()
    assert ws.status(0)[SEND] == "deleted"
    done = ws.mam("restore", "-y", *pinned(ws.versions["0.3.0"]), ws.path / SEND)
    assert done.returncode == 0, done.stderr
    assert ws.read(SEND) == ws.released("0.3.0", SEND)
    assert ws.status(0)[SEND] == "pristine"


def conflicted(ws: Workspace) -> None:
    ws.install("install", "0.1.0")
    (ws.path / AGENT).write_bytes(MINE)
    ws.install("upgrade", "0.2.0")
    assert ws.read(AGENT) == MINE
    assert ws.read(f"{AGENT}.mam-new") == ws.released("0.2.0", AGENT)
    assert ws.status(0)[AGENT] == "pending"


def test_a_conflict_resolved_by_taking_ours_is_upgraded_like_any_pristine_file(ws):
    conflicted(ws)
    done = ws.mam("resolve", "--take-new")
    assert done.returncode == 0, done.stderr
    assert ws.read(AGENT) == ws.released("0.2.0", AGENT)
    assert not (ws.path / f"{AGENT}.mam-new").exists()
    assert ws.status(0)[AGENT] == "pristine"
    ws.install("upgrade", "0.3.0")
    assert ws.read(AGENT) == ws.released("0.3.0", AGENT)
    assert ws.status(0)[AGENT] == "pristine"
    back = ws.mam("rollback")  # the user's copy is in the resolve's backup
    assert back.returncode == 0, back.stderr
    assert ws.read(AGENT) == ws.released("0.2.0", AGENT)


def test_a_conflict_resolved_by_keeping_mine_gets_the_next_change_beside_it(ws):
    conflicted(ws)
    done = ws.mam("resolve", ws.path / AGENT, "--keep-mine")
    assert done.returncode == 0, done.stderr
    assert ws.read(AGENT) == MINE and not (ws.path / f"{AGENT}.mam-new").exists()
    assert ws.status(0)[AGENT] == "kept"
    ws.install("upgrade", "0.2.0")  # nothing new to offer: no .mam-new
    assert not (ws.path / f"{AGENT}.mam-new").exists()
    ws.install("upgrade", "0.3.0")
    assert ws.read(AGENT) == MINE
    assert ws.read(f"{AGENT}.mam-new") == ws.released("0.3.0", AGENT)
    assert ws.status(0)[AGENT] == "pending"


def test_resolve_without_a_flag_and_without_a_terminal_changes_nothing(ws):
    conflicted(ws)
    done = ws.mam("resolve")
    assert done.returncode == 2 and "--keep-mine" in done.stderr
    assert ws.read(AGENT) == MINE and (ws.path / f"{AGENT}.mam-new").exists()


@pytest.mark.parametrize("by_hand", ["moved-over", "deleted"])
def test_a_conflict_settled_by_hand_is_recognised(ws, by_hand):
    conflicted(ws)
    if by_hand == "moved-over":
        (ws.path / f"{AGENT}.mam-new").replace(ws.path / AGENT)
    else:
        (ws.path / f"{AGENT}.mam-new").unlink()
    assert ws.status(0)[AGENT] == "resolved"
    ws.install("upgrade", "0.2.0")
    assert ws.status(0)[AGENT] == ("pristine" if by_hand == "moved-over" else "kept")
    ws.install("upgrade", "0.3.0")
    if by_hand == "moved-over":
        assert ws.read(AGENT) == ws.released("0.3.0", AGENT)
        assert ws.status(0)[AGENT] == "pristine"
    else:
        assert ws.read(AGENT) == MINE
        assert ws.read(f"{AGENT}.mam-new") == ws.released("0.3.0", AGENT)
        assert ws.status(0)[AGENT] == "pending"


@pytest.mark.parametrize("policy", ["keep", "take-new", "error"])
def test_on_conflict_decides_for_ci(ws, policy):
    ws.install("install", "0.1.0")
    (ws.path / AGENT).write_bytes(MINE)
    source = pinned(ws.versions["0.2.0"])
    done = ws.mam("upgrade", "-y", "--no-host", *source, "--on-conflict", policy)
    if policy == "error":
        assert done.returncode == 4 and str(ws.path / AGENT) in done.stderr
        assert ws.read(AGENT) == MINE and ws.status(4)[AGENT] == "modified"
        assert json.loads((ws.path / ".mam/install-receipt.json").read_text())[
            "payload_version"] == "0.1.0"  # nothing changed
        return
    assert done.returncode == 0, done.stderr
    assert not (ws.path / f"{AGENT}.mam-new").exists()
    if policy == "keep":
        assert ws.read(AGENT) == MINE and ws.status(0)[AGENT] == "kept"
    else:
        assert ws.read(AGENT) == ws.released("0.2.0", AGENT)
        assert ws.status(0)[AGENT] == "pristine"


def hand_made(ws: Workspace, version: str) -> None:
    """What the old install.sh left: the files of ``version`` copied in, no receipt."""
    for rel in (AGENT, ENV, LIB, SEND, ".agents/skills/tmux/agent-send.sh",
                ".agents/skills/mqtt/mam_mqtt.py", ".agents/skills/mqtt/mqtt_common.py"):
        path = ws.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(ws.released(version, rel))


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0"])
def test_a_hand_made_install_is_adopted_upgraded_and_uninstalled_like_mams_own(ws, version):
    hand_made(ws, version)
    (ws.path / "notes.txt").write_bytes(MINE)  # the user's own file, never mam's
    done = ws.mam("--json", "upgrade", "-y", "--no-host", *pinned(ws.versions["0.2.0"]))
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)["scopes"]["workspace"]
    receipt = json.loads((ws.path / ".mam/install-receipt.json").read_text())
    adopted = {a["path"]: a["adopted_from"] for a in receipt["actions"] if a.get("adopted_from")}
    assert adopted[AGENT] == adopted[LIB] == version
    assert adopted[ENV] == "0.2.0"  # the same bytes in both: the newest release they match
    if version == "0.1.0":
        assert set(doc["changes"]["adopt"]) >= {AGENT, LIB}  # replaced with 0.2.0's
    assert ws.read(AGENT) == ws.released("0.2.0", AGENT)
    files = ws.status(0)
    assert files[AGENT] == files[LIB] == files[NEW_TOOL] == "pristine"
    ws.install("upgrade", "0.3.0")
    assert ws.read(AGENT) == ws.released("0.3.0", AGENT)
    assert set(ws.status(0).values()) == {"pristine"}
    done = ws.mam("uninstall", "-y")
    assert done.returncode == 0, done.stderr
    # Every file of mam's is gone; the directories were there before mam came, so they stay.
    remaining = sorted(str(p.relative_to(ws.path)) for p in ws.path.rglob("*") if p.is_file())
    assert remaining == ["notes.txt"]
    assert not (ws.path / ".mam").exists()


def test_the_counts_add_up_to_the_plan(ws):
    ws.install("install", "0.1.0")
    (ws.path / AGENT).write_bytes(MINE)
    (ws.path / SEND).unlink()
    done = ws.mam("--json", "-v", "upgrade", "-y", "--no-host", *pinned(ws.versions["0.2.0"]))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)["scopes"]["workspace"]
    changes = doc["changes"]
    decided = [a for a in doc["plan"]["actions"] if a["tag"] != "create_directory"
               and not (a["tag"] == "keep_file" and a["reason"] == "pending")]
    primary = [a for a in decided if not (a["tag"] == "keep_file" and a.get("new_path"))]
    assert sum(len(v) for v in changes.values()) == len(primary)
    assert changes["beside"] == [f"{AGENT}.mam-new"] and changes["keep"] == [SEND]
    assert set(changes["replace"]) == {LIB} and changes["write"] == [NEW_TOOL]
    line = (f"{len(changes['write'])} written, {len(changes['replace'])} replaced, "
            f"{len(changes['adopt'])} adopted, {len(changes['remove'])} removed, "
            f"1 kept beside yours as .mam-new, 1 left alone, {len(changes['unchanged'])} unchanged")
    assert line in done.stderr
